"""torchrun's environment, read in one place: this process's place among the processes
torchrun started (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`) and the thread
count it set (`OMP_NUM_THREADS`). Training (`synergy3DMM.training.processes`) and the
split of a folder among processes (`synergy3DMM.sharding`) both read it from here.

The rendezvous itself (`MASTER_ADDR`, `MASTER_PORT`) is read by
`torch.distributed.init_process_group`, not here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from utils.device import cpu_cores
from utils.errors import SynergyError

INTEGER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@dataclass(frozen=True)
class World:
    """This process's place among torchrun's processes; a process started without torchrun
    is rank 0 of a world of one."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # its rank on this machine: the GPU it takes
    local_size: int = 1  # processes on this machine
    launched: bool = False  # started by torchrun (it sets LOCAL_RANK for every process)
    omp_threads: str | None = None  # OMP_NUM_THREADS as set (torchrun sets "1" unless told otherwise)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "World":
        """The world `environ` (default `os.environ`) describes."""
        environ = os.environ if environ is None else environ
        try:
            values = {name: int(environ[name]) for name in INTEGER_VARIABLES if name in environ}
        except ValueError:
            given = ", ".join(f"{name}={environ[name]!r}" for name in INTEGER_VARIABLES if name in environ)
            raise SynergyError(f"{', '.join(INTEGER_VARIABLES)} must be integers, as torchrun sets them "
                               f"(got {given})") from None
        size = values.get("WORLD_SIZE", 1)
        return cls(rank=values.get("RANK", 0), size=size, local_rank=values.get("LOCAL_RANK", 0),
                   local_size=values.get("LOCAL_WORLD_SIZE", size), launched="LOCAL_RANK" in environ,
                   omp_threads=environ.get("OMP_NUM_THREADS"))

    @property
    def distributed(self) -> bool:
        """More than one process: they meet in a process group."""
        return self.size > 1

    @property
    def gpu(self) -> str:
        """The GPU of this process: one process per GPU of its machine, in local rank order."""
        return f"cuda:{self.local_rank}"

    def cpu_threads(self) -> int | None:
        """The threads each of this machine's CPU processes should use: an equal share of the
        cores, where torchrun's default of one thread a process (or no setting) would leave
        cores idle; None where the user chose `OMP_NUM_THREADS`."""
        if self.omp_threads not in (None, "1"):
            return None
        return max(1, cpu_cores() // max(1, self.local_size))
