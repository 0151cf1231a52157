"""What a run needs, resolved before it starts: fetched on an installed package's first
use (from the mirror, or once from the network), else one line naming what is missing."""
from __future__ import annotations

import pytest

from tests.support import mirror_without
from utils import assets
from utils.assets import fetcher, resolving
from utils.errors import SynergyError


@pytest.fixture
def first_use(monkeypatch, installed):
    """An installed package in a fresh process: nothing has failed to fetch yet."""
    monkeypatch.setattr(resolving, "_UNFETCHABLE", {})


def test_missing_asset_names_the_fetch_command(data_root):
    with pytest.raises(SynergyError, match="fetch_assets.py"):
        assets.require("3dmm_data/u_shp.npy", "3DMM data")


def test_installed_package_fetches_a_missing_asset_on_first_use(data_root, mirror, monkeypatch, no_network, caplog,
                                                                installed):
    monkeypatch.setenv(assets.MIRROR_ENV, str(mirror))
    path = assets.require("3dmm_data/keypoints_sim.npy", "3DMM data")
    assert path == data_root / "3dmm_data" / "keypoints_sim.npy" and path.is_file()
    assert "fetching it" in caplog.text and no_network == []  # a warning: on stderr when logging is not set up
    # a Drive file is never fetched on first use: the error names the installed fetch command
    with pytest.raises(SynergyError, match="synergy3dmm-fetch"):
        assets.require("pretrained/best.pth.tar")
    assert no_network == [] and not (data_root / "pretrained" / "best.pth.tar").exists()


def test_resolve_fetches_what_is_missing_at_once_from_the_mirror(data_root, mirror, monkeypatch, no_network, tmp_path,
                                                                   caplog, first_use):
    """An installed package's first use: every missing file of a run in one go from the
    mirror; what the mirror lacks is one error naming it, and is not asked for again."""
    partial = mirror_without(mirror, tmp_path / "partial", "3dmm_data/BFM_UV.npy")
    monkeypatch.setenv(assets.MIRROR_ENV, str(partial))
    needed = {"3dmm_data/keypoints_sim.npy": "3DMM data", "3dmm_data/tri.mat": "the obj output"}
    places = assets.resolve(needed)
    assert all(path.is_file() for path in places.values()) and no_network == []
    assert len([r for r in caplog.records if "fetching them from the mirror" in r.getMessage()]) == 1
    caplog.clear()
    for attempt in range(2):
        with pytest.raises(SynergyError) as error:
            assets.resolve({**needed, "3dmm_data/BFM_UV.npy": "the obj output"})
        message = str(error.value)
        assert message.startswith("missing 3dmm_data/BFM_UV.npy (the obj output) in the data folder")
        assert f"the asset mirror {partial} lacks 3dmm_data/BFM_UV.npy" in message and "synergy3dmm-fetch" in message
    assert not [r for r in caplog.records if "fetching" in r.getMessage()]  # asked of the mirror: never
    assert no_network == []


def test_resolve_offline_without_a_mirror_tries_the_network_once(data_root, monkeypatch, no_network, first_use):
    """No data, no mirror, no network: one try (its retries) for the whole run, then one
    line naming the files, the data folder, the fetch command and the mirror."""
    monkeypatch.delenv(assets.MIRROR_ENV, raising=False)
    downloads: list[str] = []

    def offline(url, retry=None, timeout=60.0):  # what the download raises when no try reaches the server
        downloads.append(url)
        raise SynergyError(f"cannot download {url}: [Errno 101] Network is unreachable")

    monkeypatch.setattr(fetcher, "download_public_file", offline)
    needed = {f"3dmm_data/{name}": "3DMM data" for name in ("keypoints_sim.npy", "u_shp.npy", "u_exp.npy", "tri.mat")}
    for attempt in range(3):  # e.g. once per image of a folder: the network is tried the first time only
        with pytest.raises(SynergyError) as error:
            assets.resolve(needed)
    message = str(error.value)
    assert message.startswith("missing 3dmm_data/keypoints_sim.npy, 3dmm_data/u_shp.npy, 3dmm_data/u_exp.npy and "
                              f"1 more (3DMM data) in the data folder {data_root}")
    for needle in ("`synergy3dmm-fetch`", "`synergy3dmm-fetch --mirror DIR`", "SYNERGYNET_MIRROR=DIR"):
        assert needle in message
    assert "Network is unreachable" in message
    assert len(downloads) == 1  # the first file, once (its retries are the download's); never again in this process
    assert not [p for p in data_root.rglob("*") if p.is_file()]


def test_resolve_in_a_checkout_names_the_checkouts_fetch_and_fetches_nothing(data_root, mirror, monkeypatch,
                                                                             no_network):
    monkeypatch.setenv(assets.MIRROR_ENV, str(mirror))
    with pytest.raises(SynergyError, match=r"missing 3dmm_data/u_shp.npy \(3DMM data\) in the data folder .*; run "
                                           r"`python fetch_assets.py` to fetch the data"):
        assets.resolve({"3dmm_data/u_shp.npy": "3DMM data"})
    assert no_network == [] and not (data_root / "3dmm_data").exists()


def test_a_file_outside_the_data_folder_is_named_as_it_is(data_root, tmp_path, installed):
    present = tmp_path / "mine.pth"
    present.write_bytes(b"weights")
    assert assets.resolve({present: "the weights"}) == {str(present): present}
    with pytest.raises(SynergyError) as error:
        assets.require(tmp_path / "absent.pth", "the weights")
    assert str(error.value) == f"missing {tmp_path / 'absent.pth'} (the weights)"  # nothing to fetch it with
