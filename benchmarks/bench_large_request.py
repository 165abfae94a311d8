"""Benchmark: the largest request the server takes, and a too-large one, while single beats keep coming.

Targets (issue 13): a request at the documented limit (`--max-request-mb`, default 32 MiB: about 10,000 real
beats) is answered with server memory <= 1.5 GB above idle; single-beat requests sent meanwhile keep p99 <=
500 ms; a 100,000-beat body is refused with 413 without the server reading it whole.

    python benchmarks/bench_large_request.py [--model-uri URI --tracking-uri URI] [--data-dir DIR]

Without --model-uri a model of the default architecture is trained for 2 epochs into a temporary store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.data.beats import build_beats  # noqa: E402
from arritmias.data.cache import default_cache_dir  # noqa: E402
from arritmias.data.records import resolve_data_dir  # noqa: E402
from arritmias.serving.guard import DEFAULT_MAX_BYTES  # noqa: E402
from benchmarks.bench_serving import start_server  # noqa: E402
from benchmarks.common import quick_model, write_results  # noqa: E402
from tests.conftest import free_port  # noqa: E402

TARGETS = {"memory_above_idle_mb": 1536, "single_beat_p99_ms_during": 500}


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (MB), from /proc."""
    total, pids = 0, [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-uri")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--data-dir")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default: 2, as serve)")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    beats = build_beats(data_dir, ["119", "208", "233"], cache_dir=default_cache_dir(), progress=False)
    rows = [{"sig": w.astype(float).tolist(), "rr": r.astype(float).tolist(), "ctx_sig": t.astype(float).tolist(),
             "ctx_rr": float(u)} for w, r, t, u in zip(beats.windows, beats.rr, beats.template, beats.rr_usual)]
    per_beat = len(json.dumps(rows[0]))
    n_max = int(DEFAULT_MAX_BYTES * 0.98 / (per_beat + 2))
    large = json.dumps({"instances": [rows[i % len(rows)] for i in range(n_max)]})
    huge_beats = 100_000
    single = json.dumps({"instances": [rows[0]]})
    with tempfile.TemporaryDirectory() as tmp:
        store = args.tracking_uri or f"sqlite:///{tmp}/mlflow.db"
        model_uri = args.model_uri or quick_model(data_dir, store)
        port = free_port()
        proc = start_server(model_uri, store, port, Path(tmp) / "server.log", args.workers)
        url = f"http://127.0.0.1:{port}/invocations"
        try:
            session = requests.Session()
            for _ in range(20):  # warm: the traced graph, the first allocations
                session.post(url, data=single, headers={"Content-Type": "application/json"}, timeout=30)
            time.sleep(1)
            idle = rss_mb(proc.pid)
            peak, lat, stop = [idle], [], threading.Event()

            def sample():
                while not stop.is_set():
                    peak.append(rss_mb(proc.pid))
                    time.sleep(0.05)

            def singles():
                s = requests.Session()
                while not stop.is_set():
                    t0 = time.perf_counter()
                    r = s.post(url, data=single, headers={"Content-Type": "application/json"}, timeout=30)
                    lat.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text[:200]

            threads = [threading.Thread(target=sample), threading.Thread(target=singles)]
            for t in threads:
                t.start()
            large_s, statuses = [], []
            for _ in range(3):
                t0 = time.perf_counter()
                r = requests.post(url, data=large, headers={"Content-Type": "application/json"}, timeout=300)
                large_s.append(time.perf_counter() - t0)
                statuses.append(r.status_code)
            t0 = time.perf_counter()
            body = b'{"instances": [' + b",".join([json.dumps(rows[0]).encode()] * huge_beats) + b"]}"
            r = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=300)
            huge = {"beats": huge_beats, "bytes": len(body), "status": r.status_code,
                    "seconds": round(time.perf_counter() - t0, 2), "message": r.json().get("message", "")}
            stop.set()
            for t in threads:
                t.join()
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=60)
    figures = {
        "largest_request": {"beats": n_max, "bytes": len(large), "statuses": statuses,
                            "seconds_each": [round(s, 2) for s in large_s],
                            "beats_per_s": round(n_max / float(np.median(large_s)))},
        "too_large_request": huge, "server_idle_mb": round(idle), "server_peak_mb": round(max(peak)),
        "memory_above_idle_mb": round(max(peak) - idle), "workers": args.workers,
        "single_beats_during": {"requests": len(lat), "p50_ms": round(float(np.percentile(lat, 50)), 1),
                                "p99_ms": round(float(np.percentile(lat, 99)), 1)},
        "targets": TARGETS,
    }
    figures["targets_met"] = {"memory_above_idle_mb": figures["memory_above_idle_mb"] <= TARGETS["memory_above_idle_mb"],
                              "single_beat_p99_ms_during": figures["single_beats_during"]["p99_ms"]
                              <= TARGETS["single_beat_p99_ms_during"],
                              "largest_answered": all(s == 200 for s in statuses), "too_large_413": huge["status"] == 413}
    path = write_results("large_request", figures)
    print(f"largest request: {n_max} beats ({len(large) / 2**20:.1f} MiB) -> {statuses}, "
          f"{figures['largest_request']['seconds_each']} s; 100,000 beats -> {huge['status']} in {huge['seconds']} s")
    print(f"server memory: idle {idle:.0f} MB, peak {max(peak):.0f} MB (+{max(peak) - idle:.0f}, target <= "
          f"{TARGETS['memory_above_idle_mb']}); single beats meanwhile: p50 "
          f"{figures['single_beats_during']['p50_ms']} ms, p99 {figures['single_beats_during']['p99_ms']} ms "
          f"(target <= {TARGETS['single_beat_p99_ms_during']})")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
