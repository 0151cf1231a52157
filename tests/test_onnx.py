"""ONNX Runtime backend: exported networks agree with PyTorch to 1e-4 (issue: speed)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model_building import SynergyNet
from utils import assets, onnx_backend


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNERGYNET_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("weights", ["reference", "pretrained/3ddfa_v2/mb05_120x120.pth"])
def test_regressor_onnx_matches_torch(weights, reference, ref_inputs):
    path = reference("checkpoint.pth.tar") if weights == "reference" else assets.require(weights)
    model, _ = SynergyNet.from_checkpoint(path)
    run = onnx_backend.regressor_session(model, path, log=lambda _: None)
    batch = ref_inputs["imgs"]
    with torch.no_grad():
        expected = model.forward_test(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(run(batch), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(run(batch[:1]), expected[:1], atol=1e-4, rtol=0)  # dynamic batch


def test_export_is_cached(reference, tmp_path):
    model, _ = SynergyNet.from_checkpoint(reference("checkpoint.pth.tar"))
    messages: list[str] = []
    onnx_backend.regressor_session(model, reference("checkpoint.pth.tar"), log=messages.append)
    onnx_backend.regressor_session(model, reference("checkpoint.pth.tar"), log=messages.append)
    assert len(messages) == 1 and "exporting" in messages[0]
    assert len(list((tmp_path / "cache").glob("regressor-mobilenet_v2-*.onnx"))) == 1


def test_detector_onnx_matches_torch(photo, ref_json):
    from FaceBoxes import FaceBoxes
    from utils.io import read_image

    torch_detector = FaceBoxes()
    onnx_detector = FaceBoxes()
    onnx_backend.use_onnx_detector(onnx_detector, log=lambda _: None)
    for name in ["two_faces_720p.jpg", "group_photo.jpg", "small_face.jpg"]:
        image = read_image(photo(name))
        net_input, _ = torch_detector.preprocess(image)
        for a, b in zip(torch_detector.run_network(net_input), onnx_detector.run_network(net_input)):
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
        expected = np.array(torch_detector(image))
        got = np.array(onnx_detector(image))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-2)
