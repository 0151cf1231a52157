"""bench/run_bench.py runs every step and reports what the README's Speed table needs.
No time is asserted: the script is how speed is shown, not a test of it."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from bench import run_bench
from utils import assets

CPU_STEPS = ["network batch 1", "network batch 64", "FaceBoxes two_faces_720p", "FaceBoxes emma_4k",
             "dense reconstruction one face", "render one face 1280x720", "whole singleImage flow",
             "one overlay image two_faces_720p (3DDFA_V2's way)", "one overlay image emma_4k (3DDFA_V2's way)",
             "peak memory of the whole flow"]


def test_every_step_runs_and_is_reported(reference, tmp_path):
    env = {**os.environ, "SYNERGYNET_CACHE": str(tmp_path / "cache"),
           "SYNERGYNET_REFERENCE": str(reference("checkpoint.pth.tar").parent)}
    report_path = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "bench/run_bench.py", "--repeats", "1", "--json", str(report_path)],
                            cwd=assets.REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert list(report["steps"]) == CPU_STEPS
    assert report["network"]["weights"].endswith("checkpoint.pth.tar")  # SynergyNet's MobileNetV2, not random
    assert report["network"]["gflop_per_image"] == pytest.approx(0.1864, abs=1e-4)  # 93 M multiply-adds
    for name, row in report["steps"].items():
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0, name
        assert ("met" in row) == (name not in ("dense reconstruction one face",)), name
    assert 0 < report["steps"]["network batch 64"]["ours"]["fraction_of_matmul"]
    assert set(report["steps"]["whole singleImage flow"]["ours"]["stages_ms"]) == {
        "detect", "regress", "reconstruct", "render, draw and write"}
    assert report["gpu"] is None or report["gpu"]["device"]
    table = run_bench.markdown_table(report)
    for name in CPU_STEPS:  # the README's table, one row a step
        assert f"| {name} |" in table
    assert result.stdout.rstrip().endswith(table.splitlines()[-1])


def test_throughput_counts_images_per_second():
    """The GPU step's measurement, run on the CPU with a clock the network advances: each
    call takes exactly 10 ms of that clock, whatever the machine does."""
    now = [0.0]
    calls = []

    class TenMilliseconds(torch.nn.Module):
        def forward(self, x):
            calls.append(x.shape)
            now[0] += 0.01
            return x

    images_per_s = run_bench.throughput(TenMilliseconds(), "cpu", torch.float32, batch=4, runs=5, warm_up=1,
                                        clock=lambda: now[0])
    assert calls == [(4, 3, 120, 120)] * 6  # one warm-up call, then the five timed ones
    assert images_per_s == pytest.approx(4 * 5 / 0.05)  # 4 images per 10 ms call
