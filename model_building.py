"""SynergyNet: image -> 3DMM parameters, with the landmark refiner and inverse mapping
used in training, and checkpoint loading that refuses what does not fit.

    model = SynergyNet(arch="mobilenet_v2")          # or SynergyNet(args) like the original
    model.load_weights("pretrained/best.pth.tar")
    params = model.forward_test(images)              # (B, 62) whitened parameters
    landmarks = model.reconstruct_vertex_62(params)  # (B, 3, 68) in the 120x120 crop

`SynergyNet.from_checkpoint(path)` also recognises 3DDFA_V2 checkpoints (MobileNetV1
family): it returns the model together with how its inputs must be cropped and its
outputs de-whitened (`utils.checkpoints.CheckpointInfo`).
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
from backbone_nets.pointnet_backbone import MLP_for, MLP_rev
from loss_definition import ParamLoss, WingLoss
from utils import checkpoints, geometry
from utils.errors import SynergyError
from utils.param_layout import EXPRESSION, NUM_PARAMS, SHAPE, STD_SIZE, dewhiten
from utils.params import N_LANDMARKS, Morphable3DMM, load_3dmm

# The five losses of the training forward, by the names the original gives them: the coarse
# landmarks, the regressed parameters, the refined landmarks, the inverse mapping's parameters
# against the labels, and against the regressed parameters (the synergy consistency).
LOSS_NAMES = ("loss_LMK_f0", "loss_Param_In", "loss_LMK_pointNet", "loss_Param_S2", "loss_Param_S1S2")
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
                 morphable: Morphable3DMM | None = None, paramloss_fix: bool = False):
        super().__init__()
        if args is None:
            args = types.SimpleNamespace(arch=arch, img_size=img_size, paramloss_fix=paramloss_fix)
        self.args = args
        self.arch = args.arch
        self.img_size = getattr(args, "img_size", STD_SIZE)
        self.I2P = I2P(args)
        self.forwardDirection = MLP_for(N_LANDMARKS, self.I2P.backbone.num_pooled_features)  # landmark refiner
        self.reverseDirection = MLP_rev(N_LANDMARKS)  # landmarks -> parameters
        self.LMKLoss_3D = WingLoss()
        # `paramloss_fix` (main_train.py --paramloss-fix): the corrected `only_3dmm` slice
        self.ParamLoss = ParamLoss(fix=bool(getattr(args, "paramloss_fix", False)))

        morph = morphable if morphable is not None else load_3dmm()
        self._morphable = morph
        for name in checkpoints.MORPHABLE_BUFFERS:
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
        if param.shape[1] != NUM_PARAMS:
            raise RuntimeError("length of params mismatch")
        if whitening:
            param = dewhiten(param, self.param_mean, self.param_std)
        if dense:
            return geometry.reconstruct(param, self.u, self.w_shp, self.w_exp, transform, STD_SIZE)
        if self.u_base.shape[0] != 3 * lmk_pts:
            raise RuntimeError(f"the landmark basis has {self.u_base.shape[0] // 3} points, not {lmk_pts}")
        return geometry.reconstruct(param, self.u_base, self.w_shp_base, self.w_exp_base, transform, STD_SIZE)

    # ------------------------------------------------------------------ forwards

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training forward: the five weighted losses of the synergy process, by `LOSS_NAMES`.
        The backbone regresses parameters (stage 1) and their 68 landmarks; the refiner moves
        the landmarks with the pooled image feature and the shape and expression parameters;
        the inverse mapping regresses parameters back from the refined landmarks (stage 2),
        compared in shape and expression (`ParamLoss`'s `only_3dmm`) with the labels and
        with stage 1."""
        params, target, pooled = self.I2P(input, target)
        lmk = self.reconstruct_vertex_62(params, dense=False)
        lmk_target = self.reconstruct_vertex_62(target, dense=False)
        residual = self.forwardDirection(lmk, pooled, params[:, SHAPE], params[:, EXPRESSION])
        lmk_refined = lmk + REFINER_STEP * residual
        params_from_lmk = self.reverseDirection(lmk_refined)
        return dict(zip(LOSS_NAMES, (
            WEIGHT_LMK * self.LMKLoss_3D(lmk, lmk_target, kp=True),
            WEIGHT_PARAM * self.ParamLoss(params, target),
            WEIGHT_LMK * self.LMKLoss_3D(lmk_refined, lmk_target, kp=True),
            WEIGHT_PARAM * self.ParamLoss(params_from_lmk, target, mode="only_3dmm"),
            WEIGHT_PARAM_CONSISTENCY * self.ParamLoss(params_from_lmk, params, mode="only_3dmm"),
        )))

    def forward_test(self, input: torch.Tensor) -> torch.Tensor:
        """Test forward: the whitened 3DMM parameters (B, 62) (the refiner is training-only)."""
        params, _ = self.I2P.forward_test(input)
        return params

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
        state = checkpoints.load_checkpoint(source) if not isinstance(source, Mapping) else source
        optional_prefixes = () if require_refiner else checkpoints.REFINER_PREFIXES
        lacked = checkpoints.load_strict(self, checkpoints.strip_module_prefix(state), label,
                                         optional=checkpoints.MORPHABLE_BUFFERS, optional_prefixes=optional_prefixes)
        return [k for k in checkpoints.MORPHABLE_BUFFERS if k in lacked]

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, arch: str | None = None,
                        device: str | torch.device = "cpu") -> tuple["SynergyNet", checkpoints.CheckpointInfo]:
        """A model in eval mode with the weights of a SynergyNet or 3DDFA_V2 checkpoint,
        and the checkpoint's crop policy and whitening (`utils.checkpoints`)."""
        state, info = checkpoints.read_regressor_checkpoint(path, arch)
        model = cls(arch=info.arch)
        model.load_weights(state, require_refiner=info.kind == "synergynet")
        return model.to(device).eval(), info

    # ------------------------------------------------------------------ ONNX

    def export_onnx(self, path: str | os.PathLike) -> Path:
        """The regressor as ONNX: (B, 3, 120, 120) normalised crops -> whitened parameters
        (B, 62), as `forward_test` gives them; checked against PyTorch."""
        from utils.onnx_export import export_checked

        generator = torch.Generator().manual_seed(0)
        crops = [torch.randn(2, 3, self.img_size, self.img_size, generator=generator),
                 torch.randn(1, 3, self.img_size, self.img_size, generator=generator)]
        return export_checked(_ParamsOnly(self.I2P.backbone), path, crops, ["params"],
                              {"input": {0: "batch"}, "params": {0: "batch"}})


class _ParamsOnly(nn.Module):
    """A backbone's `(params, pooled)` -> `params`: all inference needs."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)[0]
