"""Where data and weights live, and how they get there.

This is the one place that knows paths. Every asset of the project is listed in
`utils/assets_manifest.json` with its place relative to the *data root*, its public URL and
its checksums. The data root (`data_root()`) is `SYNERGYNET_HOME` when set; else, in a
checkout, the repository root (the original's layout); else, for an installed package, a
per-user data folder (`~/.local/share/synergynet` on Linux, the platform's equivalent
elsewhere, as `platformdirs` names it). An installed package fetches a missing public
asset on first use (`require`), from `SYNERGYNET_MIRROR` when set, never from Google Drive;
`synergy3dmm-fetch` (`fetch_assets.py` in a checkout) fetches everything at once.

`fetch()` places each asset at its path: downloaded from its URL and verified (git blob
SHA-1, sha256), converted where the original ships a derived file (`BFM_UV.npy`,
`keptInd.npy`, `deletedTri.npy`), or copied from a local mirror directory. Files are
written to a temporary name and renamed only once verified, so an interrupted fetch
never leaves a truncated file in place; a file already present and verified is left
alone, so a second run does nothing. Given a mirror, the fetcher never goes to the
network: a file the mirror lacks is an error naming it (only the optional `extra` group
is skipped instead).

Google Drive files (the official SynergyNet weights, the benchmark images) are fetched
only when asked for. Drive publishes no checksums, so a checkpoint is verified by what it
is: the manifest names a content check (`"check": "synergynet_checkpoint"`) and the
caller supplies it (`fetch(..., checks={name: callable(path)})`; `fetch_assets.py` does),
which keeps this module free of the model code above it. The sha256 of a file that
passed is recorded in `.assets_state.json`, so the next run neither downloads nor
re-checks it, and notices when it has changed. Drive's answers that are not the file
(virus-scan warnings, quota, sign-in and error pages) end in one line naming the manual
download URL and the path to put the file at, with nothing left behind.
"""
from __future__ import annotations

import hashlib
import html.parser
import http.client
import http.cookiejar
import io
import json
import logging
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Mapping

import numpy as np

from utils.errors import SynergyError
from utils.writers import atomic_write

logger = logging.getLogger("synergynet.assets")

# The wheel (setup.py) places the original's top-level units inside the package
# `synergy3DMM` (`utils` is `synergy3DMM.utils` there): this module's own name says which
# layout runs.
INSTALLED_LAYOUT = __name__ != "utils.assets"
# The folder that holds `utils/`: a checkout's root, or the installed package's folder.
REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = Path(__file__).resolve().parent / "assets_manifest.json"
STATE_FILE = ".assets_state.json"
FETCH_COMMAND = "python fetch_assets.py"  # in a checkout; an installed package has `synergy3dmm-fetch`
INSTALLED_FETCH_COMMAND = "synergy3dmm-fetch"
MIRROR_ENV = "SYNERGYNET_MIRROR"
APP_NAME = "synergynet"

# Every asset the code names, relative to the data root, named here once (the manifest gives
# each file's URL and checksums; tests/utils/test_assets.py checks these against it).
MORPHABLE_MODEL_DIR = "3dmm_data"  # the 3DMM: mean shape, bases, landmark indices, whitening, triangles, UV
FACEBOXES_WEIGHTS = "FaceBoxes/weights/FaceBoxesProd.pth"
OFFICIAL_WEIGHTS = "pretrained/best.pth.tar"  # SynergyNet's (Google Drive, fetched when asked for)
TDDFA_V2_WEIGHTS = "pretrained/3ddfa_v2/mb05_120x120.pth"  # the regressor used without the official weights
TDDFA_V2_WHITENING = "pretrained/3ddfa_v2/param_mean_std_62d_120x120.pkl"
AFLW2000_DIR = "aflw2000_data"  # crops, list and ground truth of the benchmark
AFLW_DIR = "aflw_data"
EVAL_SUBDIR = "eval"  # the ground-truth arrays inside a benchmark folder
DEMO_PHOTOS_DIR = "img"

DEFAULT_GROUPS = ("core", "demo", "eval")
ALL_GROUPS = DEFAULT_GROUPS + ("extra", "official", "benchmark", "3dmm")

# Google Drive's direct-download endpoint. Tests point it at a local server, through this
# constant or the environment variable (which also reaches `fetch_assets.py` subprocesses).
DRIVE_URL = "https://drive.usercontent.google.com/download"
DRIVE_URL_ENV = "SYNERGYNET_DRIVE_URL"

USER_AGENT = "synergynet-fetch/1"
CHUNK = 1 << 20  # downloads and extractions move 1 MiB at a time, never a whole file in memory
PAGE_LIMIT = 1 << 20  # an HTML answer is only read to be described; more than this is not needed
CHECKPOINT_SUFFIXES = (".pth.tar", ".pth")
REASON_LIMIT = 400  # characters of one source's reason in an error line

# A content check: raises `CheckFailed` when the file at the path is not what it should be.
Check = Callable[[Path], object]


class CheckFailed(SynergyError):
    """Raised by a content check when a file is not what its manifest entry says it is.

    Other errors a check raises (missing 3DMM data, say) are not about the file and are
    passed on unchanged.
    """


def is_checkout() -> bool:
    """True when the code runs from a source checkout (not from an installed package)."""
    return not INSTALLED_LAYOUT and (REPO_ROOT / "pyproject.toml").is_file() \
        and (REPO_ROOT / "fetch_assets.py").is_file()


def user_data_dir() -> Path:
    """The per-user data folder of an installed package (the platform's own place)."""
    import platformdirs  # a dependency of pooch

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def data_root() -> Path:
    """The folder that holds `3dmm_data/`, `pretrained/`, ...: env `SYNERGYNET_HOME`, else
    the checkout, else the per-user data folder (see the module docstring)."""
    root = os.environ.get("SYNERGYNET_HOME")
    if root:
        return Path(root).expanduser().resolve()
    return REPO_ROOT if is_checkout() else user_data_dir()


def fetch_command() -> str:
    """The command that fetches the assets, as the user runs it here."""
    return FETCH_COMMAND if is_checkout() else INSTALLED_FETCH_COMMAND


def asset_path(relative: str | os.PathLike) -> Path:
    """Absolute path of an asset given by its path relative to the data root."""
    return data_root() / relative


def require(relative: str | os.PathLike, what: str = "") -> Path:
    """Path of an asset (relative to the data root, or absolute) that must exist; if not, the
    one-line error of `resolve` (an installed package first fetches it: its first use)."""
    return resolve({relative: what})[str(relative)]


def resolve(needed: Mapping[str | os.PathLike, str]) -> dict[str, Path]:
    """Every asset of `needed` (a path relative to the data root, or absolute -> what needs
    it, e.g. "the obj output"), in place before any work starts; returns {path as given:
    absolute path}.

    An installed package fetches the missing ones on their first use, all at once: from
    the mirror (`SYNERGYNET_MIRROR`) when one is set, else from their public
    URLs (never from Google Drive), stopping at the first failure (offline, that is one
    try). A checkout is filled by `./setup.sh` and fetches nothing here. Whatever is still
    missing ends in one `SynergyError` line that names the files, the data folder, the
    fetch command and the mirror for machines without internet."""
    places = {str(relative): asset_path(relative) for relative in needed}
    missing = [name for name, path in places.items() if not path.is_file()]
    failure = ""
    if missing and not is_checkout():
        failure = _fetch_on_first_use([places[name] for name in missing])
        missing = [name for name in missing if not places[name].is_file()]
    if missing:
        whats = {str(k): v for k, v in needed.items()}
        raise SynergyError(_missing_message([(places[name], whats[name]) for name in missing], failure))
    return places


def _missing_message(missing: list[tuple[Path, str]], failure: str) -> str:
    root = data_root()
    shown = [path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path) for path, _ in missing]
    files = ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
    whats = [what for what in dict.fromkeys(what for _, what in missing) if what]
    if whats:
        files += f" ({', '.join(whats)})"
    if not all(path.is_relative_to(root) for path, _ in missing):
        return f"missing {files}"  # not an asset of the data folder: nothing to fetch it with
    fetch = fetch_command()
    mirror = os.environ.get(MIRROR_ENV)
    if mirror and not is_checkout():  # the mirror was asked, and lacks it
        return (f"missing {files} in the data folder {root}; {failure or f'the asset mirror {mirror} lacks it'}: "
                f"add it to the mirror (SYNERGYNET_MIRROR=DIR, or `{fetch} --mirror DIR`), or where there is "
                f"internet unset SYNERGYNET_MIRROR and run `{fetch}`")
    tried = f" (downloading failed: {_shortened(failure)})" if failure else ""
    return (f"missing {files} in the data folder {root}{tried}; run `{fetch}` to fetch the data (on a machine "
            f"without internet, from a copy of the assets in a folder DIR: `{fetch} --mirror DIR`, or "
            f"SYNERGYNET_MIRROR=DIR with any command)")


def _shortened(text: str, limit: int = 240) -> str:
    """A reason cut to fit in an error line (network libraries explain at length)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


# Assets whose first-use fetch failed in this process, and why: not tried again (a run over
# many images must not try the network once per image).
_UNFETCHABLE: dict[str, str] = {}


def _fetch_on_first_use(paths: list[Path]) -> str:
    """Fetch the manifest's assets at `paths` that have a public URL (never Google Drive),
    from the mirror when `SYNERGYNET_MIRROR` is set; returns why some could not be ("" when
    all were, or none can be). What failed is not tried again in this process."""
    root = data_root()
    relatives = [path.resolve().relative_to(root).as_posix() for path in paths if path.resolve().is_relative_to(root)]
    failures = list(dict.fromkeys(_UNFETCHABLE[path] for path in relatives if path in _UNFETCHABLE))
    found = [asset for asset in load_manifest() if asset.path in relatives and asset.path not in _UNFETCHABLE
             and (asset.url or asset.derived_from)]
    if not found:
        return "; ".join(failures)
    mirror = Mirror(os.environ[MIRROR_ENV]) if os.environ.get(MIRROR_ENV) else None
    if mirror is not None:  # what the mirror lacks is not asked of it (a mirror means no network)
        lacking = [asset for asset in found if mirror.find(asset.path) is None
                   and not (asset.derived_from and mirror.find(asset.derived_from["path"]))]
        if lacking:
            failures.append(f"the asset mirror {mirror.root} lacks {', '.join(asset.path for asset in lacking)}")
            _UNFETCHABLE.update({asset.path: failures[-1] for asset in lacking})
            found = [asset for asset in found if asset not in lacking]
        if not found:
            return "; ".join(failures)

    def say(message: str) -> None:
        # a warning: seen on stderr without any logging set up (Python's last-resort
        # handler), routed wherever an application sends its logs; the library prints nothing
        logger.warning(message)

    names = ", ".join(asset.path for asset in found)
    one = len(found) == 1
    say(f"{names} {'is' if one else 'are'} not in {root} yet: fetching {'it' if one else 'them'}"
        f"{f' from the mirror {mirror.root}' if mirror else ''} (all the data at once: `{INSTALLED_FETCH_COMMAND}`)")
    try:
        fetch(sorted({asset.group for asset in found}), mirror=mirror.root if mirror else None, log=say, manifest=found)
    except SynergyError as exc:
        failures.append(_one_line(str(exc)))
        _UNFETCHABLE.update({asset.path: failures[-1] for asset in found if not asset_path(asset.path).is_file()})
    return "; ".join(failures)


def _read_state() -> dict:
    state = asset_path(STATE_FILE)
    if not state.is_file():
        return {}
    try:
        loaded = json.loads(state.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def standin_files() -> list[str]:
    """Assets that were copied from a mirror as declared stand-ins (not the real files)."""
    return [str(p) for p in _read_state().get("standins", [])]


def verified_files() -> dict[str, str]:
    """{path: sha256} of the files without published checksums that passed their content
    check (the official weights)."""
    verified = _read_state().get("verified", {})
    return {str(k): str(v) for k, v in verified.items()} if isinstance(verified, dict) else {}


def drive_base_url() -> str:
    """Google Drive's download endpoint (env `SYNERGYNET_DRIVE_URL`, else `DRIVE_URL`)."""
    return os.environ.get(DRIVE_URL_ENV) or DRIVE_URL


def drive_download_url(file_id: str) -> str:
    query = urllib.parse.urlencode({"id": file_id, "export": "download", "confirm": "t"})
    base = drive_base_url()
    return f"{base}{'&' if '?' in base else '?'}{query}"


def drive_view_url(file_id: str) -> str:
    """The page a person opens to download a Drive file by hand."""
    return f"https://drive.google.com/file/d/{file_id}/view"


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class Asset:
    path: str
    group: str
    url: str | None = None
    git_blob_sha1: str | None = None
    sha256: str | None = None
    size: int | None = None
    google_drive_id: str | None = None
    previous_google_drive_ids: tuple[str, ...] = ()
    check: str | None = None
    archive: bool = False
    derived_from: dict | None = None
    array_sha256: str | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def drive_ids(self) -> tuple[str, ...]:
        """The Drive ids to try, newest first (authors re-upload when a link dies)."""
        return tuple(i for i in (self.google_drive_id, *self.previous_google_drive_ids) if i)


def load_manifest() -> list[Asset]:
    entries = json.loads(MANIFEST_PATH.read_text())["files"]
    known = set(Asset.__dataclass_fields__)
    assets = []
    for entry in entries:
        fields = {k: v for k, v in entry.items() if k in known}
        fields["previous_google_drive_ids"] = tuple(fields.get("previous_google_drive_ids", ()))
        assets.append(Asset(**fields))
    return assets


# --------------------------------------------------------------------------- checksums


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's content (what raw.githubusercontent serves)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, read in chunks (checkpoints are tens of MB)."""
    import pooch

    return pooch.file_hash(str(path), alg="sha256")


def array_sha256(array: np.ndarray) -> str:
    """Digest of an array's dtype, shape and values (independent of memory order)."""
    h = hashlib.sha256()
    h.update(array.dtype.str.encode())
    h.update(repr(array.shape).encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _content_ok(data: bytes, sha1: str | None, sha: str | None) -> bool:
    if sha and sha256(data) == sha:
        return True
    if sha1 and git_blob_sha1(data) == sha1:
        return True
    return not sha and not sha1


def _derived_ok(path: Path, asset: Asset) -> bool:
    try:
        return array_sha256(np.load(path, allow_pickle=False)) == asset.array_sha256
    except (OSError, ValueError):
        return False


def verify(asset: Asset, path: Path) -> bool:
    """True when the file at `path` is the asset (by its checksums, or for a Drive file by
    the sha256 recorded when it passed its content check)."""
    if not path.is_file():
        return False
    if asset.derived_from:
        return _derived_ok(path, asset)
    if asset.google_drive_id:
        known = verified_files().get(asset.path)
        return known is not None and file_sha256(path) == known
    return _content_ok(path.read_bytes(), asset.git_blob_sha1, asset.sha256)


# --------------------------------------------------------------------------- downloading


@dataclass(frozen=True)
class RetryPolicy:
    """How a download is retried after a network failure: `attempts` tries in all, waiting
    `wait_s * n` seconds before the n-th retry. Tests inject `sleep` (or `wait_s=0`)."""

    attempts: int = 3
    wait_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def pause(self, retry_number: int) -> None:
        if self.wait_s > 0:
            self.sleep(self.wait_s * retry_number)


# Network failures worth another try (a refused connection, a reset, a cut transfer).
_TRANSIENT = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError)


def _download(url: str, retry: RetryPolicy | None = None, timeout: float = 60.0) -> bytes:
    """A public file (GitHub raw, a few MB at most), through pooch's HTTP downloader (a
    progress bar on a terminal); retried per `retry`. The caller checks its checksums."""
    import pooch
    import requests  # pooch's own HTTP client

    retry = retry or RetryPolicy()
    downloader = pooch.HTTPDownloader(progressbar=sys.stderr.isatty(), timeout=timeout,
                                      headers={"User-Agent": USER_AGENT})
    last: Exception | None = None
    with tempfile.TemporaryDirectory(prefix="synergynet-download-") as scratch:
        part = Path(scratch) / "download"
        for attempt in range(max(1, retry.attempts)):
            if attempt:
                retry.pause(attempt)
            try:
                downloader(url, str(part), None)
                return part.read_bytes()
            except requests.HTTPError as exc:
                last = exc
                status = exc.response.status_code if exc.response is not None else 0
                if status < 500 and status != 429:  # the server's final word: no retry
                    break
            except (requests.RequestException, OSError) as exc:
                last = exc
    raise SynergyError(f"cannot download {url}: {_one_line(last)}")


def _convert(data: bytes, how: str) -> np.ndarray:
    """Turn a file of 3DDFA_V2 into the file SynergyNet's code reads."""
    from utils.io import safe_pickle_loads  # numpy-only unpickler

    if how == "mat_uv":
        import scipy.io as sio

        return sio.loadmat(io.BytesIO(data))["UV"]
    if how == "int64":
        return np.load(io.BytesIO(data), allow_pickle=False).astype(np.int64)
    if how == "tri_plus_one":
        tri = np.asarray(safe_pickle_loads(data))
        if tri.shape[0] != 3:
            tri = tri.T
        return tri.astype(np.int64) + 1
    raise ValueError(f"unknown conversion {how}")


def _save_array(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write(path, buffer.getvalue())


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- Google Drive pages


def is_html(head: bytes, content_type: str = "") -> bool:
    """True when an answer is a web page rather than a file: by its content type, or by
    its first bytes (Drive sometimes labels its pages as downloads)."""
    if "text/html" in content_type.lower():
        return True
    start = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def describe_drive_page(page: str) -> str:
    """What a page Google Drive answered instead of a file is, in a few words."""
    text = page.lower()
    if not text.strip():
        return "an empty answer"
    if "too many users" in text or "quota" in text:
        return "a download-quota page (too many downloads of this file lately; try again later)"
    if "virus" in text or "download anyway" in text:
        return "a virus-scan warning page"
    if "accounts.google.com" in text or "servicelogin" in text or "sign in" in text or "sign-in" in text:
        return "a sign-in page (the file is not shared publicly)"
    title = re.search(r"<title[^>]*>(.*?)</title>", page, re.IGNORECASE | re.DOTALL)
    name = _one_line(title.group(1))[:80] if title else ""
    return f"an HTML page ('{name}')" if name else "an HTML page, not the file"


class _FormParser(html.parser.HTMLParser):
    """The forms of a page with their action, method and hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self._open = {"action": values.get("action", ""), "method": values.get("method", "get").lower(),
                          "fields": []}
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and values.get("type", "").lower() == "hidden" \
                and values.get("name"):
            self._open["fields"].append((values["name"], values.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def drive_download_form(page: str, page_url: str, file_id: str) -> str | None:
    """The URL the "Download anyway" form of a Drive virus-scan warning leads to, or None.

    Only a GET form for this very file id (hidden `id` and `confirm`) on the host that
    served the page is taken: that is the button a person would press, nothing else.
    """
    parser = _FormParser()
    try:
        parser.feed(page)
        parser.close()
    except Exception:  # noqa: BLE001 - a page we cannot parse has no form to follow
        return None
    served_from = urllib.parse.urlsplit(page_url)
    for form in parser.forms:
        fields = dict(form["fields"])
        if form["method"] != "get" or fields.get("id") != file_id or "confirm" not in fields:
            continue
        action = urllib.parse.urlsplit(urllib.parse.urljoin(page_url, form["action"] or page_url))
        if action.scheme not in ("http", "https") or action.netloc != served_from.netloc:
            continue
        query = urllib.parse.urlencode(form["fields"])
        return urllib.parse.urlunsplit((action.scheme, action.netloc, action.path, query, ""))
    return None


# --------------------------------------------------------------------------- archives


def _safe_member_name(name: str) -> bool:
    """A relative name without `..` (what an archive member may be called to be used)."""
    pure = PurePosixPath(name.replace("\\", "/"))
    return bool(name) and not pure.is_absolute() and ".." not in pure.parts and ":" not in pure.parts[0]


def _zip_member_is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _extract_zip(archive: str | os.PathLike | bytes, root: Path) -> list[Path]:
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
                if not _safe_member_name(name) or root not in target.parents:
                    raise SynergyError(f"archive member {name!r} points outside {root}; refusing the archive")
                if _zip_member_is_link(info):
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
        raise SynergyError(f"archive is not an intact zip file: {_one_line(exc)}") from None
    return [target for _, target in plan]


def _is_torch_zip(names: list[str]) -> bool:
    """True for a checkpoint `torch.save` wrote (itself a zip): every member under one
    folder, with `<folder>/data.pkl`; an archive holding a `.pth.tar` is not one."""
    tops = {name.split("/", 1)[0] for name in names}
    return len(tops) == 1 and f"{next(iter(tops))}/data.pkl" in names


# gzip, bzip2, xz: the compressions tarfile reads (a .tar.gz and its kin)
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return False


class _NotTheFile(Exception):
    """What one source answered instead of the wanted file: a reason in a few words.
    `missing` marks answers saying there is no such file (HTTP 404/410)."""

    def __init__(self, reason: str, missing: bool = False):
        reason = _one_line(reason)
        # a reason is one part of a one-line message: long library errors are cut
        super().__init__(reason if len(reason) <= REASON_LIMIT else reason[:REASON_LIMIT - 3] + "...")
        self.missing = missing


def _pick_checkpoint(candidates: list[tuple[str, object]], want: str, names: list[str]) -> object:
    """The member of an archive that is the checkpoint: named `want`, else the only
    `.pth.tar` / `.pth` file."""
    usable = [(n, m) for n, m in candidates
              if _safe_member_name(n) and n.lower().endswith(CHECKPOINT_SUFFIXES)
              and not n.startswith("__MACOSX/") and not PurePosixPath(n).name.startswith("._")]
    exact = [c for c in usable if PurePosixPath(c[0]).name == want]
    chosen = exact or usable
    if len(chosen) != 1:
        shown = ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
        what = "several" if len(chosen) > 1 else "no"
        raise _NotTheFile(f"an archive with {what} .pth.tar/.pth checkpoint(s) (it holds {shown or 'nothing'})")
    return chosen[0][1]


# --------------------------------------------------------------------------- mirror


class Mirror:
    """A local folder holding copies of the assets (CI and offline machines).

    Its layout is given by its own `MANIFEST.json` when it has one (entries with `path`
    and `mirror`); otherwise it is taken to mirror the data root's layout.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise SynergyError(f"asset mirror {self.root} is not a folder")
        self.places: dict[str, str] = {}
        self.standins: set[str] = set()
        manifest = self.root / "MANIFEST.json"
        if manifest.is_file():
            for entry in json.loads(manifest.read_text()).get("github_files", []):
                if entry.get("mirror"):
                    self.places[entry["path"]] = entry["mirror"]
                    if entry.get("mirror_is_standin"):
                        self.standins.add(entry["path"])

    def find(self, relative: str) -> Path | None:
        for candidate in (self.places.get(relative), relative):
            if candidate and (self.root / candidate).is_file():
                return self.root / candidate
        return None

    def lacks(self, relative: str, *more: str) -> SynergyError:
        """The error for an asset this mirror does not hold (a mirror means no network)."""
        looked = ", ".join(dict.fromkeys(self.places.get(p, p) for p in (relative, *more)))
        return SynergyError(
            f"{relative} is missing from the asset mirror {self.root} (looked for {looked}); nothing is "
            f"downloaded while a mirror is given: add the file to the mirror, or unset the mirror "
            f"(--mirror, SYNERGYNET_MIRROR) to download it")


# --------------------------------------------------------------------------- scratch space


class _Scratch:
    """Temporary files next to a target, and the folders made to hold them.

    On exit every temporary file still there is removed, and each folder this made is
    removed again if it is empty: a failed fetch leaves nothing behind, a successful one
    only the file it renamed into place.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.made: list[Path] = []
        self.paths: list[Path] = []

    def __enter__(self) -> "_Scratch":
        missing, probe = [], self.folder
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        self.folder.mkdir(parents=True, exist_ok=True)
        self.made = missing  # deepest first, the order they are removed in
        return self

    def new_file(self, name: str) -> Path:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{name}.", suffix=".part")
        os.close(fd)
        self.paths.append(Path(tmp))
        return Path(tmp)

    def __exit__(self, *exc_info) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)
        for folder in self.made:
            try:
                folder.rmdir()
            except OSError:  # not empty: the fetched file lives there
                break


@dataclass
class _Answer:
    """One HTTP answer: a file streamed to a temporary path, or a page read into memory."""

    status: int
    url: str
    file: Path | None = None
    page: str | None = None


# --------------------------------------------------------------------------- fetching


class Fetcher:
    def __init__(self, mirror: str | os.PathLike | None = None, log: Callable[[str], None] = print,
                 checks: Mapping[str, Check] | None = None, retry: RetryPolicy | None = None,
                 timeout: float = 120.0):
        self.root = data_root()
        self.mirror = Mirror(mirror) if mirror else None
        self.log = log
        self.checks = dict(checks or {})
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.standins = set(standin_files())
        self.verified = verified_files()
        # Cookies are kept as a browser keeps them between Drive's warning page and its form.
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def _record_state(self) -> None:
        state = {"standins": sorted(self.standins)}
        if self.verified:
            state["verified"] = dict(sorted(self.verified.items()))
        atomic_write(self.root / STATE_FILE, json.dumps(state, indent=1).encode())

    def fetch(self, asset: Asset) -> str:
        """Place one asset; returns what was done ('present', 'copied', 'downloaded', ...)."""
        if asset.archive:
            return self._fetch_archive(asset)
        if asset.google_drive_id:
            return self._fetch_drive_file(asset)
        target = self.root / asset.path
        if verify(asset, target) or (asset.path in self.standins and target.is_file()):
            return "present"
        if self.mirror is not None:
            return self._copy_from_mirror(asset, target)
        if asset.derived_from:
            source = asset.derived_from
            data = _download(source["url"], self.retry)
            if not _content_ok(data, source.get("git_blob_sha1"), source.get("sha256")):
                raise SynergyError(f"download of {source['url']} does not match its checksum")
            _save_array(target, _convert(data, source["convert"]))
            return self._check_written(asset, target, "downloaded and converted")
        if not asset.url:
            raise SynergyError(f"{asset.path} has no source")
        data = _download(asset.url, self.retry)
        if not _content_ok(data, asset.git_blob_sha1, asset.sha256):
            raise SynergyError(f"download of {asset.url} does not match its checksum")
        atomic_write(target, data)
        self._forget_standin(asset.path)
        return "downloaded"

    def _copy_from_mirror(self, asset: Asset, target: Path) -> str:
        assert self.mirror is not None
        source = self.mirror.find(asset.path)
        if source is None and asset.derived_from:
            source = self.mirror.find(asset.derived_from["path"])
            if source is None:
                raise self.mirror.lacks(asset.path, asset.derived_from["path"])
            _save_array(target, _convert(source.read_bytes(), asset.derived_from["convert"]))
            return self._check_written(asset, target, "converted from mirror")
        if source is None:
            raise self.mirror.lacks(asset.path)
        data = source.read_bytes()
        if asset.derived_from:
            matches = array_sha256(np.load(io.BytesIO(data), allow_pickle=False)) == asset.array_sha256
        else:
            matches = _content_ok(data, asset.git_blob_sha1, asset.sha256)
        if not matches and asset.path in self.mirror.standins:
            atomic_write(target, data)
            self.standins.add(asset.path)
            self._record_state()
            return "copied (mirror stand-in, not the real file)"
        if not matches:
            raise SynergyError(f"mirror copy {source} does not match the checksum of {asset.path}")
        atomic_write(target, data)
        self._forget_standin(asset.path)
        return "copied"

    def _forget_standin(self, path: str) -> None:
        if path in self.standins:
            self.standins.discard(path)
            self._record_state()

    def _check_written(self, asset: Asset, target: Path, done: str) -> str:
        if not _derived_ok(target, asset):
            target.unlink(missing_ok=True)
            raise SynergyError(f"{asset.path}: converted file does not match its checksum")
        return done

    # ------------------------------------------------------------------ Drive files

    def _fetch_drive_file(self, asset: Asset) -> str:
        """A Drive file without a published checksum: kept when its recorded sha256 still
        matches; otherwise (placed by hand, changed, or absent) unpacked if it is an
        archive, checked by content, and its sha256 recorded."""
        target = self.root / asset.path
        if target.is_file():
            digest = file_sha256(target)
            known = self.verified.get(asset.path)
            if known == digest:
                return "present"
            if known is not None:
                self.log(f"{asset.path}: changed since it was verified (sha256 {known[:12]}... now "
                         f"{digest[:12]}...); checking it again")
            with _Scratch(target.parent) as scratch:
                try:
                    self._place(asset, target, target, scratch)
                except _NotTheFile as exc:
                    if self.verified.pop(asset.path, None) is not None:
                        self._record_state()
                    raise SynergyError(
                        f"{target} is not usable: {exc}; delete it to download it again, or download it by hand "
                        f"from {drive_view_url(asset.drive_ids[0])} and put it at {target}") from None
            return "verified again (it had changed)" if known else "verified (it was already there)"
        if self.mirror is not None:
            source = self.mirror.find(asset.path)
            if source is None:
                raise self.mirror.lacks(asset.path)
            with _Scratch(target.parent) as scratch:
                copy = scratch.new_file(target.name)
                shutil.copyfile(source, copy)
                try:
                    self._place(asset, copy, target, scratch)
                except _NotTheFile as exc:
                    raise SynergyError(f"mirror copy {source} of {asset.path} is not usable: {exc}") from None
            return "copied"
        return self._from_drive(asset, target, lambda file, scratch: self._place(asset, file, target, scratch))

    def _place(self, asset: Asset, file: Path, target: Path, scratch: _Scratch) -> str:
        """Unpack `file` if it is an archive holding the checkpoint, run the content check,
        then rename it to `target` and record its sha256."""
        bare = self._unpack_checkpoint(file, target.name, scratch) if target.name.endswith(CHECKPOINT_SUFFIXES) \
            else file
        if bare.stat().st_size == 0:
            raise _NotTheFile("an empty file")
        if asset.check:
            check = self.checks.get(asset.check)
            if check is None:
                raise SynergyError(f"{asset.path} needs the content check '{asset.check}', which was not given "
                                   f"(fetch it with `{fetch_command()}`)")
            try:
                check(bare)
            except CheckFailed as exc:
                raise _NotTheFile(str(exc).replace(str(bare), "the file")) from None
        digest = file_sha256(bare)
        if bare != target:
            os.replace(bare, target)
        self.verified[asset.path] = digest
        self._record_state()
        return "downloaded (Google Drive)"

    def _unpack_checkpoint(self, path: Path, want: str, scratch: _Scratch) -> Path:
        """The bare checkpoint in `path`: the file itself (a legacy pickle, a torch zip or
        anything the check will judge), or the `.pth.tar`/`.pth` member of a zip or tar
        archive, copied out next to it. Member names are never used as paths."""
        with open(path, "rb") as f:
            head = f.read(512)
        # By the first bytes, not by zipfile.is_zipfile: an uncompressed tar holding a torch
        # checkpoint ends with that checkpoint's zip directory and would pass for a zip.
        if head[:1] == b"\x80":  # a pickle: torch.save's legacy format
            return path
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            try:
                archive = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError, EOFError):
                return path  # no zip directory: a truncated file, which the check reports as such
            with archive:
                infos = archive.infolist()
                names = [i.filename for i in infos]
                if _is_torch_zip(names):
                    return path
                regular = [(i.filename, i) for i in infos if not i.is_dir() and not _zip_member_is_link(i)]
                member = _pick_checkpoint(regular, want, names)
                out = scratch.new_file(want)
                try:
                    with archive.open(member) as src, open(out, "wb") as dst:  # type: ignore[arg-type]
                        shutil.copyfileobj(src, dst, CHUNK)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise _NotTheFile(f"a damaged zip archive ({exc})") from None
                return out
        if head[257:262] == b"ustar" or head.startswith(_COMPRESSED_MAGIC) or _is_tar(path):
            try:
                with tarfile.open(path, "r:*") as archive:
                    members = archive.getmembers()
                    names = [m.name for m in members]
                    if {"pickle", "storages", "tensors"} <= set(names):  # torch's oldest (tar) format
                        return path
                    member = _pick_checkpoint([(m.name, m) for m in members if m.isreg()], want, names)
                    src = archive.extractfile(member)  # type: ignore[arg-type]
                    if src is None:
                        raise _NotTheFile(f"an unreadable archive member {member.name!r}")  # type: ignore[attr-defined]
                    out = scratch.new_file(want)
                    with src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
                    return out
            except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
                raise _NotTheFile(f"a damaged tar archive ({exc})") from None
        return path

    def _from_drive(self, asset: Asset, target: Path, place: Callable[[Path, _Scratch], str]) -> str:
        """Download from each Drive id in turn (the newest first) until `place` accepts the
        file; otherwise one line saying what each id answered, where to get the file by
        hand and where to put it."""
        ids = asset.drive_ids
        reasons, manual = [], None
        with _Scratch(target.parent) as scratch:
            for number, file_id in enumerate(ids):
                self.log(f"{asset.path}: downloading from Google Drive (id {file_id})")
                try:
                    file = self._drive_file(file_id, scratch, target.name)
                    done = place(file, scratch)
                except _NotTheFile as exc:
                    reasons.append(f"id {file_id}: {exc}")
                    if not exc.missing and manual is None:
                        manual = file_id  # the id that exists is the one to open by hand
                    if number + 1 < len(ids):
                        self.log(f"{asset.path}: Google Drive id {file_id} gave {exc}; trying the previous id")
                    continue
                return done + (f" from the previous id {file_id}" if number else "")
        raise SynergyError(
            f"cannot fetch {asset.path} from Google Drive ({'; '.join(reasons)}): download it by hand from "
            f"{drive_view_url(manual or ids[0])} and put it at {target}")

    def _drive_file(self, file_id: str, scratch: _Scratch, name: str) -> Path:
        """The file Drive serves for `file_id`, in a temporary file; a virus-scan warning's
        download form is followed once, as a browser does."""
        answer = self._get(drive_download_url(file_id), scratch, name)
        followed = False
        if answer.page is not None and answer.status == 200:
            form = drive_download_form(answer.page, answer.url, file_id)
            if form:
                followed = True
                answer = self._get(form, scratch, name)
        if answer.file is not None:
            return answer.file
        what = describe_drive_page(answer.page or "")
        if answer.status in (404, 410):
            what = f"HTTP {answer.status} (no such file: a dead link)"
        elif answer.status != 200:
            what = f"HTTP {answer.status}" + (f", {what}" if (answer.page or "").strip() else "")
        if followed:
            what += ", even after following its download form"
        raise _NotTheFile(what, missing=answer.status in (404, 410))

    def _get(self, url: str, scratch: _Scratch, name: str) -> _Answer:
        """One GET, retried on network failures and 5xx answers (not on pages or 4xx)."""
        last = ""
        for attempt in range(max(1, self.retry.attempts)):
            if attempt:
                self.retry.pause(attempt)
            try:
                return self._get_once(url, scratch, name)
            except _Retry as exc:
                last = str(exc)
        tries = max(1, self.retry.attempts)
        raise _NotTheFile(f"cannot download: {last} ({tries} {'try' if tries == 1 else 'tries'})")

    def _get_once(self, url: str, scratch: _Scratch, name: str) -> _Answer:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            response = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                raise _Retry(f"HTTP {exc.code}") from None
            try:
                body = exc.read(PAGE_LIMIT)
            except (*_TRANSIENT, OSError):
                body = b""
            return _Answer(exc.code, url, page=body.decode("utf-8", "replace"))
        except (*_TRANSIENT, OSError) as exc:
            raise _Retry(_one_line(getattr(exc, "reason", exc))) from None
        except ValueError as exc:  # a malformed SYNERGYNET_DRIVE_URL
            raise _NotTheFile(f"bad download URL {url!r} ({exc})") from None
        with response:
            head = _read(response, CHUNK)
            if is_html(head, response.headers.get("Content-Type", "")):
                page = head + _read(response, PAGE_LIMIT - len(head))
                return _Answer(response.status, response.geturl(), page=page.decode("utf-8", "replace"))
            if not head:
                return _Answer(response.status, response.geturl(), page="")
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            tmp = scratch.new_file(name)
            written = 0
            with open(tmp, "wb") as out, _Progress(total, name) as bar:
                chunk = head
                while chunk:
                    out.write(chunk)
                    written += len(chunk)
                    bar(len(chunk))
                    chunk = _read(response, CHUNK)
            if total is not None and written != total:
                tmp.unlink(missing_ok=True)
                raise _Retry(f"the transfer stopped after {written} of {total} bytes")
            return _Answer(response.status, response.geturl(), file=tmp)

    # ------------------------------------------------------------------ archives

    def _fetch_archive(self, asset: Asset) -> str:
        """A data archive extracted under the data root (once: a marker says it was)."""
        marker = self.root / f".{asset.path}.extracted"
        if marker.is_file():
            return "present"
        target = self.root / asset.path
        if target.is_file():  # downloaded by hand, as the error message tells
            return self._extract_named(asset, target, "extracted (the archive was already there)")
        if self.mirror is not None:
            source = self.mirror.find(asset.path)
            if source is None:
                raise self.mirror.lacks(asset.path)
            return self._extract_named(asset, source, "extracted from mirror")

        def place(file: Path, scratch: _Scratch) -> str:
            try:
                return self._extract(asset, file, "downloaded and extracted (Google Drive)")
            except SynergyError as exc:
                raise _NotTheFile(str(exc)) from None

        return self._from_drive(asset, target, place)

    def _extract_named(self, asset: Asset, archive: Path, done: str) -> str:
        try:
            return self._extract(asset, archive, done)
        except SynergyError as exc:
            raise SynergyError(f"{archive}: {exc}") from None

    def _extract(self, asset: Asset, archive: Path, done: str) -> str:
        _extract_zip(archive, self.root)
        if asset.group == "3dmm":  # the real bases replace any stand-in
            for name in list(self.standins):
                if name.startswith("3dmm_data/"):
                    self.standins.discard(name)
            self._record_state()
        atomic_write(self.root / f".{asset.path}.extracted", b"")
        return done


class _Retry(Exception):
    """A network failure worth another try."""


def _read(response: http.client.HTTPResponse, size: int) -> bytes:
    try:
        return response.read(size)
    except (*_TRANSIENT, OSError) as exc:
        raise _Retry(_one_line(exc) or type(exc).__name__) from None


class _Progress:
    """A tqdm bar on stderr when the size is known and stderr is a terminal; else nothing."""

    def __init__(self, total: int | None, name: str):
        self.bar = None
        if total and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr,
                            leave=False)

    def __enter__(self) -> Callable[[int], None]:
        return self.bar.update if self.bar is not None else (lambda n: None)

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.close()


def fetch(groups: Iterable[str] = DEFAULT_GROUPS, mirror: str | os.PathLike | None = None,
          log: Callable[[str], None] = print, manifest: list[Asset] | None = None,
          checks: Mapping[str, Check] | None = None, retry: RetryPolicy | None = None) -> dict[str, str]:
    """Place every asset of the given groups (of `manifest`, default the project's);
    returns {path: what was done}.

    `checks` maps the content-check names of the manifest to callables that raise
    `CheckFailed` for a file that is not what it should be (`fetch_assets.CHECKS`);
    `retry` says how network failures are retried. With a `mirror`, nothing is
    downloaded: an asset the mirror lacks is an error (the `extra` group is skipped).
    """
    groups = list(groups)
    unknown = sorted(set(groups) - set(ALL_GROUPS))
    if unknown:
        raise SynergyError(f"unknown asset group(s) {', '.join(unknown)}; choose from {', '.join(ALL_GROUPS)}")
    fetcher = Fetcher(mirror, log, checks=checks, retry=retry)
    done: dict[str, str] = {}
    for asset in manifest if manifest is not None else load_manifest():
        if asset.group not in groups:
            continue
        if fetcher.mirror is not None and asset.group == "extra" and fetcher.mirror.find(asset.path) is None:
            done[asset.path] = "skipped (not in mirror)"
            continue
        done[asset.path] = fetcher.fetch(asset)
        if done[asset.path] != "present":
            log(f"{asset.path}: {done[asset.path]}")
    return done
