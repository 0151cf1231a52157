"""The processes a training run uses: one, or torchrun's (DistributedDataParallel: NCCL
between GPUs, gloo between CPU processes), and the checks that keep their ranks in step."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from synergy3DMM.training.config import TrainConfig
from utils import checkpoints
from utils.device import resolve_device
from utils.torchrun import World

RANK_SEED_STRIDE = 1000003  # rank r's random streams start at seed + r * this, apart from every other rank's


@dataclass
class Processes:
    """This process's place among the training processes (one, or torchrun's)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start_processes(config: TrainConfig) -> Processes:
    """The device, and under torchrun (a world of more than one) the process group: NCCL
    between GPUs, gloo between CPU processes. One process uses `devices_id[0]` of a GPU."""
    world = World.from_environment()
    device = resolve_device(config.device)
    if not world.distributed:
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", config.devices_id[0])
        return Processes(device=device)
    if device.type == "cuda":
        device = torch.device(world.gpu)
        torch.cuda.set_device(device)
    elif (threads := world.cpu_threads()) is not None:
        torch.set_num_threads(threads)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(world.rank, world.size, world.local_rank, device)


def stop_processes(procs: Processes) -> None:
    if procs.distributed and dist.is_initialized():
        dist.destroy_process_group()


def sync_buffers(model: nn.Module, procs: Processes) -> None:
    """Rank 0's BatchNorm statistics to every rank (the 3DMM buffers are constant and the
    parameters equal already), as DDP's per-step buffer broadcast would have left them."""
    if not procs.distributed:
        return
    constant = set(checkpoints.MORPHABLE_BUFFERS)
    for name, buffer in model.named_buffers():
        if name not in constant:
            dist.broadcast(buffer, src=0)


def weights_checksum(model: nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.double().mul(1 + (i % 7)).sum() for i, p in enumerate(model.parameters())))


def check_ranks_agree(model: nn.Module, procs: Processes, shard: list[int]) -> str:
    """Gather every rank's weight checksum and data share; one line saying they agree and
    the shares are disjoint, or a `RuntimeError` when they do not."""
    gathered: list = [None] * procs.world
    dist.all_gather_object(gathered, (weights_checksum(model), shard))
    sums = {s for s, _ in gathered}
    shares = [set(indices) for _, indices in gathered]
    union = set().union(*shares)
    disjoint = sum(len(s) for s in shares) == len(union)
    if len(sums) != 1:
        raise RuntimeError(f"ranks hold different weights (checksums {sorted(sums)})")
    counts = " + ".join(str(len(s)) for s in shares)
    return (f"ranks agree: {procs.world} ranks hold identical weights (checksum {gathered[0][0]:.6f}); "
            f"data per rank {counts} = {len(union)} samples, {'disjoint' if disjoint else 'OVERLAPPING'}")
