"""utils/torchrun.py: torchrun's environment read once, as torchrun itself sets it; a process
started without torchrun is rank 0 of one; a variable that is no integer is a one-line error."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from utils import torchrun
from utils.errors import SynergyError
from utils.torchrun import World


def test_without_torchrun_a_process_is_rank_0_of_one():
    world = World.from_environment({"PATH": "/usr/bin"})
    assert world == World()
    assert (world.rank, world.size, world.local_rank, world.local_size) == (0, 1, 0, 1)
    assert not world.launched and not world.distributed


def test_the_variables_torchrun_sets():
    world = World.from_environment({"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
                                    "OMP_NUM_THREADS": "1"})
    assert (world.rank, world.size, world.local_rank, world.local_size) == (5, 8, 1, 4)
    assert world.launched and world.distributed and world.gpu == "cuda:1" and world.omp_threads == "1"
    # a machine's share defaults to the whole world (one machine)
    assert World.from_environment({"RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "1"}).local_size == 3


def test_os_environ_is_the_default(monkeypatch):
    for name, value in {"RANK": "2", "WORLD_SIZE": "3", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
                        "OMP_NUM_THREADS": "2"}.items():
        monkeypatch.setenv(name, value)
    assert World.from_environment() == World(2, 3, 0, 1, launched=True, omp_threads="2")


def test_a_variable_that_is_no_integer_is_one_line():
    with pytest.raises(SynergyError) as error:
        World.from_environment({"RANK": "one", "WORLD_SIZE": "2"})
    message = str(error.value)
    assert "\n" not in message and "must be integers" in message and "RANK='one'" in message


def test_cpu_threads_share_the_cores_unless_the_user_chose(monkeypatch):
    monkeypatch.setattr(torchrun, "cpu_cores", lambda: 16)
    assert World(size=8, local_size=4).cpu_threads() == 4  # OMP_NUM_THREADS unset
    assert World(size=8, local_size=4, omp_threads="1").cpu_threads() == 4  # torchrun's default of one
    assert World(size=32, local_size=32, omp_threads="1").cpu_threads() == 1  # never none
    assert World(size=8, local_size=4, omp_threads="3").cpu_threads() is None  # the user's choice stands


PROBE = """
import dataclasses, json, sys
sys.path.insert(0, {repo!r})
from utils.torchrun import World
print(json.dumps(dataclasses.asdict(World.from_environment())))
"""


def test_what_torchrun_really_sets(tmp_path):
    """Two processes under a real torchrun read their places as torchrun gives them."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE.format(repo=str(REPO_ROOT)))
    torchrun_command = Path(sys.executable).with_name("torchrun")
    logs = tmp_path / "logs"
    result = subprocess.run([str(torchrun_command), "--standalone", "--nproc-per-node", "2", "--log-dir", str(logs),
                             "--redirects", "1", str(script)], capture_output=True, text=True, timeout=300,
                            env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
    assert result.returncode == 0, result.stderr[-3000:]
    worlds = sorted((json.loads(p.read_text()) for p in logs.rglob("stdout.log")), key=lambda w: w["rank"])
    assert [(w["rank"], w["size"], w["local_rank"], w["local_size"], w["launched"]) for w in worlds] == [
        (0, 2, 0, 2, True), (1, 2, 1, 2, True)]
    assert {w["omp_threads"] for w in worlds} == {"1"}  # torchrun's default, which training widens on CPUs
