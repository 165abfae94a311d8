"""Benchmark: `arritmias serve --engine ray` (Ray Serve: champion, challenger, shadow, autoscaling).

Targets (issue 16): single-beat requests through the Ray ingress p50 <= 15 ms, p99 <= 60 ms; 16 clients x 60 s
with a 10 % challenger split and the shadow on: 0 errors, throughput reported next to `arritmias serve`'s (MLflow's
app, from benchmarks/results/serving.json, measured by bench_serving.py on the same machine); the shadow adds
<= 20 % to the champion's p50; the time from load start to a second champion replica serving is reported.

    python benchmarks/bench_ab_serving.py [--load-seconds 60] [--data-dir DIR]

A model of the default architecture is trained for 2 epochs into a temporary store and registered twice (v1
@production, v2 @challenger and @shadow): speed depends on the architecture, not on the weights. The same
single-beat bodies of DS2 record 233 are sent to a champion-only server and to the full one.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.data.records import resolve_data_dir  # noqa: E402
from benchmarks.bench_serving import latency, load  # noqa: E402
from benchmarks.common import cached_beats, registered_quick_models, write_results  # noqa: E402

TARGETS = {"p50_ms": 15.0, "p99_ms": 60.0, "errors": 0, "shadow_p50_overhead": 0.20}
RESULTS = Path(__file__).resolve().parent / "results"


def start(store: str, port: int, log_dir: Path, extra: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "arritmias.cli", "serve", "--engine", "ray", "--port", str(port),
                             "--tracking-uri", store, "--log-dir", str(log_dir), *extra],
                            stdout=(log_dir.parent / f"serve-{port}.log").open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                return proc
        except requests.RequestException:  # not listening yet, or the application still deploying
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server did not start: {(log_dir.parent / f'serve-{port}.log').read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=180)


def seconds_to_second_replica(url: str, bodies: list[str], limit_s: float = 120) -> float | None:
    """Load from 16 clients until /status shows 2 champion replicas; seconds from load start, None if never."""
    done = threading.Event()

    def client(k: int) -> None:
        s = requests.Session()
        while not done.is_set():
            s.post(f"{url}/invocations", data=bodies[k % len(bodies)], timeout=30,
                   headers={"Content-Type": "application/json"})
            k += 16

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(16)]
    for t in threads:
        t.start()
    t0, seconds = time.time(), None
    while time.time() - t0 < limit_s and seconds is None:
        if requests.get(f"{url}/status", timeout=10).json().get("champion", 0) >= 2:
            seconds = round(time.time() - t0, 1)
        time.sleep(0.25)
    done.set()
    for t in threads:
        t.join(timeout=60)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    from arritmias.tracking import registry
    from tests.conftest import free_port

    data_dir = resolve_data_dir(args.data_dir)
    beats = cached_beats(data_dir, ("233",))
    bodies = [json.dumps({"instances": [{"sig": beats.windows[i].astype(float).tolist(),
                                         "rr": beats.rr[i].astype(float).tolist()}]}) for i in range(200)]
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        registered_quick_models(data_dir, store, copies=2)
        registry.promote(2, "challenger")
        registry.promote(2, "shadow")
        figures = {}
        for name, extra in (("champion_only", ["--max-replicas", "1"]),
                            ("champion_and_shadow", ["--shadow", "shadow", "--max-replicas", "1"]),
                            ("split_0.1_and_shadow", ["--challenger", "challenger", "--split", "0.1",
                                                      "--shadow", "shadow", "--max-replicas", "2",
                                                      "--scale-down-after", "60"])):
            port = free_port()
            t0 = time.perf_counter()
            proc = start(store, port, Path(tmp) / name, extra)
            url = f"http://127.0.0.1:{port}"
            try:
                latency(f"{url}/invocations", bodies[0], 1)
                row = {"start_to_first_answer_s": round(time.perf_counter() - t0, 1)}
                latency(f"{url}/invocations", bodies[0], 30)  # warm-up
                lat = latency(f"{url}/invocations", bodies[1], 500)
                row["single_beat_p50_ms"] = round(float(np.percentile(lat, 50)), 2)
                row["single_beat_p99_ms"] = round(float(np.percentile(lat, 99)), 2)
                if name == "split_0.1_and_shadow":
                    row["seconds_to_second_champion_replica"] = seconds_to_second_replica(url, bodies)
                    row["load_16_clients"] = load(f"{url}/invocations", bodies, 16, args.load_seconds)
            finally:
                stop(proc)
            figures[name] = row
            print(name, row, flush=True)
    full, alone = figures["split_0.1_and_shadow"], figures["champion_only"]
    figures["shadow_p50_overhead"] = round(figures["champion_and_shadow"]["single_beat_p50_ms"]
                                           / alone["single_beat_p50_ms"] - 1, 3)
    mlflow_app = json.loads((RESULTS / "serving.json").read_text())
    figures["arritmias_serve_mlflow_app_16_clients"] = {**mlflow_app["load_16_clients"], "measured": mlflow_app["date"]}
    figures["targets"] = TARGETS
    figures["targets_met"] = {
        "p50_ms": full["single_beat_p50_ms"] <= TARGETS["p50_ms"],
        "p99_ms": full["single_beat_p99_ms"] <= TARGETS["p99_ms"],
        "errors": full["load_16_clients"]["errors"] == 0,
        "shadow_p50_overhead": figures["shadow_p50_overhead"] <= TARGETS["shadow_p50_overhead"]}
    print(f"Ray ingress, split 0.1 + shadow: single beat p50 {full['single_beat_p50_ms']} / p99 "
          f"{full['single_beat_p99_ms']} ms (champion alone {alone['single_beat_p50_ms']} / "
          f"{alone['single_beat_p99_ms']}; shadow adds {figures['shadow_p50_overhead']:.0%} to p50); "
          f"16 clients: {full['load_16_clients']['requests_per_s']} req/s, "
          f"{full['load_16_clients']['errors']} errors (MLflow app: "
          f"{mlflow_app['load_16_clients']['requests_per_s']} req/s); second champion replica after "
          f"{full['seconds_to_second_champion_replica']} s of load; targets met: {figures['targets_met']}")
    print(f"results written to {write_results('ab_serving', figures)}")


if __name__ == "__main__":
    main()
