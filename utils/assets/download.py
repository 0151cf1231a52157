"""HTTP with retries: a public file through pooch, and a client that streams a file to a
temporary path or reads a page, keeping cookies as a browser does (Google Drive's
warning page and its form)."""
from __future__ import annotations

import http.client
import http.cookiejar
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from utils.assets.reasons import NotTheFile, one_line
from utils.assets.scratch import Scratch
from utils.errors import SynergyError

USER_AGENT = "synergynet-fetch/1"
CHUNK = 1 << 20  # downloads and extractions move 1 MiB at a time, never a whole file in memory
PAGE_LIMIT = 1 << 20  # an HTML answer is only read to be described; more than this is not needed


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


def download_public_file(url: str, retry: RetryPolicy | None = None, timeout: float = 60.0) -> bytes:
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
    raise SynergyError(f"cannot download {url}: {one_line(last)}")


def is_html(head: bytes, content_type: str = "") -> bool:
    """True when an answer is a web page rather than a file: by its content type, or by
    its first bytes (Google Drive sometimes labels its pages as downloads)."""
    if "text/html" in content_type.lower():
        return True
    start = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


@dataclass
class Answer:
    """One HTTP answer: a file streamed to a temporary path, or a page read into memory."""

    status: int
    url: str
    file: Path | None = None
    page: str | None = None


class _Retry(Exception):
    """A network failure worth another try."""


class HttpClient:
    """GET requests that keep cookies between them, as a browser does; retried per `retry`
    on network failures, 5xx and 429 (not on pages or other 4xx)."""

    def __init__(self, retry: RetryPolicy | None = None, timeout: float = 120.0):
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, url: str, scratch: Scratch, name: str) -> Answer:
        """The answer to a GET of `url`: a file (in a temporary file of `scratch`, named after
        `name`) or a page; `NotTheFile` when every try failed."""
        last = ""
        for attempt in range(max(1, self.retry.attempts)):
            if attempt:
                self.retry.pause(attempt)
            try:
                return self._get_once(url, scratch, name)
            except _Retry as exc:
                last = str(exc)
        tries = max(1, self.retry.attempts)
        raise NotTheFile(f"cannot download: {last} ({tries} {'try' if tries == 1 else 'tries'})")

    def _get_once(self, url: str, scratch: Scratch, name: str) -> Answer:
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
            return Answer(exc.code, url, page=body.decode("utf-8", "replace"))
        except (*_TRANSIENT, OSError) as exc:
            raise _Retry(one_line(getattr(exc, "reason", exc))) from None
        except ValueError as exc:  # a malformed URL (SYNERGYNET_DRIVE_URL)
            raise NotTheFile(f"bad download URL {url!r} ({exc})") from None
        with response:
            head = _read(response, CHUNK)
            if is_html(head, response.headers.get("Content-Type", "")):
                page = head + _read(response, PAGE_LIMIT - len(head))
                return Answer(response.status, response.geturl(), page=page.decode("utf-8", "replace"))
            if not head:
                return Answer(response.status, response.geturl(), page="")
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
            return Answer(response.status, response.geturl(), file=tmp)


def _read(response: http.client.HTTPResponse, size: int) -> bytes:
    try:
        return response.read(size)
    except (*_TRANSIENT, OSError) as exc:
        raise _Retry(one_line(exc) or type(exc).__name__) from None


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
