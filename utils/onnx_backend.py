"""ONNX Runtime backend: the fastest way to run the networks on a CPU.

Networks are exported once per checkpoint (keyed by the checkpoint's content) into a
cache folder (`SYNERGYNET_CACHE`, default `~/.cache/synergynet`), each export checked
against PyTorch. A regressor's export carries a sidecar JSON with what the checkpoint
needs besides its weights (architecture, crop policy, whitening), so once cached, the
whole ONNX path runs without importing torch: faster start-up and less than half the
memory.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from utils.device import cpu_cores
from utils.errors import SynergyError
from utils.params import CheckpointInfo, Whitening, whitening_3ddfa_v2_path
from utils.writers import atomic_write, write_json

if TYPE_CHECKING:
    import torch

PARITY_ATOL = 1e-4  # ONNX Runtime vs PyTorch, on the exported outputs
# Most crops per regressor call on a CPU (see BatchRegressor): a chunk's activations stay in
# the CPU caches, and a batch of any size needs no more memory than a chunk; results do not
# depend on it.
REGRESSOR_CHUNK = 8
OPSET = 17
Log = Callable[[str], None]


def _silent(_: str) -> None:
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("SYNERGYNET_CACHE", Path.home() / ".cache" / "synergynet")).expanduser()


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The code an export's graph and sidecar come from: a change to any of it must not leave a
# stale export in the cache.
_EXPORT_SOURCES = ("utils/onnx_backend.py", "utils/params.py", "model_building.py", "backbone_nets",
                   "FaceBoxes/FaceBoxes.py", "FaceBoxes/models")


def _export_code_digest() -> str:
    h = hashlib.sha256()
    for name in _EXPORT_SOURCES:
        place = _PROJECT_ROOT / name
        for source in sorted(place.glob("*.py")) if place.is_dir() else [place] * place.is_file():
            h.update(source.relative_to(_PROJECT_ROOT).as_posix().encode())
            h.update(source.read_bytes())
    return h.hexdigest()


def cache_path(kind: str, weights: str | os.PathLike) -> Path:
    """Where the export of `weights` for `kind` ('faceboxes', 'regressor-auto', ...) lives.

    The key covers everything the export depends on: the checkpoint's content, the export
    code, and (for regressors) the 3DDFA_V2 whitening file a 3DDFA_V2 sidecar copies (a
    SynergyNet checkpoint carries its own whitening, so for it that file only costs a
    re-export when it changes)."""
    h = hashlib.sha256(f"{kind}|opset{OPSET}|{_export_code_digest()}|{file_digest(weights)}".encode())
    if kind.startswith("regressor"):
        whitening = whitening_3ddfa_v2_path(weights)
        h.update(file_digest(whitening).encode() if whitening.is_file() else b"no 3DDFA_V2 whitening")
    return cache_dir() / f"{kind}-{h.hexdigest()[:16]}-opset{OPSET}.onnx"


# --------------------------------------------------------------------------- sessions


def make_session(model: bytes | str | os.PathLike, device: str = "cpu", spinning: bool = False,
                 threads: int | None = None):
    """An ONNX Runtime session with every graph optimisation and `threads` threads per call
    (default: one per core).

    `spinning`: idle worker threads busy-wait for the next operator. That makes one network
    call alone faster (MobileNetV2 at batch 1: 1.4 ms against 2.0 ms on 2 cores) but in a
    pipeline the spinning threads take the CPU from everything that runs between network
    calls (a whole photo: 84 ms without, 134 ms with), so it is off unless asked for."""
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


def check_onnx_device(device: str) -> str:
    """The ONNX backend runs where ONNX Runtime can: the CPU, or a GPU with onnxruntime-gpu."""
    import onnxruntime as ort

    device = str(device)
    if device.startswith("cuda") and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise SynergyError("--onnx runs on the CPU here (onnxruntime has no CUDA provider); "
                           "drop --onnx to use the GPU with PyTorch, or use --device cpu")
    return "cpu" if device == "auto" else device


# --------------------------------------------------------------------------- export (needs torch)


def export_onnx(module: "torch.nn.Module", path: str | os.PathLike, example: "torch.Tensor",
                output_names: Sequence[str], dynamic_axes: dict, check_inputs: Sequence["torch.Tensor"] = ()) -> Path:
    """Export `module` (eval mode, on the CPU) to ONNX at `path` and check it against
    PyTorch on `example` and `check_inputs` (max abs difference <= 1e-4)."""
    import torch

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


def _cpu_copy(module: "torch.nn.Module") -> "torch.nn.Module":
    import copy

    import torch

    return copy.deepcopy(module).cpu().float().to(memory_format=torch.contiguous_format).eval()


def export_regressor(backbone: "torch.nn.Module", path: str | os.PathLike) -> Path:
    """A regressor's backbone: (B, 3, 120, 120) normalised crops -> whitened params (B, 62)."""
    import torch

    class ParamsOnly(torch.nn.Module):  # `(params, pooled)` -> `params`, all inference needs
        def __init__(self, net: torch.nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)[0]

    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, 3, 120, 120, generator=generator)
    return export_onnx(ParamsOnly(_cpu_copy(backbone)), path, example, ["params"],
                       {"input": {0: "batch"}, "params": {0: "batch"}},
                       check_inputs=[torch.randn(1, 3, 120, 120, generator=generator)])


def export_detector(net: "torch.nn.Module", path: str | os.PathLike) -> Path:
    """FaceBoxes: (1, 3, H, W) mean-subtracted image -> loc (1, N, 4), conf (1, N, 2), any H, W."""
    import torch

    generator = torch.Generator().manual_seed(0)
    example = torch.randn(1, 3, 128, 160, generator=generator) * 60
    dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "loc": {0: "batch", 1: "boxes"},
               "conf": {0: "batch", 1: "boxes"}}
    return export_onnx(_cpu_copy(net), path, example, ["loc", "conf"], dynamic,
                       check_inputs=[torch.randn(1, 3, 96, 224, generator=generator) * 60])


# --------------------------------------------------------------------------- the two networks


def detector_session(weights: str | os.PathLike, device: str = "cpu", log: Log = _silent):
    """`(1, 3, H, W) float32 -> (loc, conf)` on ONNX Runtime for FaceBoxes `weights`."""
    path = cache_path("faceboxes", weights)
    if not path.is_file():
        from FaceBoxes.FaceBoxes import FaceBoxes

        log(f"exporting {Path(weights).name} to ONNX ({path})")
        export_detector(FaceBoxes.build_net(weights), path)
    session = make_session(path, device)

    def run(net_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loc, conf = session.run(["loc", "conf"], {"input": net_input})
        return loc, conf

    return run


def _info_to_json(info: CheckpointInfo) -> dict:
    return {"kind": info.kind, "arch": info.arch, "crop_policy": info.crop_policy,
            "whitening_mean": info.whitening.mean.tolist(), "whitening_std": info.whitening.std.tolist()}


def _info_from_json(path: Path, meta: dict) -> CheckpointInfo:
    whitening = Whitening(np.array(meta["whitening_mean"], dtype=np.float32),
                          np.array(meta["whitening_std"], dtype=np.float32))
    return CheckpointInfo(path, meta["kind"], meta["arch"], meta["crop_policy"], whitening)


def regressor_session(weights: str | os.PathLike, arch: str | None = None, device: str = "cpu",
                      log: Log = _silent, spinning: bool = False
                      ) -> tuple[Callable[[np.ndarray], np.ndarray], CheckpointInfo]:
    """`(B, 3, 120, 120) float32 -> (B, 62) whitened params` on ONNX Runtime for the
    SynergyNet or 3DDFA_V2 checkpoint `weights`, and the checkpoint's `CheckpointInfo`.
    `spinning`: see `make_session`."""
    weights = Path(weights)
    path = cache_path(f"regressor-{arch or 'auto'}", weights)
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        info = _info_from_json(weights, json.loads(meta_path.read_text()))
    else:
        from model_building import SynergyNet

        model, info = SynergyNet.from_checkpoint(weights, arch=arch)
        log(f"exporting {weights.name} to ONNX ({path})")
        export_regressor(model.I2P.backbone, path)
        write_json(meta_path, _info_to_json(info))
    return BatchRegressor(path, device, spinning), info


class BatchRegressor:
    """`(B, 3, 120, 120) float32 -> (B, 62)` on ONNX Runtime, as fast for one crop as for many.

    One crop runs on all cores (ONNX Runtime's threads inside each layer). A batch is cut into
    chunks that the cores take from a shared queue, each core running its chunk alone on a
    single-threaded session. Why not threads inside each layer for batches too: they meet
    after each of the ~60 layers, so a core slowed by anything else on the machine stalls the
    others at every meeting, while with a queue the free core simply takes more chunks
    (MobileNetV2, batch 64, 2 cores: 92 ms against 115 ms with a busy neighbour on one core,
    and 72 ms either way on a quiet machine). On a GPU the whole batch is one call."""

    def __init__(self, path: Path, device: str = "cpu", spinning: bool = False):
        self.path, self.device = path, str(device)
        self.on_gpu = self.device.startswith("cuda")
        self.workers = cpu_cores()
        self._whole = make_session(path, device, spinning)
        self._lock = threading.Lock()
        self._single: object | None = None  # made on the first batch: a one-crop user never pays for it
        self._pool: ThreadPoolExecutor | None = None

    def _shared(self):
        with self._lock:
            if self._pool is None:
                self._single = make_session(self.path, "cpu", threads=1)
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="regressor")
        return self._single, self._pool

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if len(batch) <= 1 or self.on_gpu:
            return self._whole.run(["params"], {"input": batch})[0]
        if self.workers == 1:  # chunks in turn: memory stays that of a chunk
            session, map_chunks, chunk = self._whole, map, REGRESSOR_CHUNK
        else:
            session, pool = self._shared()
            map_chunks, chunk = pool.map, min(REGRESSOR_CHUNK, -(-len(batch) // self.workers))

        def run_chunk(start: int) -> np.ndarray:  # ONNX Runtime lets go of the GIL while it runs
            return session.run(["params"], {"input": batch[start:start + chunk]})[0]

        return np.concatenate(list(map_chunks(run_chunk, range(0, len(batch), chunk))))
