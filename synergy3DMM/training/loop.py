"""One optimiser step and one epoch: the five weighted losses of `SynergyNet.forward`
summed, a step with a NaN or infinite gradient skipped whole, the epoch's loss means over
all ranks, and `_last` written part-way through a long epoch (`checkpoint_every`)."""
from __future__ import annotations

import time

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from model_building import LOSS_NAMES
from synergy3DMM.training.records import LOSS_COLUMNS, last_checkpoint, logger
from synergy3DMM.training.state import Trainer, write_checkpoint
from utils.ddfa import AverageMeter
from utils.param_layout import NUM_PARAMS


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
    before = trainer.partial if first_step and trainer.partial else {"sums": [0.0] * len(LOSS_COLUMNS),
                                                                      "samples": 0, "skipped": 0, "seconds": 0.0}
    sums_before = torch.tensor(before["sums"], dtype=torch.float64, device=procs.device)
    sums = torch.zeros(len(LOSS_COLUMNS), dtype=torch.float64, device=procs.device)
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
                            f"{name}: {mean:.4f}" for name, mean in zip(LOSS_COLUMNS, means)))
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
    return {"epoch": epoch, "lr": lr, **dict(zip(LOSS_COLUMNS, means)),
            "images_per_s": total_samples / max(seconds, 1e-9), "epoch_seconds": seconds,
            "skipped_steps": total_skipped, "samples": total_samples}
