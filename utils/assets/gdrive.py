"""Google Drive: its URLs, the pages it answers instead of a file, the "Download anyway"
form of its virus-scan warning, and fetching a file by its ids (the newest first).

Drive files (the official SynergyNet weights, the benchmark crops, the original's 3DMM
archive) are fetched only when asked for, never on first use. Drive's answers that are
not the file (virus-scan warnings, quota, sign-in and error pages) end in one line naming
the manual download URL and the path to put the file at.
"""
from __future__ import annotations

import html.parser
import os
import re
import urllib.parse
from pathlib import Path
from typing import Callable

from utils.assets.download import HttpClient
from utils.assets.manifest import Asset
from utils.assets.reasons import NotTheFile, one_line
from utils.assets.scratch import Scratch
from utils.errors import SynergyError

# Google Drive's direct-download endpoint. Tests point it at a local server through the
# environment variable (which also reaches `fetch_assets.py` subprocesses).
DRIVE_URL = "https://drive.usercontent.google.com/download"
DRIVE_URL_ENV = "SYNERGYNET_DRIVE_URL"

# Places a downloaded file (in a temporary file of the scratch space): returns what was
# done, or raises `NotTheFile` to have the next id tried.
Place = Callable[[Path, Scratch], str]


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
    name = one_line(title.group(1))[:80] if title else ""
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


def download_drive_file(client: HttpClient, file_id: str, scratch: Scratch, name: str) -> Path:
    """The file Drive serves for `file_id`, in a temporary file; a virus-scan warning's
    download form is followed once, as a browser does. `NotTheFile` says what came instead."""
    answer = client.get(drive_download_url(file_id), scratch, name)
    followed = False
    if answer.page is not None and answer.status == 200:
        form = drive_download_form(answer.page, answer.url, file_id)
        if form:
            followed = True
            answer = client.get(form, scratch, name)
    if answer.file is not None:
        return answer.file
    what = describe_drive_page(answer.page or "")
    if answer.status in (404, 410):
        what = f"HTTP {answer.status} (no such file: a dead link)"
    elif answer.status != 200:
        what = f"HTTP {answer.status}" + (f", {what}" if (answer.page or "").strip() else "")
    if followed:
        what += ", even after following its download form"
    raise NotTheFile(what, missing=answer.status in (404, 410))


def fetch_from_drive(client: HttpClient, asset: Asset, target: Path, place: Place,
                     log: Callable[[str], None]) -> str:
    """Download from each Drive id of `asset` in turn (the newest first) until `place`
    accepts the file; otherwise one line saying what each id answered, where to get the
    file by hand and where to put it (`target`)."""
    ids = asset.drive_ids
    reasons, manual = [], None
    with Scratch(target.parent) as scratch:
        for number, file_id in enumerate(ids):
            log(f"{asset.path}: downloading from Google Drive (id {file_id})")
            try:
                file = download_drive_file(client, file_id, scratch, target.name)
                done = place(file, scratch)
            except NotTheFile as exc:
                reasons.append(f"id {file_id}: {exc}")
                if not exc.missing and manual is None:
                    manual = file_id  # the id that exists is the one to open by hand
                if number + 1 < len(ids):
                    log(f"{asset.path}: Google Drive id {file_id} gave {exc}; trying the previous id")
                continue
            return done + (f" from the previous id {file_id}" if number else "")
    raise SynergyError(
        f"cannot fetch {asset.path} from Google Drive ({'; '.join(reasons)}): download it by hand from "
        f"{drive_view_url(manual or ids[0])} and put it at {target}")
