#!/usr/bin/env python3
"""Speed of this implementation against the original's way, measured in one run on the
same inputs (see bench/original_way.py for what "the original's way" runs).

    .venv/bin/python bench/run_bench.py [--repeats 15] [--json bench/results/bench.json]

Steps: (a) the MobileNetV2 regressor at batch 1 and 64 (also as GFLOP/s against a float32
matrix product measured here), (b) FaceBoxes on two photos, (c) dense reconstruction of
one face, (d) rendering one dense face on a 1280x720 image, (e) the whole singleImage.py
flow on two_faces_720p.jpg with every output written, (f) its peak memory. Each step
alternates the two ways run by run and reports median, min and max in milliseconds and
the ratio of the medians (original / ours). With a CUDA GPU, also the regressor's
batch throughput in float32 and float16.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from utils.device import cpu_cores  # noqa: E402

TWO_FACES = "img/trump_hillary.jpg"  # 1536x689, two faces (the reference's two_faces_720p.jpg)
FOUR_K = "img/emma.jpg"  # 3913x1901, three faces (emma_4k.jpg)

STEPS = ("network", "detector", "render", "flow", "overlay", "memory", "gpu")
TARGETS = {  # the median ratio original / ours each step must reach
    "network batch 1": 5.0,
    "FaceBoxes two_faces_720p": 2.0,
    "FaceBoxes emma_4k": 2.0,
    "render one face 1280x720": 4.0,
    "whole singleImage flow": 3.0,
    # one overlay image each, against 3DDFA_V2's way: faster on both photos
    "one overlay image two_faces_720p (3DDFA_V2's way)": 1.0,
    "one overlay image emma_4k (3DDFA_V2's way)": 1.0,
}


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [1e3 * s for s in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "runs": len(ms)}


# Untimed runs before each block, for at least this long: the other way's worker threads
# stop spinning meanwhile, and the cores leave their idle state. (A pause would do the
# first but undo the second: right after a pause the cores run a short render markedly
# slower for a while, which penalises the faster way most.)
WARM_UP_S = 0.1


def paired(original: Callable[[], object], ours: Callable[[], object], repeats: int, block: int = 5):
    """Time the two ways in alternating blocks (A A A, B B B, A A A, ...) so drift of the
    machine hits both alike; each block follows its own untimed warm-up (WARM_UP_S)."""
    times: tuple[list[float], list[float]] = ([], [])
    while len(times[1]) < repeats:
        for fn, bucket in ((original, times[0]), (ours, times[1])):
            warm_up_start = time.perf_counter()
            fn()
            while time.perf_counter() - warm_up_start < WARM_UP_S:
                fn()
            for _ in range(min(block, repeats - len(bucket))):
                start = time.perf_counter()
                fn()
                bucket.append(time.perf_counter() - start)
    return summary(times[0]), summary(times[1])


BUSY_NEIGHBOUR = """
import os, time
import numpy as np
os.sched_setaffinity(0, {{{core}}})
source = np.ones(8 << 20); target = np.empty_like(source)  # 64 MB: streams through memory
while True:  # busy a third of the time, in 3 ms bursts
    start = time.perf_counter()
    while time.perf_counter() - start < 0.003:
        np.copyto(target, source)
    time.sleep(0.006)
"""


@contextlib.contextmanager
def busy_neighbour(enabled: bool):
    """With `enabled`, a process that streams through memory on the last core a third of the
    time, as a neighbour on a shared machine does: shows how each way copes with one slowed
    core (work split evenly among threads waits for the slowest)."""
    if not enabled:
        yield
        return
    core = max(os.sched_getaffinity(0))
    process = subprocess.Popen([sys.executable, "-c", BUSY_NEIGHBOUR.format(core=core)])
    time.sleep(1.0)
    if process.poll() is not None:
        raise RuntimeError("the busy neighbour process did not start")
    try:
        yield
    finally:
        process.kill()
        process.wait()


def count_flops(module, example) -> float:
    """Multiply-adds of one forward of convolutions and linear layers, x2 (FLOPs per image)."""
    import torch

    macs = 0

    def hook(layer, _inputs, output):
        nonlocal macs
        if isinstance(layer, torch.nn.Conv2d):
            macs += output.numel() * (layer.in_channels // layer.groups) * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, torch.nn.Linear):
            macs += output.numel() * layer.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        module(example)
    for handle in handles:
        handle.remove()
    return 2.0 * macs / example.shape[0]


MATMUL_SIZE = 2048


def matmul_and_network(onnx_run: Callable[[np.ndarray], object], batch: np.ndarray, repeats: int) -> tuple[float, dict]:
    """This machine's float32 matrix product speed (PyTorch's BLAS, all threads) in GFLOP/s,
    timed in alternating blocks with the network at `batch`, so that the network's fraction
    of it compares the two under the same load; and the network's timing from those runs."""
    import torch

    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    matmul, network = paired(lambda: a @ b, lambda: onnx_run(batch), repeats)
    return 2 * MATMUL_SIZE ** 3 / (matmul["median_ms"] / 1e3) / 1e9, network


def mobilenet_v2_weights() -> Path | None:
    """SynergyNet MobileNetV2 weights: the official ones, else the reference checkpoint (the
    original's architecture with perturbed weights: its faces are near the mean face, so
    they cost what real faces cost to reconstruct and render)."""
    from utils import assets

    for candidate in (assets.asset_path("pretrained/best.pth.tar"),
                      Path(os.environ.get("SYNERGYNET_REFERENCE", REPO.parent / "shared" / "reference"))
                      / "checkpoint.pth.tar"):
        if candidate.is_file():
            return candidate
    return None


def regressor_model():
    """SynergyNet's MobileNetV2 (random weights if none are found: a forward's time does not
    depend on them)."""
    from model_building import SynergyNet

    weights = mobilenet_v2_weights()
    if weights is None:
        return SynergyNet(arch="mobilenet_v2").eval(), None
    return SynergyNet.from_checkpoint(weights)[0], weights


def bench_network(repeats: int, report: dict) -> None:
    import torch

    from synergy3DMM.runners import onnx_regressor

    model, weights = regressor_model()
    backbone = model.I2P.backbone
    with tempfile.TemporaryDirectory() as tmp:
        if weights is None:  # random weights: saved so that the ONNX path exports them
            weights = Path(tmp) / "random.pth.tar"
            torch.save({"state_dict": model.state_dict()}, weights)
        # the network alone: worker threads may spin between operators (see make_session)
        onnx_run, _ = onnx_regressor(weights, spinning=True)
    flops = count_flops(backbone, torch.randn(2, 3, 120, 120))
    report["network"] = {"weights": str(weights) if weights else "random", "gflop_per_image": round(flops / 1e9, 4)}
    rng = np.random.default_rng(0)
    for batch, runs in ((1, repeats * 4), (64, repeats)):
        x = rng.standard_normal((batch, 3, 120, 120), dtype=np.float32)
        tensor = torch.from_numpy(x)

        def eager():
            with torch.no_grad():
                model.forward_test(tensor)

        original, ours = paired(eager, lambda: onnx_run(x), runs)
        row = record(report, f"network batch {batch}", original, ours)
        for way, stats in (("original", original), ("ours", ours)):
            images_per_s = batch / (stats["median_ms"] / 1e3)
            row[way]["images_per_s"] = round(images_per_s, 1)
            row[way]["gflops"] = round(images_per_s * flops / 1e9, 1)
        if batch == 64:
            peak, beside_matmul = matmul_and_network(onnx_run, x, runs)
            gflops = batch * flops / (beside_matmul["median_ms"] / 1e3) / 1e9
            report["machine"]["matmul_gflops_fp32"] = round(peak, 1)
            row["ours"]["fraction_of_matmul"] = round(gflops / peak, 3)
            row["target"] = ">= 85% of the float32 matmul speed"
            row["met"] = gflops / peak >= 0.85


def bench_detector(repeats: int, report: dict) -> None:
    import torch

    from FaceBoxes import FaceBoxes

    from bench import original_way
    from synergy3DMM import runners
    from utils.io import read_image

    ours = runners.detector(None, "onnx", "cpu")
    original_net = FaceBoxes.build_net(ours.weights).to(memory_format=torch.contiguous_format)
    for label, path in (("two_faces_720p", TWO_FACES), ("emma_4k", FOUR_K)):
        image = read_image(REPO / path)
        original, mine = paired(lambda: original_way.detect(original_net, image), lambda: ours(image), repeats)
        record(report, f"FaceBoxes {label}", original, mine)


def one_face(image_size=(1280, 720)):
    """A real dense face (from the 3DDFA_V2 regressor on the two-face photo) on a 1280x720 image."""
    import cv2

    from synergy3DMM.pipeline import FacePipeline
    from utils.io import read_image

    image = cv2.resize(read_image(REPO / TWO_FACES), image_size, interpolation=cv2.INTER_AREA)
    pipeline = FacePipeline(device="cpu", log=lambda _: None)
    face = pipeline.analyse(image)[0]
    return image, face, pipeline


def bench_reconstruction_and_render(repeats: int, report: dict) -> None:
    from Sim3DR import RenderPipeline
    from Sim3DR.numpy_reference import render_numpy_lighting
    from synergy3DMM.render import cfg
    from utils.inference import predict_denseVert, reconstruct_in_image
    from utils.params import load_3dmm

    image, face, pipeline = one_face()
    whitening = pipeline.regressor.whitening
    params_whitened = (face.params - whitening.mean) / whitening.std
    roi = np.asarray(face.roi_box)
    original, ours = paired(lambda: predict_denseVert(params_whitened, list(roi) + [1.0], transform=True,
                                                      whitening=whitening),
                            lambda: reconstruct_in_image(params_whitened[None], roi[None], dense=True,
                                                         whitening=whitening), repeats * 2)
    record(report, "dense reconstruction one face", original, ours)

    triangles = load_3dmm().triangles
    vertices = np.ascontiguousarray(face.vertices.T.astype(np.float32))
    render_app = RenderPipeline(**cfg)
    original, ours = paired(lambda: render_numpy_lighting(render_app, vertices, triangles, image.copy()),
                            lambda: render_app(vertices, triangles, image.copy()), repeats * 2)
    width = float(np.ptp(vertices[:, 0]))
    record(report, "render one face 1280x720", original, ours)["face_width_px"] = round(width)


def flow_runner(way: str, out_dir: Path):
    """A function that runs the whole singleImage.py flow on the two-face photo one way."""
    from utils.io import read_image

    image_path = REPO / TWO_FACES
    if way == "original":
        import torch

        from FaceBoxes import FaceBoxes
        from Sim3DR import RenderPipeline
        from model_building import SynergyNet

        from bench import original_way
        from synergy3DMM.pipeline import resolve_weights
        from synergy3DMM.render import cfg
        from utils.params import load_3dmm

        net = FaceBoxes.build_net(FaceBoxes().weights).to(memory_format=torch.contiguous_format)
        model, _ = SynergyNet.from_checkpoint(resolve_weights(mobilenet_v2_weights(), log=lambda _: None))
        triangles, render_app = load_3dmm().triangles, RenderPipeline(**cfg)

        def run(timings=None):
            image = read_image(image_path)
            return original_way.single_image_flow(net, model, image, out_dir, "two_faces", triangles, render_app,
                                                   timings)
        return run

    from synergy3DMM.outputs import make_outputs, save_image_outputs
    from synergy3DMM.results import ImageResult
    from synergy3DMM.pipeline import FacePipeline

    pipeline = FacePipeline(mobilenet_v2_weights(), device="cpu", log=lambda _: None)  # auto: ONNX Runtime here
    outputs = make_outputs()  # the default: the original's three pictures and the JSON

    def run(timings=None):
        image = read_image(image_path)
        faces = pipeline.analyse(image, timings=timings)
        start = time.perf_counter()
        save_image_outputs(ImageResult(image, faces, str(image_path), "two_faces"), outputs, out_dir)
        if timings is not None:
            timings["render, draw and write"] = timings.get("render, draw and write", 0.0) + time.perf_counter() - start
        return len(faces)
    return run


def bench_flow(repeats: int, report: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        original_run = flow_runner("original", Path(tmp) / "original")
        ours_run = flow_runner("ours", Path(tmp) / "ours")
        (Path(tmp) / "original").mkdir()
        original, ours = paired(original_run, ours_run, repeats)
        row = record(report, "whole singleImage flow", original, ours)
        for way, run in (("original", original_run), ("ours", ours_run)):
            stages: dict[str, float] = {}
            for _ in range(repeats):
                run(stages)
            row[way]["stages_ms"] = {k: round(1e3 * v / repeats, 1) for k, v in stages.items()}
            print(f"  {way} stages (mean ms): " + ", ".join(f"{k} {v}" for k, v in row[way]["stages_ms"].items()))
        row["weights"] = str(mobilenet_v2_weights() or "default")


def bench_overlay(repeats: int, report: dict) -> None:
    """A photo in, one overlay image out (`singleImage.py --modes 3d`), against 3DDFA_V2's
    `demo.py -o 3d --onnx` way (bench/tddfa_v2_way.py), both with 3DDFA_V2's own regressor."""
    import onnxruntime

    from bench import tddfa_v2_way
    from Sim3DR import RenderPipeline
    from synergy3DMM import runners
    from synergy3DMM.outputs import make_outputs, save_image_outputs
    from synergy3DMM.results import ImageResult
    from synergy3DMM.pipeline import FacePipeline
    from synergy3DMM.render import cfg
    from utils import assets
    from utils.io import read_image
    from utils.params import load_3dmm

    weights = assets.require(assets.TDDFA_V2_WEIGHTS)
    pipeline = FacePipeline(weights, log=lambda _: None)  # auto: ONNX Runtime on a CPU
    overlay = make_outputs(["3d"])
    regressor, info = runners.onnx_regressor(weights)
    runners.onnx_detector(assets.require(assets.FACEBOXES_WEIGHTS))  # exported once, then read as 3DDFA_V2 reads its model
    # 3DDFA_V2 opens its models with ONNX Runtime's default options
    detector_session = onnxruntime.InferenceSession(str(runners.cache_path("faceboxes", assets.require(assets.FACEBOXES_WEIGHTS))))
    regressor_session = onnxruntime.InferenceSession(str(regressor.path))
    triangles, render_app = load_3dmm().triangles, RenderPipeline(**cfg)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for label, path in (("two_faces_720p", TWO_FACES), ("emma_4k", FOUR_K)):
            image_path = REPO / path

            def theirs():
                tddfa_v2_way.overlay_flow(detector_session, regressor_session, image_path, out / f"{label}_3ddfa.jpg",
                                          info.whitening, triangles, render_app)

            def ours():
                image = read_image(image_path)
                save_image_outputs(ImageResult(image, pipeline.analyse(image), str(image_path), label), overlay, out)

            reference, mine = paired(theirs, ours, repeats)
            record(report, f"one overlay image {label} (3DDFA_V2's way)", reference, mine)


def peak_memory(way: str, runs: int = 5) -> float:
    """Peak resident memory (MB) of a fresh process that runs the flow `runs` times.

    Read by the process itself from VmHWM (Linux): getrusage's and wait4's maxrss would
    count the memory of this big parent process, which the child shares until exec."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); sys.argv = ['x'];"
            "import tempfile, pathlib; from bench.run_bench import flow_runner;"
            f"d = pathlib.Path(tempfile.mkdtemp()); run = flow_runner({way!r}, d)\n"
            f"for _ in range({runs}): run()\n"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the {way} flow failed in its own process: {result.stderr[-500:]}")
    return int(result.stdout.split()[-1]) / 1024.0  # kB


def bench_memory(report: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        flow_runner("ours", Path(tmp))  # the ONNX exports are cached before the measured process
    original, ours = peak_memory("original"), peak_memory("ours")
    report["steps"]["peak memory of the whole flow"] = {
        "original": {"peak_mb": round(original)}, "ours": {"peak_mb": round(ours)},
        "ratio": round(original / ours, 2), "target": ">= 2 (ours at most half)", "met": original / ours >= 2}


def throughput(net, device: str, dtype, batch: int, runs: int = 50, warm_up: int = 10,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """Images per second of `net` on `device` at `batch` in `dtype` (inputs made on the device,
    so only the network is timed). `clock` gives seconds (a test passes its own)."""
    import torch

    net = net.to(device=device, dtype=dtype).eval()
    x = torch.randn(batch, 3, 120, 120, device=device, dtype=dtype)
    synchronize = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(warm_up):
            net(x)
        synchronize()
        start = clock()
        for _ in range(runs):
            net(x)
        synchronize()
    return batch * runs / (clock() - start)


def bench_gpu(report: dict) -> None:
    """The regressor's throughput on a CUDA GPU, float32 and float16, to set beside the
    paper's "3000 fps on an RTX 2080"."""
    import torch

    if not torch.cuda.is_available():
        report["gpu"] = None
        return
    backbone = regressor_model()[0].I2P.backbone
    results = {"device": torch.cuda.get_device_name()}
    for dtype in (torch.float32, torch.float16):
        for batch in (1, 256):
            images_per_s = throughput(backbone, "cuda", dtype, batch)
            results[f"{str(dtype).split('.')[-1]} batch {batch} images/s"] = round(images_per_s)
    report["gpu"] = results


def record(report: dict, name: str, original: dict, ours: dict) -> dict:
    ratio = original["median_ms"] / ours["median_ms"]
    row = {"original": _rounded(original), "ours": _rounded(ours), "ratio": round(ratio, 2)}
    if name in TARGETS:
        row["target"] = f">= {TARGETS[name]}x"
        row["met"] = ratio >= TARGETS[name]
    report["steps"][name] = row
    print(f"{name:34s} original {original['median_ms']:9.2f} ms [{original['min_ms']:.2f}-{original['max_ms']:.2f}]"
          f"   ours {ours['median_ms']:8.2f} ms [{ours['min_ms']:.2f}-{ours['max_ms']:.2f}]   x{ratio:5.2f}"
          + (f"  (target >= {TARGETS[name]}x: {'met' if row['met'] else 'NOT met'})" if name in TARGETS else ""),
          flush=True)
    return row


def _rounded(stats: dict) -> dict:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.items()}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def markdown_table(report: dict) -> str:
    """The README's table of a report."""
    machine = report["machine"]
    lines = [f"Measured {report['date']} on {machine['cores']} cores ({machine['cpu']}), Python {machine['python']}, "
             f"torch {machine['torch']}, onnxruntime {machine.get('onnxruntime', '?')}; "
             f"float32 matmul here: {machine.get('matmul_gflops_fp32', '?')} GFLOP/s"
             + ("; with a busy neighbour on one core (--busy-neighbour)." if report.get("busy_neighbour") else "."), "",
             "| step | original's way | ours | ratio | target |", "| --- | --- | --- | --- | --- |"]
    for name, row in report["steps"].items():
        if "median_ms" in row["original"]:
            cells = [f"{row[w]['median_ms']:.1f} ms ({row[w]['min_ms']:.1f}-{row[w]['max_ms']:.1f})"
                     for w in ("original", "ours")]
        else:
            cells = [f"{row[w]['peak_mb']} MB" for w in ("original", "ours")]
        target = row.get("target", "")
        if target:
            target += " met" if row.get("met") else " **not met**"
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {row['ratio']:.2f}x | {target} |")
    network = report["steps"].get("network batch 64")
    if network:
        lines += ["", f"Network: {report['network']['gflop_per_image']} GFLOP per 120x120 image; batch 64 ours "
                  f"{network['ours']['gflops']} GFLOP/s, eager PyTorch {network['original']['gflops']} GFLOP/s; timed "
                  f"in turn with a {MATMUL_SIZE}x{MATMUL_SIZE} float32 matmul, ours runs at "
                  f"{network['ours']['fraction_of_matmul']:.0%} of its speed (target >= 85%)."]
    flow = report["steps"].get("whole singleImage flow")
    if flow and "stages_ms" in flow["ours"]:
        for way in ("original", "ours"):
            stages = ", ".join(f"{k} {v} ms" for k, v in flow[way]["stages_ms"].items())
            lines.append(f"Whole flow, {way}: {stages}.")
    if report.get("gpu"):
        lines.append("GPU: " + ", ".join(f"{k} {v}" for k, v in report["gpu"].items()))
    return "\n".join(lines)


def run_steps(steps: list[str], repeats: int, report: dict) -> None:
    if "network" in steps:
        bench_network(repeats, report)
        print(f"network: {report['network']['gflop_per_image']} GFLOP per image; this machine's float32 matmul "
              f"{report['machine']['matmul_gflops_fp32']} GFLOP/s; batch 64 ours at "
              f"{report['steps']['network batch 64']['ours']['fraction_of_matmul']:.0%} of it (target >= 85%)")
    if "detector" in steps:
        bench_detector(repeats, report)
    if "render" in steps:
        bench_reconstruction_and_render(repeats, report)
    if "flow" in steps:
        bench_flow(repeats, report)
    if "overlay" in steps:
        bench_overlay(repeats, report)
    if "memory" in steps:
        bench_memory(report)
        row = report["steps"]["peak memory of the whole flow"]
        print(f"peak memory of the whole flow: original {row['original']['peak_mb']} MB, ours {row['ours']['peak_mb']} MB")
    if "gpu" in steps:
        bench_gpu(report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="timed runs of each way per step")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "bench.json")
    parser.add_argument("--only", nargs="+", choices=STEPS, default=list(STEPS), help="run only these steps")
    parser.add_argument("--busy-neighbour", action="store_true",
                        help="time everything while another process loads one core a third of the time")
    args = parser.parse_args()
    import torch

    report = {
        "machine": {"cpu": cpu_name(), "cores": cpu_cores(),
                    "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__},
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "steps": {},
    }
    import onnxruntime

    report["machine"]["onnxruntime"] = onnxruntime.__version__
    report["busy_neighbour"] = args.busy_neighbour
    with busy_neighbour(args.busy_neighbour):
        run_steps(args.only, args.repeats, report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"report written to {args.json}\n")
    print(markdown_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
