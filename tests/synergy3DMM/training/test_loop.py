"""The training step's losses (synergy3DMM/training/loop.py sums `SynergyNet.forward`'s five):
--paramloss-fix changes only the two only_3dmm terms."""
from __future__ import annotations

import json

import torch


def test_paramloss_fix_changes_only_the_only_3dmm_terms(trainset):
    from model_building import LOSS_NAMES, SynergyNet
    from synergy3DMM import training
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE
    from utils.ddfa import DDFADataset, test_transform

    images = DDFADataset(trainset / CROPS_DIR, trainset / LIST_FILE, trainset / PARAM_FILE,
                         transform=test_transform(), indices=range(6))
    batch = torch.stack([images[i][0] for i in range(6)])
    target = images.params
    torch.manual_seed(0)
    original = SynergyNet(arch="mobilenet_v2")
    fixed = SynergyNet(arch="mobilenet_v2", paramloss_fix=True)
    fixed.load_state_dict(original.state_dict())
    losses = {}
    for name, model in (("original", original), ("fixed", fixed)):
        model.train()
        torch.manual_seed(1)  # the same dropout
        with torch.no_grad():
            losses[name] = {k: float(v.mean()) for k, v in model(batch, target).items()}
    print(json.dumps(losses, indent=1))
    assert list(losses["original"]) == list(LOSS_NAMES) and training.LOSS_NAMES is LOSS_NAMES  # named once
    for key in ("loss_LMK_f0", "loss_Param_In", "loss_LMK_pointNet"):
        assert losses["fixed"][key] == losses["original"][key]
    for key in ("loss_Param_S2", "loss_Param_S1S2"):
        assert abs(losses["fixed"][key] - losses["original"][key]) > 1e-4 * losses["original"][key]

    # the two slices, computed here from their definitions
    from loss_definition import ParamLoss

    generator = torch.Generator().manual_seed(2)
    a, b = torch.randn(5, 62, generator=generator), torch.randn(5, 62, generator=generator)
    torch.testing.assert_close(ParamLoss()(a, b, "only_3dmm"), ((a[:, :50] - b[:, 12:]) ** 2).mean(1).sqrt())
    torch.testing.assert_close(ParamLoss(fix=True)(a, b, "only_3dmm"), ((a[:, 12:] - b[:, 12:]) ** 2).mean(1).sqrt())
    torch.testing.assert_close(ParamLoss(fix=True)(a, b), ParamLoss()(a, b))

