"""ONNX Runtime backend: the fastest way to run the networks on a CPU.

`export_onnx(module, path, ...)` exports a network (the regressor's backbone or
FaceBoxes) with a dynamic batch (and, for the detector, dynamic image size), checks that
ONNX Runtime reproduces PyTorch on it, and writes the file atomically. Exports are
cached (`cached_onnx`) under `SYNERGYNET_CACHE` (default `~/.cache/synergynet`), keyed by
the checkpoint's content, so a second run starts at once.
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from utils.errors import SynergyError
from utils.writers import atomic_write

PARITY_ATOL = 1e-4  # ONNX Runtime vs PyTorch, on the exported outputs
OPSET = 17


def cache_dir() -> Path:
    return Path(os.environ.get("SYNERGYNET_CACHE", Path.home() / ".cache" / "synergynet")).expanduser()


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _ParamsOnly(nn.Module):
    """A backbone's `(params, pooled)` reduced to `params`, the one output inference needs."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)[0]


def make_session(model_bytes_or_path: bytes | str | os.PathLike, device: torch.device | str = "cpu"):
    """An ONNX Runtime session with every graph optimisation, one thread per core."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    source = model_bytes_or_path if isinstance(model_bytes_or_path, bytes) else str(model_bytes_or_path)
    return ort.InferenceSession(source, options, providers=providers)


def export_onnx(module: nn.Module, path: str | os.PathLike, example: torch.Tensor,
                output_names: Sequence[str], dynamic_axes: dict, check_inputs: Sequence[torch.Tensor] = ()) -> Path:
    """Export `module` (eval mode, CPU copy) to ONNX at `path` and verify it against PyTorch
    on `example` and `check_inputs` (max abs difference <= 1e-4)."""
    module = module.eval()
    buffer = io.BytesIO()
    # The TorchScript exporter handles these static graphs without extra dependencies (the
    # torch.export-based one needs onnxscript); its deprecation notice is not for users.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=list(output_names), dynamic_axes=dynamic_axes)
    data = buffer.getvalue()
    session = make_session(data)
    for x in (example, *check_inputs):
        with torch.no_grad():
            expected = module(x)
        expected = expected if isinstance(expected, (tuple, list)) else (expected,)
        got = session.run(list(output_names), {"input": x.numpy()})
        for name, e, g in zip(output_names, expected, got):
            diff = float(np.max(np.abs(e.numpy() - g))) if g.size else 0.0
            if diff > PARITY_ATOL:
                raise SynergyError(f"ONNX export of {type(module).__name__} differs from PyTorch on '{name}' by {diff:.2e}")
    return atomic_write(path, data)


def export_regressor(backbone: nn.Module, path: str | os.PathLike) -> Path:
    """The regressor's backbone: (B, 3, 120, 120) -> whitened params (B, 62)."""
    cpu_backbone = _cpu_copy(backbone)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, 3, 120, 120, generator=generator)
    return export_onnx(_ParamsOnly(cpu_backbone), path, example, ["params"], {"input": {0: "batch"}, "params": {0: "batch"}},
                       check_inputs=[torch.randn(1, 3, 120, 120, generator=generator)])


def _cpu_copy(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module).cpu().float().eval()


def cached_onnx(kind: str, weights: str | os.PathLike, export: Callable[[Path], Path],
                log: Callable[[str], None] = print) -> Path:
    """The cached export of `weights` for `kind` ('regressor-mobilenet_v2', 'faceboxes', ...),
    made with `export(path)` on first use."""
    path = cache_dir() / f"{kind}-{file_digest(weights)[:16]}-opset{OPSET}.onnx"
    if not path.is_file():
        log(f"exporting {Path(weights).name} to ONNX ({path})")
        export(path)
    return path


def regressor_session(model, weights: str | os.PathLike, log: Callable[[str], None] = print):
    """A callable `(B, 3, 120, 120) float32 -> (B, 62) whitened params` on ONNX Runtime for
    the loaded `SynergyNet` `model` (whose checkpoint is `weights`)."""
    backbone = model.I2P.backbone
    path = cached_onnx(f"regressor-{model.arch}", weights, lambda p: export_regressor(backbone, p), log)
    session = make_session(path, model.u.device)

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(["params"], {"input": np.ascontiguousarray(batch, dtype=np.float32)})[0]

    return run


def export_detector(net: nn.Module, path: str | os.PathLike) -> Path:
    """FaceBoxes: (1, 3, H, W) mean-subtracted image -> loc (1, N, 4), conf (1, N, 2), any H, W."""
    cpu_net = _cpu_copy(net).to(memory_format=torch.contiguous_format)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(1, 3, 128, 160, generator=generator) * 60
    dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "loc": {0: "batch", 1: "boxes"},
               "conf": {0: "batch", 1: "boxes"}}
    return export_onnx(cpu_net, path, example, ["loc", "conf"], dynamic,
                       check_inputs=[torch.randn(1, 3, 96, 224, generator=generator) * 60])


def use_onnx_detector(detector, log: Callable[[str], None] = print) -> None:
    """Make a `FaceBoxes` detector run its network on ONNX Runtime (pre- and post-processing
    are unchanged)."""
    path = cached_onnx("faceboxes", detector.weights, lambda p: export_detector(detector.net, p), log)
    session = make_session(path, detector.device)

    def run_network(net_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loc, conf = session.run(["loc", "conf"], {"input": net_input})
        return loc, conf

    detector.run_network = run_network
