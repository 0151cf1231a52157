"""Digests, and whether a file is its asset."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess

import numpy as np

from utils import assets
from utils.assets.checksums import array_matches, content_matches
from utils.errors import SynergyError


def test_git_blob_sha1_is_the_id_git_gives(tmp_path):
    for data in (b"", b"weights" * 1000, bytes(range(256))):
        (tmp_path / "f").write_bytes(data)
        git = subprocess.run(["git", "hash-object", str(tmp_path / "f")], capture_output=True, text=True, check=True)
        assert assets.git_blob_sha1(data) == git.stdout.strip()


def test_file_sha256_reads_the_whole_file(tmp_path):
    data = np.random.default_rng(0).bytes(3 << 20)  # more than one chunk
    (tmp_path / "f").write_bytes(data)
    assert assets.file_sha256(tmp_path / "f") == assets.sha256(data) == hashlib.sha256(data).hexdigest()


def test_array_digest_is_of_dtype_shape_and_values_not_memory_order():
    array = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert assets.array_sha256(np.asfortranarray(array)) == assets.array_sha256(array)
    assert assets.array_sha256(array.astype(np.int32)) != assets.array_sha256(array)
    assert assets.array_sha256(array.reshape(4, 3)) != assets.array_sha256(array)
    assert assets.array_sha256(array + 1) != assets.array_sha256(array)


def test_content_matches_either_checksum_and_nothing_to_check_passes():
    data = b"payload"
    assert content_matches(data, None, assets.sha256(data))
    assert content_matches(data, assets.git_blob_sha1(data), "0" * 64)  # the git id alone suffices
    assert not content_matches(data, "0" * 40, "0" * 64)
    assert content_matches(data, None, None)


def test_array_matches_a_path_or_bytes_and_refuses_what_is_no_npy(tmp_path):
    array = np.arange(6, dtype=np.int64)
    buffer = io.BytesIO()
    np.save(buffer, array)
    (tmp_path / "a.npy").write_bytes(buffer.getvalue())
    digest = assets.array_sha256(array)
    assert array_matches(tmp_path / "a.npy", digest) and array_matches(buffer.getvalue(), digest)
    assert not array_matches(buffer.getvalue(), "0" * 64)
    assert not array_matches(b"<html>quota</html>", digest)
    assert not array_matches(tmp_path / "absent.npy", digest)


def test_verify_by_checksum_by_array_and_by_the_recorded_check(data_root, mirror):
    """A file of the mirror is its asset; one changed byte is not; a derived file by its
    array; a Drive file only with the sha256 recorded when it passed its check."""
    manifest = {a.path: a for a in assets.load_manifest()}
    keypoints = manifest["3dmm_data/keypoints_sim.npy"]
    target = data_root / keypoints.path
    assert not assets.verify(keypoints, target)  # absent
    target.parent.mkdir(parents=True)
    shutil.copy(mirror / keypoints.path, target)
    assert assets.verify(keypoints, target)
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    assert not assets.verify(keypoints, target)

    uv = manifest["3dmm_data/BFM_UV.npy"]
    assert uv.derived_from
    np.save(data_root / uv.path, np.zeros((2, 2)))
    assert not assets.verify(uv, data_root / uv.path)

    best = manifest[assets.OFFICIAL_WEIGHTS]
    weights = data_root / best.path
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"a checkpoint")
    assert not assets.verify(best, weights)  # no checksum published, none recorded
    (data_root / assets.STATE_FILE).write_text(json.dumps({"verified": {best.path: assets.sha256(b"a checkpoint")}}))
    assert assets.verify(best, weights)
    weights.write_bytes(b"another file")
    assert not assets.verify(best, weights)


def test_a_failed_content_check_is_a_user_error():
    assert issubclass(assets.CheckFailed, SynergyError)
