"""The manifest: every asset of the original's layout, placed once, each with a source."""
from __future__ import annotations

import json

from tests.support import MIRROR, skip_unless_required
from tests.utils.assets.fetch_support import BEST, POSE
from utils import assets


def test_manifest_places_every_asset_of_the_original_layout():
    paths = {a.path for a in assets.load_manifest()}
    for expected in ["3dmm_data/w_shp_sim.npy", "3dmm_data/BFM_UV.npy", "3dmm_data/keptInd.npy",
                     "3dmm_data/deletedTri.npy", "FaceBoxes/weights/FaceBoxesProd.pth", "pretrained/best.pth.tar",
                     "aflw2000_data/eval/AFLW2000-3D_crop.roi_box.npy", "img/sample_1.jpg"]:
        assert expected in paths
    for asset in assets.load_manifest():
        assert asset.group in assets.ALL_GROUPS
        assert asset.url or asset.google_drive_id or asset.derived_from


def test_each_path_is_listed_once_and_each_entry_is_read_whole():
    """No two entries place a file at one path, and no field of an entry is left unread
    (a field the `Asset` does not know would be dropped without a word)."""
    entries = json.loads(assets.MANIFEST_PATH.read_text())["files"]
    loaded = assets.load_manifest()
    assert len({a.path for a in loaded}) == len(loaded) == len(entries)
    known = set(assets.Asset.__dataclass_fields__)
    assert all(set(entry) <= known for entry in entries), [set(entry) - known for entry in entries]
    for asset in loaded:
        assert isinstance(asset.previous_google_drive_ids, tuple)
        assert asset.drive_ids[:1] == ((asset.google_drive_id,) if asset.google_drive_id else ())
        if asset.derived_from:
            assert asset.array_sha256 and {"path", "url", "convert"} <= set(asset.derived_from)


def test_manifest_ids_follow_the_shared_manifest():
    shared = MIRROR / "MANIFEST.json"
    if not shared.is_file():
        skip_unless_required(f"no asset mirror at {MIRROR}")
    drive_entries = {e["path"]: e for e in json.loads(shared.read_text())["google_drive"]}
    entry = drive_entries[BEST.path]
    assert BEST.drive_ids == (entry["google_drive_id"], *entry.get("previous_google_drive_ids", []))
    assert POSE.google_drive_id == drive_entries[POSE.path]["google_drive_id"]
    assert BEST.check == POSE.check == "synergynet_checkpoint"
