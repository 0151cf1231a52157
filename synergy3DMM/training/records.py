"""What a training run records beside its checkpoints (`--snapshot PREFIX`): the files'
names, the log, the per-epoch CSV, the loss-curve PNG and TensorBoard's scalars.

    PREFIX_checkpoint_epoch_<e>.pth.tar   PREFIX_last.pth.tar   PREFIX_training.csv
    PREFIX_loss.png                       PREFIX_training.log   PREFIX_tensorboard/
"""
from __future__ import annotations

import csv
import io
import logging
import math
import sys
from pathlib import Path

from model_building import LOSS_NAMES
from synergy3DMM.training.config import TrainConfig
from utils.plots import plot_training
from utils.writers import atomic_write

logger = logging.getLogger("synergynet.train")

LOG_FORMAT = "[%(asctime)s] %(message)s"
LOSS_COLUMNS = (*LOSS_NAMES, "loss_total")  # an epoch's mean of each loss, and of their sum
CSV_COLUMNS = ("epoch", "lr", *LOSS_COLUMNS, "val_nme_pct", "val_set", "images_per_s", "epoch_seconds",
               "skipped_steps")


# --------------------------------------------------------------------------- file names


def snapshot_path(config: TrainConfig, suffix: str) -> Path:
    return Path(f"{config.snapshot}{suffix}")


def epoch_checkpoint(config: TrainConfig, epoch: int) -> Path:
    return snapshot_path(config, f"_checkpoint_epoch_{epoch}.pth.tar")


def last_checkpoint(config: TrainConfig) -> Path:
    return snapshot_path(config, "_last.pth.tar")


def log_path(config: TrainConfig) -> Path:
    """The log file: `log_file`, else `{snapshot}_training.log` beside the run's other files
    (never a file in whatever folder the run was started from)."""
    return Path(config.log_file) if config.log_file else snapshot_path(config, "_training.log")


def remove_stale_parts(config: TrainConfig) -> None:
    """Temporary files a killed run left while writing a checkpoint (never the checkpoints)."""
    folder, prefix = snapshot_path(config, "").parent, snapshot_path(config, "").name
    for part in folder.glob(f".{prefix}*.part"):
        part.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the log


def configure_logging(config: TrainConfig, main: bool) -> list[logging.Handler]:
    """The main process logs to the log file and stderr; the other ranks stay silent."""
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not main:
        handlers: list[logging.Handler] = [logging.NullHandler()]
    else:
        log_file = log_path(config)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(log_file, mode=config.log_mode), logging.StreamHandler(sys.stderr)]
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    return handlers


def close_logging(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()


# --------------------------------------------------------------------------- per epoch


def write_history(config: TrainConfig, history: list[dict]) -> None:
    """The per-epoch CSV and the loss-curve PNG beside the checkpoints."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _cell(row.get(k)) for k in CSV_COLUMNS})
    atomic_write(snapshot_path(config, "_training.csv"), text.getvalue().encode())
    epochs = [row["epoch"] for row in history]
    losses = {name: [row[name] for row in history] for name in LOSS_COLUMNS}
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
