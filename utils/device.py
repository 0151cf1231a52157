"""Where the networks run: the one place that turns `--device auto|cpu|cuda` into a device."""
from __future__ import annotations

from typing import TYPE_CHECKING

from utils.errors import SynergyError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: "str | torch.device" = "auto") -> "torch.device":
    """`auto`: the GPU when one is usable, else the CPU. `cuda` without a GPU is an error."""
    import torch  # here, not at import: the ONNX path never needs torch

    if isinstance(name, torch.device):
        return name
    name = str(name).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SynergyError(f"--device {name}: no CUDA GPU is available here (use --device cpu or auto)")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise SynergyError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def cpu_cores() -> int:
    """CPU cores this process may use (its affinity mask, e.g. under `taskset` or a
    container's cpuset), which is what thread counts should follow."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
