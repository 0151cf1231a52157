"""Training SynergyNet, as the original's `main_train.py` does it, on one CPU, one GPU or
many GPUs and machines (`torchrun`).

    config = TrainConfig(filelists_train="set/train_aug_120x120.list.train", root="set/train_aug_120x120",
                         param_fp_train="set/param_all_norm_v201.pkl", snapshot="ckpts/SynergyNet")
    history = train(config)

The original's recipe: SGD (Nesterov, momentum 0.9, weight decay 5e-4) over the five
weighted losses of `SynergyNet.forward`; a step whose gradients hold a NaN or an infinity
is skipped whole (`utils.ddfa.SGD_NanHandler`); learning rate `base_lr * 0.2 ** n` per
epoch (`utils.ddfa.learning_rate`); colour jitter, a 5-pixel border and rare occlusions;
checkpoints `{snapshot}_checkpoint_epoch_{e}.pth.tar` every `save_val_freq` epochs with a
validation. Added: DistributedDataParallel under `torchrun` (gloo on CPUs, NCCL on GPUs;
rank 0 alone logs and writes), autocast with a grad scaler (`amp`), a resumable state in
every checkpoint (optimiser, schedule, grad scaler, random states, data position; written
atomically, plus `{snapshot}_last.pth.tar` after every epoch), validation through the
benchmark's library code, a per-epoch CSV and loss-curve PNG beside the checkpoints.

One module a job: `config` (the settings and their flags), `processes` (one process or
torchrun's), `data` (the list, the held-out faces, each rank's share), `state` (the
trainer, its checkpoints, resuming), `loop` (a step, an epoch), `validation`, `records`
(file names, log, CSV, plot, TensorBoard) and `run` (`train`).
"""
from model_building import LOSS_NAMES
from synergy3DMM.training.config import TrainConfig
from synergy3DMM.training.data import ResumableSampler, load_data, make_loader, split_groups
from synergy3DMM.training.loop import train_epoch, training_step
from synergy3DMM.training.processes import Processes, start_processes, stop_processes
from synergy3DMM.training.records import CSV_COLUMNS, epoch_checkpoint, last_checkpoint, log_path
from synergy3DMM.training.run import train
from synergy3DMM.training.state import Trainer, build_trainer, resume, seed_everything, write_checkpoint
from synergy3DMM.training.validation import Validation

__all__ = ["CSV_COLUMNS", "LOSS_NAMES", "Processes", "ResumableSampler", "TrainConfig", "Trainer", "Validation",
           "build_trainer", "epoch_checkpoint", "last_checkpoint", "load_data", "log_path", "make_loader",
           "resume", "seed_everything", "split_groups", "start_processes", "stop_processes", "train",
           "train_epoch", "training_step", "write_checkpoint"]
