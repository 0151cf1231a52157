"""What the training tests share: a training set built by build_trainset.py from the photos
of img/ (`built_trainset`, once a session), parts of it (`subset`), a small run's settings
(`config`) and a checkpoint's stored dict (`state_of`)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from tests.support import REPO_ROOT, require_asset
from utils import assets

LABELLER = assets.TDDFA_V2_WEIGHTS


def built_trainset(tmp_path_factory) -> Path:
    """A set built from img/ (all its photos, 3 jittered crops a face and variant), once a
    test session, for whichever test folder asks first (its list is written last)."""
    from synergy3DMM.trainset import LIST_FILE, Augmentation, build_trainset

    require_asset(LABELLER)
    out = tmp_path_factory.getbasetemp() / "trainset"
    if not (out / LIST_FILE).is_file():
        build_trainset(REPO_ROOT / "img", out, aug=Augmentation(crops_per_face=3), progress=False, log=lambda _: None)
    return out


def subset(trainset: Path, folder: Path, rows: list[int] | int) -> dict:
    """A file list and parameter pickle of some rows of the set (the crops stay where they
    are); a number of rows spread over the whole set."""
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE
    from utils.ddfa import read_file_list, read_param_file

    lines = read_file_list(trainset / LIST_FILE)
    if isinstance(rows, int):
        rows = np.linspace(0, len(lines) - 1, rows).astype(int).tolist()
    params = read_param_file(trainset / PARAM_FILE, len(lines))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "list.train").write_text("".join(lines[i] + "\n" for i in rows))
    (folder / "params.pkl").write_bytes(pickle.dumps(params[rows], protocol=4))
    return {"root": str(trainset / CROPS_DIR), "filelists_train": str(folder / "list.train"),
            "param_fp_train": str(folder / "params.pkl")}


def config(data: dict, out: Path, **overrides):
    from synergy3DMM.training import TrainConfig

    settings = dict(snapshot=str(out / "ckpt" / "run"), log_file=str(out / "train.log"), arch="mobilenet_v2",
                    epochs=2, batch_size=4, base_lr=0.01, milestones=(100,), workers=0, save_val_freq=1,
                    print_freq=1000, seed=7, holdout=0.0, device="cpu")
    settings.update(overrides)
    return TrainConfig(**data, **settings)


def state_of(path: Path) -> dict:
    from utils.checkpoints import read_checkpoint_file

    return read_checkpoint_file(path)

