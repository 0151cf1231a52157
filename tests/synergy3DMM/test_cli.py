"""What the scripts share (`synergy3DMM.cli`): the model, detector, image and folder flags,
their checks, the inputs of `-f`, the data a run needs resolved before its first image,
notes and progress bars."""
from __future__ import annotations

import argparse
import shutil

import pytest

from synergy3DMM.cli import (BATCH_IMAGES, FOLDER_FLAGS, MODEL_FLAGS, PREFETCH, add_model_flags, image_parser,
                             list_inputs, note, parse_image_args, progress_bar, resolve_assets)
from synergy3DMM.outputs import make_outputs
from utils.errors import SynergyError


def test_the_image_flags_and_their_defaults():
    args = parse_image_args(image_parser("doc"), ["-f", "img"])
    assert (args.files, args.png, args.output, args.weights, args.arch) == ("img", False, "inference_output", None, None)
    assert (args.device, args.backend, args.threshold, args.img_size) == ("auto", "auto", 0.5, 120)
    assert (args.skip_existing, args.shard, args.batch_images, args.prefetch) == (False, None, BATCH_IMAGES, PREFETCH)
    assert parse_image_args(image_parser("doc"), ["-f", "x", "--onnx"]).backend == "onnx"
    pre_cropped = parse_image_args(image_parser("doc", detector=False), ["-f", "x"])
    assert pre_cropped.threshold is None
    with pytest.raises(SystemExit):
        parse_image_args(image_parser("doc", detector=False), ["-f", "x", "--threshold", "0.7"])


def test_a_scripts_own_flags_come_with_the_shared_ones():
    def own(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--uv-dir", default="uv")

    args = parse_image_args(image_parser("doc", own), ["-f", "x", "--uv-dir", "mine", "--shard", "1/4"])
    assert (args.uv_dir, args.shard) == ("mine", "1/4")


@pytest.mark.parametrize("argv, says", [
    (["-f", "x", "--img_size", "128"], "--img_size: the published models take 120x120"),
    (["-f", "x", "--batch-images", "0"], "at least 1"), (["-f", "x", "--prefetch", "0"], "at least 1"),
    (["-f", "x", "--device", "tpu"], "invalid choice"), ([], "required: -f")])
def test_wrong_flags_are_usage_errors(argv, says, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_image_args(image_parser("doc"), argv)
    assert exc.value.code == 2 and says in capsys.readouterr().err


def test_flag_advice_names_each_setting():
    assert MODEL_FLAGS == {"device": "--device", "backend": "--backend", "arch": "-a/--arch",
                           "weights": "-w/--weights", "threshold": "--threshold"}
    assert FOLDER_FLAGS == {"shard": "--shard"}
    parser = argparse.ArgumentParser()
    add_model_flags(parser, output=None, output_help="where")
    assert parser.parse_args([]).output is None


def test_the_inputs_of_f(photo, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photo("portrait.jpg"), folder / "b.jpg")
    shutil.copy(photo("portrait.jpg"), folder / "a.png")
    (folder / "notes.txt").write_text("not an image")
    assert [p.name for p in list_inputs(str(folder))] == ["a.png", "b.jpg"]
    assert [p.name for p in list_inputs(str(folder), png_only=True)] == ["a.png"]
    assert list_inputs(str(folder / "b.jpg")) == [folder / "b.jpg"]
    (folder / "a.png").unlink()
    with pytest.raises(SynergyError, match=r"no .png files \(--png takes only .png files\) in"):
        list_inputs(str(folder), png_only=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SynergyError, match="no image files in"):
        list_inputs(str(tmp_path / "empty"))
    with pytest.raises(SynergyError, match="does not exist"):
        list_inputs(str(tmp_path / "absent"))


def test_the_data_of_a_run_is_resolved_at_once(tmp_path, monkeypatch):
    """Every file the pipeline and the outputs need, checked before the first image: one
    line naming the missing ones (a checkout fetches nothing on its own)."""
    resolve_assets(make_outputs(["json", "obj"]))  # all there after set-up
    monkeypatch.setenv("SYNERGYNET_HOME", str(tmp_path))
    with pytest.raises(SynergyError) as exc:
        resolve_assets(make_outputs(["json", "obj"]))
    message = str(exc.value)
    assert "\n" not in message and "3dmm_data/" in message and "missing" in message


def test_notes_go_to_stderr_and_bars_only_for_many_items(capsys):
    note("a note")
    assert capsys.readouterr() == ("", "a note\n")
    wrap = progress_bar("image")
    one = ["a"]
    assert wrap(one, 1) is one
    assert list(wrap(["a", "b", "c"], 3)) == ["a", "b", "c"]
