"""The real `mlflow models serve` process answering real MIT-BIH beats and bad requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests

from arritmias.tracking import registry, runs
from arritmias.data.beats import build_beats
from arritmias.model.detector import Detector
from arritmias.model.contract import MAX_BATCH, parse_request
from arritmias.errors import DataError
from tests.conftest import ROOT, free_port, run_cli

pytestmark = pytest.mark.slow
MODEL_URI = "models:/ECG_Arritmias_NvsV@production"
LIMIT_MB = 2  # the test server's body limit (default 32): small enough to probe with a few MB


@pytest.fixture(scope="module")
def beats(mitdb, cache_dir):
    b = build_beats(mitdb, ["233"], cache_dir=cache_dir, progress=False)
    pick = np.r_[np.flatnonzero(b.aami == "V")[:10], np.flatnonzero(b.aami == "N")[:10]]
    return b.windows[pick].astype(float), b.rr[pick].astype(float), b.context.select(pick)


@pytest.fixture(scope="module")
def server(trained, store, tmp_path_factory):
    """`arritmias serve` (a thin wrapper over `mlflow models serve`) on a free loopback port."""
    runs.use_tracking(store)
    registry.promote(trained.registered_version)
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "arritmias.cli", "serve", "--port", str(port),
                                 "--tracking-uri", store, "--max-request-mb", str(LIMIT_MB)], stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-3000:]}")
        time.sleep(1)
    else:
        pytest.fail(f"server did not answer /ping: {log.read_text()[-3000:]}")
    yield url
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def detector(trained, store, tmp_path_factory):
    runs.use_tracking(store)
    path = mlflow.artifacts.download_artifacts(run_id=trained.run_id, artifact_path="model/artifacts/detector",
                                               dst_path=str(tmp_path_factory.mktemp("det")))
    return Detector.load(Path(path))


def _post(url, body, raw=False):
    return requests.post(f"{url}/invocations", data=body if raw else json.dumps(body),
                         headers={"Content-Type": "application/json"}, timeout=30)


def test_three_request_forms_match_in_process(server, beats, detector):
    """The seed contract (sig + rr, no context) answers exactly as the Detector does for beats alone."""
    windows, rr, _ = beats
    expected = detector.decide(windows, rr)
    bodies = {
        "instances": {"instances": [{"sig": w.tolist(), "rr": r.tolist()} for w, r in zip(windows, rr)]},
        "dataframe_records": {"dataframe_records": [{"sig": w.tolist(), "rr": r.tolist()} for w, r in zip(windows, rr)]},
        "inputs": {"inputs": {"sig": windows.tolist(), "rr": rr.tolist()}},
    }
    for form, body in bodies.items():
        resp = _post(server, body)
        assert resp.status_code == 200, (form, resp.text[:500])
        preds = resp.json()["predictions"]
        assert len(preds) == len(windows)
        np.testing.assert_allclose([p["prob_v"] for p in preds], expected.prob, atol=1e-5, err_msg=form)
        assert [p["label"] for p in preds] == expected.labels().tolist()
        # Beats judged one by one: the class is the label (S needs the rhythm around the beat), P(S) null.
        assert [p["class"] for p in preds] == expected.labels().tolist()
        assert all(p["prob_s"] is None for p in preds)
        assert [p["ruleguard_changed"] for p in preds] == expected.ruleguard_changed.tolist()
        assert not any(p["context_used"] for p in preds)


def test_context_request_gets_the_context_answer(server, beats, detector):
    """With ctx_sig/ctx_rr the server answers as the Detector does with record context; beats of one request may
    mix both paths."""
    windows, rr, ctx = beats
    expected = detector.decide(windows, rr, ctx)
    rows = [{"sig": w.tolist(), "rr": r.tolist(), "ctx_sig": t.astype(float).tolist(), "ctx_rr": float(u)}
            for w, r, t, u in zip(windows, rr, ctx.template, ctx.rr_usual)]
    for form, body in {"instances": {"instances": rows}, "dataframe_records": {"dataframe_records": rows}}.items():
        resp = _post(server, body)
        assert resp.status_code == 200, (form, resp.text[:500])
        preds = resp.json()["predictions"]
        np.testing.assert_allclose([p["prob_v"] for p in preds], expected.prob, atol=1e-5, err_msg=form)
        assert [p["label"] for p in preds] == expected.labels().tolist()
        assert [p["class"] for p in preds] == expected.labels().tolist() and all(p["prob_s"] is None for p in preds)
        assert all(p["context_used"] for p in preds)
    mixed = [rows[0], {"sig": rows[1]["sig"], "rr": rows[1]["rr"]}]
    resp = _post(server, {"dataframe_records": mixed})
    assert resp.status_code == 200, resp.text[:500]
    assert [p["context_used"] for p in resp.json()["predictions"]] == [True, False]


BAD = {
    "short window": ({"instances": [{"sig": [0.1] * 100, "rr": [0.8, 0.8, 1.0]}]}, "sig of beat 0: expected 360"),
    "NaN": ('{"instances": [{"sig": [NaN' + ", 0.1" * 359 + '], "rr": [0.8, 0.8, 1.0]}]}', "NaN, infinite"),
    "infinite": ('{"instances": [{"sig": [Infinity' + ", 0.1" * 359 + '], "rr": [0.8, 0.8, 1.0]}]}',
                 "NaN, infinite"),
    "missing rr": ({"instances": [{"sig": [0.1] * 360}]}, "missing field(s) ['rr']"),
    "non-numeric rr": ({"dataframe_records": [{"sig": [0.1] * 360, "rr": ["a", "b", "c"]}]},
                       "rr of beat 0: values must be numbers"),
    "scalar rr": ({"dataframe_records": [{"sig": [0.1] * 360, "rr": 0.8}]}, "rr of beat 0: expected a list"),
    "empty batch": ({"instances": []}, "empty batch"),
    "null sig": ({"instances": [{"sig": None, "rr": [0.8, 0.8, 1.0]}]}, "sig of beat 0: expected a list of 360"),
    "dict sig": ({"instances": [{"sig": {"a": 1}, "rr": [0.8, 0.8, 1.0]}]}, "sig of beat 0: expected a list"),
    "string numbers": ({"dataframe_records": [{"sig": ["0.1"] * 360, "rr": [0.8, 0.8, 1.0]}]},
                       "values must be numbers"),
    "beyond float32": ({"instances": [{"sig": [1e39] + [0.1] * 359, "rr": [0.8, 0.8, 1.0]}]}, "float32"),
    "ratio disagrees": ({"instances": [{"sig": [0.1] * 360, "rr": [0.8, 0.8, -5]}]}, "disagrees"),
    "short context": ({"instances": [{"sig": [0.1] * 360, "rr": [0.8, 0.8, 1.0], "ctx_sig": [0.1] * 10,
                                      "ctx_rr": 0.8}]}, "ctx_sig of beat 0: expected 360"),
    "negative usual RR": ({"instances": [{"sig": [0.1] * 360, "rr": [0.8, 0.8, 1.0], "ctx_sig": [0.1] * 360,
                                          "ctx_rr": -1}]}, "ctx_rr of beat 0: the usual RR must be positive"),
    "half a context": ({"dataframe_records": [{"sig": [0.1] * 360, "rr": [0.8, 0.8, 1.0], "ctx_rr": 0.8}]},
                       "has 'ctx_rr' but no 'ctx_sig'"),
    "not json": ("this is not json", "valid JSON"),
    "two forms": ({"instances": [{"sig": [0.1] * 360, "rr": [0.8, 0.8, 1.0]}], "inputs": {"sig": [[0.1] * 360]}},
                  "exactly one of"),
    "a bare list": ([{"sig": [0.1] * 360, "rr": [0.8, 0.8, 1.0]}], "exactly one of"),
    "deeply nested": ('{"instances": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than the parser allows"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_requests_get_4xx_naming_the_field(server, case):
    body, needle = BAD[case]
    resp = _post(server, body, raw=isinstance(body, str))
    assert 400 <= resp.status_code < 500, resp.text[:300]
    message = resp.json()["message"]
    assert needle in message
    assert "prob_v" not in resp.text and "stack_trace" not in resp.json() and "Traceback" not in resp.text
    assert "\n" not in message and len(message) < 400  # one line, not a dump of the request
    # The server keeps serving afterwards.
    ok = _post(server, {"instances": [{"sig": [0.0] * 360, "rr": [0.8, 0.8, 1.0]}]})
    assert ok.status_code == 200 and ok.json()["predictions"][0]["label"] in ("N", "V")


def test_body_over_the_limit_gets_413_and_the_server_keeps_serving(server, beats):
    windows, rr, _ = beats
    row = {"sig": windows[0].tolist(), "rr": rr[0].tolist()}
    one = len(json.dumps(row))
    fits = {"instances": [row] * int(0.8 * LIMIT_MB * 2**20 / one)}
    resp = _post(server, fits)
    assert resp.status_code == 200 and len(resp.json()["predictions"]) == len(fits["instances"])
    too_big = {"instances": [row] * int(1.3 * LIMIT_MB * 2**20 / one)}
    resp = _post(server, too_big)
    assert resp.status_code == 413 and "split the beats into several requests" in resp.json()["message"]
    assert _post(server, {"instances": [row]}).status_code == 200


def test_oversized_batch_names_the_limit():
    rows = {"sig": np.zeros((MAX_BATCH + 1, 360)), "rr": np.full((MAX_BATCH + 1, 3), 0.8)}
    with pytest.raises(DataError, match=f"limit of {MAX_BATCH}"):
        parse_request(rows, 360)


def test_serve_refuses_a_taken_port(server, store):
    port = server.rsplit(":", 1)[1]
    proc = run_cli("serve", "--port", port, "--tracking-uri", store, timeout=60)
    assert proc.returncode == 2 and f"port {port}" in proc.stderr and "Traceback" not in proc.stderr


def _scrape(url: str) -> dict:
    """``{(metric sample name, sorted labels): value}`` from /metrics, read with the client library's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    resp = requests.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def test_metrics_count_requests_beats_labels_and_latency_across_workers(server, beats, trained):
    windows, rr, _ = beats

    def total(samples, name, **labels):
        return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())

    before = _scrape(server)
    called_v = 0
    for k in range(4):  # two workers: the counts must add up whichever worker answered
        rows = slice(5 * k, 5 * k + 5)
        resp = _post(server, {"instances": [{"sig": w.tolist(), "rr": r.tolist()}
                                            for w, r in zip(windows[rows], rr[rows])]})
        assert resp.status_code == 200
        called_v += sum(p["label"] == "V" for p in resp.json()["predictions"])
    assert _post(server, {"instances": [{"sig": [0.1] * 10, "rr": [0.8, 0.8, 1.0]}]}).status_code == 400
    after = _scrape(server)
    version = str(trained.registered_version)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("arritmias_requests_total", outcome="ok", model_version=version, arm="champion") == 4
    assert delta("arritmias_requests_total", outcome="bad_request") == 1
    assert delta("arritmias_beats_total") == 20 and delta("arritmias_beats_total", label="V") == called_v
    assert delta("arritmias_prob_v_count") == 20
    assert delta("arritmias_request_seconds_count") == 5
    rate = total(after, "arritmias_model_training_v_rate", model_version=version)
    assert 0.0 < rate < 0.5  # the V share of the shrunk training's beats, from the run's metrics
    time.sleep(2.5)  # the live drift window is updated once a second, off the response path
    drift = {dict(ls)["feature"]: v for (n, ls), v in _scrape(server).items() if n == "arritmias_feature_drift"}
    assert "ptp_mv" in drift and "corr_median_beat" not in drift and all(v >= 0 for v in drift.values())


def test_content_types_and_encodings_get_json_answers_naming_the_model(server, trained):
    """No Content-Type, an unsupported one, a quoted charset, gzip (the limit counts decoded bytes), and every
    answer names the model version that made it."""
    import gzip

    one = json.dumps({"instances": [{"sig": [0.0] * 360, "rr": [0.8, 0.8, 1.0]}]}).encode()
    url = f"{server}/invocations"

    def post(body, **headers):
        return requests.post(url, data=body, headers=headers, timeout=30)

    cases = {
        "no header": (post(one), 415, "no Content-Type header"),
        "text/plain": (post(one, **{"Content-Type": "text/plain"}), 415, "'text/plain' is not supported"),
        "latin-1": (post(one, **{"Content-Type": "application/json; charset=latin-1"}), 415, "charset 'latin-1'"),
        "brotli": (post(one, **{"Content-Type": "application/json", "Content-Encoding": "br"}), 415,
                   "Content-Encoding 'br' is not supported"),
        "bad gzip": (post(b"\x1f\x8b not gzip", **{"Content-Type": "application/json", "Content-Encoding": "gzip"}),
                     400, "not valid gzip"),
        # 20 MB of spaces that compress to a few kB: refused at the limit, never expanded whole.
        "gzip bomb": (post(gzip.compress(b'{"instances": [' + b" " * (10 * LIMIT_MB * 2**20) + b"]}"),
                           **{"Content-Type": "application/json", "Content-Encoding": "gzip"}), 413,
                      "after gzip decoding"),
    }
    for name, (resp, status, needle) in cases.items():
        assert resp.status_code == status, (name, resp.status_code, resp.text[:300])
        assert resp.headers["content-type"] == "application/json" and needle in resp.json()["message"], name
        assert resp.headers["x-model-version"] == str(trained.registered_version), name
    fine = {"quoted charset": post(one, **{"Content-Type": 'application/json; charset="UTF-8"'}),
            "gzip": post(gzip.compress(one), **{"Content-Type": "application/json", "Content-Encoding": "gzip"})}
    for name, resp in fine.items():
        assert resp.status_code == 200, (name, resp.text[:300])
        assert resp.json()["predictions"][0]["label"] in ("N", "V"), name
        assert resp.headers["x-model-version"] == str(trained.registered_version)
        assert resp.headers["x-model-run-id"] == trained.run_id
    assert requests.get(f"{server}/nowhere", timeout=10).json()["error_code"] == "NOT_FOUND"


def living_in_session(sid: int, wait_s: float = 10.0) -> list[str]:
    """``ps`` lines of the processes of session ``sid`` still alive (zombies are dead: a container's PID 1 may
    never reap them) after up to ``wait_s`` seconds."""
    deadline = time.time() + wait_s
    while True:
        rows = subprocess.run(["ps", "-eo", "sid=,stat=,pid=,args="], capture_output=True, text=True).stdout
        left = [r.strip() for r in rows.splitlines() if r.split()[0] == str(sid) and not r.split()[1].startswith("Z")]
        if not left or time.time() > deadline:
            return left
        time.sleep(0.5)


def test_sigterm_to_serve_stops_every_worker_and_frees_the_port(trained, store):
    """What systemd, Docker and Kubernetes do: SIGTERM to the process they started, nothing else."""
    runs.use_tracking(store)
    registry.promote(trained.registered_version)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "arritmias.cli", "serve", "--port", str(port), "--workers", "2",
                             "--tracking-uri", store], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(1)
    try:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        proc.send_signal(15)  # the parent only: its group must follow
        out, _ = proc.communicate(timeout=40)
        assert proc.returncode == 0, out[-3000:]
        assert f"(version {trained.registered_version})" in out
        left = living_in_session(proc.pid)  # no uvicorn master, worker or resource tracker left
        assert not left, left
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/ping", timeout=2)
    finally:
        for row in living_in_session(proc.pid, wait_s=0):
            try:
                os.kill(int(row.split()[2]), 9)
            except ProcessLookupError:
                pass


def test_promote_says_running_servers_keep_their_version(server, trained, store):
    proc = run_cli("promote", "--version", str(trained.registered_version), "--tracking-uri", store)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "it already was" in proc.stdout and "keep the version they loaded" in proc.stdout
