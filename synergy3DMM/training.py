"""Training SynergyNet, as the original's `main_train.py` does it, on one CPU, one GPU or
many GPUs and machines (`torchrun`).

    config = TrainConfig(filelists_train="set/train_aug_120x120.list.train", root="set/train_aug_120x120",
                         param_fp_train="set/param_all_norm_v201.pkl", snapshot="ckpts/SynergyNet")
    history = train(config)

The original's recipe: SGD (Nesterov, momentum 0.9, weight decay 5e-4) over the five
weighted losses of `SynergyNet.forward`; a step whose gradients hold a NaN or an infinity
is skipped whole (`utils.ddfa.SGD_NanHandler`); learning rate `base_lr * 0.2 ** n` per
epoch (`utils.ddfa.learning_rate`); colour jitter, a 5-pixel border and rare occlusions;
checkpoints `{snapshot}_checkpoint_epoch_{e}.pth.tar` every `save_val_freq` epochs with a
validation. Added: DistributedDataParallel under `torchrun` (gloo on CPUs, NCCL on GPUs;
rank 0 alone logs and writes), autocast with a grad scaler (`amp`), a resumable state in
every checkpoint (optimiser, schedule, grad scaler, random states, data position; written
atomically, plus `{snapshot}_last.pth.tar` after every epoch), validation through the
benchmark's library code, a per-epoch CSV and loss-curve PNG beside the checkpoints.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import random
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from model_building import SynergyNet
from utils import checkpoints
from utils.ddfa import (AverageMeter, DDFADataset, DDFATestDataset, SGD_NanHandler, learning_rate, read_file_list,
                        test_transform, train_transform)
from utils.device import cpu_cores, resolve_device
from utils.errors import SynergyError
from synergy3DMM.evaluation import holdout_nme, run_benchmark
from utils.evaluation import benchmark_data
from utils.param_layout import NUM_PARAMS
from utils.params import Whitening
from utils.writers import atomic_write

logger = logging.getLogger("synergynet.train")

LOSS_NAMES = ("loss_LMK_f0", "loss_Param_In", "loss_LMK_pointNet", "loss_Param_S2", "loss_Param_S1S2")
CSV_COLUMNS = ("epoch", "lr", *LOSS_NAMES, "loss_total", "val_nme_pct", "val_set", "images_per_s",
               "epoch_seconds", "skipped_steps")
LOG_FORMAT = "[%(asctime)s] %(message)s"
STATE_VERSION = 1


@dataclass
class TrainConfig:
    """main_train.py's flags (the original's names and defaults, plus device, amp, seed,
    paramloss_fix, holdout and channels_last)."""

    filelists_train: str = ""
    root: str = ""
    param_fp_train: str = ""
    snapshot: str = ""
    arch: str = "mobilenet_v2"
    epochs: int = 40
    start_epoch: int = 1
    batch_size: int = 128
    val_batch_size: int = 32
    base_lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple[int, ...] = (15, 25, 30)
    warmup: int = -1
    resume: str = ""
    log_file: str = ""  # default: {snapshot}_training.log, beside the checkpoints and the CSV
    log_mode: str = "w"
    print_freq: int = 20
    devices_id: tuple[int, ...] = (0,)
    workers: int = 6
    test_initial: bool = False
    save_val_freq: int = 10
    img_size: int = 120
    device: str = "auto"
    amp: bool = False
    seed: int | None = None
    paramloss_fix: bool = False
    holdout: float = 0.02  # fraction of the list's groups held out for validation without AFLW2000-3D
    channels_last: bool = False
    checkpoint_every: int = 0  # steps: also write `_last` mid-epoch (0: at epoch ends only)
    val_data: str = ""  # an AFLW2000-3D folder (crops, list, eval/); default: under the data root

    def check(self) -> None:
        for name in ("filelists_train", "root", "param_fp_train", "snapshot"):
            if not getattr(self, name):
                raise SynergyError(f"--{name.replace('_', '-')} is required", option=name)
        if self.batch_size < 2:  # BatchNorm in training needs two samples
            raise SynergyError(f"the batch size must be at least 2 (got {self.batch_size})", option="batch_size")
        if self.epochs < self.start_epoch:
            raise SynergyError(f"--epochs {self.epochs} is before --start-epoch {self.start_epoch}", option="epochs")
        if self.workers < 0 or self.save_val_freq < 1 or self.print_freq < 1 or self.checkpoint_every < 0:
            raise SynergyError("--workers and --checkpoint-every must be >= 0, --save_val_freq and --print-freq >= 1")
        if not 0 <= self.holdout < 1:
            raise SynergyError(f"--holdout must be in [0, 1) (got {self.holdout})", option="holdout")
        if list(self.milestones) != sorted(self.milestones):
            raise SynergyError(f"--milestones must increase (got {self.milestones})", option="milestones")


# --------------------------------------------------------------------------- processes


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
    """The device, and under torchrun (WORLD_SIZE > 1) the process group: NCCL between GPUs,
    gloo between CPU processes. One process uses `devices_id[0]` of a GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(config.device)
    if world <= 1:
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", config.devices_id[0])
        return Processes(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif "OMP_NUM_THREADS" not in os.environ or os.environ.get("OMP_NUM_THREADS") == "1":
        # torchrun's default of one thread a process wastes the cores of a CPU-only machine
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, cpu_cores() // local_world))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world, local_rank, device)


def stop_processes(procs: Processes) -> None:
    if procs.distributed and dist.is_initialized():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- data


def split_groups(lines: list[str], fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows) of a file list. Crops of one face (300W-LP's
    `<image>_<k>.jpg` variants, build_trainset.py's `<photo>_<k>.jpg`) share a group, and a
    group goes to one side whole, chosen by a hash of its name (stable across runs)."""
    groups = [Path(line).stem.rsplit("_", 1)[0] for line in lines]
    names = sorted(set(groups))
    if fraction <= 0 or len(names) < 2:
        return np.arange(len(lines)), np.zeros(0, dtype=np.int64)
    score = {name: zlib.crc32(name.encode()) / 2**32 for name in names}
    held = {name for name in names if score[name] < fraction}
    if not held:  # a small list: the group with the smallest score, so validation has data
        held = {min(names, key=score.get)}
    if len(held) == len(names):
        held.discard(max(names, key=score.get))
    mask = np.array([g in held for g in groups])
    return np.flatnonzero(~mask), np.flatnonzero(mask)


class ResumableSampler(DistributedSampler):
    """A `DistributedSampler` that can start an epoch part-way: its first `start` indices
    are left out (the batches a mid-epoch checkpoint had already trained on)."""

    start: int = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return super().__len__() - self.start


def make_loader(dataset, config: TrainConfig, procs: Processes, seed: int) -> tuple[DataLoader, ResumableSampler]:
    """Each rank a disjoint, equal share of a per-epoch permutation (`set_epoch`; the tail that
    does not divide evenly is dropped), in batches of `batch_size` (the last partial one too).
    The loader draws its workers' seeds from a generator of its own, not from torch's global
    one, so a run resumed part-way through an epoch draws the same dropout masks as one that
    never stopped."""
    sampler = ResumableSampler(dataset, num_replicas=procs.world, rank=procs.rank, shuffle=True, seed=seed,
                               drop_last=True)
    if sampler.num_samples < config.batch_size:
        raise SynergyError(f"{len(dataset)} training images give each of {procs.world} process(es) "
                           f"{sampler.num_samples}, fewer than a batch of {config.batch_size}", option="batch_size")
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
                        pin_memory=procs.device.type == "cuda", drop_last=True,
                        persistent_workers=False,  # workers see each epoch's set_epoch
                        generator=torch.Generator().manual_seed(seed + 1000003 * procs.rank))
    return loader, sampler


# --------------------------------------------------------------------------- state


def random_states() -> dict:
    """torch (and CUDA), numpy and python random states, as plain tensors and lists (a
    checkpoint read with weights_only holds nothing else)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    states = {"torch": torch.get_rng_state(),
              "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "python": {"version": version, "state": list(py_state), "gauss": py_gauss}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@dataclass
class Trainer:
    """Everything a training run holds; `state()` is what a checkpoint stores to resume."""

    config: TrainConfig
    procs: Processes
    model: SynergyNet
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: SGD_NanHandler
    scaler: "torch.amp.GradScaler | None"
    autocast_dtype: "torch.dtype | None"
    seed: int
    epoch: int = 0  # the last finished epoch
    history: list[dict] = field(default_factory=list)
    position: int = 0  # steps of epoch `epoch + 1` already taken (a mid-epoch checkpoint)
    partial: dict | None = None  # that part's loss sums, samples, skipped steps, seconds (all ranks)

    def state(self) -> dict:
        config = asdict(self.config)
        return {"epoch": self.epoch, "arch": self.config.arch,
                "training": {"version": STATE_VERSION, "optimizer": self.optimizer.state_dict(),
                             "schedule": {"base_lr": config["base_lr"], "warmup": config["warmup"],
                                          "milestones": list(config["milestones"]),
                                          "lr": self.optimizer.param_groups[0]["lr"]},
                             "grad_scaler": None if self.scaler is None else self.scaler.state_dict(),
                             "random": random_states(), "seed": self.seed,
                             "data": {"epoch": self.epoch, "position": self.position, "world": self.procs.world},
                             "partial": self.partial,
                             "history": [dict(row) for row in self.history],
                             "paramloss_fix": self.config.paramloss_fix}}


def build_trainer(config: TrainConfig, procs: Processes, seed: int) -> Trainer:
    """The model (initialised from `seed`: DDP then gives every rank rank 0's weights), the
    optimiser, autocast and grad scaler, and the DDP wrapper."""
    from types import SimpleNamespace

    seed_everything(seed + procs.rank)

    args = SimpleNamespace(arch=config.arch, img_size=config.img_size, paramloss_fix=config.paramloss_fix)
    model = SynergyNet(args).to(procs.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = SGD_NanHandler(model.parameters(), lr=config.base_lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=True)
    scaler, dtype = None, None
    if config.amp:
        if procs.device.type != "cuda":
            raise SynergyError("--amp needs a CUDA GPU (on the CPU training runs in float32)", option="amp")
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if dtype == torch.float16:  # bf16 has float32's range: no scaling needed
            scaler = torch.amp.GradScaler("cuda")
    net: nn.Module = model
    if procs.distributed:
        # the dense 3DMM buffers (tens of MB) never change: no broadcast at every step
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[procs.device.index] if procs.device.type == "cuda" else None,
            broadcast_buffers=False)
    return Trainer(config, procs, model, net, optimizer, scaler, dtype, seed, epoch=config.start_epoch - 1)


def resume(trainer: Trainer, path: str) -> str:
    """Load `path` into the trainer. A checkpoint of ours continues exactly (weights,
    optimiser, schedule, grad scaler, random states, epoch); one of the original (weights
    and epoch only) loads its weights strictly and starts at `start_epoch`, as the original
    did. Returns a line saying which."""
    stored = checkpoints.read_checkpoint_file(path)
    if not isinstance(stored, dict):
        raise SynergyError(f"{path} is not a training checkpoint", option="resume")
    trainer.model.load_weights(checkpoints.strip_module_prefix(checkpoints.load_checkpoint(path)))
    state = stored.get("training")
    if not isinstance(state, dict):
        return (f"resumed the weights of {path} (no training state in it: optimiser, schedule and data order "
                f"start afresh at epoch {trainer.config.start_epoch})")
    if state.get("paramloss_fix", False) != trainer.config.paramloss_fix:
        raise SynergyError(f"{path} was trained with paramloss_fix={state.get('paramloss_fix')}; resume it "
                           "with the same --paramloss-fix", option="paramloss_fix")
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scaler is not None and state.get("grad_scaler"):
        trainer.scaler.load_state_dict(state["grad_scaler"])
    trainer.seed = int(state["seed"])
    trainer.epoch = int(stored["epoch"])
    trainer.history = [dict(row) for row in state.get("history", [])]
    data = state.get("data") or {}
    if data.get("position") and data.get("world") != trainer.procs.world:
        note = (f"; it stopped part-way through epoch {trainer.epoch + 1} with {data.get('world')} process(es): "
                f"with {trainer.procs.world} that epoch starts again")
    elif data.get("position"):
        trainer.position, trainer.partial = int(data["position"]), state.get("partial")
        note = f", from step {trainer.position}"
    else:
        note = ""
    set_random_states(state["random"])  # rank 0's: the other ranks derive their own dropout stream
    if trainer.procs.rank:
        torch.manual_seed(trainer.seed + 1000003 * trainer.procs.rank + trainer.epoch)
    return f"resumed {path}: epoch {trainer.epoch} done, continuing at {trainer.epoch + 1}{note}"


# --------------------------------------------------------------------------- one epoch


def training_step(trainer: Trainer, images: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """One optimiser step on a batch: the five weighted losses (detached, on the device) and
    whether the step was applied (False: a NaN or infinite gradient skipped it whole)."""
    device = trainer.procs.device
    images = images.to(device, non_blocking=True)
    if trainer.config.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    target = target[:, :NUM_PARAMS].float().to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=trainer.autocast_dtype or torch.float32,
                        enabled=trainer.autocast_dtype is not None):
        losses = trainer.net(images, target)
    values = torch.stack([losses[name].float().mean() for name in LOSS_NAMES])
    total = values.sum()
    trainer.optimizer.zero_grad(set_to_none=True)
    if trainer.scaler is not None:
        trainer.scaler.scale(total).backward()
        trainer.scaler.unscale_(trainer.optimizer)
    else:
        total.backward()
    # all ranks agree on a skip: their gradients are all-reduced already
    applied = trainer.optimizer.gradients_finite()
    if applied:
        if trainer.scaler is not None:
            trainer.scaler.step(trainer.optimizer)
        else:
            trainer.optimizer.step()
    if trainer.scaler is not None:
        trainer.scaler.update()
    return values.detach(), applied


def train_epoch(trainer: Trainer, loader: DataLoader, epoch: int, lr: float) -> dict:
    """One pass over this rank's share, from step `trainer.position` (a run resumed from a
    mid-epoch checkpoint); the epoch means of the losses (over all ranks). With
    `checkpoint_every`, `_last` is written every that many steps, with the part done."""
    config, procs = trainer.config, trainer.procs
    trainer.net.train()
    first_step = trainer.position
    before = trainer.partial if first_step and trainer.partial else {"sums": [0.0] * (len(LOSS_NAMES) + 1),
                                                                      "samples": 0, "skipped": 0, "seconds": 0.0}
    sums_before = torch.tensor(before["sums"], dtype=torch.float64, device=procs.device)
    sums = torch.zeros(len(LOSS_NAMES) + 1, dtype=torch.float64, device=procs.device)
    batch_time, samples, skipped = AverageMeter(), 0, 0
    start = end = time.time()
    steps = first_step + len(loader)

    def done_so_far() -> tuple[torch.Tensor, int, int, float]:
        """Loss sums, samples and skipped steps of the epoch so far, over all ranks; seconds."""
        part = sums.clone()
        counts = torch.tensor([samples, skipped], dtype=torch.float64, device=procs.device)
        if procs.distributed:
            dist.all_reduce(part)
            dist.all_reduce(counts)
        return (part + sums_before, int(counts[0]) + before["samples"],
                int(counts[1]) // procs.world + before["skipped"], before["seconds"] + time.time() - start)

    for step, (images, target) in enumerate(loader, start=first_step):
        values, applied = training_step(trainer, images, target)
        if not applied:
            skipped += 1
            if procs.main:
                logger.info(f"Epoch {epoch} step {step}: NaN or infinite gradient, step skipped (weights unchanged)")
        sums[:-1] += values.double() * len(images)
        sums[-1] += values.double().sum() * len(images)
        samples += len(images)
        batch_time.update(time.time() - end)
        end = time.time()
        if procs.main and step % config.print_freq == 0:
            means = (sums / samples).tolist()
            logger.info(f"Epoch: [{epoch}][{step}/{steps}]\tLR: {lr:.8f}\tTime: {batch_time.val:.3f} "
                        f"({batch_time.avg:.3f})\t" + "\t".join(
                            f"{name}: {mean:.4f}" for name, mean in zip(LOSS_NAMES + ("loss_total",), means)))
        if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 and step + 1 < steps:
            part, part_samples, part_skipped, part_seconds = done_so_far()  # every rank takes part
            trainer.position = step + 1
            trainer.partial = {"sums": part.tolist(), "samples": part_samples, "skipped": part_skipped,
                               "seconds": part_seconds}
            if procs.main:
                write_checkpoint(trainer, last_checkpoint(config))
    total, total_samples, total_skipped, seconds = done_so_far()
    trainer.position, trainer.partial = 0, None
    means = (total / max(total_samples, 1)).tolist()
    row = {"epoch": epoch, "lr": lr, **dict(zip(LOSS_NAMES + ("loss_total",), means)),
           "images_per_s": total_samples / max(seconds, 1e-9), "epoch_seconds": seconds,
           "skipped_steps": total_skipped, "samples": total_samples}
    return row


# --------------------------------------------------------------------------- ranks agree


def sync_buffers(trainer: Trainer) -> None:
    """Rank 0's BatchNorm statistics to every rank (the 3DMM buffers are constant and the
    parameters equal already), as DDP's per-step buffer broadcast would have left them."""
    if not trainer.procs.distributed:
        return
    constant = set(checkpoints.MORPHABLE_BUFFERS)
    for name, buffer in trainer.model.named_buffers():
        if name not in constant:
            dist.broadcast(buffer, src=0)


def weights_checksum(model: nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.double().mul(1 + (i % 7)).sum() for i, p in enumerate(model.parameters())))


def check_ranks_agree(trainer: Trainer, shard: list[int]) -> str:
    """Gather every rank's weight checksum and data share; one line saying they agree and
    the shares are disjoint, or a `RuntimeError` when they do not."""
    gathered: list = [None] * trainer.procs.world
    dist.all_gather_object(gathered, (weights_checksum(trainer.model), shard))
    sums = {s for s, _ in gathered}
    shares = [set(indices) for _, indices in gathered]
    union = set().union(*shares)
    disjoint = sum(len(s) for s in shares) == len(union)
    if len(sums) != 1:
        raise RuntimeError(f"ranks hold different weights (checksums {sorted(sums)})")
    counts = " + ".join(str(len(s)) for s in shares)
    return (f"ranks agree: {trainer.procs.world} ranks hold identical weights (checksum {gathered[0][0]:.6f}); "
            f"data per rank {counts} = {len(union)} samples, {'disjoint' if disjoint else 'OVERLAPPING'}")


# --------------------------------------------------------------------------- validation


class Validation:
    """AFLW2000-3D NME when its crops are here, else the NME of the held-out training crops."""

    def __init__(self, config: TrainConfig, holdout: DDFATestDataset | None = None,
                 holdout_params: np.ndarray | None = None):
        self.config, self.holdout, self.holdout_params = config, holdout, holdout_params
        self.aflw2000 = benchmark_data(config.val_data or None)
        if self.aflw2000.present:
            self.name = "AFLW2000-3D"
            self.line = f"validation: AFLW2000-3D NME on the crops of {self.aflw2000.root}"
        elif holdout is not None and len(holdout):
            self.name = "holdout"
            self.line = (f"validation: AFLW2000-3D images not found ({self.aflw2000.crops}); NME of the 68 "
                         f"landmarks on {len(holdout)} held-out training crops against their labels "
                         f"({config.holdout:.0%} of the list's faces, not trained on)")
        else:
            self.name = "none"
            self.line = "validation: none (no AFLW2000-3D images, no held-out crops: --holdout 0)"

    def __call__(self, model: SynergyNet, device: torch.device) -> float:
        """The NME in percent (mean of the |yaw| bucket means), nan without validation data."""
        if self.name == "none":
            return math.nan
        was_training = model.training
        model.eval()
        whitening = Whitening(model.param_mean[:NUM_PARAMS].cpu().numpy(), model.param_std[:NUM_PARAMS].cpu().numpy())

        def regressor(batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model.forward_test(torch.from_numpy(batch).to(device)).float().cpu().numpy()

        try:
            if self.name == "AFLW2000-3D":
                result = run_benchmark(regressor, whitening, self.aflw2000, batch_size=self.config.val_batch_size,
                                       workers=min(self.config.workers, 4), progress=False).result
                logger.info(result.report())
                return result.stats["ori"].mean
            values, stats = holdout_nme(regressor, whitening, self.holdout, self.holdout_params,
                                        batch_size=self.config.val_batch_size)
            logger.info(stats.message("Held-out training crops (NME)"))
            return float(np.mean(values) * 100)  # all crops (a small split leaves yaw buckets empty)
        finally:
            model.train(was_training)


# --------------------------------------------------------------------------- outputs


def snapshot_path(config: TrainConfig, suffix: str) -> Path:
    return Path(f"{config.snapshot}{suffix}")


def epoch_checkpoint(config: TrainConfig, epoch: int) -> Path:
    return snapshot_path(config, f"_checkpoint_epoch_{epoch}.pth.tar")


def last_checkpoint(config: TrainConfig) -> Path:
    return snapshot_path(config, "_last.pth.tar")


def write_checkpoint(trainer: Trainer, path: Path) -> Path:
    """The original's `{'epoch', 'state_dict'}` (module. keys) plus the training state."""
    state = trainer.state()
    checkpoints.save_checkpoint(path, trainer.model.state_dict(), **state)
    logger.info(f"Save checkpoint to {path}")
    return path


def write_history(config: TrainConfig, history: list[dict]) -> None:
    """The per-epoch CSV and the loss-curve PNG beside the checkpoints."""
    from utils.plots import plot_training

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _cell(row.get(k)) for k in CSV_COLUMNS})
    atomic_write(snapshot_path(config, "_training.csv"), text.getvalue().encode())
    epochs = [row["epoch"] for row in history]
    losses = {name: [row[name] for row in history] for name in LOSS_NAMES + ("loss_total",)}
    val = [row.get("val_nme_pct", math.nan) for row in history]
    sets = {row["val_set"] for row in history if row.get("val_set") not in (None, "", "none")}
    label = f"validation NME (%, {', '.join(sorted(sets))})" if sets else "validation NME (%)"
    plot_training(snapshot_path(config, "_loss.png"), epochs, losses, val, label)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def remove_stale_parts(config: TrainConfig) -> None:
    """Temporary files a killed run left while writing a checkpoint (never the checkpoints)."""
    folder, prefix = snapshot_path(config, "").parent, snapshot_path(config, "").name
    for part in folder.glob(f".{prefix}*.part"):
        part.unlink(missing_ok=True)


class TensorBoard:
    """Scalars to TensorBoard when it is installed; nothing otherwise."""

    def __init__(self, config: TrainConfig, enabled: bool):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.info("TensorBoard is not installed: the CSV and the PNG hold the curves")
            return
        self.writer = SummaryWriter(str(snapshot_path(config, "_tensorboard")))

    def add(self, row: dict) -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if isinstance(value, (int, float)) and key != "epoch" and math.isfinite(value):
                self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# --------------------------------------------------------------------------- the run


def log_path(config: TrainConfig) -> Path:
    """The log file: `log_file`, else `{snapshot}_training.log` beside the run's other files
    (never a file in whatever folder the run was started from)."""
    return Path(config.log_file) if config.log_file else snapshot_path(config, "_training.log")


def configure_logging(config: TrainConfig, procs: Processes) -> list[logging.Handler]:
    """Rank 0 logs to the log file and stderr; the other ranks stay silent."""
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not procs.main:
        handlers: list[logging.Handler] = [logging.NullHandler()]
    else:
        log_file = log_path(config)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(log_file, mode=config.log_mode), logging.StreamHandler(sys.stderr)]
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    return handlers


def train(config: TrainConfig, on_epoch: Callable[[Trainer, dict], None] | None = None) -> list[dict]:
    """Run the training `config` describes (see module docstring); the per-epoch rows of the
    CSV. `on_epoch(trainer, row)` is called after each epoch's outputs are written."""
    config.check()
    procs = start_processes(config)
    handlers = configure_logging(config, procs)
    try:
        return _train(config, procs, on_epoch)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        stop_processes(procs)


def _train(config: TrainConfig, procs: Processes, on_epoch) -> list[dict]:
    lines = read_file_list(config.filelists_train)
    train_rows, held_rows = split_groups(lines, 0.0 if benchmark_data(config.val_data or None).present
                                         else config.holdout)
    seed = config.seed if config.seed is not None else int.from_bytes(os.urandom(4), "little")
    dataset = DDFADataset(config.root, config.filelists_train, config.param_fp_train, gt_transform=True,
                          transform=train_transform(), indices=train_rows, seed=seed)
    missing = next((line for line in dataset.lines[:1] + dataset.lines[-1:] if not (Path(config.root) / line).is_file()),
                   None)
    if missing:
        raise SynergyError(f"training image {Path(config.root) / missing} not found (check --root)", option="root")
    if procs.main:  # the settings, once the data is known to be there
        for key, value in asdict(config).items():
            logger.info(f"{key}: {value}")
    trainer = build_trainer(config, procs, seed)
    if config.resume:
        note = resume(trainer, config.resume)
        if procs.main:
            logger.info(note)
    if procs.main and len(config.devices_id) > 1 and not procs.distributed:
        logger.info(f"--devices-id {config.devices_id}: one process uses GPU {config.devices_id[0]}; for several GPUs "
                    f"run under torchrun (NPROC={len(config.devices_id)} bash train_script.sh)")
    if procs.main:
        logger.info(f"device {procs.device}, {procs.world} process(es)"
                    + (f", DistributedDataParallel ({dist.get_backend()})" if procs.distributed else "")
                    + (f", autocast {trainer.autocast_dtype}" if trainer.autocast_dtype else "")
                    + f", seed {trainer.seed}")
    dataset.seed = trainer.seed  # a resumed run keeps its own
    holdout = DDFATestDataset(root=config.root, lines=[lines[i] for i in held_rows], transform=test_transform())
    loader, sampler = make_loader(dataset, config, procs, trainer.seed)
    validation = Validation(config, holdout, dataset.all_params[held_rows])
    board = TensorBoard(config, procs.main)
    if procs.main:
        remove_stale_parts(config)
        logger.info(f"training on {len(dataset)} crops, {len(loader)} steps of {config.batch_size} a process "
                    f"an epoch; {validation.line}")
    if config.test_initial and procs.main:
        logger.info("Testing from initial")
        logger.info(f"initial validation NME: {validation(trainer.model, procs.device):.3f} %")
    procs.barrier()
    try:
        for epoch in range(trainer.epoch + 1, config.epochs + 1):
            lr = learning_rate(epoch, config.base_lr, config.warmup, config.milestones)
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr
            dataset.set_epoch(epoch)
            sampler.set_epoch(epoch)
            sampler.start = trainer.position * config.batch_size  # a mid-epoch checkpoint's part done
            shard = list(sampler) if procs.distributed else []
            row = train_epoch(trainer, loader, epoch, lr)
            sampler.start = 0
            trainer.epoch = epoch
            sync_buffers(trainer)
            if procs.distributed:
                agreement = check_ranks_agree(trainer, shard)
                if procs.main:
                    logger.info(agreement)
            save = epoch % config.save_val_freq == 0 or epoch == config.epochs
            validate = save and validation.name != "none"
            row["val_set"] = validation.name if validate else ""
            row["val_nme_pct"] = math.nan
            if procs.main:
                if validate:
                    logger.info(f"\nVal[{epoch}]")
                    row["val_nme_pct"] = validation(trainer.model, procs.device)
                trainer.history.append(row)
                logger.info(f"epoch {epoch}: loss_total {row['loss_total']:.4f}, lr {lr:.6g}, "
                            f"{row['images_per_s']:.1f} images/s, {row['skipped_steps']} skipped step(s)"
                            + (f", validation NME {row['val_nme_pct']:.3f} % ({validation.name})" if validate else ""))
                if save:
                    write_checkpoint(trainer, epoch_checkpoint(config, epoch))
                write_checkpoint(trainer, last_checkpoint(config))
                write_history(config, trainer.history)
                board.add(row)
                if on_epoch is not None:
                    on_epoch(trainer, row)
            else:
                trainer.history.append(row)
            procs.barrier()
    finally:
        board.close()
    return trainer.history

