#!/usr/bin/env python3
"""The checks that need a CUDA GPU, as one short script for a session that has one (the
test suite runs on CPUs; these paths cannot run there):

1. the photo pipeline on CUDA (PyTorch) gives the CPU's faces (ONNX Runtime), within 0.05 px;
2. training on CUDA in float32, with --amp (bf16, or fp16 with a grad scaler) and with
   channels-last: a few epochs on a set built from img/, finite losses that fall, a
   checkpoint that loads back;
3. two processes under torchrun with NCCL when two GPUs are there (one with one GPU);
4. bench/train_bench.py's GPU rows (fp32 against --amp and channels-last).

    python bench/gpu_checks.py [--skip-bench]

Prints one line per check (ok / FAILED and the numbers) and exits 1 when one failed; on a
machine without CUDA it says so and exits 0.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'ok    ' if ok else 'FAILED'} {name}: {detail}", flush=True)


def pipeline_on_cuda() -> None:
    from synergy3DMM import SynergyNet

    image = REPO_ROOT / "img" / "trump_hillary.jpg"
    gpu = SynergyNet(device="cuda", backend="torch").predict(image, dense=True)
    cpu = SynergyNet(device="cpu", backend="onnx").predict(image, dense=True)
    same_count = len(gpu) == len(cpu) > 0
    worst = max(float(np.abs(g.landmarks - c.landmarks).max()) for g, c in zip(gpu, cpu)) if same_count else np.inf
    dense = max(float(np.abs(g.vertices - c.vertices).max()) for g, c in zip(gpu, cpu)) if same_count else np.inf
    check("pipeline cuda vs cpu", same_count and worst < 0.05 and dense < 0.05,
          f"{len(gpu)} vs {len(cpu)} faces, landmarks worst {worst:.4f} px, dense worst {dense:.4f} px")


def training_on_cuda(work: Path) -> None:
    from model_building import SynergyNet
    from synergy3DMM.training import TrainConfig, last_checkpoint, train
    from synergy3DMM.trainset import CROPS_DIR, LIST_FILE, PARAM_FILE, build_trainset

    data = work / "set"
    build_trainset(REPO_ROOT / "img", data, progress=False)
    common = dict(filelists_train=str(data / LIST_FILE), root=str(data / CROPS_DIR),
                  param_fp_train=str(data / PARAM_FILE), arch="mobilenet_v2", epochs=4, batch_size=64,
                  base_lr=0.01, milestones=(100,), workers=4, save_val_freq=4, seed=0, device="cuda")
    for name, extra in (("fp32", {}), ("amp", {"amp": True}), ("amp + channels-last", {"amp": True,
                                                                                     "channels_last": True})):
        config = TrainConfig(**common, **extra, snapshot=str(work / name.replace(" ", "") / "run"),
                             log_file=str(work / f"{name.replace(' ', '')}.log"))
        start = time.perf_counter()
        history = train(config)
        seconds = time.perf_counter() - start
        losses = [row["loss_total"] for row in history]
        model = SynergyNet.from_checkpoint(last_checkpoint(config))
        finite = all(np.isfinite(losses))
        check(f"training cuda {name}", finite and losses[-1] < losses[0] and model is not None,
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f} in {len(losses)} epochs, {seconds:.1f} s, "
              f"{history[-1]['images_per_s']:.0f} images/s")


def torchrun_nccl(work: Path) -> None:
    processes = min(2, torch.cuda.device_count())
    data = work / "set"
    script = work / "ddp.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from synergy3DMM.training import TrainConfig, train\n"
        f"train(TrainConfig(filelists_train={str(data / 'train_aug_120x120.list.train')!r}, "
        f"root={str(data / 'train_aug_120x120')!r}, param_fp_train={str(data / 'param_all_norm_v201.pkl')!r}, "
        f"snapshot={str(work / 'ddp' / 'run')!r}, log_file={str(work / 'ddp.log')!r}, epochs=2, batch_size=32, "
        "base_lr=0.01, workers=2, save_val_freq=2, seed=0, device='cuda'))\n")
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", str(processes), str(script)],
                            capture_output=True, text=True, timeout=600)
    log = (work / "ddp.log").read_text() if (work / "ddp.log").is_file() else ""
    agreed = processes == 1 or "ranks agree" in log
    check(f"torchrun nccl, {processes} process(es)", result.returncode == 0 and agreed,
          "ranks agree" if result.returncode == 0 and agreed else result.stderr[-500:])


def train_bench() -> None:
    result = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "train_bench.py"), "--device", "cuda"],
                            capture_output=True, text=True, timeout=900)
    rows = [line for line in result.stdout.splitlines() if "step" in line or "amp" in line or "channels" in line]
    check("bench/train_bench.py on cuda", result.returncode == 0, " | ".join(rows[-4:]) or result.stderr[-500:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-bench", action="store_true", help="leave out bench/train_bench.py")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to check (run this where a GPU is)")
        return 0
    print(f"{torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s), torch {torch.__version__}")
    os.environ.setdefault("SYNERGYNET_CACHE", tempfile.mkdtemp(prefix="synergynet-cache-"))
    with tempfile.TemporaryDirectory(prefix="gpu-checks-") as folder:
        work = Path(folder)
        for run in (pipeline_on_cuda, lambda: training_on_cuda(work), lambda: torchrun_nccl(work)):
            try:
                run()
            except Exception as exc:  # a check that crashes is a failed check; the others still run
                check(getattr(run, "__name__", "check"), False, f"{type(exc).__name__}: {exc}")
        if not args.skip_bench:
            train_bench()
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} of {len(RESULTS)} checks passed" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
