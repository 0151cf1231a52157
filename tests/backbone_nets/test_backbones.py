"""Every image backbone: builds, returns (params (B,62), pooled (B,C)), keeps the original's names.

The 3DDFA_V2 MobileNetV1 x0.5 checkpoint must load strictly into `mobilenet_05` after
the documented key mapping, and reproduce the whitened parameters that 3DDFA_V2's
pipeline gave on real photos (`3ddfa_v2_mb05_landmarks.json` of the reference folder).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from backbone_nets import BACKBONE_NAMES, build_backbone
from backbone_nets.mobilenetv1_backbone import mobilenet_05
from backbone_nets.resnest_backbone import resnest50
from backbone_nets.resnet_backbone import resnet50
from tests.support import require_asset
from utils.checkpoints import from_3ddfa_v2_state_dict, load_checkpoint
from utils.io import read_image

MB05_CHECKPOINT = "pretrained/3ddfa_v2/mb05_120x120.pth"

# Width of the pooled feature each backbone hands to the landmark refiner.
POOLED_WIDTH = {
    "mobilenet_v2": 1280,
    "mobilenet_2": 2048,
    "mobilenet_1": 1024,
    "mobilenet_075": 768,
    "mobilenet_05": 512,
    "mobilenet_025": 256,
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "resnet101": 2048,
    "resnet152": 2048,
    "resnext50_32x4d": 2048,
    "resnext101_32x8d": 2048,
    "wide_resnet50_2": 2048,
    "wide_resnet101_2": 2048,
    "ghostnet": 1280,
    "resnest50": 2048,
    "resnest101": 2048,
    "resnest200": 2048,
    "resnest269": 2048,
}



def test_every_registered_arch_has_an_expected_width():
    assert set(BACKBONE_NAMES) == set(POOLED_WIDTH)


@pytest.mark.parametrize("arch", BACKBONE_NAMES)
def test_backbone_returns_params_and_pooled_feature(arch):
    torch.manual_seed(0)
    model = build_backbone(arch).eval()
    images = torch.randn(2, 3, 120, 120)
    with torch.no_grad():
        params, pooled = model(images)
    assert params.shape == (2, 62)
    assert pooled.shape == (2, POOLED_WIDTH[arch])
    assert torch.isfinite(params).all() and torch.isfinite(pooled).all()


@pytest.mark.parametrize("arch", ["mobilenet_05", "resnet18", "ghostnet", "resnest50"])
def test_pooled_feature_is_what_the_heads_read(arch):
    model = build_backbone(arch).eval()
    with torch.no_grad():
        params, pooled = model(torch.randn(2, 3, 120, 120))
        if arch.startswith("mobilenet"):
            heads = model.fc(pooled)
        else:  # pose, shape, expression heads in that order; the texture head is left out
            heads = torch.cat([getattr(model, name)(pooled) for name in model.head_names[:3]], dim=1)
    torch.testing.assert_close(params, heads)
    assert model.num_pooled_features == pooled.shape[1]


def _randomise_batch_norm_statistics(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Fresh batch norms are identities in eval mode; random statistics make the comparison
    sensitive to every layer's order and wiring."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator) * 0.1)


TORCHVISION_TWINS = ["mobilenet_v2", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                     "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2"]


@pytest.mark.parametrize("arch", TORCHVISION_TWINS)
def test_backbone_equals_torchvision_forward(arch):
    """Our MobileNetV2 and ResNets against torchvision's own forward with the same weights: the
    pose, shape and expression heads stacked are torchvision's 62-class classifier, so the
    parameters must equal torchvision's logits and the pooled feature its penultimate layer."""
    import torchvision

    generator = torch.Generator().manual_seed(0)
    ours = build_backbone(arch).eval()
    with torch.no_grad():
        _randomise_batch_norm_statistics(ours, generator)
    twin = getattr(torchvision.models, arch)(weights=None, num_classes=62).eval()
    state = ours.state_dict()
    heads = ("classifier_ori", "classifier_shape", "classifier_exp") if arch == "mobilenet_v2" \
        else ("fc_ori", "fc_shape", "fc_exp")
    classifier = "classifier.1" if arch == "mobilenet_v2" else "fc"
    body = {k: v for k, v in state.items() if not k.startswith(heads + ("fc_tex",))}
    for part in ("weight", "bias"):
        body[f"{classifier}.{part}"] = torch.cat([state[f"{head}{'.1' if arch == 'mobilenet_v2' else ''}.{part}"]
                                                  for head in heads])
    twin.load_state_dict(body, strict=True)
    pooled_twin: list[torch.Tensor] = []
    last_linear = twin.classifier[1] if arch == "mobilenet_v2" else twin.fc
    last_linear.register_forward_hook(lambda module, inputs, output: pooled_twin.append(inputs[0]))
    images = torch.randn(2, 3, 120, 120, generator=generator)
    with torch.no_grad():
        params, pooled = ours(images)
        expected = twin(images)
    # measured: identical (0.0) here, both run the same kernels in the same order; the bound
    # leaves room for a BLAS that reorders sums, far below any wiring error (O(0.1))
    torch.testing.assert_close(params, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pooled, pooled_twin[0], rtol=1e-5, atol=1e-5)


def test_training_mode_forward_keeps_shapes():
    model = build_backbone("ghostnet").train()  # dropout between the pooled feature and the heads
    params, pooled = model(torch.randn(2, 3, 120, 120))
    assert params.shape == (2, 62) and pooled.shape == (2, 1280)


def test_unknown_arch_lists_the_valid_names():
    with pytest.raises(ValueError, match="resnet50") as excinfo:
        build_backbone("resnet51")
    for name in BACKBONE_NAMES:
        assert name in str(excinfo.value)


@pytest.mark.parametrize("builder", [resnet50, resnest50])
def test_pretrained_imagenet_weights_are_refused(builder):
    with pytest.raises(ValueError, match="pretrained=True"):
        builder(pretrained=True)


def test_state_dict_names_of_the_original():
    """Spot checks of the original's key names and shapes (its heads included, texture too)."""
    expected = {
        "mobilenet_1": {"conv1.weight": (32, 3, 3, 3), "dw2_1.conv_dw.weight": (32, 1, 3, 3),
                        "dw5_6.conv_sep.weight": (1024, 512, 1, 1), "dw6.bn_sep.running_var": (1024,),
                        "fc.weight": (62, 1024), "fc.bias": (62,)},
        "resnet50": {"conv1.weight": (64, 3, 7, 7), "layer1.0.downsample.0.weight": (256, 64, 1, 1),
                     "layer4.2.bn3.weight": (2048,), "fc_ori.weight": (12, 2048), "fc_shape.weight": (40, 2048),
                     "fc_exp.weight": (10, 2048), "fc_tex.weight": (40, 2048)},
        "ghostnet": {"conv_stem.weight": (16, 3, 3, 3), "blocks.3.0.se.conv_reduce.weight": (20, 72, 1, 1),
                     "blocks.3.0.shortcut.2.weight": (40, 24, 1, 1), "blocks.9.0.conv.weight": (960, 160, 1, 1),
                     "conv_head.weight": (1280, 960, 1, 1), "classifier_ori.weight": (12, 1280),
                     "classifier_shape.weight": (40, 1280), "classifier_exp.weight": (10, 1280),
                     "classifier_texture.weight": (40, 1280)},
        "resnest50": {"conv1.0.weight": (32, 3, 3, 3), "conv1.6.weight": (64, 32, 3, 3), "bn1.weight": (64,),
                      "layer1.0.conv2.conv.weight": (128, 32, 3, 3), "layer1.0.conv2.fc1.weight": (32, 64, 1, 1),
                      "layer1.0.conv2.fc2.bias": (128,), "layer2.0.downsample.1.weight": (512, 256, 1, 1),
                      "layer2.0.downsample.2.weight": (512,), "fc_ori.weight": (12, 2048),
                      "fc_tex.weight": (40, 2048)},
    }
    for arch, keys in expected.items():
        state = build_backbone(arch).state_dict()
        for key, shape in keys.items():
            assert tuple(state[key].shape) == shape, (arch, key)
    assert not any(k.startswith("fc.") for k in build_backbone("resnet50").state_dict())


def test_state_dict_round_trip_is_strict():
    """A backbone's own state dict (as the original's checkpoints hold it) loads back strictly."""
    source, target = build_backbone("resnest50"), build_backbone("resnest50")
    target.load_state_dict(source.state_dict(), strict=True)
    images = torch.randn(1, 3, 120, 120)
    with torch.no_grad():
        torch.testing.assert_close(source.eval()(images)[0], target.eval()(images)[0])


@pytest.fixture(scope="module")
def mb05_state():
    return load_checkpoint(require_asset(MB05_CHECKPOINT))


def test_3ddfa_v2_checkpoint_loads_strictly_into_mobilenet_05(mb05_state):
    assert {"module.fc_param.weight", "module.fc_lm.weight"} <= set(mb05_state)
    mapped = from_3ddfa_v2_state_dict(mb05_state)
    assert "fc.weight" in mapped and not any(k.startswith(("fc_lm.", "fc_param.", "module.")) for k in mapped)
    model = mobilenet_05()
    model.load_state_dict(mapped, strict=True)
    torch.testing.assert_close(model.fc.weight, mb05_state["module.fc_param.weight"])
    with torch.no_grad():
        params, pooled = model.eval()(torch.randn(2, 3, 120, 120))
    assert params.shape == (2, 62) and pooled.shape == (2, 512)
    assert torch.isfinite(params).all()


def test_unmapped_3ddfa_v2_checkpoint_is_rejected_by_strict_loading(mb05_state):
    with pytest.raises(RuntimeError, match="fc_param"):
        mobilenet_05().load_state_dict({k.removeprefix("module."): v for k, v in mb05_state.items()}, strict=True)


def _crop_3ddfa_v2(image: np.ndarray, roi_box: list[float]) -> np.ndarray:
    """3DDFA_V2's crop: the box rounded to integers, zero padding where it leaves the image."""
    height, width = image.shape[:2]
    sx, sy, ex, ey = (int(round(v)) for v in roi_box[:4])
    crop = np.zeros((ey - sy, ex - sx, 3), dtype=np.uint8)
    src_x0, src_y0, src_x1, src_y1 = max(sx, 0), max(sy, 0), min(ex, width), min(ey, height)
    crop[src_y0 - sy:src_y1 - sy, src_x0 - sx:src_x1 - sx] = image[src_y0:src_y1, src_x0:src_x1]
    return crop


def test_3ddfa_v2_mb05_reproduces_its_parameters(mb05_state, ref_json, photo):
    """The imported weights give 3DDFA_V2's whitened parameters on its own crops of real photos."""
    model = mobilenet_05().eval()
    model.load_state_dict(from_3ddfa_v2_state_dict(mb05_state), strict=True)
    faces = ref_json("3ddfa_v2_mb05_landmarks.json")
    checked = 0
    for image_name, image_faces in faces.items():
        image = read_image(photo(image_name))
        for face in image_faces:
            crop = cv2.resize(_crop_3ddfa_v2(image, face["roi_box"]), (120, 120), interpolation=cv2.INTER_LINEAR)
            batch = (torch.from_numpy(crop).permute(2, 0, 1)[None].float() - 127.5) / 128.0
            with torch.no_grad():
                params, _ = model(batch)
            # Bit-identical on the machine that wrote the reference; leave room for other BLAS builds.
            np.testing.assert_allclose(params[0].numpy(), face["params_whitened"], rtol=1e-5, atol=1e-5)
            checked += 1
    assert checked == sum(len(image_faces) for image_faces in faces.values()) > 0
