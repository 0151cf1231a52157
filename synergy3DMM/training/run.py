"""A whole training run (`train`): processes and log, data, trainer (resumed when asked),
then per epoch the learning rate, one pass over the data, the ranks' agreement, validation
on the epochs that save, and the checkpoints and records."""
from __future__ import annotations

import math
import os
from dataclasses import asdict
from typing import Callable

import torch.distributed as dist

from synergy3DMM.training.config import TrainConfig
from synergy3DMM.training.data import ResumableSampler, load_data, make_loader
from synergy3DMM.training.loop import train_epoch
from synergy3DMM.training.processes import Processes, check_ranks_agree, start_processes, stop_processes, sync_buffers
from synergy3DMM.training.records import (TensorBoard, close_logging, configure_logging, epoch_checkpoint,
                                          last_checkpoint, logger, remove_stale_parts, write_history)
from synergy3DMM.training.state import Trainer, build_trainer, resume, write_checkpoint
from synergy3DMM.training.validation import Validation
from utils.ddfa import learning_rate

OnEpoch = Callable[[Trainer, dict], None]


def train(config: TrainConfig, on_epoch: OnEpoch | None = None) -> list[dict]:
    """Run the training `config` describes; the per-epoch rows of the CSV.
    `on_epoch(trainer, row)` is called after each epoch's outputs are written."""
    config.check()
    procs = start_processes(config)
    handlers = configure_logging(config, procs.main)
    try:
        return _train(config, procs, on_epoch)
    finally:
        close_logging(handlers)
        stop_processes(procs)


def _train(config: TrainConfig, procs: Processes, on_epoch: OnEpoch | None) -> list[dict]:
    seed = config.seed if config.seed is not None else int.from_bytes(os.urandom(4), "little")
    data = load_data(config, seed)
    if procs.main:  # the settings, once the data is known to be there
        for key, value in asdict(config).items():
            logger.info(f"{key}: {value}")
    trainer = build_trainer(config, procs, seed)
    if config.resume:
        note = resume(trainer, config.resume)
        if procs.main:
            logger.info(note)
    if procs.main:
        _log_set_up(trainer)
    data.dataset.seed = trainer.seed  # a resumed run keeps its own
    loader, sampler = make_loader(data.dataset, config, procs, trainer.seed)
    validation = Validation(config, data.holdout, data.holdout_params)
    board = TensorBoard(config, procs.main)
    if procs.main:
        remove_stale_parts(config)
        logger.info(f"training on {len(data.dataset)} crops, {len(loader)} steps of {config.batch_size} a process "
                    f"an epoch; {validation.line}")
    if config.test_initial and procs.main:
        logger.info("Testing from initial")
        logger.info(f"initial validation NME: {validation(trainer.model, procs.device):.3f} %")
    procs.barrier()
    try:
        for epoch in range(trainer.epoch + 1, config.epochs + 1):
            row = _epoch(trainer, loader, sampler, data.dataset, epoch)
            _finish_epoch(trainer, row, validation, board, on_epoch)
            procs.barrier()
    finally:
        board.close()
    return trainer.history


def _log_set_up(trainer: Trainer) -> None:
    config, procs = trainer.config, trainer.procs
    if len(config.devices_id) > 1 and not procs.distributed:
        logger.info(f"--devices-id {config.devices_id}: one process uses GPU {config.devices_id[0]}; for several GPUs "
                    f"run under torchrun (NPROC={len(config.devices_id)} bash train_script.sh)")
    logger.info(f"device {procs.device}, {procs.world} process(es)"
                + (f", DistributedDataParallel ({dist.get_backend()})" if procs.distributed else "")
                + (f", autocast {trainer.autocast_dtype}" if trainer.autocast_dtype else "")
                + f", seed {trainer.seed}")


def _epoch(trainer: Trainer, loader, sampler: ResumableSampler, dataset, epoch: int) -> dict:
    """One epoch at its learning rate, from where a mid-epoch checkpoint left it; the ranks'
    BatchNorm statistics made equal and their agreement checked after it."""
    config, procs = trainer.config, trainer.procs
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
    sync_buffers(trainer.model, procs)
    if procs.distributed:
        agreement = check_ranks_agree(trainer.model, procs, shard)
        if procs.main:
            logger.info(agreement)
    return row


def _finish_epoch(trainer: Trainer, row: dict, validation: Validation, board: TensorBoard,
                  on_epoch: OnEpoch | None) -> None:
    """Validation on the epochs that save a checkpoint (every `save_val_freq` and the last),
    the checkpoints, the CSV, the plot and TensorBoard: on the main process alone."""
    config, procs, epoch = trainer.config, trainer.procs, trainer.epoch
    save = epoch % config.save_val_freq == 0 or epoch == config.epochs
    validate = save and validation.name != "none"
    row["val_set"] = validation.name if validate else ""
    row["val_nme_pct"] = math.nan
    if not procs.main:
        trainer.history.append(row)
        return
    if validate:
        logger.info(f"\nVal[{epoch}]")
        row["val_nme_pct"] = validation(trainer.model, procs.device)
    trainer.history.append(row)
    logger.info(f"epoch {epoch}: loss_total {row['loss_total']:.4f}, lr {row['lr']:.6g}, "
                f"{row['images_per_s']:.1f} images/s, {row['skipped_steps']} skipped step(s)"
                + (f", validation NME {row['val_nme_pct']:.3f} % ({validation.name})" if validate else ""))
    if save:
        write_checkpoint(trainer, epoch_checkpoint(config, epoch))
    write_checkpoint(trainer, last_checkpoint(config))
    write_history(config, trainer.history)
    board.add(row)
    if on_epoch is not None:
        on_epoch(trainer, row)
