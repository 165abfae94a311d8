"""Benchmark: serving latency and load, batch throughput of the pyfunc model, whole-record analysis time.

Targets (issue 4): single-beat requests over loopback p50 <= 25 ms and p99 <= 100 ms; 60 s from 16 concurrent
clients with zero errors; batch prediction through the pyfunc model (preprocessing included) >= 50,000 beats/s;
a 30-minute MIT-BIH record analysed end to end in <= 2 s.

    python benchmarks/bench_serving.py [--model-uri URI] [--load-seconds 60] [--data-dir DIR]

Without --model-uri it trains a model of the default architecture for 2 epochs into a temporary store (speed
depends on the architecture, not on how long it trained).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.tracking import runs  # noqa: E402
from arritmias.analysis.recording import analyze_signal, read_signal  # noqa: E402
from arritmias.data.beats import build_beats  # noqa: E402
from arritmias.data.cache import default_cache_dir  # noqa: E402
from arritmias.data.records import resolve_data_dir  # noqa: E402
from arritmias.serving.pyfunc import serve_command, serve_env  # noqa: E402
from benchmarks.common import quick_model, timed, write_results  # noqa: E402

TARGETS = {"p50_ms": 25.0, "p99_ms": 100.0, "batch_beats_per_s": 50_000, "analyze_s": 2.0}


def start_server(model_uri: str, store: str, port: int, log: Path, workers: int = 2) -> subprocess.Popen:
    cmd = serve_command(model_uri, "127.0.0.1", port, workers)
    runs.use_tracking(store)
    env = serve_env(store, model_uri, log.parent / "served-model")
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.5)
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
    raise RuntimeError(f"model server did not start: {log.read_text()[-2000:]}")


def start_without_onnx(uri: str, store: str, port: int, tmp: Path, body: str) -> float:
    """Seconds from process start to the first answer for the same model with its ONNX graph removed: what serving
    cost before issue 15 (the network in Keras, TensorFlow imported by every worker)."""
    import mlflow

    from arritmias.model.detector import ONNX_FILE

    copy = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp / "keras-only")))
    for onnx in copy.rglob(ONNX_FILE):
        onnx.unlink()
    (tmp / "keras-only-server").mkdir()  # its own download folder: the first server's holds the ONNX graph
    t0 = time.perf_counter()
    server = start_server(str(copy), store, port, tmp / "keras-only-server" / "serve.log")
    try:
        latency(f"http://127.0.0.1:{port}/invocations", body, 1)
        return time.perf_counter() - t0
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def latency(url: str, body: str, n: int) -> list[float]:
    s = requests.Session()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = s.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        out.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return out


def load(url: str, bodies: list[str], clients: int, seconds: float) -> dict:
    """``clients`` threads posting single-beat requests for ``seconds``; bounded in time, stops by itself."""
    stop = time.time() + seconds
    lat, errors, lock = [], [0], threading.Lock()

    def client(i):
        s = requests.Session()
        k = i
        while time.time() < stop:
            t0 = time.perf_counter()
            try:
                r = s.post(url, data=bodies[k % len(bodies)], headers={"Content-Type": "application/json"},
                           timeout=10)
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                lat.append((time.perf_counter() - t0) * 1000)
                errors[0] += 0 if ok else 1
            k += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"clients": clients, "seconds": seconds, "requests": len(lat), "errors": errors[0],
            "requests_per_s": round(len(lat) / seconds, 1), "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-uri")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    import mlflow

    from arritmias.model.detector import Detector

    with tempfile.TemporaryDirectory() as tmp:
        store = runs.use_tracking(args.tracking_uri or f"sqlite:///{tmp}/mlflow.db")
        uri = args.model_uri or quick_model(data_dir, store)
        beats = build_beats(data_dir, "DS2", cache_dir=default_cache_dir(), progress=False)
        nv = beats.select(np.isin(beats.aami, ("N", "V")))

        model = mlflow.pyfunc.load_model(uri)
        batch = {"sig": nv.windows[:50_000], "rr": nv.rr[:50_000]}
        model.predict(batch)
        batch_s, batch_runs, _ = timed(lambda: model.predict(batch), 3)
        # Issue 15's forms, 4,096 beats per call: numpy arrays, and a DataFrame of per-beat lists (what
        # mlflow.pyfunc users build), with record context.
        chunks = [slice(i, i + 4096) for i in range(0, 49_152, 4096)]
        arrays = [{"sig": nv.windows[c], "rr": nv.rr[c]} for c in chunks]
        frames = [pd.DataFrame({"sig": nv.windows[c].astype(float).tolist(), "rr": nv.rr[c].astype(float).tolist(),
                                "ctx_sig": nv.template[c].astype(float).tolist(),
                                "ctx_rr": nv.rr_usual[c].astype(float).tolist()}) for c in chunks]
        forms = {}
        for name, inputs in (("numpy_4096", arrays), ("dataframe_of_lists_4096_with_context", frames)):
            model.predict(inputs[0])
            forms[name] = round(49_152 / timed(lambda: [model.predict(x) for x in inputs], 3)[0])
        detector = Detector.from_model_uri(uri)
        x, rr = batch["sig"], batch["rr"]
        # The Detector called directly on its network's two runtimes: the ONNX graph in OpenVINO (what a loaded
        # model runs) and the Keras model as a traced TensorFlow graph.
        keras_path = Detector(detector.model, detector.threshold, detector.threshold_no_context, detector.guard,
                              detector.win, detector.fs, detector.uses_context)
        runtimes = {}
        for name, det in (("openvino", detector), ("tensorflow", keras_path)):
            det.decide(x[:4096], rr[:4096])
            runtimes[name] = round(50_000 / timed(lambda: det.decide(x, rr), 3)[0])
        runtime = detector.runtime
        from arritmias.model.preprocess import model_inputs

        prep_s, _, _ = timed(lambda: model_inputs(x, rr), 3)

        analyze_runs = []
        for rec in ("100", "119", "208"):
            signal = read_signal(data_dir / rec)
            analyze_runs.append(timed(lambda: analyze_signal(signal, detector), 3)[0])

        port = 5000 + os.getpid() % 1000
        bodies = [json.dumps({"instances": [{"sig": w.astype(float).tolist(), "rr": r.astype(float).tolist()}]})
                  for w, r in zip(nv.windows[:200], nv.rr[:200])]
        t_start = time.perf_counter()
        server = start_server(uri, store, port, Path(tmp) / "serve.log")
        try:
            url = f"http://127.0.0.1:{port}/invocations"
            latency(url, bodies[0], 1)
            start_s = time.perf_counter() - t_start  # process start (model already downloaded) to first answer
            latency(url, bodies[0], 20)  # warm-up
            lat = latency(url, bodies[1], 500)
            http_1000 = {}
            # Full float precision (~7.7 MB: what json.dumps of float64 arrays writes) and the signal at the
            # recordings' own resolution (MIT-BIH: 5 µV, so 3 decimals in mV; ~2.9 MB).
            for form, digits in (("full_precision", None), ("3_decimals", 3)):
                big = json.dumps({"instances": [
                    {"sig": (w.astype(float) if digits is None else np.round(w.astype(float), digits)).tolist(),
                     "rr": r.astype(float).tolist()} for w, r in zip(nv.windows[:1000], nv.rr[:1000])]})
                http_1000[form] = round(1000 / (sum(latency(url, big, 10)) / 10 / 1000))  # latency() gives ms
                http_1000[f"{form}_mb"] = round(len(big) / 1e6, 2)
            loaded = load(url, bodies, 16, args.load_seconds)
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
        start_keras_s = start_without_onnx(uri, store, port + 1, Path(tmp), bodies[0])

    figures = {
        "model_uri": uri if args.model_uri else "default architecture, 2 epochs (temporary)",
        "params": int(detector.model.count_params()),
        "network_runtime": runtime,
        "detector_beats_per_s_by_runtime": runtimes,
        "server_start_to_first_answer_s": round(start_s, 2),
        "server_start_to_first_answer_with_tensorflow_s": round(start_keras_s, 2),
        "single_beat_latency": {"requests": len(lat), "p50_ms": round(float(np.percentile(lat, 50)), 2),
                                "p99_ms": round(float(np.percentile(lat, 99)), 2)},
        "load_16_clients": loaded,
        "batch_beats_per_s": round(50_000 / batch_s), "batch_runs_s": [round(t, 3) for t in batch_runs],
        "pyfunc_beats_per_s_by_input": forms,
        "http_1000_beat_request_beats_per_s": http_1000,
        "preprocessing_beats_per_s": round(50_000 / prep_s),
        "analyze_30min_record_s": round(statistics.median(analyze_runs), 3),
        "analyze_runs_s": [round(t, 3) for t in analyze_runs],
        "targets": TARGETS,
    }
    figures["targets_met"] = {
        "p50_ms": figures["single_beat_latency"]["p50_ms"] <= TARGETS["p50_ms"],
        "p99_ms": figures["single_beat_latency"]["p99_ms"] <= TARGETS["p99_ms"],
        "load_zero_errors": loaded["errors"] == 0,
        "batch_beats_per_s": figures["batch_beats_per_s"] >= TARGETS["batch_beats_per_s"],
        "analyze_s": figures["analyze_30min_record_s"] <= TARGETS["analyze_s"],
    }
    path = write_results("serving", figures)
    sl = figures["single_beat_latency"]
    print(f"single-beat requests: p50 {sl['p50_ms']} ms, p99 {sl['p99_ms']} ms (targets 25 / 100 ms)")
    print(f"16 clients x {args.load_seconds:.0f} s: {loaded['requests']} requests, {loaded['errors']} errors, "
          f"{loaded['requests_per_s']} req/s, p50 {loaded['p50_ms']} ms, p99 {loaded['p99_ms']} ms")
    print(f"pyfunc batch predict: {figures['batch_beats_per_s']} beats/s (target 50,000); preprocessing alone "
          f"{figures['preprocessing_beats_per_s']} beats/s")
    print(f"pyfunc by input form, 4,096 beats a call: {forms} beats/s; one HTTP request of 1,000 beats: "
          f"{figures['http_1000_beat_request_beats_per_s']} beats/s")
    print(f"Detector directly, by network runtime: {runtimes} beats/s; served runtime {runtime}; server start to "
          f"first answer {figures['server_start_to_first_answer_s']} s "
          f"({figures['server_start_to_first_answer_with_tensorflow_s']} s for the same model without its ONNX graph, "
          "which loads TensorFlow)")
    print(f"analyze a 30-min record (model loaded): {figures['analyze_30min_record_s']} s (target 2 s)")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
