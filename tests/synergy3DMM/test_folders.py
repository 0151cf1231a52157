"""Many images through one pipeline (`synergy3DMM.folders`): only what is asked written,
the summary, output names that do not depend on the run, each image's own error a
failure and a disk error the end, faces of several images in one batch, and the run's
named steps (`FolderRun`)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from synergy3DMM.folders import (Failure, FolderRun, FolderSummary, OutputNames, ReadItem, process_images,
                                 read_report, write_report)
from synergy3DMM.outputs import make_outputs
from tests.support import tree
from utils.errors import SynergyError
from utils.io import read_image


def test_process_images_writes_only_what_is_asked_and_sums_up(pipeline, photo, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photo("two_faces_720p.jpg"), folder / "two.jpg")
    shutil.copy(photo("portrait.jpg"), folder / "one.jpg")
    (folder / "junk.png").write_text("not an image")
    skipped, done = [], []
    files = sorted(folder.iterdir())
    summary = process_images(pipeline, files, make_outputs(["json", "ply"]), tmp_path / "out",
                             on_skip=lambda path, why: skipped.append((path.name, why)),
                             on_done=lambda path, result: done.append((path.name, len(result.faces))))
    assert (summary.images, summary.faces) == (2, 3)
    assert [name for name, _ in skipped] == ["junk.png"] and "not an image" in skipped[0][1]
    assert summary.failures == [(str(folder / "junk.png"), skipped[0][1])]
    assert sorted(done) == [("one.jpg", 1), ("two.jpg", 2)]
    written = tree(tmp_path / "out")  # mesh modes may add files beside each mesh (views, textures)
    assert {path.split("/")[0] for path in written} == {"json", "meshes"}
    assert [p for p in written if p.endswith((".json", ".ply"))] == [
        "json/one.json", "json/two.json", "meshes/one_0.ply", "meshes/two_0.ply", "meshes/two_1.ply"]
    doc = json.loads((tmp_path / "out" / "json" / "two.json").read_text())
    direct = pipeline.analyse(read_image(folder / "two.jpg"))
    np.testing.assert_allclose(np.array([f["landmarks"] for f in doc["faces"]]),
                               np.array([f.landmarks.T for f in direct]), atol=1e-4)  # JSON rounds to 4 digits
    assert summary.images_per_s > 0 and "2 image(s) processed, 1 skipped, 3 face(s)" in summary.line()


def test_output_names_do_not_depend_on_the_run(photo, tmp_path):
    """Two runs over halves of a folder name its images as one run over all of it does."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.jpg", "a.png", "b.jpg", "c.jpg"):
        shutil.copy(photo("portrait.jpg"), folder / name)
    files = sorted(folder.iterdir())
    whole = {f: OutputNames()(f) for f in files}
    halves = {f: OutputNames()(f) for f in files[:2]} | {f: OutputNames()(f) for f in files[2:]}
    assert whole == halves
    assert [whole[f] for f in files] == ["a.jpg", "a.png", "b", "c"]


def test_an_images_own_output_error_is_a_failure_and_a_disk_error_ends_the_run(pipeline, photo, tmp_path):
    """A SynergyError making one image's outputs records that image as failed
    (nothing written for it) and the run goes on; an OSError ends the run."""
    from synergy3DMM.outputs import Output

    class Picky(Output):
        mode = "picky"

        def __init__(self, error: type[Exception]):
            self.error = error

        def files(self, result):
            if result.name == "b":
                raise self.error(f"no outputs for {result.name}")
            return [(Path("picky") / f"{result.name}.txt", b"ok")]

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(photo("portrait.jpg"), folder / f"{name}.jpg")
    files = sorted(folder.iterdir())
    summary = process_images(pipeline, files, [Picky(SynergyError)], tmp_path / "out")
    assert summary.images == 2 and summary.failures == [(str(folder / "b.jpg"), "no outputs for b")]
    assert tree(tmp_path / "out") == ["picky/a.txt", "picky/c.txt"]
    with pytest.raises(OSError, match="no outputs for b"):
        process_images(pipeline, files, [Picky(OSError)], tmp_path / "disk")


def test_faces_of_several_images_in_one_batch_equal_one_image_at_a_time(pipeline, photo, tmp_path):
    """The folder run batches the faces of several images: the same JSON as one at a time."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("two_faces_720p.jpg", "portrait.jpg", "group_photo.jpg"):
        shutil.copy(photo(name), folder / name)
    files = sorted(folder.iterdir())
    together = process_images(pipeline, files, make_outputs(["json"]), tmp_path / "together", batch_images=8)
    alone = process_images(pipeline, files, make_outputs(["json"]), tmp_path / "alone", batch_images=1, prefetch=1)
    assert together.faces == alone.faces == 13
    for path in files:
        a, b = (json.loads((tmp_path / run / "json" / f"{path.stem}.json").read_text())["faces"]
                for run in ("together", "alone"))
        np.testing.assert_allclose([f["landmarks"] for f in a], [f["landmarks"] for f in b], rtol=0, atol=1e-3)


def test_a_run_that_finished_no_image_says_why():
    """The end-of-run error says what went wrong (the reason itself when the images share
    one), not that no image could be read when they were read."""
    same = FolderSummary(failures=[("a.jpg", "the UV image x_fake_B.png not found")] * 2)
    assert same.nothing_done() == "no image was processed (2 failed): the UV image x_fake_B.png not found"
    mixed = FolderSummary(failures=[("a.jpg", "a.jpg is empty"), ("b.jpg", "b.jpg is not an image")])
    assert mixed.nothing_done() == ("no image was processed (2 failed, for 2 different reasons; the first: "
                                    "a.jpg: a.jpg is empty)")


def test_the_runs_steps_sort_a_group_and_record_what_was_written(pipeline, photo, tmp_path):
    """`batch` keeps the images ready for the network and counts or fails the others;
    `regress` gives each its faces in one batch (as `analyse` does one at a time);
    `save_behind` and `record` write and count them, in the journal's order."""
    image = read_image(photo("two_faces_720p.jpg"))
    ready = ReadItem(Path("two.jpg"), "two", image, pipeline.prepare(image))
    done, unreadable = ReadItem(Path("old.jpg"), "old"), ReadItem(Path("bad.jpg"), "bad", error="bad.jpg is empty")
    skipped = []
    run = FolderRun(pipeline, make_outputs(["json"]), tmp_path, on_skip=lambda path, why: skipped.append(path.name))
    group = run.batch([done, ready, unreadable])
    assert group == [ready]
    assert run.summary.already_done == 1 and run.summary.failures == [("bad.jpg", "bad.jpg is empty")]
    assert skipped == ["bad.jpg"]
    results = run.regress(group)
    assert [len(result.faces) for result in results] == [2] and results[0].model == pipeline.model_block
    np.testing.assert_allclose([face.landmarks for face in results[0].faces],
                               [face.landmarks for face in pipeline.analyse(image, dense=False)], atol=1e-3)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as saver:
        run.record(run.save_behind(saver, results))
    assert (run.summary.images, run.summary.faces) == (1, 2) and tree(tmp_path) == ["json/two.json"]
    assert run.regress([]) == []


def test_a_failed_batch_fails_each_of_its_images(pipeline, photo, tmp_path):
    class Broken:
        model_block = None

        def analyse_many(self, found, dense=False):
            raise SynergyError("the regressor gave no finite result")

    run = FolderRun(pipeline, make_outputs(["json"]), tmp_path)
    run.pipeline = Broken()
    image = read_image(photo("portrait.jpg"))
    items = [ReadItem(Path(f"{name}.jpg"), name, image, pipeline.prepare(image)) for name in ("a", "b")]
    assert run.regress(items) == []
    assert run.summary.failures == [Failure("a.jpg", "the regressor gave no finite result"),
                                    Failure("b.jpg", "the regressor gave no finite result")]


def test_a_summary_written_is_read_back_with_its_failures(tmp_path):
    summary = FolderSummary(3, 5, [Failure("x.jpg", "x.jpg is not an image")], 1.5, 2)
    write_report(summary, tmp_path / "summary.json")
    again = read_report(tmp_path / "summary.json")
    assert again == summary and isinstance(again.failures[0], Failure) and again.failures[0].image == "x.jpg"
    assert read_report(tmp_path / "absent.json") is None
    (tmp_path / "cut.json").write_text('{"images": 3')
    assert read_report(tmp_path / "cut.json") is None
    assert FolderSummary.merged([summary, summary]).failures == [("x.jpg", "x.jpg is not an image")] * 2
    with pytest.raises(AttributeError):
        summary.failures[0].image = "y.jpg"  # a failure is a value
