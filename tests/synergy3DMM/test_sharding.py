"""synergy3DMM/sharding.py: a list of images split among processes (`--shard i/n`, torchrun's
ranks, both nested), each file done once whatever order, spelling or repetition each
process is handed it in; each rank on its own GPU; the ranks' world read from torchrun."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from synergy3DMM.folders import RECORDS
from synergy3DMM.sharding import Ranks, Shard, rank_device
from tests.support import MB05, REPO_ROOT
from utils import assets
from utils.errors import SynergyError


def test_shards_and_ranks_cover_the_list_once():
    files = [Path(f"f{i:03d}.jpg") for i in range(103)][::-1]  # given unsorted
    for count in (1, 2, 3, 7, 200):
        parts = [Shard(i, count).take(files) for i in range(count)]
        assert sorted(f for part in parts for f in part) == sorted(files)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    # torchrun's 2 ranks inside each of 3 shards: 6 disjoint parts of the whole list
    nested = [Shard(rank, 2).within(Shard(i, 3)) for i in range(3) for rank in range(2)]
    assert sorted(part.index for part in nested) == list(range(6)) and {part.count for part in nested} == {6}
    assert Shard.parse("1/4") == Shard(1, 4) and Shard(1, 4).tag == "1-of-4"
    for bad in ("4/4", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(Exception, match="shard") as exc:
            Shard.parse(bad)
        assert exc.value.option == "shard"


def test_each_rank_takes_its_own_gpu(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert rank_device("cuda") == "cuda:3"
    assert rank_device("cpu") == "cpu" and rank_device("cuda:1") == "cuda:1"
    monkeypatch.delenv("LOCAL_RANK")
    assert rank_device("cuda") == "cuda"


def parts_taken(handed: list[list], count: int, outer: Shard | None = None) -> list[list[Path]]:
    """What each of `count` processes takes when process i is handed `handed[i]` (under
    `outer`, a --shard the processes are torchrun's ranks within)."""
    return [Shard(i, count).within(outer or Shard()).take(files) for i, files in enumerate(handed)]


def assert_each_file_once(parts: list[list[Path]], files: list[Path]) -> None:
    taken = [os.path.abspath(f) for part in parts for f in part]
    assert sorted(taken) == sorted(os.path.abspath(f) for f in files), "a file done twice or missed"
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_processes_handed_the_files_in_different_orders_do_each_once():
    """An API caller may hand each process the same files in its own order: the split must
    not depend on it (the command line sorts first; the library may not count on that)."""
    files = [Path(f"photos/img_{(i * 7919) % 100003:06d}.jpg") for i in range(103)]
    for count in (2, 3, 7):
        handed = [random.Random(i).sample(files, len(files)) for i in range(count)]
        assert_each_file_once(parts_taken(handed, count), files)
        # the same for torchrun's ranks inside each of 2 --shard parts
        for outer in range(2):
            ranks = parts_taken(handed, count, Shard(outer, 2))
            assert len({f for part in ranks for f in part}) == sum(map(len, ranks))  # disjoint
        nested = [part for outer in range(2) for part in parts_taken(handed, count, Shard(outer, 2))]
        assert_each_file_once(nested, files)


def test_the_split_ignores_how_a_path_is_spelled_and_repeated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = [f"f{i:02d}.jpg" for i in range(11)]
    relative = [Path(name) for name in names]
    absolute = [str(tmp_path / name) for name in reversed(names)]
    dotted = [f"./{name}" for name in names] + names[:4]  # with a few given twice
    parts = parts_taken([relative, absolute, dotted], 3)
    assert_each_file_once(parts, relative)
    assert all(isinstance(f, Path) for part in parts for f in part)
    assert [str(f) for f in parts[1]] == sorted(str(f) for f in parts[1])  # as handed: absolute here
    assert Shard().take(names + names) == relative  # one process: each once, sorted


def test_the_world_comes_from_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert Shard.from_environment() == Shard(0, 1)
    assert (Ranks().rank, Ranks().size) == (0, 1) and Ranks().gather("mine") == ["mine"]
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert Shard.from_environment() == Shard(2, 3) and (Ranks().rank, Ranks().size) == (2, 3)
    monkeypatch.setenv("WORLD_SIZE", "three")
    with pytest.raises(SynergyError, match="WORLD_SIZE='three'"):
        Shard.from_environment()


RANK_SCRIPT = """
import os, random, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from synergy3DMM import SynergyNet

rank = int(os.environ["RANK"])
files = sorted(Path({folder!r}).iterdir())
random.Random(rank).shuffle(files)  # each rank its own order
if rank == 1:
    files = [os.path.relpath(f) for f in files]  # and its own spelling
SynergyNet({weights!r}, device="cpu", backend="onnx").process_folder(files, {out!r}, modes=["json"])
"""


def test_torchrun_ranks_handed_different_orders_do_each_file_once(tmp_path, photo):
    """Through the Python API under a real torchrun: two ranks, each handed the folder's
    files in another order (one of them as relative paths), write each image once."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(9):
        os.link(photo("portrait.jpg"), folder / f"img_{(i * 7919) % 100003:06d}.jpg")
    out = tmp_path / "out"
    script = tmp_path / "run.py"
    script.write_text(RANK_SCRIPT.format(repo=str(REPO_ROOT), folder=str(folder), out=str(out),
                                         weights=str(assets.require(MB05))))
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", str(script)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "SYNERGYNET_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    journals = {path.stem: [json.loads(line)["name"] for line in path.read_text().splitlines()]
                for path in (out / RECORDS).glob("done-*.jsonl")}
    assert sorted(journals) == ["done-0-of-2", "done-1-of-2"]
    names = [name for part in journals.values() for name in part]
    assert sorted(names) == sorted(p.stem for p in folder.iterdir()), "an image done twice or missed"
    assert sorted(map(len, journals.values())) == [4, 5]
    assert sorted(p.stem for p in (out / "json").iterdir()) == sorted(names)
