"""SynergyNet: image -> 3DMM parameters, with the landmark refiner and inverse mapping
used in training, and checkpoint loading that refuses what does not fit.

    model = SynergyNet(arch="mobilenet_v2")          # or SynergyNet(args) like the original
    model.load_weights("pretrained/best.pth.tar")
    params = model.forward_test(images)              # (B, 62) whitened parameters
    landmarks = model.reconstruct_vertex_62(params)  # (B, 3, 68) in the 120x120 crop

`SynergyNet.from_checkpoint(path)` also recognises 3DDFA_V2 checkpoints (MobileNetV1
family): it returns the model together with how its inputs must be cropped and its
outputs de-whitened (`CheckpointInfo`).
"""
from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn

from backbone_nets import build_backbone
from backbone_nets.mobilenetv1_backbone import from_3ddfa_v2_state_dict
from backbone_nets.pointnet_backbone import MLP_for, MLP_rev
from loss_definition import ParamLoss, WingLoss
from utils import geometry
from utils.errors import SynergyError
from utils.io import load_checkpoint, strip_module_prefix
from utils.params import (N_LANDMARKS, STD_SIZE, WHITENING_3DDFA_V2, CheckpointInfo, Morphable3DMM, Whitening,
                          load_3dmm, whitening_3ddfa_v2_path)

MORPHABLE_BUFFERS = ("param_mean", "param_std", "w_shp", "u", "w_exp", "u_base", "w_shp_base", "w_exp_base")
NETWORK_PREFIXES = ("I2P.", "forwardDirection.", "reverseDirection.")
REFINER_PREFIXES = ("forwardDirection.", "reverseDirection.")

# Loss weights of the original training forward.
WEIGHT_LMK = 0.05
WEIGHT_PARAM = 0.02
WEIGHT_PARAM_CONSISTENCY = 0.001
REFINER_STEP = 0.05  # refined landmarks = coarse + 0.05 * residual


class I2P(nn.Module):
    """Image-to-parameter network: a backbone returning `(params (B, 62), pooled (B, C))`."""

    def __init__(self, args):
        super().__init__()
        self.args = args
        try:
            self.backbone = build_backbone(args.arch)
        except ValueError as exc:
            raise SynergyError(str(exc)) from None

    def forward(self, input: torch.Tensor, target: torch.Tensor):
        """Training forward: `(params, target as float, pooled)`."""
        params, pooled = self.backbone(input)
        return params, target.to(dtype=params.dtype), pooled

    def forward_test(self, input: torch.Tensor):
        return self.backbone(input)


class SynergyNet(nn.Module):
    def __init__(self, args=None, *, arch: str = "mobilenet_v2", img_size: int = STD_SIZE,
                 morphable: Morphable3DMM | None = None):
        super().__init__()
        if args is None:
            args = types.SimpleNamespace(arch=arch, img_size=img_size)
        self.args = args
        self.arch = args.arch
        self.img_size = getattr(args, "img_size", STD_SIZE)
        self.I2P = I2P(args)
        self.forwardDirection = MLP_for(N_LANDMARKS, self.I2P.backbone.num_pooled_features)  # landmark refiner
        self.reverseDirection = MLP_rev(N_LANDMARKS)  # landmarks -> parameters
        self.LMKLoss_3D = WingLoss()
        self.ParamLoss = ParamLoss()
        self.loss: dict[str, torch.Tensor | float] = {}

        morph = morphable if morphable is not None else load_3dmm()
        self._morphable = morph
        for name in MORPHABLE_BUFFERS:
            self.register_buffer(name, torch.from_numpy(np.array(getattr(morph, name), dtype=np.float32)))
        self.keypoints = torch.from_numpy(morph.keypoints)

    # ------------------------------------------------------------------ geometry

    @property
    def triangles(self) -> torch.Tensor:
        """(3, M) long, 0-based: the dense mesh (the original keeps it as an attribute)."""
        return torch.from_numpy(self._morphable.triangles.T.astype(np.int64)).to(self.u.device)

    @property
    def data_param(self) -> list[torch.Tensor]:
        return [self.param_mean, self.param_std, self.w_shp_base, self.u_base, self.w_exp_base]

    def reconstruct_vertex_62(self, param: torch.Tensor, whitening: bool = True, dense: bool = False,
                              transform: bool = True, lmk_pts: int = N_LANDMARKS) -> torch.Tensor:
        """(B, 62) parameters -> (B, 3, 68) landmarks, or (B, 3, 53215) vertices if `dense`,
        in the crop space (y flipped into image orientation when `transform`)."""
        if param.shape[1] != 62:
            raise RuntimeError("length of params mismatch")
        if whitening:
            param = geometry.dewhiten(param, self.param_mean, self.param_std)
        if dense:
            return geometry.reconstruct(param, self.u, self.w_shp, self.w_exp, transform, STD_SIZE)
        if self.u_base.shape[0] != 3 * lmk_pts:
            raise RuntimeError(f"the landmark basis has {self.u_base.shape[0] // 3} points, not {lmk_pts}")
        return geometry.reconstruct(param, self.u_base, self.w_shp_base, self.w_exp_base, transform, STD_SIZE)

    # ------------------------------------------------------------------ forwards

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training forward: the five losses of the synergy process (see SPEC §2)."""
        params, target, pooled = self.I2P(input, target)
        lmk = self.reconstruct_vertex_62(params, dense=False)
        lmk_target = self.reconstruct_vertex_62(target, dense=False)
        loss = {
            "loss_LMK_f0": WEIGHT_LMK * self.LMKLoss_3D(lmk, lmk_target, kp=True),
            "loss_Param_In": WEIGHT_PARAM * self.ParamLoss(params, target),
        }
        residual = self.forwardDirection(lmk, pooled, params[:, 12:52], params[:, 52:62])
        lmk_refined = lmk + REFINER_STEP * residual
        loss["loss_LMK_pointNet"] = WEIGHT_LMK * self.LMKLoss_3D(lmk_refined, lmk_target, kp=True)
        params_from_lmk = self.reverseDirection(lmk_refined)
        loss["loss_Param_S2"] = WEIGHT_PARAM * self.ParamLoss(params_from_lmk, target, mode="only_3dmm")
        loss["loss_Param_S1S2"] = WEIGHT_PARAM_CONSISTENCY * self.ParamLoss(params_from_lmk, params, mode="only_3dmm")
        self.loss = loss
        return loss

    def forward_test(self, input: torch.Tensor) -> torch.Tensor:
        """Test forward: the whitened 3DMM parameters (B, 62) (the refiner is training-only)."""
        params, _ = self.I2P.forward_test(input)
        return params

    def get_losses(self):
        return self.loss.keys()

    # ------------------------------------------------------------------ weights

    def load_weights(self, source: str | os.PathLike | Mapping[str, torch.Tensor],
                     require_refiner: bool = True) -> list[str]:
        """Load a SynergyNet checkpoint (`{'state_dict': ...}` or a bare state dict, keys
        with or without `module.`, with or without the 3DMM buffers), strictly.

        Every network tensor must be present with the right shape, and nothing unknown may
        be left over; otherwise `SynergyError` lists what does not fit. 3DMM buffers absent
        from the checkpoint keep the values from `3dmm_data/`. `require_refiner=False`
        accepts checkpoints without the training-only refiner and inverse mapping.
        Returns the names of the buffers kept from `3dmm_data/`.
        """
        label = str(source) if not isinstance(source, Mapping) else "state dict"
        state = load_checkpoint(source) if not isinstance(source, Mapping) else dict(source)
        state = strip_module_prefix(state)
        own = self.state_dict()
        missing = [k for k in own if k not in state and k not in MORPHABLE_BUFFERS
                   and (require_refiner or not k.startswith(REFINER_PREFIXES))]
        unexpected = [k for k in state if k not in own]
        wrong_shape = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                       for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or wrong_shape:
            raise SynergyError(f"{label} does not fit SynergyNet(arch='{self.arch}'): "
                               + _describe_mismatch(missing, unexpected, wrong_shape))
        self.load_state_dict(state, strict=False)
        return [k for k in MORPHABLE_BUFFERS if k not in state]

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, arch: str | None = None,
                        device: str | torch.device = "cpu") -> tuple["SynergyNet", CheckpointInfo]:
        """A model in eval mode with the weights of a SynergyNet or 3DDFA_V2 checkpoint,
        and the checkpoint's crop policy and whitening."""
        path = Path(path)
        state = strip_module_prefix(load_checkpoint(path))
        kind = checkpoint_kind(state)
        if kind == "3ddfa_v2":
            state = {"I2P.backbone." + k: v for k, v in from_3ddfa_v2_state_dict(state).items()}
        guessed = guess_arch(state)
        arch = arch or guessed
        if arch is None:
            raise SynergyError(f"cannot tell the architecture of {path}; give it with -a/--arch")
        model = cls(arch=arch)
        if kind == "3ddfa_v2":
            whitening = Whitening.from_pickle(_whitening_3ddfa_v2(path), "mean", "std")
            state["param_mean"] = torch.from_numpy(whitening.mean)
            state["param_std"] = torch.from_numpy(whitening.std)
            model.load_weights(state, require_refiner=False)
            info = CheckpointInfo(path, kind, arch, "3ddfa_v2", whitening)
        else:
            model.load_weights(state)
            whitening = Whitening(model.param_mean.numpy().copy(), model.param_std.numpy().copy())
            info = CheckpointInfo(path, kind, arch, "synergynet", whitening)
        return model.to(device).eval(), info


# ---------------------------------------------------------------------- checkpoint helpers


def checkpoint_kind(state: Mapping[str, torch.Tensor]) -> str:
    """'synergynet' or '3ddfa_v2' from the keys; `SynergyError` for anything else."""
    if any(k.startswith(NETWORK_PREFIXES) for k in state):
        return "synergynet"
    if "fc_param.weight" in state and "conv1.weight" in state:
        return "3ddfa_v2"
    sample = ", ".join(list(state)[:3])
    raise SynergyError(f"not a SynergyNet or 3DDFA_V2 checkpoint (keys like {sample})")


def guess_arch(state: Mapping[str, torch.Tensor]) -> str | None:
    """The backbone of a SynergyNet-named state dict, where its keys tell (MobileNets)."""
    if "I2P.backbone.features.18.0.weight" in state:
        return "mobilenet_v2"
    conv1 = state.get("I2P.backbone.conv1.weight")
    if conv1 is not None and any(k.startswith("I2P.backbone.dw6.") for k in state):
        widths = {64: "mobilenet_2", 32: "mobilenet_1", 24: "mobilenet_075", 16: "mobilenet_05", 8: "mobilenet_025"}
        return widths.get(int(conv1.shape[0]))
    return None


def _whitening_3ddfa_v2(checkpoint: Path) -> Path:
    """3DDFA_V2's parameter whitening (see `whitening_3ddfa_v2_path`); it must exist."""
    path = whitening_3ddfa_v2_path(checkpoint)
    if path.is_file():
        return path
    from utils import assets

    return assets.require(f"pretrained/3ddfa_v2/{WHITENING_3DDFA_V2}", "3DDFA_V2 whitening")


def _describe_mismatch(missing: list[str], unexpected: list[str], wrong_shape: list[str]) -> str:
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
