"""The project's figures (matplotlib, PNG, written atomically): the benchmark's cumulative
error distribution and per-yaw-bucket NME, and training's loss curves. matplotlib is
imported on first use, with the file-only Agg backend."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from utils.writers import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return atomic_write(path, buffer.getvalue())


def plot_ced(path: str | os.PathLike, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> Path:
    """CED curves: label -> (NME thresholds in percent, fraction of faces at or below)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, (thresholds, fraction) in curves.items():
        ax.plot(thresholds, np.asarray(fraction) * 100, label=label)
    ax.set_xlabel("NME (%)")
    ax.set_ylabel("faces with at most this NME (%)")
    ax.set_xlim(0, float(max(t[-1] for t, _ in curves.values())))
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title)
    return _save(fig, path)


def plot_yaw_buckets(path: str | os.PathLike, buckets: Sequence[str], means: Mapping[str, Sequence[float]],
                     title: str) -> Path:
    """Grouped bars: mean NME (percent) per |yaw| bucket for each label set. A bucket
    without faces (nan) gets no bar, and says "no faces" (a bar of 0.00 would read as a
    perfect score)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    draw_yaw_buckets(ax, buckets, means)
    ax.set_title(title)
    return _save(fig, path)


def draw_yaw_buckets(ax, buckets: Sequence[str], means: Mapping[str, Sequence[float]]) -> None:
    """`plot_yaw_buckets`' bars on the axes `ax`."""
    width = 0.8 / max(len(means), 1)
    x = np.arange(len(buckets))
    empty = np.ones(len(buckets), dtype=bool)
    for i, (label, values) in enumerate(means.items()):
        values = np.asarray(values, dtype=np.float64)
        shown = np.isfinite(values)
        empty &= ~shown
        bars = ax.bar((x + (i - (len(means) - 1) / 2) * width)[shown], values[shown], width, label=label,
                      color=f"C{i}")
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    for position in np.flatnonzero(empty):
        ax.text(position, 0, "no faces", ha="center", va="bottom", fontsize=9, color="0.4")
    ax.set_xticks(x, list(buckets))
    ax.set_xlabel("|yaw| (degrees)")
    ax.set_ylabel("mean NME (%)")
    ax.legend()


def plot_training(path: str | os.PathLike, epochs: Sequence[float], losses: Mapping[str, Sequence[float]],
                  val_nme: Sequence[float] | None = None, val_label: str = "validation NME (%)") -> Path:
    """Loss curves per epoch (log scale), and the validation NME on a second axis where known."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in losses.items():
        ax.plot(epochs, values, marker="o", markersize=3, label=name, linewidth=2 if name == "loss_total" else 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (epoch mean)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if val_nme is not None and np.isfinite(np.asarray(val_nme, dtype=np.float64)).any():
        nme_axis = ax.twinx()
        known = np.isfinite(np.asarray(val_nme, dtype=np.float64))
        line = nme_axis.plot(np.asarray(epochs)[known], np.asarray(val_nme, dtype=np.float64)[known], "k--s",
                             markersize=4, label=val_label)
        nme_axis.set_ylabel(val_label)
        handles, labels = handles + line, labels + [val_label]
    ax.legend(handles, labels, fontsize=8, loc="upper right")
    return _save(fig, path)
