"""Where data and weights live, and how they get there: the one place that knows paths.

Every asset of the project is listed in `utils/assets_manifest.json` with its place
relative to the *data root*, its public URL and its checksums. The data root
(`data_root()`) is `SYNERGYNET_HOME` when set; else, in a checkout, the repository root
(the original's layout); else, for an installed package, a per-user data folder. An
installed package fetches a missing public asset on first use (`require`, `resolve`), from
`SYNERGYNET_MIRROR` when set, never from Google Drive; `synergy3dmm-fetch`
(`fetch_assets.py` in a checkout) fetches everything at once (`fetch`).

The parts, one job each (their names are importable from here, as `utils.assets.X`):

| part | job |
| --- | --- |
| `paths` | the data root (home, checkout, per-user folder) and every asset path the code names |
| `manifest` | the manifest's entries (`Asset`) and groups |
| `checksums` | digests, and whether a file is its asset (`verify`, content checks) |
| `state` | `.assets_state.json`: stand-ins, and the Drive files that passed their check |
| `resolving` | what a run needs, in place before it starts: fetched on first use, else one line |
| `fetcher` | placing each asset by its kind: public files, Drive files, data archives |
| `download` | HTTP with retries: public files through pooch, a client for Drive's pages and files |
| `gdrive` | Google Drive's URLs, pages and download form; a file fetched by its ids |
| `archives` | zip extraction with its path guards; the checkpoint inside a zip or tar |
| `conversions` | the files made from 3DDFA_V2's (`BFM_UV.npy`, `keptInd.npy`, `deletedTri.npy`) |
| `mirror` | a local folder of copies (CI, machines without internet) |
| `scratch`, `reasons` | temporary files that vanish whatever happens; failures told in one line |
"""
from utils.assets.archives import CHECKPOINT_SUFFIXES
from utils.assets.checksums import (Check, CheckFailed, array_sha256, file_sha256, git_blob_sha1, sha256,
                                    verify)
from utils.assets.download import CHUNK, PAGE_LIMIT, USER_AGENT, RetryPolicy, is_html
from utils.assets.fetcher import Fetcher, fetch
from utils.assets.gdrive import (DRIVE_URL, DRIVE_URL_ENV, describe_drive_page, drive_base_url, drive_download_form,
                                 drive_download_url, drive_view_url)
from utils.assets.manifest import ALL_GROUPS, DEFAULT_GROUPS, MANIFEST_PATH, Asset, load_manifest
from utils.assets.mirror import MIRROR_ENV, Mirror
from utils.assets.paths import (AFLW2000_DIR, AFLW_DIR, APP_NAME, DEMO_PHOTOS_DIR, EVAL_SUBDIR, FACEBOXES_WEIGHTS,
                                FETCH_COMMAND, HOME_ENV, INSTALLED_FETCH_COMMAND, INSTALLED_LAYOUT,
                                MORPHABLE_MODEL_DIR, OFFICIAL_WEIGHTS, REPO_ROOT, TDDFA_V2_WEIGHTS,
                                TDDFA_V2_WHITENING, asset_path, data_root, fetch_command, is_checkout,
                                user_data_dir)
from utils.assets.reasons import REASON_LIMIT
from utils.assets.resolving import require, resolve
from utils.assets.state import STATE_FILE, standin_files, verified_files

__all__ = [
    # paths
    "INSTALLED_LAYOUT", "REPO_ROOT", "HOME_ENV", "APP_NAME", "FETCH_COMMAND", "INSTALLED_FETCH_COMMAND",
    "MORPHABLE_MODEL_DIR", "FACEBOXES_WEIGHTS", "OFFICIAL_WEIGHTS", "TDDFA_V2_WEIGHTS", "TDDFA_V2_WHITENING",
    "AFLW2000_DIR", "AFLW_DIR", "EVAL_SUBDIR", "DEMO_PHOTOS_DIR",
    "is_checkout", "user_data_dir", "data_root", "fetch_command", "asset_path",
    # manifest, checksums, state
    "MANIFEST_PATH", "DEFAULT_GROUPS", "ALL_GROUPS", "Asset", "load_manifest",
    "Check", "CheckFailed", "git_blob_sha1", "sha256", "file_sha256", "array_sha256", "verify",
    "STATE_FILE", "standin_files", "verified_files",
    # resolving, fetching
    "require", "resolve", "Fetcher", "fetch", "Mirror", "MIRROR_ENV",
    # downloads, Google Drive, archives
    "USER_AGENT", "CHUNK", "PAGE_LIMIT", "REASON_LIMIT", "RetryPolicy", "is_html",
    "DRIVE_URL", "DRIVE_URL_ENV", "drive_base_url", "drive_download_url", "drive_view_url", "describe_drive_page",
    "drive_download_form", "CHECKPOINT_SUFFIXES",
]
