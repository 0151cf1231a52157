"""Archives: a data archive extracted under the data root with its path guards, and the
checkpoint inside an archive Google Drive may serve instead of the bare file.

Member names are checked before anything is written (no absolute path, no `..`, no
link), and a checkpoint is copied out of its archive without its member name ever being
used as a path.
"""
from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from utils.assets.download import CHUNK
from utils.assets.reasons import NotTheFile, one_line
from utils.assets.scratch import Scratch
from utils.errors import SynergyError

CHECKPOINT_SUFFIXES = (".pth.tar", ".pth")
# gzip, bzip2, xz: the compressions tarfile reads (a .tar.gz and its kin)
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def safe_member_name(name: str) -> bool:
    """A relative name without `..` (what an archive member may be called to be used)."""
    pure = PurePosixPath(name.replace("\\", "/"))
    return bool(name) and not pure.is_absolute() and ".." not in pure.parts and ":" not in pure.parts[0]


def zip_member_is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def extract_zip(archive: str | os.PathLike | bytes, root: Path) -> list[Path]:
    """Extract a zip archive (a file, or its bytes) under `root`; returns the files written.

    Every member is checked before anything is written: a member that would land outside
    `root` or is a link refuses the whole archive. Members are extracted into a staging
    folder inside `root` and moved into place only when all of them were read intact, so
    a refused or damaged archive writes nothing.
    """
    root = Path(root).resolve()
    source = io.BytesIO(archive) if isinstance(archive, (bytes, bytearray)) else archive
    try:
        with zipfile.ZipFile(source) as zf:
            plan: list[tuple[zipfile.ZipInfo, Path]] = []
            for info in zf.infolist():
                name = info.filename
                if info.is_dir() or name.startswith("__MACOSX/"):
                    continue
                target = (root / name).resolve()
                if not safe_member_name(name) or root not in target.parents:
                    raise SynergyError(f"archive member {name!r} points outside {root}; refusing the archive")
                if zip_member_is_link(info):
                    raise SynergyError(f"archive member {name!r} is a link; refusing the archive")
                plan.append((info, target))
            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=root, prefix=".extracting-"))
            try:
                staged = []
                for number, (info, target) in enumerate(plan):
                    part = staging / str(number)
                    with zf.open(info) as src, open(part, "wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
                    staged.append((part, target))
                for part, target in staged:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(part, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise SynergyError(f"archive is not an intact zip file: {one_line(exc)}") from None
    return [target for _, target in plan]


def is_torch_zip(names: list[str]) -> bool:
    """True for a checkpoint `torch.save` wrote (itself a zip): every member under one
    folder, with `<folder>/data.pkl`; an archive holding a `.pth.tar` is not one."""
    tops = {name.split("/", 1)[0] for name in names}
    return len(tops) == 1 and f"{next(iter(tops))}/data.pkl" in names


def is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return False


def pick_checkpoint(candidates: list[tuple[str, object]], want: str, names: list[str]) -> object:
    """The member of an archive that is the checkpoint: named `want`, else the only
    `.pth.tar` / `.pth` file."""
    usable = [(n, m) for n, m in candidates
              if safe_member_name(n) and n.lower().endswith(CHECKPOINT_SUFFIXES)
              and not n.startswith("__MACOSX/") and not PurePosixPath(n).name.startswith("._")]
    exact = [c for c in usable if PurePosixPath(c[0]).name == want]
    chosen = exact or usable
    if len(chosen) != 1:
        shown = ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
        what = "several" if len(chosen) > 1 else "no"
        raise NotTheFile(f"an archive with {what} .pth.tar/.pth checkpoint(s) (it holds {shown or 'nothing'})")
    return chosen[0][1]


def unpack_checkpoint(path: Path, want: str, scratch: Scratch) -> Path:
    """The bare checkpoint in `path`: the file itself (a legacy pickle, a torch zip or
    anything the content check will judge), or the `.pth.tar`/`.pth` member of a zip or tar
    archive, copied out into a temporary file of `scratch`."""
    with open(path, "rb") as f:
        head = f.read(512)
    # By the first bytes, not by zipfile.is_zipfile: an uncompressed tar holding a torch
    # checkpoint ends with that checkpoint's zip directory and would pass for a zip.
    if head[:1] == b"\x80":  # a pickle: torch.save's legacy format
        return path
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _checkpoint_in_zip(path, want, scratch)
    if head[257:262] == b"ustar" or head.startswith(_COMPRESSED_MAGIC) or is_tar(path):
        return _checkpoint_in_tar(path, want, scratch)
    return path


def _checkpoint_in_zip(path: Path, want: str, scratch: Scratch) -> Path:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError):
        return path  # no zip directory: a truncated file, which the check reports as such
    with archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        if is_torch_zip(names):
            return path
        regular = [(i.filename, i) for i in infos if not i.is_dir() and not zip_member_is_link(i)]
        member = pick_checkpoint(regular, want, names)
        out = scratch.new_file(want)
        try:
            with archive.open(member) as src, open(out, "wb") as dst:  # type: ignore[arg-type]
                shutil.copyfileobj(src, dst, CHUNK)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise NotTheFile(f"a damaged zip archive ({exc})") from None
        return out


def _checkpoint_in_tar(path: Path, want: str, scratch: Scratch) -> Path:
    try:
        with tarfile.open(path, "r:*") as archive:
            members = archive.getmembers()
            names = [m.name for m in members]
            if {"pickle", "storages", "tensors"} <= set(names):  # torch's oldest (tar) format
                return path
            member = pick_checkpoint([(m.name, m) for m in members if m.isreg()], want, names)
            src = archive.extractfile(member)  # type: ignore[arg-type]
            if src is None:
                raise NotTheFile(f"an unreadable archive member {member.name!r}")  # type: ignore[attr-defined]
            out = scratch.new_file(want)
            with src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            return out
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise NotTheFile(f"a damaged tar archive ({exc})") from None
