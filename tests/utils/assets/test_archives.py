"""Archives: extraction with its path guards (nothing written unless all is well), and the
checkpoint found inside a zip or tar without its member name used as a path."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests.utils.assets.fetch_support import tar_bytes, zip_bytes
from utils.assets import archives
from utils.assets.reasons import NotTheFile
from utils.assets.scratch import Scratch
from utils.errors import SynergyError


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_extract_zip_places_members(tmp_path):
    root = tmp_path / "root"
    written = archives.extract_zip(zip_bytes({"aflw2000_data/a.txt": b"a", "aflw2000_data/sub/b.txt": b"b",
                                               "__MACOSX/aflw2000_data/._a.txt": b"junk"}), root)
    assert sorted(p.relative_to(root).as_posix() for p in written) == ["aflw2000_data/a.txt",
                                                                        "aflw2000_data/sub/b.txt"]
    assert (root / "aflw2000_data" / "sub" / "b.txt").read_bytes() == b"b"
    assert _files(root) == {"aflw2000_data", "aflw2000_data/a.txt", "aflw2000_data/sub", "aflw2000_data/sub/b.txt"}


@pytest.mark.parametrize("evil", ["../evil", "aflw2000_data/../../evil", "/tmp/evil"])
def test_extract_zip_refuses_paths_outside_and_writes_nothing(tmp_path, evil):
    root = tmp_path / "root"
    root.mkdir()
    archive = zip_bytes({"aflw2000_data/good.txt": b"good", evil: b"evil"})  # a good member first
    with pytest.raises(SynergyError, match="points outside"):
        archives.extract_zip(archive, root)
    assert _files(root) == set()
    assert not (tmp_path / "evil").exists()


def test_extract_zip_refuses_links(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("aflw2000_data/link")
        link.external_attr = (0o120777 << 16)  # a symbolic link, as `zip --symlinks` stores it
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(SynergyError, match="is a link"):
        archives.extract_zip(buffer.getvalue(), root)
    assert _files(root) == set()


def test_extract_zip_damaged_member_writes_nothing(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    data = bytearray(zip_bytes({"a.txt": b"first", "b.txt": b"second member"}))
    at = bytes(data).index(b"second member")
    data[at] ^= 0xFF  # stored (not deflated): the CRC check catches it
    with pytest.raises(SynergyError, match="not an intact zip"):
        archives.extract_zip(bytes(data), root)
    assert _files(root) == set()
    with pytest.raises(SynergyError, match="not an intact zip"):
        archives.extract_zip(b"<html>quota</html>", root)


# ----------------------------------------------------------------- the checkpoint in an archive

CHECKPOINT = b"\x80\x02a legacy torch pickle"


def _unpack(tmp_path: Path, data: bytes, want: str = "best.pth.tar") -> tuple[Path, Path, bytes]:
    """(the file given, the file returned, its bytes), read before the scratch space goes."""
    given = tmp_path / "download"
    given.write_bytes(data)
    with Scratch(tmp_path / "scratch") as scratch:
        found = archives.unpack_checkpoint(given, want, scratch)
        return given, found, found.read_bytes()


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_the_checkpoint_is_taken_out_of_an_archive(tmp_path, kind):
    members = {"SynergyNet/README.txt": b"weights", "SynergyNet/pretrained/best.pth.tar": CHECKPOINT,
               "__MACOSX/SynergyNet/pretrained/._best.pth.tar": b"junk"}
    data = zip_bytes(members) if kind == "zip" else tar_bytes(members, "w:gz" if kind == "tar.gz" else "w")
    given, found, content = _unpack(tmp_path, data)
    assert found != given and content == CHECKPOINT
    assert not (tmp_path / "scratch").exists()


def test_by_its_name_else_the_only_checkpoint_else_a_reason(tmp_path):
    named = zip_bytes({"a/best.pth.tar": CHECKPOINT, "a/other.pth": b"\x80other"})
    assert _unpack(tmp_path, named)[2] == CHECKPOINT
    assert _unpack(tmp_path, zip_bytes({"weights/model.pth": CHECKPOINT}))[2] == CHECKPOINT
    with pytest.raises(NotTheFile, match="several .pth.tar/.pth checkpoint"):
        _unpack(tmp_path, zip_bytes({"a.pth": CHECKPOINT, "b.pth": CHECKPOINT}))
    with pytest.raises(NotTheFile, match=r"no .pth.tar/.pth checkpoint\(s\) \(it holds README.txt\)"):
        _unpack(tmp_path, zip_bytes({"README.txt": b"moved"}))
    with pytest.raises(NotTheFile, match="no .pth.tar"):  # a member that climbs out is never taken
        _unpack(tmp_path, tar_bytes({"../best.pth.tar": CHECKPOINT}))


def test_a_checkpoint_that_is_itself_a_zip_or_a_pickle_is_the_file(tmp_path):
    torch_zip = zip_bytes({"archive/data.pkl": b"\x80pickle", "archive/data/0": b"tensor"})
    for data in (CHECKPOINT, torch_zip, b"anything else: the content check judges it"):
        given, found, content = _unpack(tmp_path, data)
        assert found == given and content == data


def test_a_damaged_archive_is_a_reason(tmp_path):
    data = bytearray(zip_bytes({"best.pth.tar": CHECKPOINT * 100}))
    data[data.index(CHECKPOINT) + 3] ^= 0xFF
    with pytest.raises(NotTheFile, match="a damaged zip archive"):
        _unpack(tmp_path, bytes(data))
    with pytest.raises(NotTheFile, match="a damaged tar archive"):
        _unpack(tmp_path, b"\x1f\x8b" + b"\x00" * 100)  # gzip's magic, then nothing
