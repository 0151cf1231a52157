"""ONNX Runtime sessions, and exporting a network to ONNX with a check against PyTorch.

Each network owns its export (`SynergyNet.export_onnx`, `FaceBoxesNet.export_onnx`): what
it takes and gives, and the inputs it is checked on; this module holds what they share.
torch and onnxruntime are imported only when used.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from utils.device import cpu_cores
from utils.errors import SynergyError
from utils.writers import atomic_write

if TYPE_CHECKING:
    import torch

PARITY_ATOL = 1e-4  # ONNX Runtime vs PyTorch, on the exported outputs
OPSET = 17


def make_session(model: bytes | str | os.PathLike, device: str = "cpu", spinning: bool = False,
                 threads: int | None = None):
    """An ONNX Runtime session with every graph optimisation and `threads` threads per call
    (default: one per core).

    `spinning`: idle worker threads busy-wait for the next operator. That makes one network
    call alone faster, but in a pipeline the spinning threads take the CPU from everything
    that runs between network calls and the whole photo gets slower, so it is off unless
    asked for (bench/run_bench.py's network rows spin; its whole-flow row does not)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or cpu_cores()
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=providers)


def export_checked(module: "torch.nn.Module", path: str | os.PathLike, examples: Sequence["torch.Tensor"],
                   output_names: Sequence[str], dynamic_axes: dict) -> Path:
    """Export a copy of `module` (eval mode, float32, on the CPU) to ONNX at `path`, traced
    on `examples[0]`, and check it against PyTorch on every example (max abs difference
    <= PARITY_ATOL); written only once it passes."""
    import copy

    import torch

    module = copy.deepcopy(module).cpu().float().to(memory_format=torch.contiguous_format).eval()
    buffer = io.BytesIO()
    # The TorchScript exporter handles these static graphs without extra dependencies (the
    # torch.export-based one needs onnxscript); its deprecation notice is not for users.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (examples[0],), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=list(output_names), dynamic_axes=dynamic_axes)
    data = buffer.getvalue()
    session = make_session(data)
    for x in examples:
        with torch.no_grad():
            expected = module(x)
        expected = expected if isinstance(expected, (tuple, list)) else (expected,)
        got = session.run(list(output_names), {"input": x.numpy()})
        for name, e, g in zip(output_names, expected, got):
            diff = float(np.max(np.abs(e.numpy() - g))) if g.size else 0.0
            if diff > PARITY_ATOL:
                raise SynergyError(f"ONNX export of {type(module).__name__} differs from PyTorch on '{name}' by {diff:.2e}")
    return atomic_write(path, data)
