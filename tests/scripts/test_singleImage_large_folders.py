"""Folders of any size through `singleImage.py`: memory that does not grow with the count,
a run killed half-way and resumed with `--skip-existing`, and a folder split among
processes, by torchrun's ranks and by `--shard i/n`, with no image done twice or missed.

The folders hold hard links to one small photo (JSON only), so the tests stay quick."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from synergy3DMM.folders import RECORDS, Journal
from tests.support import MB05, REPO_ROOT
from utils import assets

TIMEOUT = 300  # seconds: a run here takes a few; this only stops a hang


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return {**os.environ, "SYNERGYNET_CACHE": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def weights() -> str:
    return str(assets.require(MB05))


def folder_of(root: Path, count: int, photo: Path) -> Path:
    """`count` images (hard links to `photo`), named so that sorting them is not trivial."""
    folder = root / f"photos{count}"
    folder.mkdir()
    for i in range(count):
        os.link(photo, folder / f"img_{(i * 7919) % 100003:06d}.jpg")
    return folder


def single_image(folder: Path, out: Path, weights: str, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "singleImage.py"), "-f", str(folder), "-o", str(out), "-w", weights,
            "--device", "cpu", "--json-only", *extra]


def journal_names(out: Path) -> list[str]:
    return [entry["name"] for entry in Journal.entries(out)]


def peak_rss_mb(command: list[str], env: dict) -> float:
    """Peak resident memory of a command, measured by a parent that runs nothing else."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
             "sys.stderr.buffer.write(r.stderr); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)")
    result = subprocess.run([sys.executable, "-c", probe, *command], env=env, capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 0 and int(result.stdout) > 0, result.stderr[-2000:]
    return int(result.stdout) / 1024  # Linux: kilobytes


def test_memory_does_not_grow_with_the_number_of_images(tmp_path, photo, env, weights):
    portrait = photo("portrait.jpg")  # 413x551: 0.7 MB decoded, so 400 kept images would be 270 MB more
    small, large = folder_of(tmp_path, 100, portrait), folder_of(tmp_path, 500, portrait)
    peak_small = peak_rss_mb(single_image(small, tmp_path / "out100", weights), env)
    peak_large = peak_rss_mb(single_image(large, tmp_path / "out500", weights), env)
    assert len(list((tmp_path / "out500" / "json").iterdir())) == 500
    assert peak_large <= peak_small + 30, f"peak memory {peak_small:.0f} MB for 100 images, {peak_large:.0f} MB for 500"


def test_killed_run_resumes_with_skip_existing(tmp_path, photo, env, weights):
    folder = folder_of(tmp_path, 500, photo("portrait.jpg"))
    out = tmp_path / "out"
    command = single_image(folder, out, weights, "--skip-existing")
    # the killed run is a plain one: any run can be resumed, not only one started to be
    # niced: on a busy machine the run must not finish while this test waits for its turn
    run = subprocess.Popen(single_image(folder, out, weights), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           preexec_fn=lambda: os.nice(15))
    deadline = time.monotonic() + TIMEOUT
    while len(journal_names(out)) < 100 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    first = journal_names(out)
    assert 100 <= len(first) < 500, f"the run was to be killed half-way ({len(first)} images done)"
    # every image the journal names has its file, complete
    for name in first:
        assert len(json.loads((out / "json" / f"{name}.json").read_text())["faces"]) == 1

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{500 - len(first)} image(s) processed, 0 skipped, {500 - len(first)} face(s), {len(first)} already done" \
        in resumed.stdout
    everything = journal_names(out)
    assert len(everything) == len(set(everything)) == 500, "an image done twice or missed"
    assert set(everything[len(first):]).isdisjoint(first)
    written = list((out / "json").iterdir())
    # the kill may leave the temporary file of the write it cut: hidden, never an output
    assert len([p for p in written if not p.name.startswith(".")]) == 500
    assert all(p.name.endswith(".part") for p in written if p.name.startswith("."))
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["already_done"], summary["failures"]) == (500 - len(first), len(first), 0)

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert again.returncode == 0 and "0 image(s) processed" in again.stdout and "500 already done" in again.stdout

    # an output deleted by hand is made again, and only that image is redone
    gone = out / "json" / f"{first[0]}.json"
    before = json.loads(gone.read_text())
    gone.unlink()
    redo = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert redo.returncode == 0 and "1 image(s) processed" in redo.stdout and "499 already done" in redo.stdout
    after = json.loads(gone.read_text())  # alone in its batch now: equal up to the JSON's rounding
    np.testing.assert_allclose([f["landmarks"] for f in after["faces"]], [f["landmarks"] for f in before["faces"]],
                               atol=1e-3)


def parts_of(out: Path) -> dict[str, list[str]]:
    """Per journal (one per process): the names it recorded."""
    parts = {}
    for path in sorted((out / RECORDS).glob("done-*.jsonl")):
        parts[path.stem] = [json.loads(line)["name"] for line in path.read_text().splitlines()]
    return parts


def assert_split(out: Path, folder: Path, count: int) -> None:
    parts = parts_of(out)
    assert len(parts) == count
    names = [name for part in parts.values() for name in part]
    assert sorted(names) == sorted(p.stem for p in folder.iterdir()), "an image done twice or missed"
    sizes = [len(part) for part in parts.values()]
    assert max(sizes) - min(sizes) <= 1
    assert sorted(p.stem for p in (out / "json").iterdir()) == sorted(names)


def test_torchrun_ranks_split_the_folder(tmp_path, photo, env, weights):
    folder = folder_of(tmp_path, 41, photo("portrait.jpg"))
    out = tmp_path / "out"
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [str(torchrun), "--standalone", "--nproc-per-node", "2",
               *single_image(folder, out, weights, "--skip-existing")[1:]]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_split(out, folder, 2)
    assert set(parts_of(out)) == {"done-0-of-2", "done-1-of-2"}
    summary = json.loads((out / "summary.json").read_text())  # rank 0's merged summary
    assert (summary["images"], summary["faces"], summary["failures"]) == (41, 41, 0)
    assert json.loads((out / "failures.json").read_text()) == []
    per_rank = [json.loads((out / RECORDS / f"summary-{r}-of-2.json").read_text())["images"] for r in range(2)]
    assert sorted(per_rank) == [20, 21]
    assert re.search(r"41 image\(s\) processed", result.stdout)


def test_shards_split_the_folder(tmp_path, photo, env, weights):
    folder = folder_of(tmp_path, 41, photo("portrait.jpg"))
    out = tmp_path / "out"
    runs = [subprocess.Popen(single_image(folder, out, weights, "--shard", f"{i}/2"), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for run in runs:
        stdout, stderr = run.communicate(timeout=TIMEOUT)
        assert run.returncode == 0, stderr
    assert_split(out, folder, 2)
    per_shard = [json.loads((out / RECORDS / f"summary-{i}-of-2.json").read_text())["images"] for i in range(2)]
    assert per_shard == [21, 20]
    summary = json.loads((out / "summary.json").read_text())  # by the shard that finished last
    assert (summary["images"], summary["faces"], summary["failures"]) == (41, 41, 0)


def test_bad_shard_is_flag_advice(tmp_path, photo, weights):
    from tests.support import assert_one_line_error, run_single_image

    result = run_single_image("-f", str(photo("portrait.jpg")), "-w", weights, "--shard", "2/2", "-o",
                              str(tmp_path / "o"))
    assert_one_line_error(result, "shard 2/2")
    assert "--shard" in result.stderr


def test_a_journal_line_cut_by_a_crash_is_ignored_and_kept_apart(tmp_path):
    from synergy3DMM.results import ImageResult

    out = tmp_path / "out"
    (out / RECORDS).mkdir(parents=True)
    (out / RECORDS / "done-0-of-1.jsonl").write_text('{"name": "a", "modes": ["json"]}\n{"name": "b", "mo')
    journal = Journal(out)
    journal.record(ImageResult(None, [], "c.jpg", "c"), ["json"])
    journal.close()
    assert journal_names(out) == ["a", "c"]
    assert set(Journal.finished(out, ["json"])) == {"a", "c"} and Journal.finished(out, ["json", "ply"]) == {}
