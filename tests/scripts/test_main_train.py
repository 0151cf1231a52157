"""main_train.py and train_script.sh as a user runs them: one-line errors with advice on the
flag at fault, the original's unused flags accepted, the log beside the checkpoints, the
original's recipe on a machine without a GPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synergy3DMM.training import TrainConfig
from tests.support import REPO_ROOT
from tests.synergy3DMM.training.support import built_trainset, subset
from utils.errors import run_cli


@pytest.fixture(scope="module")
def trainset(tmp_path_factory):
    return built_trainset(tmp_path_factory)


def test_main_train_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "main_train.py"), "--snapshot", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: --filelists-train is required (set it with --filelists-train)"]
    result = subprocess.run([sys.executable, str(REPO_ROOT / "main_train.py"), "--data", str(tmp_path / "nothing"),
                             "--snapshot", str(tmp_path / "x"), "--log-file", str(tmp_path / "log")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "file list" in result.stderr and "not found" in result.stderr


def test_the_log_goes_beside_the_checkpoints_by_default(trainset, tmp_path):
    """Without --log-file the log is <snapshot>_training.log beside the CSV and the
    checkpoints: the folder the run was started from is left as it was (the original
    wrote output.log there)."""
    data = subset(trainset, tmp_path / "data", 8)
    started_in = tmp_path / "elsewhere"
    started_in.mkdir()
    snapshot = tmp_path / "ckpt" / "run"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "main_train.py"), "--root", data["root"],
                             "--filelists-train", data["filelists_train"], "--param-fp-train", data["param_fp_train"],
                             "--snapshot", str(snapshot), "--arch", "mobilenet_05", "--epochs", "1", "-b", "4",
                             "-j", "0", "--holdout", "0", "--device", "cpu", "--seed", "0"],
                            cwd=started_in, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert list(started_in.iterdir()) == []
    log = Path(f"{snapshot}_training.log").read_text()
    assert "Save checkpoint to" in log and Path(f"{snapshot}_training.csv").is_file()


def test_train_script_without_gpu_runs_on_the_cpu(tmp_path):
    """train_script.sh with the original's recipe: on a machine without a GPU it says so
    and runs one CPU process (here only as far as the missing data)."""
    env = {**os.environ, "PYTHON": sys.executable, "TRAIN_ARGS": f"--log-file {tmp_path / 'log'}",
           "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(["bash", str(REPO_ROOT / "train_script.sh")], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env=env)
    assert "no GPU" in result.stderr
    assert "error: file list" in result.stderr  # it got as far as main_train.py reading its (absent) data



def run_in_process(argv: list[str], capsys) -> list[str]:
    """main_train.py's entry point in this process, as its command runs it: it must exit
    with 1; the lines it wrote on stderr."""
    import main_train

    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: main_train.main(argv), TrainConfig.flag_advice())
    assert exit_info.value.code == 1
    return capsys.readouterr().err.strip().splitlines()


def test_the_originals_unused_flags_are_accepted_and_change_nothing(tmp_path, capsys):
    """The original parses --task and --resume_pose and never reads them: its command lines
    still run, and a note says the two change nothing."""
    lines = run_in_process(["--task", "pose", "--resume_pose", "x.pth", "--data", str(tmp_path / "nothing"),
                            "--snapshot", str(tmp_path / "x"), "--log-file", str(tmp_path / "log")], capsys)
    assert lines[:2] == ["note: --task is the original's flag and changes nothing here",
                         "note: --resume_pose is the original's flag and changes nothing here"]
    assert len(lines) == 3 and lines[2].startswith("error: file list") and "not found" in lines[2]


def test_a_bad_setting_is_advice_on_its_flag(trainset, tmp_path, capsys):
    data = subset(trainset, tmp_path / "data", 4)
    lines = run_in_process(["--filelists-train", data["filelists_train"], "--root", data["root"],
                            "--param-fp-train", str(tmp_path / "none.pkl"), "--snapshot", str(tmp_path / "x"),
                            "--log-file", str(tmp_path / "log")], capsys)
    assert lines == [f"error: parameter file {tmp_path / 'none.pkl'} not found (set it with --param-fp-train)"]
    lines = run_in_process([*sum(([f"--{k.replace('_', '-')}", v] for k, v in data.items()), []),
                            "--snapshot", str(tmp_path / "x"), "--log-file", str(tmp_path / "log"), "-b", "1"], capsys)
    assert lines == ["error: the batch size must be at least 2 (got 1) (set it with -b/--batch-size)"]
