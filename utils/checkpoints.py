"""Everything about checkpoint files, in one place: reading them safely, telling their
format, guessing the architecture, strict loading with a report of what does not fit, the
whitening that belongs to a checkpoint, the ONNX cache's sidecar, and writing them.

Formats read:
- SynergyNet (`pretrained/best.pth.tar`, the original's training output and ours):
  `{'state_dict': {'module.I2P.backbone....', ...}, 'epoch': ...}`, 3DMM buffers included;
- 3DDFA_V2 (`mb05_120x120.pth`, `mb1_120x120.pth`): `{'state_dict': {'module.conv1....',
  'module.fc_param....', 'module.fc_lm....'}}` of its MobileNetV1, whose whitening is the
  pickle `param_mean_std_62d_120x120.pkl` beside it (or the fetched copy).

Nothing here runs code from a file (`torch.load(weights_only=True)`); torch is imported
only when a checkpoint is read, so the ONNX path can use the sidecar without it.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from utils import assets
from utils.errors import SynergyError
from utils.param_layout import NUM_PARAMS
from utils.params import Whitening, load_3dmm
from utils.writers import atomic_write

if TYPE_CHECKING:
    import torch

# The SynergyNet state dict: its networks, and the 3DMM data it carries as buffers (a
# checkpoint without them gets them from `3dmm_data/`).
NETWORK_PREFIXES = ("I2P.", "forwardDirection.", "reverseDirection.")
REFINER_PREFIXES = ("forwardDirection.", "reverseDirection.")  # training-only parts
MORPHABLE_BUFFERS = ("param_mean", "param_std", "w_shp", "u", "w_exp", "u_base", "w_shp_base", "w_exp_base")
BACKBONE_PREFIX = "I2P.backbone."


@dataclass
class CheckpointInfo:
    """What a regressor checkpoint needs besides its weights: the crop policy its inputs
    were made with and the whitening its outputs are in."""

    path: Path
    kind: str  # "synergynet" or "3ddfa_v2"
    arch: str
    crop_policy: str  # key of utils.cropping.CROP_POLICIES
    whitening: Whitening


# --------------------------------------------------------------------------- reading


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a torch checkpoint without running code from it.

    Returns the state dict (the `state_dict` entry when the file holds one). Missing,
    empty, truncated or non-checkpoint files raise `SynergyError` with one line.
    """
    return _state_dict_of(read_checkpoint_file(path), Path(path))


def read_checkpoint_file(path: str | os.PathLike) -> Any:
    """The whole object a checkpoint file holds (state dict, epoch, optimiser, ...), read
    with `weights_only=True`; one-line `SynergyError` for anything that is not one."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise SynergyError(f"weights file {path} not found")
    if path.stat().st_size == 0:
        raise SynergyError(f"weights file {path} is empty")
    with open(path, "rb") as f:
        head = f.read(2)
    # torch writes a zip archive (PK) or, before 1.6, a pickle (protocol byte 0x80): anything
    # else is not a checkpoint, and saying "refusing to run code" about it would mislead
    if head != b"PK" and head[:1] != b"\x80":
        raise SynergyError(f"{path} is not a checkpoint (neither a torch zip archive nor a pickle)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe content"
        raise SynergyError(f"{path} is not a plain checkpoint (refusing to run code from it: {first})") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError, AttributeError,
            IndexError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SynergyError(f"{path} is not a readable checkpoint (truncated or corrupt?): {reason}") from None


def _state_dict_of(obj: Any, path: Path) -> dict:
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(hasattr(v, "shape") for v in state.values()):
        raise SynergyError(f"{path} holds no state dict of tensors")
    return state


def strip_module_prefix(state: Mapping[str, Any]) -> dict:
    """Drop the `module.` prefix nn.DataParallel and DistributedDataParallel add to every key."""
    return {k.removeprefix("module."): v for k, v in state.items()}


# --------------------------------------------------------------------------- formats


def checkpoint_kind(state: Mapping[str, Any]) -> str:
    """'synergynet' or '3ddfa_v2' from the keys (without `module.`); `SynergyError` else."""
    if any(k.startswith(NETWORK_PREFIXES) for k in state):
        return "synergynet"
    if "fc_param.weight" in state and "conv1.weight" in state:
        return "3ddfa_v2"
    sample = ", ".join(list(state)[:3])
    raise SynergyError(f"not a SynergyNet or 3DDFA_V2 checkpoint (keys like {sample})")


def guess_arch(state: Mapping[str, Any]) -> str | None:
    """The backbone of a SynergyNet-named state dict, where its keys tell (MobileNets)."""
    if f"{BACKBONE_PREFIX}features.18.0.weight" in state:
        return "mobilenet_v2"
    conv1 = state.get(f"{BACKBONE_PREFIX}conv1.weight")
    if conv1 is not None and any(k.startswith(f"{BACKBONE_PREFIX}dw6.") for k in state):
        widths = {64: "mobilenet_2", 32: "mobilenet_1", 24: "mobilenet_075", 16: "mobilenet_05", 8: "mobilenet_025"}
        return widths.get(int(conv1.shape[0]))
    return None


def from_3ddfa_v2_state_dict(state_dict: Mapping[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """Map a 3DDFA_V2 MobileNetV1 checkpoint's keys onto the backbone's (`MobileNet`).

    Strips the `module.` prefix, renames `fc_param.*` (the 62 parameters) to `fc.*` as
    3DDFA_V2's own loader does, and drops `fc_lm.*` (a 136-value landmark head its
    training used and its inference never reads). The result loads with `strict=True`.
    """
    mapped = {}
    for key, value in strip_module_prefix(state_dict).items():
        if key.startswith("fc_lm."):
            continue
        if key.startswith("fc_param."):
            key = "fc." + key.removeprefix("fc_param.")
        mapped[key] = value
    return mapped


def whitening_3ddfa_v2_path(checkpoint: str | os.PathLike) -> Path:
    """Where a 3DDFA_V2 checkpoint's parameter whitening is: beside the checkpoint, else the
    fetched copy (which may be absent)."""
    beside = Path(checkpoint).parent / Path(assets.TDDFA_V2_WHITENING).name  # as 3DDFA_V2 keeps it
    return beside if beside.is_file() else assets.asset_path(assets.TDDFA_V2_WHITENING)


def read_regressor_checkpoint(path: str | os.PathLike, arch: str | None = None) -> tuple[dict, CheckpointInfo]:
    """A SynergyNet or 3DDFA_V2 checkpoint as a SynergyNet state dict (`I2P.backbone.*`
    names, whitening in `param_mean`/`param_std`) and its `CheckpointInfo`."""
    import torch

    path = Path(path)
    state = strip_module_prefix(load_checkpoint(path))
    kind = checkpoint_kind(state)
    if kind == "3ddfa_v2":
        state = {BACKBONE_PREFIX + k: v for k, v in from_3ddfa_v2_state_dict(state).items()}
        whitening_file = whitening_3ddfa_v2_path(path)
        if not whitening_file.is_file():
            assets.require(assets.TDDFA_V2_WHITENING, "3DDFA_V2 whitening")
        whitening = Whitening.from_pickle(whitening_file, "mean", "std")
        state["param_mean"] = torch.from_numpy(whitening.mean)
        state["param_std"] = torch.from_numpy(whitening.std)
        crop_policy = "3ddfa_v2"
    else:
        if "param_mean" in state and "param_std" in state:
            whitening = Whitening(state["param_mean"].numpy().astype(np.float32)[:NUM_PARAMS],
                                  state["param_std"].numpy().astype(np.float32)[:NUM_PARAMS])
        else:  # the original's buffers are optional: the 3DMM data's whitening fills them
            whitening = load_3dmm().whitening
        crop_policy = "synergynet"
    arch = arch or guess_arch(state)
    if arch is None:
        raise SynergyError(f"cannot tell the architecture of {path} from its keys; name it", option="arch")
    return state, CheckpointInfo(path, kind, arch, crop_policy, whitening)


# --------------------------------------------------------------------------- strict loading


def load_strict(module: "torch.nn.Module", state: Mapping[str, "torch.Tensor"], label: str,
                optional: tuple[str, ...] = (), optional_prefixes: tuple[str, ...] = ()) -> list[str]:
    """Load `state` into `module`, refusing (one line, what does not fit) any missing,
    unexpected or differently shaped tensor, except the `optional` names and names under
    `optional_prefixes` that the state may lack (they keep the module's values). Returns
    the optional names the state lacked."""
    own = module.state_dict()

    def may_lack(key: str) -> bool:
        return key in optional or bool(optional_prefixes) and key.startswith(optional_prefixes)

    missing = [k for k in own if k not in state and not may_lack(k)]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                   for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong_shape:
        raise SynergyError(f"{label} does not fit {_describe(module)}: " + _mismatch(missing, unexpected, wrong_shape))
    module.load_state_dict(dict(state), strict=False)
    return [k for k in own if k not in state]


def _describe(module: Any) -> str:
    arch = getattr(module, "arch", None)
    return f"{type(module).__name__}(arch='{arch}')" if arch else type(module).__name__


def _mismatch(missing: list[str], unexpected: list[str], wrong_shape: list[str]) -> str:
    def some(items: list[str]) -> str:
        return ", ".join(items[:3]) + (f", ... ({len(items)} in all)" if len(items) > 3 else "")

    parts = []
    if missing:
        parts.append(f"missing {some(missing)}")
    if unexpected:
        parts.append(f"unexpected {some(unexpected)}")
    if wrong_shape:
        parts.append(f"other shapes {some(wrong_shape)}")
    return "; ".join(parts)


# --------------------------------------------------------------------------- writing


def save_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, "torch.Tensor"], **extra: Any) -> Path:
    """Write a checkpoint in the original's format, `{'state_dict': {'module.' keys}, ...}`
    (so the original's tools and `-w` load it), with `extra` entries beside it (epoch,
    optimiser, ...). Atomic: a run killed while writing leaves the previous file intact."""
    import torch

    buffer = io.BytesIO()
    state = {k if k.startswith("module.") else f"module.{k}": v for k, v in state_dict.items()}
    torch.save({"state_dict": state, **extra}, buffer)
    return atomic_write(path, buffer.getvalue())


# --------------------------------------------------------------------------- ONNX cache sidecar


def info_to_json(info: CheckpointInfo) -> dict:
    """What an exported regressor needs besides its graph, as JSON (the ONNX cache's sidecar)."""
    return {"kind": info.kind, "arch": info.arch, "crop_policy": info.crop_policy,
            "whitening_mean": info.whitening.mean.tolist(), "whitening_std": info.whitening.std.tolist()}


def info_from_json(path: Path, meta: Mapping[str, Any]) -> CheckpointInfo:
    whitening = Whitening(np.array(meta["whitening_mean"], dtype=np.float32),
                          np.array(meta["whitening_std"], dtype=np.float32))
    return CheckpointInfo(Path(path), meta["kind"], meta["arch"], meta["crop_policy"], whitening)


def read_sidecar(path: Path, weights: Path) -> CheckpointInfo:
    return info_from_json(weights, json.loads(path.read_text()))
