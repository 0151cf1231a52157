"""Where and on what the networks run: the one place that turns a device (`auto`, `cpu`,
`cuda[:N]`) and a backend (`auto`, `torch`, `onnx`) into a decision, and counts the cores."""
from __future__ import annotations

from typing import TYPE_CHECKING

from utils.errors import SynergyError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")
BACKEND_CHOICES = ("auto", "torch", "onnx")


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
            raise SynergyError(f"device {name!r}: no CUDA GPU is available here (use 'cpu' or 'auto')",
                               option="device")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise _unknown_device(name)


def _unknown_device(name: str) -> SynergyError:
    return SynergyError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}", option="device")


def _cuda_gpu_present() -> bool:
    """Whether a CUDA GPU is usable, without importing torch where there is none (the
    driver library answers in milliseconds; torch takes a second and 300 MB)."""
    import ctypes

    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        try:
            driver = ctypes.CDLL("nvcuda.dll")  # Windows
        except (OSError, AttributeError):
            return False
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return False
    import torch  # a GPU is there: torch decides whether it can use it

    return torch.cuda.is_available()


def resolve_backend(backend: str = "auto", device: str = "auto") -> tuple[str, str]:
    """`(backend, device)` for the networks, decided once.

    `auto` picks the measured fast path: ONNX Runtime on the CPU, PyTorch on a CUDA GPU.
    `torch` runs anywhere torch does; `onnx` on the CPU, or on a GPU where onnxruntime has
    the CUDA provider. A device that cannot be had is a `SynergyError`."""
    backend, device = str(backend).lower(), str(device).lower()
    if backend not in BACKEND_CHOICES:
        raise SynergyError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}",
                           option="backend")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise _unknown_device(device)
    if backend == "auto":
        on_gpu = device.startswith("cuda") or (device == "auto" and _cuda_gpu_present())
        backend = "torch" if on_gpu else "onnx"
        device = device if on_gpu else "cpu"
    if backend == "onnx":
        return backend, _onnx_device(device)
    return backend, str(resolve_device(device))


def _onnx_device(device: str) -> str:
    import onnxruntime as ort

    if device.startswith("cuda") and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise SynergyError("the ONNX Runtime backend runs on the CPU here (onnxruntime has no CUDA provider); "
                           "use the torch backend for the GPU, or the CPU", option="backend")
    return "cpu" if device == "auto" else device


def cpu_cores() -> int:
    """CPU cores this process may use (its affinity mask, e.g. under `taskset` or a
    container's cpuset), which is what thread counts should follow."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
