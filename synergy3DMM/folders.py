"""Many images through one pipeline: a stream of files in; per image its outputs written, or
its error recorded; a summary at the end. Used by `singleImage.py` and meant for every
script and API call that processes more than one image.

An image's outputs are rendered and written while the next image is analysed (a folder of
32 two-face photos: 5% less wall time), with one image in flight at most, so memory stays
bounded whatever the number of images, and a write error stops the run one image later
at most.

Output names depend on the file alone (and the other images beside it on disk), never on
which files a run was given, so separate runs over parts of a folder agree: an image's
name is its stem, or its whole file name where another image in its folder has the same
stem (`a.jpg` and `a.png` give `a.jpg` and `a.png`; compared case-folded, as
case-insensitive disks do).
"""
from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from synergy3DMM.outputs import ImageResult, Output, needs_dense, save_image_outputs
from utils.errors import SynergyError
from utils.io import IMAGE_EXTENSIONS, read_image


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
    failures: list[tuple[str, str]] = field(default_factory=list)  # (image, why) for each one skipped
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (f"{self.images} image(s) processed, {len(self.failures)} skipped, {self.faces} face(s), "
                f"{self.images_per_s:.1f} images/s")


def process_images(pipeline, files: Iterable[Path], outputs: Sequence[Output], out: str | Path,
                   names: Callable[[Path], str] | None = None,
                   on_skip: Callable[[Path, str], None] | None = None,
                   on_done: Callable[[Path, ImageResult], None] | None = None) -> FolderSummary:
    """Analyse every image of `files` with `pipeline` (a `FacePipeline`) and write `outputs`
    for it under `out`. An image that cannot be read is recorded in the summary's failures
    (and given to `on_skip`) and the run goes on; `on_done` receives each image's result
    once its files are written. An error writing outputs ends the run (`SynergyError` or
    `OSError`)."""
    names = names or OutputNames()
    dense = needs_dense(outputs)
    summary = FolderSummary()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="save") as saver:
        pending: tuple[Future, Path, ImageResult] | None = None

        def finish() -> None:
            future, path, result = pending
            future.result()  # re-raises the image's write error
            summary.images += 1
            summary.faces += len(result.faces)
            if on_done is not None:
                on_done(path, result)

        for path in files:
            path = Path(path)
            try:
                image = read_image(path)
            except SynergyError as exc:
                summary.failures.append((str(path), str(exc)))
                if on_skip is not None:
                    on_skip(path, str(exc))
                continue
            result = ImageResult(image, pipeline.analyse(image, dense=dense), str(path), names(path))
            if pending is not None:
                finish()
            pending = (saver.submit(save_image_outputs, result, outputs, out), path, result)
        if pending is not None:
            finish()
    summary.seconds = time.perf_counter() - start
    return summary
