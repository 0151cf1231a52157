"""Everything a training run holds (`Trainer`: model, optimiser, grad scaler, random
states, position in the data, history), how it is built, and its checkpoints: the
original's `{'epoch', 'state_dict'}` plus the state that lets `--resume` continue exactly,
written atomically."""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model_building import SynergyNet
from synergy3DMM.training.config import TrainConfig
from synergy3DMM.training.processes import RANK_SEED_STRIDE, Processes
from synergy3DMM.training.records import logger
from utils import checkpoints
from utils.ddfa import SGD_NanHandler
from utils.errors import SynergyError

STATE_VERSION = 1


# --------------------------------------------------------------------------- random states


def random_states() -> dict:
    """torch (and CUDA), numpy and python random states, as plain tensors and lists (a
    checkpoint read with weights_only holds nothing else)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    states = {"torch": torch.get_rng_state(),
              "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "python": {"version": version, "state": list(py_state), "gauss": py_gauss}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# --------------------------------------------------------------------------- the trainer


@dataclass
class Trainer:
    """Everything a training run holds; `state()` is what a checkpoint stores to resume."""

    config: TrainConfig
    procs: Processes
    model: SynergyNet
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: SGD_NanHandler
    scaler: "torch.amp.GradScaler | None"
    autocast_dtype: "torch.dtype | None"
    seed: int
    epoch: int = 0  # the last finished epoch
    history: list[dict] = field(default_factory=list)
    position: int = 0  # steps of epoch `epoch + 1` already taken (a mid-epoch checkpoint)
    partial: dict | None = None  # that part's loss sums, samples, skipped steps, seconds (all ranks)

    def state(self) -> dict:
        config = asdict(self.config)
        return {"epoch": self.epoch, "arch": self.config.arch,
                "training": {"version": STATE_VERSION, "optimizer": self.optimizer.state_dict(),
                             "schedule": {"base_lr": config["base_lr"], "warmup": config["warmup"],
                                          "milestones": list(config["milestones"]),
                                          "lr": self.optimizer.param_groups[0]["lr"]},
                             "grad_scaler": None if self.scaler is None else self.scaler.state_dict(),
                             "random": random_states(), "seed": self.seed,
                             "data": {"epoch": self.epoch, "position": self.position, "world": self.procs.world},
                             "partial": self.partial,
                             "history": [dict(row) for row in self.history],
                             "paramloss_fix": self.config.paramloss_fix}}


def build_trainer(config: TrainConfig, procs: Processes, seed: int) -> Trainer:
    """The model (initialised from `seed`: DDP then gives every rank rank 0's weights), the
    optimiser, autocast and grad scaler, and the DDP wrapper."""
    seed_everything(seed + procs.rank)

    model = SynergyNet(arch=config.arch, img_size=config.img_size, paramloss_fix=config.paramloss_fix)
    model = model.to(procs.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = SGD_NanHandler(model.parameters(), lr=config.base_lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=True)
    scaler, dtype = None, None
    if config.amp:
        if procs.device.type != "cuda":
            raise SynergyError("--amp needs a CUDA GPU (on the CPU training runs in float32)", option="amp")
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if dtype == torch.float16:  # bf16 has float32's range: no scaling needed
            scaler = torch.amp.GradScaler("cuda")
    net: nn.Module = model
    if procs.distributed:
        # the dense 3DMM buffers (tens of MB) never change: no broadcast at every step
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[procs.device.index] if procs.device.type == "cuda" else None,
            broadcast_buffers=False)
    return Trainer(config, procs, model, net, optimizer, scaler, dtype, seed, epoch=config.start_epoch - 1)


# --------------------------------------------------------------------------- checkpoints


def write_checkpoint(trainer: Trainer, path: Path) -> Path:
    """The original's `{'epoch', 'state_dict'}` (module. keys) plus the training state."""
    state = trainer.state()
    checkpoints.save_checkpoint(path, trainer.model.state_dict(), **state)
    logger.info(f"Save checkpoint to {path}")
    return path


def resume(trainer: Trainer, path: str) -> str:
    """Load `path` into the trainer. A checkpoint of ours continues exactly (weights,
    optimiser, schedule, grad scaler, random states, epoch); one of the original (weights
    and epoch only) loads its weights strictly and starts at `start_epoch`, as the original
    did. Returns a line saying which."""
    stored = checkpoints.read_checkpoint_file(path)
    if not isinstance(stored, dict):
        raise SynergyError(f"{path} is not a training checkpoint", option="resume")
    trainer.model.load_weights(checkpoints.strip_module_prefix(checkpoints.load_checkpoint(path)))
    state = stored.get("training")
    if not isinstance(state, dict):
        return (f"resumed the weights of {path} (no training state in it: optimiser, schedule and data order "
                f"start afresh at epoch {trainer.config.start_epoch})")
    if state.get("paramloss_fix", False) != trainer.config.paramloss_fix:
        raise SynergyError(f"{path} was trained with paramloss_fix={state.get('paramloss_fix')}; resume it "
                           "with the same --paramloss-fix", option="paramloss_fix")
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scaler is not None and state.get("grad_scaler"):
        trainer.scaler.load_state_dict(state["grad_scaler"])
    trainer.seed = int(state["seed"])
    trainer.epoch = int(stored["epoch"])
    trainer.history = [dict(row) for row in state.get("history", [])]
    data = state.get("data") or {}
    if data.get("position") and data.get("world") != trainer.procs.world:
        note = (f"; it stopped part-way through epoch {trainer.epoch + 1} with {data.get('world')} process(es): "
                f"with {trainer.procs.world} that epoch starts again")
    elif data.get("position"):
        trainer.position, trainer.partial = int(data["position"]), state.get("partial")
        note = f", from step {trainer.position}"
    else:
        note = ""
    set_random_states(state["random"])  # rank 0's: the other ranks derive their own dropout stream
    if trainer.procs.rank:
        torch.manual_seed(trainer.seed + RANK_SEED_STRIDE * trainer.procs.rank + trainer.epoch)
    return f"resumed {path}: epoch {trainer.epoch} done, continuing at {trainer.epoch + 1}{note}"
