"""ONNX Runtime backend: exported networks agree with PyTorch to 1e-4."""
from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch

from tests.support import NET_ATOL, NET_RTOL
from model_building import SynergyNet
from synergy3DMM import runners
from utils import assets


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNERGYNET_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("weights", ["reference", "pretrained/3ddfa_v2/mb05_120x120.pth"])
def test_regressor_onnx_matches_torch(weights, reference, ref_inputs):
    path = reference("checkpoint.pth.tar") if weights == "reference" else assets.require(weights)
    model, info = SynergyNet.from_checkpoint(path)
    run, onnx_info = runners.onnx_regressor(path)
    assert (onnx_info.kind, onnx_info.arch, onnx_info.crop_policy) == (info.kind, info.arch, info.crop_policy)
    np.testing.assert_array_equal(onnx_info.whitening.mean, info.whitening.mean)
    batch = ref_inputs["imgs"]
    with torch.no_grad():
        expected = model.forward_test(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(run(batch), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(run(batch[:1]), expected[:1], atol=1e-4, rtol=0)  # dynamic batch
    large = np.concatenate([batch] * 10)  # 40 crops: run in chunks of runners.REGRESSOR_CHUNK
    np.testing.assert_allclose(run(large), np.concatenate([expected] * 10), atol=1e-4, rtol=0)


def _own_whitening(checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """The whitening a checkpoint comes with, read here without the project's loaders: a
    SynergyNet checkpoint's `param_mean`/`param_std` buffers, or the pickle 3DDFA_V2 ships."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    if "module.param_mean" in state:
        return state["module.param_mean"].numpy()[:62], state["module.param_std"].numpy()[:62]
    with open(assets.require("pretrained/3ddfa_v2/param_mean_std_62d_120x120.pkl"), "rb") as f:
        meta = pickle.load(f, encoding="latin1")  # a checksum-verified asset of the manifest
    return np.float32(meta["mean"])[:62], np.float32(meta["std"])[:62]


@pytest.mark.parametrize("weights", ["reference", "pretrained/3ddfa_v2/mb05_120x120.pth"])
def test_cached_sidecar_holds_the_checkpoints_own_whitening(weights, reference):
    """The first call exports and writes the sidecar; the second reads everything from the
    cache. Both must carry the whitening the checkpoint itself holds (mean and std not
    swapped, nothing recomputed)."""
    path = reference("checkpoint.pth.tar") if weights == "reference" else assets.require(weights)
    mean, std = _own_whitening(path)
    assert not np.allclose(mean, std)
    for call in ("export", "cached"):
        _, info = runners.onnx_regressor(path)
        np.testing.assert_array_equal(info.whitening.mean, mean, err_msg=call)
        np.testing.assert_array_equal(info.whitening.std, std, err_msg=call)
        assert info.crop_policy == ("synergynet" if weights == "reference" else "3ddfa_v2")


def test_cached_export_reproduces_the_original(reference, ref_inputs, ref_expected):
    """The ONNX path (from the cache, the second time) against the original's outputs, not
    only against our PyTorch model. Measured: 9e-8 from the reference."""
    for _ in range(2):
        run, _ = runners.onnx_regressor(reference("checkpoint.pth.tar"))
        np.testing.assert_allclose(run(ref_inputs["imgs"]), ref_expected["params_test"], rtol=NET_RTOL, atol=NET_ATOL)


def test_cache_key_covers_whitening_and_export_code(tmp_path, monkeypatch):
    """A changed 3DDFA_V2 whitening file or changed export code gives a new cache entry, so a
    stale export is never used."""
    checkpoint = tmp_path / "weights" / "mb05_120x120.pth"
    checkpoint.parent.mkdir()
    shutil.copy(assets.require("pretrained/3ddfa_v2/mb05_120x120.pth"), checkpoint)
    fetched = runners.cache_path("regressor-auto", checkpoint)  # whitening: the fetched copy
    assert runners.cache_path("regressor-auto", checkpoint) == fetched
    beside = checkpoint.parent / "param_mean_std_62d_120x120.pkl"
    shutil.copy(assets.require("pretrained/3ddfa_v2/param_mean_std_62d_120x120.pkl"), beside)
    assert runners.cache_path("regressor-auto", checkpoint) == fetched  # same content, same key
    with open(beside, "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    meta["mean"], meta["std"] = meta["std"], meta["mean"]
    with open(beside, "wb") as f:
        pickle.dump(meta, f)
    assert runners.cache_path("regressor-auto", checkpoint) != fetched

    sources = runners.export_sources()
    names = {f"{path.parent.name}/{path.name}" for path in sources}
    assert {"synergy3DMM/runners.py", f"{assets.REPO_ROOT.name}/model_building.py", "utils/checkpoints.py",
            "backbone_nets/mobilenetv2_backbone.py", "models/faceboxes.py"} <= names, names
    code = tmp_path / "code"
    copies = []
    for number, source in enumerate(sources):  # a copy of the export code, one folder per file
        copies.append(code / str(number) / source.parent.name / source.name)
        copies[-1].parent.mkdir(parents=True)
        shutil.copy(source, copies[-1])
    monkeypatch.setattr(runners, "export_sources", lambda: copies)
    before = runners.cache_path("faceboxes", checkpoint)
    with open(next(c for c in copies if c.name == "mobilenetv2_backbone.py"), "a") as f:
        f.write("\n# a changed export\n")
    assert runners.cache_path("faceboxes", checkpoint) != before


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_batches_shared_among_cores_keep_order(workers, reference, ref_inputs):
    """However a batch is cut into chunks and whichever core runs which, each crop's
    parameters are those of the crop run alone, in the batch's order."""
    run, _ = runners.onnx_regressor(reference("checkpoint.pth.tar"))
    run.workers = workers
    rng = np.random.default_rng(1)
    crops = np.concatenate([ref_inputs["imgs"], rng.standard_normal((15, 3, 120, 120), dtype=np.float32)])
    alone = np.concatenate([run(crop[None]) for crop in crops])
    for size in (2, 3, len(crops)):  # 19 crops: chunks of 8, 8, 3
        np.testing.assert_allclose(run(crops[:size]), alone[:size], atol=1e-5, rtol=0)
    assert (run._pool is None) == (workers == 1)


def test_export_is_cached(reference, tmp_path):
    messages: list[str] = []
    runners.onnx_regressor(reference("checkpoint.pth.tar"), log=messages.append)
    runners.onnx_regressor(reference("checkpoint.pth.tar"), log=messages.append)
    assert len(messages) == 1 and "exporting" in messages[0]
    assert len(list((tmp_path / "cache").glob("regressor-auto-*.onnx"))) == 1


def test_cached_onnx_pipeline_runs_without_torch(tmp_path, photo):
    """Once exported, the ONNX path needs no torch: faster start, half the memory."""
    code = f"""
import sys
import logging
logging.basicConfig(level=logging.INFO, format="%(message)s")  # the library's notes (exports) on stderr
from synergy3DMM.pipeline import FacePipeline
from synergy3DMM.outputs import make_outputs, save_image_outputs
from synergy3DMM.results import ImageResult
from utils.io import read_image
import pathlib
pipeline = FacePipeline(r"{assets.require('pretrained/3ddfa_v2/mb05_120x120.pth')}", backend="onnx")
image = read_image(r"{photo('two_faces_720p.jpg')}")
faces = pipeline.analyse(image)
save_image_outputs(ImageResult(image, faces, "x.jpg", "x"), make_outputs(), pathlib.Path(r"{tmp_path / 'out'}"))
print(len(faces), "torch" in sys.modules)
"""
    import subprocess
    import sys

    env = {**__import__("os").environ, "SYNERGYNET_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=assets.REPO_ROOT,
                           timeout=600)
    assert first.returncode == 0 and first.stdout.split() == ["2", "True"], first.stderr  # exports with torch
    exports = [line for line in first.stderr.splitlines() if line.startswith("exporting")]
    assert [line.split()[1] for line in exports] == ["mb05_120x120.pth", "FaceBoxesProd.pth"], first.stderr
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=assets.REPO_ROOT,
                            timeout=600)
    assert second.returncode == 0 and second.stdout.split() == ["2", "False"], second.stderr
    assert "exporting" not in second.stderr


def test_detector_onnx_matches_torch(photo, ref_json):
    from FaceBoxes import FaceBoxes
    from utils.io import read_image

    torch_detector = FaceBoxes()
    onnx_detector = runners.detector(None, "onnx", "cpu")
    for name in ["two_faces_720p.jpg", "group_photo.jpg", "small_face.jpg"]:
        image = read_image(photo(name))
        net_input, _ = torch_detector.preprocess(image)
        for a, b in zip(torch_detector.run_network(net_input), onnx_detector.run_network(net_input)):
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
        expected = np.array(torch_detector(image))
        got = np.array(onnx_detector(image))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-2)
