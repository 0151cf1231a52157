"""The page's actions (`synergy3DMM.serve.page`), called as Gradio calls them; the browser
test drives them through a real page (tests/scripts/test_app.py)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cv2
import pytest

from tests.synergy3DMM.serve.serve_support import settings


def test_page_photo_and_video_actions(client, photo, tmp_path):
    pytest.importorskip("gradio")
    from synergy3DMM.serve.page import PhotoPage, Scratch

    service = client.app.state.service
    scratch = Scratch(str(tmp_path))
    page = PhotoPage(service, settings(max_video_seconds=0.5), scratch)
    overlay, landmarks, rows, choice, viewer, downloads, meshes = page.photo(str(photo("trump_hillary.jpg")))
    assert overlay.shape == landmarks.shape == (689, 1536, 3)
    assert [row[0] for row in rows] == [0, 1] and all(abs(row[2]) < 45 for row in rows)
    assert choice["choices"] == ["face 0", "face 1"] and viewer == meshes[0]
    assert [Path(p).name for p in downloads] == ["trump_hillary.json", "trump_hillary_0.glb", "trump_hillary_1.glb",
                                                 "trump_hillary_obj.zip"]
    assert sorted(zipfile.ZipFile(downloads[-1]).namelist()) == sorted(
        f"trump_hillary_{i}.{ext}" for i in (0, 1) for ext in ("obj", "mtl", "png"))
    assert page.choose("face 1", meshes) == meshes[1] and Path(meshes[1]).read_bytes()[:4] == b"glTF"
    # a short clip: its first half second processed into an mp4 and its JSON lines
    clip = tmp_path / "clip.mp4"
    frame = cv2.imread(str(photo("sample_2.jpg")))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (frame.shape[1], frame.shape[0]))
    for _ in range(20):
        writer.write(frame)
    writer.release()
    video, lines = page.video(str(clip))
    assert Path(video).suffix == ".mp4" and cv2.VideoCapture(video).get(cv2.CAP_PROP_FRAME_COUNT) == 5
    assert [len(json.loads(line)["faces"]) for line in Path(lines).read_text().splitlines()] == [1] * 5
    import gradio as gr

    with pytest.raises(gr.Error, match="not an image"):
        page.photo(str(tmp_path / "clip.mp4"))
    # the request folders are the page's alone, under its scratch folder
    assert all(Path(p).is_relative_to(scratch.root) for p in downloads + [video])
