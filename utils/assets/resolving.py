"""What a run needs, in place before it starts (`resolve`, `require`).

An installed package fetches a missing public asset on its first use, from
`SYNERGYNET_MIRROR` when set, never from Google Drive; a checkout is filled by `./setup.sh`
and fetches nothing here. Whatever is still missing ends in one line that names the files,
the data folder, the fetch command and the mirror for machines without internet.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping

from utils.assets.fetcher import fetch
from utils.assets.manifest import load_manifest
from utils.assets.mirror import MIRROR_ENV, Mirror
from utils.assets.paths import INSTALLED_FETCH_COMMAND, asset_path, data_root, fetch_command, is_checkout
from utils.assets.reasons import one_line, shortened
from utils.errors import SynergyError

logger = logging.getLogger("synergynet.assets")

# Assets whose first-use fetch failed in this process, and why: not tried again (a run over
# many images must not try the network once per image).
_UNFETCHABLE: dict[str, str] = {}


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
    try). A checkout fetches nothing here. Whatever is still missing ends in one
    `SynergyError` line."""
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
    fetch_with = fetch_command()
    mirror = os.environ.get(MIRROR_ENV)
    if mirror and not is_checkout():  # the mirror was asked, and lacks it
        return (f"missing {files} in the data folder {root}; {failure or f'the asset mirror {mirror} lacks it'}: "
                f"add it to the mirror (SYNERGYNET_MIRROR=DIR, or `{fetch_with} --mirror DIR`), or where there is "
                f"internet unset SYNERGYNET_MIRROR and run `{fetch_with}`")
    tried = f" (downloading failed: {shortened(failure)})" if failure else ""
    return (f"missing {files} in the data folder {root}{tried}; run `{fetch_with}` to fetch the data (on a machine "
            f"without internet, from a copy of the assets in a folder DIR: `{fetch_with} --mirror DIR`, or "
            f"SYNERGYNET_MIRROR=DIR with any command)")


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
    mirror = Mirror.from_environment()
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
        failures.append(one_line(str(exc)))
        _UNFETCHABLE.update({asset.path: failures[-1] for asset in found if not asset_path(asset.path).is_file()})
    return "; ".join(failures)
