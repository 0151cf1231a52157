"""Google Drive's URLs, the pages it answers instead of a file, and its download form."""
from __future__ import annotations

import pytest

from utils import assets


@pytest.mark.parametrize("page, expected", [
    ("<html><p>Too many users have viewed or downloaded this file recently.</p></html>", "download-quota page"),
    ("<html><p>Google Drive can't scan this file for viruses.</p></html>", "virus-scan warning page"),
    ('<html><a href="https://accounts.google.com/ServiceLogin">Sign in</a></html>', "sign-in page"),
    ("<html><head><title>Error 500 (Server Error)!!1</title></head></html>", "'Error 500 (Server Error)!!1'"),
    ("", "an empty answer"),
])
def test_drive_pages_are_described(page, expected):
    assert expected in assets.describe_drive_page(page)


def test_drive_download_form_is_followed_only_for_this_file_on_this_host():
    form = ('<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
            '<input type="hidden" name="id" value="ABC"><input type="hidden" name="export" value="download">'
            '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-1"></form>')
    page_url = "https://drive.usercontent.google.com/download?id=ABC&export=download&confirm=t"
    assert assets.drive_download_form(form, page_url, "ABC") == (
        "https://drive.usercontent.google.com/download?id=ABC&export=download&confirm=t&uuid=u-1")
    assert assets.drive_download_form(form, page_url, "OTHER") is None  # another file
    assert assets.drive_download_form(form, "https://elsewhere.example/x", "ABC") is None  # another host
    assert assets.drive_download_form(form.replace('method="get"', 'method="post"'), page_url, "ABC") is None
    assert assets.drive_download_form("<html>no form</html>", page_url, "ABC") is None


def test_drive_url_can_be_pointed_elsewhere(monkeypatch):
    monkeypatch.delenv(assets.DRIVE_URL_ENV, raising=False)
    assert assets.drive_download_url("X").startswith("https://drive.usercontent.google.com/download?id=X&")
    monkeypatch.setenv(assets.DRIVE_URL_ENV, "http://127.0.0.1:1/download")
    assert assets.drive_download_url("X") == "http://127.0.0.1:1/download?id=X&export=download&confirm=t"
    assert assets.drive_view_url("X") == "https://drive.google.com/file/d/X/view"
