"""`.assets_state.json`: stand-ins and verified files, read back as written, and a state
file that cannot be read is an empty state, not a crash."""
from __future__ import annotations

import json

from utils import assets
from utils.assets.state import AssetState


def test_state_changes_are_written_at_once_and_read_back(data_root):
    data_root.mkdir()
    state = AssetState(data_root)
    assert state.standins == set() and state.verified == {}
    state.add_standin("3dmm_data/w_shp_sim.npy")
    state.add_standin("3dmm_data/w_exp_sim.npy")
    state.add_standin("img/x.jpg")
    state.record_verified(assets.OFFICIAL_WEIGHTS, "ab" * 32)
    assert assets.standin_files() == ["3dmm_data/w_exp_sim.npy", "3dmm_data/w_shp_sim.npy", "img/x.jpg"]
    assert assets.verified_files() == {assets.OFFICIAL_WEIGHTS: "ab" * 32}

    again = AssetState(data_root)  # a later run sees what this one wrote
    assert again.standins == set(assets.standin_files()) and again.verified == assets.verified_files()
    again.forget_standins_under(assets.MORPHABLE_MODEL_DIR)
    assert assets.standin_files() == ["img/x.jpg"]
    again.forget_standin("img/x.jpg")
    again.forget_standin("never/recorded")
    again.forget_verified(assets.OFFICIAL_WEIGHTS)
    again.forget_verified(assets.OFFICIAL_WEIGHTS)
    assert assets.standin_files() == [] and assets.verified_files() == {}
    assert json.loads((data_root / assets.STATE_FILE).read_text()) == {"standins": []}
    assert [p.name for p in data_root.iterdir()] == [assets.STATE_FILE]  # no temporary file left


def test_a_state_file_that_cannot_be_read_is_an_empty_state(data_root):
    data_root.mkdir()
    state_file = data_root / assets.STATE_FILE
    for text in ("{not json", "[1, 2]", json.dumps({"standins": ["a"], "verified": ["not", "a", "map"]})):
        state_file.write_text(text)
        assert assets.verified_files() == {}
    assert assets.standin_files() == ["a"]
    state_file.unlink()
    assert assets.standin_files() == [] and assets.verified_files() == {}
