"""Runners: what turns a float32 batch into a network's outputs, one class per backend with
the same call, chosen once (`utils.device.resolve_backend`).

- PyTorch: `TorchRegressor` (and the detector's own network, `FaceBoxes` default).
- ONNX Runtime: networks are exported once per checkpoint into a cache folder
  (`SYNERGYNET_CACHE`, default `~/.cache/synergynet`), each export checked against
  PyTorch. A regressor's export carries a sidecar JSON (`utils.checkpoints.info_to_json`:
  architecture, crop policy, whitening), so once cached the whole ONNX path runs without
  importing torch: faster start-up and less memory (bench/run_bench.py's peak-memory row
  measures the whole flow).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple, Protocol

import numpy as np

from utils import checkpoints
from utils.checkpoints import CheckpointInfo
from utils.device import cpu_cores
from utils.onnx_export import OPSET, make_session
from utils.writers import write_json

if TYPE_CHECKING:
    from FaceBoxes.FaceBoxes import FaceBoxes, NetworkRunner

# Most crops per regressor call on a CPU (see OnnxRegressor): a chunk's activations stay in
# the CPU caches, and a batch of any size needs no more memory than a chunk; results do not
# depend on it.
REGRESSOR_CHUNK = 8
Log = Callable[[str], None]


class Runner(Protocol):
    """A regressor on a backend: (B, 3, 120, 120) float32 normalised crops -> (B, 62) whitened parameters."""

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class LoadedRegressor(NamedTuple):
    """A checkpoint's regressor on a backend, and what the checkpoint is."""

    run: Runner
    info: CheckpointInfo


def _silent(_: str) -> None:
    pass


# --------------------------------------------------------------------------- the export cache


def cache_dir() -> Path:
    return Path(os.environ.get("SYNERGYNET_CACHE", Path.home() / ".cache" / "synergynet")).expanduser()


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_sources() -> list[Path]:
    """The code an export's graph and sidecar come from (a change to any of it must not
    leave a stale export in the cache): this module, the checkpoint, whitening and export
    helpers, the model and its backbones, the detector's network.

    Found through the import system, in a checkout as in the wheel (where the original's
    top-level units live inside the package, setup.py), without importing the networks:
    a cached export then runs without torch."""
    from utils import checkpoints, onnx_export, param_layout, params

    # "" in a checkout, "synergy3DMM." in the wheel
    layout = checkpoints.__name__.removesuffix("utils.checkpoints")
    sources = [Path(__file__)] + [Path(module.__file__) for module in (onnx_export, checkpoints, params, param_layout)]
    for unit in ("model_building", "backbone_nets", "FaceBoxes.models"):
        spec = importlib.util.find_spec(layout + unit)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"the export code {layout + unit} is not installed")
        origin = Path(spec.origin)
        sources += sorted(origin.parent.glob("*.py")) if spec.submodule_search_locations is not None else [origin]
    return sources


def _export_code_digest() -> str:
    h = hashlib.sha256()
    for source in export_sources():
        h.update(f"{source.parent.name}/{source.name}".encode())
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
        whitening = checkpoints.whitening_3ddfa_v2_path(weights)
        h.update(file_digest(whitening).encode() if whitening.is_file() else b"no 3DDFA_V2 whitening")
    return cache_dir() / f"{kind}-{h.hexdigest()[:16]}-opset{OPSET}.onnx"


# --------------------------------------------------------------------------- the regressor


class TorchRegressor:
    """`(B, 3, 120, 120) float32 -> (B, 62)` whitened parameters with PyTorch."""

    def __init__(self, weights: str | os.PathLike, arch: str | None = None, device: str = "cpu"):
        from model_building import SynergyNet

        self.device = device
        self.model, self.info = SynergyNet.from_checkpoint(weights, arch=arch, device=device)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            params = self.model.forward_test(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))
        return params.float().cpu().numpy()


class OnnxRegressor:
    """`(B, 3, 120, 120) float32 -> (B, 62)` on ONNX Runtime, as fast for one crop as for many.

    One crop runs on all cores (ONNX Runtime's threads inside each layer). A batch is cut into
    chunks that the cores take from a shared queue, each core running its chunk alone on a
    single-threaded session. Why not threads inside each layer for batches too: they meet
    after each of the ~60 layers, so a core slowed by anything else on the machine stalls the
    others at every meeting, while with a queue the free core simply takes more chunks
    (`bench/run_bench.py --busy-neighbour` measures both ways with one core slowed). On a GPU
    the whole batch is one call."""

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


def onnx_regressor(weights: str | os.PathLike, arch: str | None = None, device: str = "cpu",
                   log: Log = _silent, spinning: bool = False) -> LoadedRegressor:
    """The ONNX Runtime regressor for a SynergyNet or 3DDFA_V2 checkpoint, exported on the
    first use and cached with its sidecar, and the checkpoint's `CheckpointInfo`.
    `spinning`: see `utils.onnx_export.make_session`."""
    weights = Path(weights)
    path = cache_path(f"regressor-{arch or 'auto'}", weights)
    sidecar = path.with_suffix(".json")
    if path.is_file() and sidecar.is_file():
        info = checkpoints.read_sidecar(sidecar, weights)
    else:
        from model_building import SynergyNet

        model, info = SynergyNet.from_checkpoint(weights, arch=arch)
        log(f"exporting {weights.name} to ONNX ({path})")
        model.export_onnx(path)
        write_json(sidecar, checkpoints.info_to_json(info))
    return LoadedRegressor(OnnxRegressor(path, device, spinning), info)


def regressor_runner(weights: str | os.PathLike, arch: str | None, backend: str, device: str,
                     log: Log = _silent) -> LoadedRegressor:
    """The regressor of `weights` on a resolved backend and device, and its `CheckpointInfo`."""
    if backend == "onnx":
        return onnx_regressor(weights, arch, device, log)
    runner = TorchRegressor(weights, arch, device)
    return LoadedRegressor(runner, runner.info)


# --------------------------------------------------------------------------- the detector


def onnx_detector(weights: str | os.PathLike, device: str = "cpu", log: Log = _silent, threads: int | None = None
                  ) -> NetworkRunner:
    """`(1, 3, H, W) float32 -> (loc, conf)` on ONNX Runtime for FaceBoxes `weights`, each
    call on `threads` threads (default: all cores)."""
    path = cache_path("faceboxes", weights)
    if not path.is_file():
        from FaceBoxes.FaceBoxes import FaceBoxes

        log(f"exporting {Path(weights).name} to ONNX ({path})")
        FaceBoxes.build_net(weights).export_onnx(path)
    session = make_session(path, device, threads=threads)

    def run(net_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loc, conf = session.run(["loc", "conf"], {"input": net_input})
        return loc, conf

    return run


def detector(weights: str | os.PathLike | None, backend: str, device: str, log: Log = _silent,
             threads: int | None = None, threshold: float | None = None) -> FaceBoxes:
    """FaceBoxes (a `synergy3DMM.detectors.Detector`) on a resolved backend and device
    (default weights: the fetched ones); on ONNX Runtime, each call on `threads` threads
    (default: all cores; 1 for detectors that run side by side on several images). `threshold`: the score a face must exceed
    (default FaceBoxes' 0.5)."""
    from FaceBoxes.FaceBoxes import FaceBoxes, check_threshold
    from FaceBoxes.utils.config import VIS_THRESHOLD
    from utils import assets

    threshold = check_threshold(VIS_THRESHOLD if threshold is None else threshold)  # before any work
    weights = Path(weights) if weights is not None else assets.require(assets.FACEBOXES_WEIGHTS, "the FaceBoxes detector")
    runner = onnx_detector(weights, device, log, threads) if backend == "onnx" else None
    return FaceBoxes(device=device, weights=weights, runner=runner, threshold=threshold)
