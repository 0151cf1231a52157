"""A mirror: its own layout when it has a manifest, the data root's otherwise."""
from __future__ import annotations

import json

import pytest

from utils import assets
from utils.errors import SynergyError


def test_the_shared_mirror_places_files_by_its_manifest(mirror):
    copies = assets.Mirror(mirror)
    assert copies.find("img/sample_2.jpg") == mirror / "images" / "sample_2.jpg"  # a public name, elsewhere
    assert copies.find("3dmm_data/keypoints_sim.npy") == mirror / "3dmm_data" / "keypoints_sim.npy"
    assert copies.find("pretrained/none.pth") is None
    assert {"3dmm_data/w_shp_sim.npy", "3dmm_data/w_exp_sim.npy"} <= copies.standins


def test_a_folder_without_manifest_mirrors_the_data_root(tmp_path, monkeypatch):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"jpeg")
    copies = assets.Mirror(tmp_path)
    assert copies.find("img/a.jpg") == tmp_path / "img" / "a.jpg" and copies.standins == set()
    error = copies.lacks("3dmm_data/BFM_UV.npy", "3dmm_data/BFM_UV.mat")
    assert isinstance(error, SynergyError) and "\n" not in str(error)
    assert str(error).startswith(f"3dmm_data/BFM_UV.npy is missing from the asset mirror {tmp_path} (looked for "
                                 f"3dmm_data/BFM_UV.npy, 3dmm_data/BFM_UV.mat)")
    monkeypatch.setenv(assets.MIRROR_ENV, str(tmp_path))
    assert assets.Mirror.from_environment().root == tmp_path
    monkeypatch.delenv(assets.MIRROR_ENV)
    assert assets.Mirror.from_environment() is None


def test_a_mirror_that_is_no_folder_is_one_line(tmp_path):
    with pytest.raises(SynergyError, match="is not a folder"):
        assets.Mirror(tmp_path / "absent")
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"github_files": [{"path": "img/a.jpg"}]}))
    assert assets.Mirror(tmp_path).places == {}  # an entry without a mirror place is the data root's layout
