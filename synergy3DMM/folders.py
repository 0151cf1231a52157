"""Many images through one pipeline: a stream of files in; per image its outputs written, or
its error recorded; a summary at the end. Used by `singleImage.py`, the Python API
(`SynergyNet.process_folder`) and meant for every script that processes many images.

Three stages overlap: the next images are read, decoded and detected ahead (on a CPU with
ONNX Runtime, one image per core, each on a single-threaded detector) while the network
runs on the faces of a group of images (`batch_images`, all their faces in one batch),
while the outputs of the previous group are written. At most `prefetch` images are in
flight ahead, so memory does not grow with the number of images, and a write error stops
the run one group later at most.

Resuming (`skip_existing`): once every file of an image is written (each atomically), one
line naming it and its files is appended to a journal under `<out>/.synergynet/`; a later
run skips the images its journals name whose files are all still there. An image killed
half-way has no line, so it is done again: a half-written image cannot be taken for a
finished one.

Many processes (`run_folder`): `--shard i/n` and torchrun's ranks each take their share
of the sorted list (`synergy3DMM.sharding`) and write their own outputs and journal;
rank 0 writes the merged `summary.json` and `failures.json`.

Output names depend on the file alone (and the other images beside it on disk), never on
which files a run was given, so separate runs over parts of a folder agree: an image's
name is its stem, or its whole file name where another image in its folder has the same
stem (`a.jpg` and `a.png` give `a.jpg` and `a.png`; compared case-folded, as
case-insensitive disks do).
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from synergy3DMM.outputs import Output, modes_of, needs_dense, save_image_outputs
from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.results import Detections, ImageResult
from synergy3DMM.sharding import Ranks, Shard
from utils.errors import SynergyError
from utils.io import IMAGE_EXTENSIONS, read_image
from utils.writers import write_json

RECORDS = ".synergynet"  # run records under the output folder: journals, each part's summary
BATCH_IMAGES = 8  # images whose faces go through the network in one batch
PREFETCH = 8  # images read and detected ahead of the network

OnSkip = Callable[[Path, str], None]  # an image not done (its path, why)
OnDone = Callable[[Path, ImageResult], None]  # an image whose files are all written
Progress = Callable[[Sequence[Path], int], Iterable[Path]]  # wraps a run's files (with their count), e.g. a bar


class Failure(NamedTuple):
    """An image a run could not do."""

    image: str  # its path
    error: str  # why, one line


class OutputNames:
    """`names(path)`: the output name of an image file (see the module docstring). Each
    folder is listed once."""

    def __init__(self) -> None:
        self._stems: dict[Path, Counter] = {}

    def _stem_counts(self, folder: Path) -> Counter:
        if folder not in self._stems:
            self._stems[folder] = Counter(p.stem.casefold() for p in folder.iterdir()
                                          if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
        return self._stems[folder]

    def __call__(self, path: str | Path) -> str:
        path = Path(path)
        return path.stem if self._stem_counts(path.parent)[path.stem.casefold()] <= 1 else path.name


@dataclass
class FolderSummary:
    """What a run over many images did."""

    images: int = 0  # images analysed and written
    faces: int = 0
    failures: list[Failure] = field(default_factory=list)  # each image skipped
    seconds: float = 0.0
    already_done: int = 0  # images skipped because a previous run finished them (skip_existing)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        done = f", {self.already_done} already done" if self.already_done else ""
        return (f"{self.images} image(s) processed, {len(self.failures)} skipped, {self.faces} face(s){done}, "
                f"{self.images_per_s:.1f} images/s")

    def nothing_done(self) -> str:
        """One line for a run that finished no image: why, from its failures (the reason
        itself when they share one, e.g. the one file given is not an image)."""
        reasons = list(dict.fromkeys(why for _, why in self.failures))
        if not reasons:
            return "no image was processed"
        if len(reasons) == 1:
            return f"no image was processed ({len(self.failures)} failed): {reasons[0]}"
        image, why = self.failures[0]
        return (f"no image was processed ({len(self.failures)} failed, for {len(reasons)} different reasons; "
                f"the first: {image}: {why})")

    def to_json(self) -> dict:
        return {"images": self.images, "faces": self.faces, "failures": len(self.failures),
                "already_done": self.already_done, "seconds": round(self.seconds, 3),
                "images_per_s": round(self.images_per_s, 2)}

    @classmethod
    def merged(cls, parts: Sequence["FolderSummary"]) -> "FolderSummary":
        """The summary of parts that ran side by side (their time: the slowest part's)."""
        return cls(sum(p.images for p in parts), sum(p.faces for p in parts),
                   [f for p in parts for f in p.failures], max((p.seconds for p in parts), default=0.0),
                   sum(p.already_done for p in parts))


class Journal:
    """The images of an output folder whose files are all written: JSON lines
    `{"name", "source", "modes", "faces", "files"}` in `<out>/.synergynet/done-<tag>.jsonl`
    (files relative to `<out>`), one file per process (no two processes append to one file)."""

    def __init__(self, out: str | Path, tag: str = "0-of-1"):
        self.path = Path(out) / RECORDS / f"done-{tag}.jsonl"
        self._fd: int | None = None

    def record(self, result: ImageResult, modes: Sequence[str], files: Sequence[str | Path] = ()) -> None:
        """Called once every file of `result` (`files`, relative to the output folder) is in place."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            size = os.fstat(self._fd).st_size
            if size and os.pread(self._fd, 1, size - 1) != b"\n":  # a line cut by a crash stays apart
                os.write(self._fd, b"\n")
        line = json.dumps({"name": result.name, "source": result.source, "modes": list(modes),
                           "faces": len(result.faces), "files": [Path(f).as_posix() for f in files]},
                          ensure_ascii=False) + "\n"
        os.write(self._fd, line.encode())  # one write of one line: whole, or (killed) cut and ignored

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def entries(out: str | Path) -> Iterator[dict]:
        """Every whole line of every journal of `out` (a line cut by a kill is left out)."""
        for path in sorted((Path(out) / RECORDS).glob("done-*.jsonl")):
            with open(path, "rb") as f:
                for raw in f:
                    if not raw.endswith(b"\n"):
                        continue
                    try:
                        entry = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(entry, dict) and "name" in entry:
                        yield entry

    @classmethod
    def finished(cls, out: str | Path, modes: Sequence[str]) -> dict[str, list[str]]:
        """The images of `out` whose outputs of every one of `modes` were written: name -> the
        files it recorded (relative to `out`; the latest line of a name wins)."""
        wanted = set(modes)
        return {entry["name"]: [str(f) for f in entry.get("files", ())] for entry in cls.entries(out)
                if wanted <= set(entry.get("modes", ()))}


def _still_done(out: Path, skip: Collection[str] | Mapping[str, Sequence[str]]) -> Callable[[str], bool]:
    """Whether an image named so need not be done again: named in `skip`, and, when `skip`
    maps names to their files, every one of those files still under `out` (outputs deleted
    by hand are made again)."""
    if not isinstance(skip, Mapping):
        names = set(skip)
        return names.__contains__
    return lambda name: name in skip and all((out / relative).is_file() for relative in skip[name])


@dataclass
class ReadItem:
    """What reading ahead gives the network stage: an image ready for it, or why not."""

    path: Path
    name: str = ""
    image: np.ndarray | None = None  # the decoded image; None: already done, or failed
    found: Detections | None = None
    error: str | None = None


class ReadAhead:
    """Images read, decoded and detected ahead, on one thread per core (`prefetch` images at
    most in flight), given back in the order of the files."""

    def __init__(self, pipeline: FacePipeline, files: Iterable[Path], names: Callable[[Path], str],
                 done: Callable[[str], bool], prefetch: int):
        self.prepare, workers = pipeline.side_by_side()
        self.files, self.names, self.done, self.prefetch = iter(files), names, done, max(1, prefetch)
        self.window: deque[Future | ReadItem] = deque()
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="read-ahead")
        self.exhausted = False

    def _load(self, path: Path, name: str) -> ReadItem:
        try:
            image = read_image(path)
            return ReadItem(path, name, image, self.prepare(image))
        except SynergyError as exc:
            return ReadItem(path, name, error=str(exc))

    def _fill(self) -> None:
        while not self.exhausted and len(self.window) < self.prefetch:
            path = next(self.files, None)
            if path is None:
                self.exhausted = True
                break
            path = Path(path)
            name = self.names(path)
            self.window.append(ReadItem(path, name) if self.done(name) else self.pool.submit(self._load, path, name))

    def _pop(self) -> ReadItem:
        item = self.window.popleft()
        self._fill()
        return item.result() if isinstance(item, Future) else item

    def group(self, size: int) -> list[ReadItem] | None:
        """The next item, then those already ready, up to `size` images; None at the end."""
        self._fill()
        if not self.window:
            return None
        items = [self._pop()]
        while self.window and sum(item.image is not None for item in items) < size:
            head = self.window[0]
            if isinstance(head, Future) and not head.done():
                break
            items.append(self._pop())
        return items

    def close(self) -> None:
        for item in self.window:
            if isinstance(item, Future):
                item.cancel()
        self.pool.shutdown(wait=True)


class Saved(NamedTuple):
    """One image's outputs written behind: their paths under the output folder, or why not."""

    error: str | None
    files: list[Path]


@dataclass
class SaveBehind:
    """A group's outputs being written on the save thread."""

    results: list[ImageResult]
    saved: Future  # -> list[Saved], one per result


class FolderRun:
    """One run of `process_images`, in named steps: images are read (and detected) ahead
    (`read_ahead`), taken in groups (`batch`), their faces regressed in one batch
    (`regress`), their files written behind on another thread (`save_behind`) while the
    next group is regressed, each written image then recorded (`record`), and each image
    that could not be done recorded as a failure (`fail`). See `process_images` for the
    arguments."""

    def __init__(self, pipeline: FacePipeline, outputs: Sequence[Output], out: str | Path,
                 names: Callable[[Path], str] | None = None, on_skip: OnSkip | None = None,
                 on_done: OnDone | None = None, *, skip: Collection[str] | Mapping[str, Sequence[str]] = (),
                 journal: Journal | None = None, batch_images: int = BATCH_IMAGES, prefetch: int = PREFETCH):
        self.pipeline, self.outputs, self.out = pipeline, outputs, Path(out)
        self.names = names or OutputNames()
        self.on_skip, self.on_done, self.skip, self.journal = on_skip, on_done, skip, journal
        self.batch_images, self.prefetch = batch_images, prefetch
        self.dense = needs_dense(outputs)
        self.model = pipeline.model_block  # what made the faces, in each image's JSON
        self.modes = modes_of(outputs)
        self.summary = FolderSummary()

    def run(self, files: Iterable[Path]) -> FolderSummary:
        """Every image of `files`, in order; the summary of what was done."""
        start = time.perf_counter()
        ahead = self.read_ahead(files)
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="save") as saver:
                pending: SaveBehind | None = None
                while (items := ahead.group(self.batch_images)) is not None:
                    results = self.regress(self.batch(items))
                    if not results:
                        continue
                    if pending is not None:
                        self.record(pending)
                    pending = self.save_behind(saver, results)
                if pending is not None:
                    self.record(pending)
        finally:
            ahead.close()
            if self.journal is not None:
                self.journal.close()
        self.summary.seconds = time.perf_counter() - start
        return self.summary

    def read_ahead(self, files: Iterable[Path]) -> ReadAhead:
        """The images of `files` read, decoded and detected ahead; those a previous run
        finished (`skip`) come back as already done, without being read."""
        return ReadAhead(self.pipeline, files, self.names, _still_done(self.out, self.skip), self.prefetch)

    def batch(self, items: list[ReadItem]) -> list[ReadItem]:
        """The images of a group ready for the network; the others counted (already done)
        or failed (unreadable)."""
        ready = []
        for item in items:
            if item.error is not None:
                self.fail(item.path, item.error)
            elif item.image is None:
                self.summary.already_done += 1
            else:
                ready.append(item)
        return ready

    def regress(self, group: list[ReadItem]) -> list[ImageResult]:
        """The faces of every image of `group` in one network batch (an error fails them all)."""
        if not group:
            return []
        try:
            faces = self.pipeline.analyse_many([item.found for item in group], dense=self.dense)
        except SynergyError as exc:
            for item in group:
                self.fail(item.path, str(exc))
            return []
        return [ImageResult(item.image, found, str(item.path), item.name, self.model)
                for item, found in zip(group, faces)]

    def save_behind(self, saver: ThreadPoolExecutor, results: list[ImageResult]) -> SaveBehind:
        """Every image's files of a group written on the `saver` thread (each image's own
        error kept for `record`)."""
        return SaveBehind(results, saver.submit(self._save, results))

    def _save(self, results: list[ImageResult]) -> list[Saved]:
        saved = []
        for result in results:
            try:
                saved.append(Saved(None, save_image_outputs(result, self.outputs, self.out)))
            except SynergyError as exc:  # this image's own problem; OSError ends the run
                saved.append(Saved(str(exc), []))
        return saved

    def record(self, pending: SaveBehind) -> None:
        """Once a group's files are written: each image in the journal and the summary (and
        to `on_done`), or, when its outputs failed, as a failure."""
        for result, (error, written) in zip(pending.results, pending.saved.result()):
            path = Path(result.source)
            if error is not None:
                self.fail(path, error)
                continue
            if self.journal is not None:
                self.journal.record(result, self.modes, written)
            self.summary.images += 1
            self.summary.faces += len(result.faces)
            if self.on_done is not None:
                self.on_done(path, result)

    def fail(self, path: Path, why: str) -> None:
        self.summary.failures.append(Failure(str(path), why))
        if self.on_skip is not None:
            self.on_skip(path, why)


def process_images(pipeline: FacePipeline, files: Iterable[Path], outputs: Sequence[Output], out: str | Path,
                   names: Callable[[Path], str] | None = None, on_skip: OnSkip | None = None,
                   on_done: OnDone | None = None, *,
                   skip: Collection[str] | Mapping[str, Sequence[str]] = (), journal: Journal | None = None,
                   batch_images: int = BATCH_IMAGES, prefetch: int = PREFETCH) -> FolderSummary:
    """Analyse every image of `files` with `pipeline` and write `outputs` for it under
    `out` (a `FolderRun`). An image that cannot be read, analysed or made into outputs
    (`SynergyError`) is recorded in the summary's failures (and given to `on_skip`) and the
    run goes on; `on_done` receives each image's result once its files are written. An
    `OSError` (disk) ends the run.

    `skip`: output names not to do again (counted as `already_done`), or `Journal.finished`'s
    mapping of names to files (an image whose files are not all there is done again); `journal`: where each
    finished image is recorded; `batch_images`: images whose faces share one network
    batch; `prefetch`: images read and detected ahead (memory: about `prefetch +
    2 * batch_images` decoded images at most)."""
    return FolderRun(pipeline, outputs, out, names, on_skip, on_done, skip=skip, journal=journal,
                     batch_images=batch_images, prefetch=prefetch).run(files)


def write_report(summary: FolderSummary, path: str | Path) -> None:
    """A summary as JSON, with its failures listed."""
    write_json(path, {**summary.to_json(), "failure_list": [{"image": image, "error": why}
                                                            for image, why in summary.failures]})


def read_report(path: str | Path) -> FolderSummary | None:
    """A summary `write_report` wrote (None when absent or unreadable)."""
    try:
        doc = json.loads(Path(path).read_text())
        return FolderSummary(int(doc["images"]), int(doc["faces"]),
                             [Failure(str(f["image"]), str(f["error"])) for f in doc["failure_list"]],
                             float(doc["seconds"]), int(doc["already_done"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sum_up(whole: FolderSummary, out: Path, keep_records: bool, one_file: bool) -> None:
    # `failures.json` is the latest run's: written when it has failures (one file that
    # fails is the run's error line, not a report) or keeps records, else an earlier run's
    # report is removed, so that it is not taken for this run's
    report = out / "failures.json"
    if (whole.failures and not one_file) or keep_records:
        write_json(report, [{"image": image, "error": why} for image, why in whole.failures])
    else:
        report.unlink(missing_ok=True)
    if keep_records:
        write_report(whole, out / "summary.json")


def run_folder(pipeline: FacePipeline, files: Sequence[str | Path], outputs: Sequence[Output], out: str | Path, *,
               skip_existing: bool = False, shard: Shard | None = None, progress: Progress | None = None,
               on_skip: OnSkip | None = None,
               batch_images: int = BATCH_IMAGES, prefetch: int = PREFETCH) -> FolderSummary:
    """`process_images` over this process's share of `files` (`shard`, and torchrun's rank
    within it), with the run's records under `out`:

    - `skip_existing`: images that a journal of `out` names for these outputs, and whose
      recorded files are all still there, are not done again;
    - each part records the images it finishes in `.synergynet/done-<part>.jsonl` (so that
      any run, even one without `skip_existing`, can be resumed); with `skip_existing` or
      more than one part also its summary in `.synergynet/summary-<part>.json`;
    - the part that sums up writes `failures.json` (when a run over several files has failures, or the run
      keeps records; otherwise it removes an earlier run's, so that the file always describes
      the latest run) and, when the run keeps records, `summary.json`: a whole run; under
      torchrun, rank 0 after gathering every rank's summary; with `--shard`, whichever part
      finishes last (it finds every part's summary there; nothing gathers those).

    Returns this process's summary, or on rank 0 of torchrun the merged one. `progress`
    wraps the stream of files with a total (e.g. a tqdm bar)."""
    out = Path(out)
    ranks = Ranks()
    ranks.join()
    part = ranks.shard.within(shard or Shard())
    mine = part.take(files)
    modes = modes_of(outputs)
    keep_records = skip_existing or part.count > 1
    skip = Journal.finished(out, modes) if skip_existing and (out / RECORDS).is_dir() else {}
    journal = Journal(out, part.tag)  # always: any run, killed at any moment, can be resumed
    stream: Iterable[Path] = progress(mine, len(mine)) if progress is not None else mine
    summary = process_images(pipeline, stream, outputs, out, on_skip=on_skip, skip=skip, journal=journal,
                             batch_images=batch_images, prefetch=prefetch)
    if keep_records:
        write_report(summary, out / RECORDS / f"summary-{part.tag}.json")
    parts = ranks.gather(summary)
    if parts is None:  # not rank 0
        return summary
    whole = FolderSummary.merged(parts)
    if shard is None or shard.count == 1:  # the whole list was this world's: it sums up
        _sum_up(whole, out, keep_records, len(files) == 1)
        return whole
    found = [read_report(out / RECORDS / f"summary-{Shard(i, part.count).tag}.json") for i in range(part.count)]
    if all(report is not None for report in found):  # the last part to finish
        _sum_up(FolderSummary.merged(found), out, keep_records, len(files) == 1)
    return whole
