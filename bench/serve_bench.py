#!/usr/bin/env python3
"""The HTTP service under load against the model in-process, in one run on the same photo:

    .venv/bin/python bench/serve_bench.py [--seconds 20] [--clients 1,4,8]

The limit: `SynergyNet().predict` on img/trump_hillary.jpg (two faces, 720p) called back
to back in this process (its latency, and its throughput: it uses every core inside each
call). The service: `python app.py --no-page` (same weights, same backend), to which 1, 4
and 8 clients (threads, each on one keep-alive connection) post the same photo at
/v1/faces, `--seconds` each; the limit and the one client take turns of 5 s so that a
neighbour's load falls on both alike. Reported: requests/s, latency p50/p95/p99, errors
(anything but a 200), and the server's resident memory (sampled every 0.2 s).

Goals: at 1 client the service adds at most 15 % to the in-process latency
(p50); at 8 clients at least 90 % of the in-process throughput; no error; memory flat
(the heaviest phase, run twice, ends the second time within 10 % of the first). The clients run on the same
machine and take some of its cores; the load average before and after is reported, as
neighbours on a shared machine slow both sides. JSON report in bench/results/serve_bench.json.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PHOTO = "img/trump_hillary.jpg"
MAX_OVERHEAD = 0.15
MIN_THROUGHPUT = 0.90
MAX_MEMORY_GROWTH = 0.10
ROUND_S = 5.0
BOUNDARY = "synergynet-bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def summary(latencies: list[float], seconds: float, errors: int) -> dict:
    return {"requests": len(latencies), "errors": errors, "requests_per_s": round(len(latencies) / seconds, 2),
            "p50_ms": round(1000 * percentile(latencies, 50), 1), "p95_ms": round(1000 * percentile(latencies, 95), 1),
            "p99_ms": round(1000 * percentile(latencies, 99), 1)}


class InProcess:
    """The limit: `SynergyNet().predict` on the photo, back to back."""

    def __init__(self, weights: str | None):
        from synergy3DMM import SynergyNet

        self.model = SynergyNet(weights)
        self.path = str(REPO / PHOTO)
        for _ in range(3):
            self.model.predict(self.path)

    def run(self, seconds: float) -> list[float]:
        latencies, start = [], time.perf_counter()
        while time.perf_counter() - start < seconds:
            began = time.perf_counter()
            self.model.predict(self.path)
            latencies.append(time.perf_counter() - began)
        return latencies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, weights: str | None, log: Path):
        self.port = free_port()
        command = [sys.executable, str(REPO / "app.py"), "--no-page", "--port", str(self.port)]
        if weights:
            command += ["-w", weights]
        self.log = open(log, "w")
        self.process = subprocess.Popen(command, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {log}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        self.log.close()


def body() -> tuple[bytes, str]:
    data = (REPO / PHOTO).read_bytes()
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{Path(PHOTO).name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


def load(server: Server, clients: int, seconds: float) -> tuple[list[float], int, list[float]]:
    """`clients` posting the photo for `seconds`: the latencies of the 200s, the count of
    anything else, and the server's memory (MB) every 0.2 s."""
    payload, kind = body()
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    memory: list[float] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        while time.perf_counter() < stop:
            began = time.perf_counter()
            try:
                connection.request("POST", "/v1/faces", body=payload, headers={"Content-Type": kind})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            took = time.perf_counter() - began
            with lock:
                if ok:
                    latencies.append(took)
                else:
                    errors[0] += 1

    def sample() -> None:
        while time.perf_counter() < stop:
            memory.append(rss_mb(server.process.pid))
            time.sleep(0.2)

    threads = [threading.Thread(target=client) for _ in range(clients)] + [threading.Thread(target=sample)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0], memory


def phase(clients: int, latencies: list[float], seconds: float, errors: int, memory: list[float]) -> dict:
    result = summary(latencies, seconds, errors)
    result.update(clients=clients, rss_start_mb=round(memory[0], 1), rss_peak_mb=round(max(memory), 1),
                  rss_end_mb=round(memory[-1], 1))
    return result


def _timed(load_phase, server: Server, clients: int, seconds: float) -> tuple[list[float], float, int, list[float]]:
    start = time.perf_counter()
    latencies, errors, memory = load_phase(server, clients, seconds)
    return latencies, time.perf_counter() - start, errors, memory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase (default %(default)s)")
    parser.add_argument("--clients", default="1,4,8", help="concurrent clients per phase (default %(default)s)")
    parser.add_argument("-w", "--weights", default=None, help="checkpoint (default: as app.py)")
    args = parser.parse_args()
    clients = [int(n) for n in args.clients.split(",")]
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    limit_model = InProcess(args.weights)
    server = Server(args.weights, out / "serve_bench_server.log")
    try:
        # the limit and one client in turns of ROUND_S, so that a neighbour's load falls on both alike
        rounds = max(1, round(args.seconds / ROUND_S))
        alone, single, single_errors, single_memory = [], [], 0, []
        for _ in range(rounds):
            alone += limit_model.run(args.seconds / rounds)
            latencies, errors, memory = load(server, 1, args.seconds / rounds)
            single, single_errors, single_memory = single + latencies, single_errors + errors, single_memory + memory
        limit = summary(alone, args.seconds, 0)
        print(f"in-process predict: {limit['requests_per_s']:.2f}/s, p50 {limit['p50_ms']} ms, "
              f"p95 {limit['p95_ms']} ms", flush=True)
        phases = []
        for n in clients + [max(clients)]:  # the heaviest again: its memory must not have grown
            result = (phase(1, single, args.seconds, single_errors, single_memory) if n == 1 and not phases
                      else phase(n, *_timed(load, server, n, args.seconds)))
            phases.append(result)
            print(f"{n} client(s): {result['requests_per_s']:.2f}/s, p50 {result['p50_ms']} ms, "
                  f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, {result['errors']} error(s), RSS "
                  f"{result['rss_start_mb']} -> peak {result['rss_peak_mb']} -> {result['rss_end_mb']} MB", flush=True)
    finally:
        server.stop()
    load_after = os.getloadavg()
    single = next((p for p in phases if p["clients"] == 1), None)
    most = phases[-1]
    goals = {
        "overhead_at_1_client": None if single is None else round(single["p50_ms"] / limit["p50_ms"] - 1, 3),
        f"throughput_at_{most['clients']}_clients": round(most["requests_per_s"] / limit["requests_per_s"], 3),
        "errors": sum(p["errors"] for p in phases),
        "memory_growth": round(phases[-1]["rss_end_mb"] / phases[-2]["rss_end_mb"] - 1, 3),
    }
    met = ((goals["overhead_at_1_client"] is None or goals["overhead_at_1_client"] <= MAX_OVERHEAD)
           and goals[f"throughput_at_{most['clients']}_clients"] >= MIN_THROUGHPUT and goals["errors"] == 0
           and goals["memory_growth"] <= MAX_MEMORY_GROWTH)
    report = {"photo": PHOTO, "seconds": args.seconds, "cores": os.cpu_count(), "load_before": load_before,
              "load_after": load_after, "in_process": limit, "service": phases, "goals": goals, "met": met}
    (out / "serve_bench.json").write_text(json.dumps(report, indent=1) + "\n")
    print("| clients | requests/s | vs in-process | p50 ms | p95 ms | p99 ms | errors | RSS peak MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| in-process | {limit['requests_per_s']:.2f} | 1.00 | {limit['p50_ms']} | {limit['p95_ms']} | "
          f"{limit['p99_ms']} | 0 | |")
    for p in phases:
        print(f"| {p['clients']} | {p['requests_per_s']:.2f} | {p['requests_per_s'] / limit['requests_per_s']:.2f} | "
              f"{p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | {p['errors']} | {p['rss_peak_mb']} |")
    print(f"goals {'met' if met else 'NOT met'}: {goals}; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
