"""Splitting a list of images among processes and machines, and gathering their summaries.

Two ways to split, which combine:

- `--shard i/n` (`Shard.parse`): for schedulers without torchrun (Slurm arrays, Kubernetes
  indexed jobs): run `n` commands, the i-th with `--shard i/n` (0-based).
- `torchrun`: every rank takes its part by its `RANK` of `WORLD_SIZE`
  (`Shard.from_environment`, read through `utils.torchrun`); at the end the ranks meet once
  over gloo (CPU, any number of nodes) so that rank 0 can write the merged summary.

Each process takes every n-th image of the list sorted by absolute path, starting at its
index: the shares are disjoint and cover the list whatever the files' sizes, and the split
depends only on which files the list holds (not on their order, nor on how each path is
spelled), so every process computes the same one without talking to the others.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from utils.errors import SynergyError
from utils.torchrun import World

# How long rank 0 waits at the final meeting for the slowest rank (a share of a large
# folder can take hours longer on a slow node).
GATHER_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Shard:
    """Part `index` (0-based) of `count` parts of a list of images."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise SynergyError(f"shard {self.index}/{self.count}: need 0 <= i < n", option="shard")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """`"i/n"` (0-based `i`), as given to `--shard`."""
        try:
            index, count = (int(part) for part in str(text).split("/"))
        except ValueError:
            raise SynergyError(f"shard {text!r}: write it as i/n, e.g. 0/4", option="shard") from None
        return cls(index, count)

    @classmethod
    def from_environment(cls) -> "Shard":
        """This process's part under torchrun (its rank of the world); the whole list otherwise."""
        world = World.from_environment()
        return cls(world.rank, world.size)

    def within(self, outer: "Shard") -> "Shard":
        """This part of `outer`'s part, as a part of the whole list (torchrun inside `--shard`)."""
        return Shard(outer.index * self.count + self.index, outer.count * self.count)

    @property
    def tag(self) -> str:
        """A name for this part's own files (`0-of-1` for a whole run)."""
        return f"{self.index}-of-{self.count}"

    def take(self, files: Sequence[str | os.PathLike]) -> list[Path]:
        """This part's images of `files`, as given: every n-th of the files sorted by
        absolute path, each file once. Processes handed the same files in any order, or
        spelled relative in one and absolute in another, take disjoint parts that cover
        them."""
        unique: dict[Path, Path] = {}
        for name in files:
            unique.setdefault(Path(os.path.abspath(name)), Path(name))
        return [unique[key] for key in sorted(unique)][self.index::self.count]


def rank_device(device: str) -> str:
    """Under torchrun, each rank on its own GPU: a resolved 'cuda' becomes
    'cuda:<LOCAL_RANK>' (one rank per GPU); anything else is kept."""
    world = World.from_environment()
    return world.gpu if world.launched and device == "cuda" else device


class Ranks:
    """The torchrun world of this process (a single process: nothing to meet)."""

    def __init__(self) -> None:
        self.shard = Shard.from_environment()
        self._group = False

    @property
    def rank(self) -> int:
        return self.shard.index

    @property
    def size(self) -> int:
        return self.shard.count

    def join(self) -> None:
        """Start gloo now (torchrun's rendezvous variables), so that a broken set-up fails
        before the work rather than after it."""
        if self.size == 1 or self._group:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=GATHER_TIMEOUT)
        self._group = True

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's `obj`, on rank 0 (None on the others); all ranks wait for the last."""
        if self.size == 1:
            return [obj]
        import torch.distributed as dist

        self.join()
        everything: list[Any] | None = [None] * self.size if self.rank == 0 else None
        dist.gather_object(obj, everything, dst=0)
        dist.barrier()
        dist.destroy_process_group()
        self._group = False
        return everything
