"""Checkpoint loading: what fits loads exactly, what does not is refused with one line."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from tests.support import NET_ATOL, NET_RTOL, PX_ATOL
from model_building import SynergyNet
from utils import assets
from utils.cropping import crop_faces, normalize_crops, roi_box_3ddfa_v2
from utils.errors import SynergyError
from utils.inference import reconstruct_in_image
from utils.checkpoints import checkpoint_kind, guess_arch, load_checkpoint
from utils.io import read_image


@pytest.fixture(scope="module")
def reference_state(reference):
    return load_checkpoint(reference("checkpoint.pth.tar"))


def _single_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_module_prefix_and_missing_buffers_are_handled(reference_state, ref_expected, ref_inputs):
    bare = {k.removeprefix("module."): v for k, v in reference_state.items()}
    without_buffers = {k: v for k, v in bare.items() if k not in ("w_shp", "u", "w_exp")}
    model = SynergyNet(arch="mobilenet_v2")
    kept = model.load_weights(without_buffers)
    assert kept == ["w_shp", "u", "w_exp"]
    with torch.no_grad():
        params = model.eval().forward_test(torch.from_numpy(ref_inputs["imgs"]))
    np.testing.assert_allclose(params.numpy(), ref_expected["params_test"], rtol=NET_RTOL, atol=NET_ATOL)


def test_other_architecture_is_refused(reference, tmp_path):
    model = SynergyNet(arch="mobilenet_1")
    with pytest.raises(SynergyError) as exc:
        model.load_weights(reference("checkpoint.pth.tar"))
    message = _single_line(exc)
    assert "does not fit SynergyNet(arch='mobilenet_1')" in message and "missing" in message


def test_missing_network_tensor_is_refused(reference_state):
    state = dict(reference_state)
    del state["module.I2P.backbone.classifier_exp.1.weight"]
    with pytest.raises(SynergyError, match="missing I2P.backbone.classifier_exp.1.weight"):
        SynergyNet(arch="mobilenet_v2").load_weights(state)


def test_truncated_checkpoint_is_refused(reference, tmp_path):
    data = reference("checkpoint.pth.tar").read_bytes()
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SynergyError) as exc:
        SynergyNet(arch="mobilenet_v2").load_weights(truncated)
    assert "truncated or corrupt" in _single_line(exc)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_pickle",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_with_code_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth.tar"
    with open(evil, "wb") as f:
        pickle.dump({"state_dict": _RunsCode()}, f)
    with pytest.raises(SynergyError) as exc:
        load_checkpoint(evil)
    assert "refusing to run code" in _single_line(exc)
    assert not (tmp_path / "pwned_by_pickle").exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all"])
def test_empty_and_garbage_files_are_refused(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(SynergyError) as exc:
        load_checkpoint(path)
    if content:  # not "refusing to run code", which would point users at unsafe loading
        assert "is not a checkpoint (neither a torch zip archive nor a pickle)" in _single_line(exc)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(SynergyError, match="not found"):
        load_checkpoint(tmp_path / "nowhere.pth")


def test_non_checkpoint_state_is_refused(tmp_path):
    path = tmp_path / "numbers.pth"
    torch.save({"state_dict": {"layer.weight": torch.zeros(3)}}, path)
    with pytest.raises(SynergyError, match="not a SynergyNet or 3DDFA_V2 checkpoint"):
        SynergyNet.from_checkpoint(path)


def test_kind_and_arch_are_recognised(reference_state):
    bare = {k.removeprefix("module."): v for k, v in reference_state.items()}
    assert checkpoint_kind(bare) == "synergynet"
    assert guess_arch(bare) == "mobilenet_v2"


def test_3ddfa_v2_checkpoint_reproduces_reference_landmarks(ref_json, photo):
    model, info = SynergyNet.from_checkpoint(assets.require("pretrained/3ddfa_v2/mb05_120x120.pth"))
    assert (info.kind, info.arch, info.crop_policy) == ("3ddfa_v2", "mobilenet_05", "3ddfa_v2")
    reference = ref_json("3ddfa_v2_mb05_landmarks.json")
    worst_px = 0.0
    for name, faces in reference.items():
        image = read_image(photo(name))
        roi_boxes = np.array([roi_box_3ddfa_v2(np.float32(face["box"])) for face in faces])
        np.testing.assert_allclose(roi_boxes, [face["roi_box"] for face in faces], rtol=0, atol=PX_ATOL)
        with torch.no_grad():
            params = model.forward_test(torch.from_numpy(normalize_crops(crop_faces(image, roi_boxes)))).numpy()
        np.testing.assert_allclose(params, [face["params_whitened"] for face in faces], rtol=NET_RTOL, atol=NET_ATOL)
        landmarks = reconstruct_in_image(params, roi_boxes, whitening=info.whitening)
        error = np.abs(landmarks - np.array([face["landmarks_3x68"] for face in faces]))  # x, y and z
        worst_px = max(worst_px, float(error.max()))
    assert worst_px < PX_ATOL
