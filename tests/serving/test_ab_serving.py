"""`arritmias serve --engine ray` for real: a local Ray, two registered versions from shrunk trainings, HTTP.

One server (champion @production v1, challenger and shadow v2, split 0.3, up to 2 replicas each) serves the tests
in this file in order; the last one stops it with SIGTERM in the middle of load and reads the prediction log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import requests

from tests.conftest import LENIENT_GATE, ROOT, SHRUNK, free_port, run_cli, wait_until_up

pytestmark = pytest.mark.slow
SPLIT = 0.3


@pytest.fixture(scope="module")
def ab_store(tmp_path_factory, mitdb, cache_dir):
    """A store of its own with two shrunk trainings (seeds 42 and 7): v1 @production, v2 @challenger and
    @shadow."""
    from arritmias.tracking import registry, runs
    from arritmias.training.train import train

    store = f"sqlite:///{tmp_path_factory.mktemp('ab') / 'mlflow.db'}"
    for seed in (42, 7):
        train(replace(SHRUNK, seed=seed), data_dir=mitdb, cache_dir=cache_dir, tracking=store,
              gate_thresholds=LENIENT_GATE, progress=False)
    runs.use_tracking(store)
    registry.promote(1)
    registry.promote(2, "challenger")
    registry.promote(2, "shadow")
    return store


@pytest.fixture(scope="module")
def ab_server(ab_store, tmp_path_factory):
    port, log_dir = free_port(), tmp_path_factory.mktemp("ablog") / "log"
    out = open(log_dir.parent / "serve.out", "w")
    proc = subprocess.Popen([sys.executable, "-m", "arritmias.cli", "serve", "--engine", "ray", "--port", str(port),
                             "--challenger", "challenger", "--split", str(SPLIT), "--shadow", "shadow",
                             "--max-replicas", "2", "--scale-down-after", "5", "--log-dir", str(log_dir),
                             "--tracking-uri", ab_store], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/ping", proc, timeout=240)
        yield {"url": url, "proc": proc, "log_dir": log_dir, "out": log_dir.parent / "serve.out"}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        out.close()


@pytest.fixture(scope="module")
def beats(mitdb, cache_dir):
    from arritmias.data.beats import build_beats

    return build_beats(mitdb, ("233",), 0, 360, 360.0, cache_dir, progress=False)


def _body(beats, rows, subject=None) -> dict:
    inst = [{"sig": beats.windows[i].tolist(), "rr": beats.rr[i].tolist(), "ctx_sig": beats.template[i].tolist(),
             "ctx_rr": float(beats.rr_usual[i]), "sample": int(beats.sample[i])} for i in rows]
    return {"instances": inst, **({"subject": subject} if subject is not None else {})}


def _versions(ab_store) -> dict:
    import mlflow

    from arritmias.model.detector import Detector

    mlflow.set_tracking_uri(ab_store)
    return {v: Detector.from_model_uri(f"models:/ECG_Arritmias_NvsV/{v}") for v in (1, 2)}


def test_answers_come_from_the_routed_model_and_bad_requests_get_400(ab_server, ab_store, beats):
    detectors = _versions(ab_store)
    rows = np.arange(0, 8)
    resp = requests.post(f"{ab_server['url']}/invocations", json=_body(beats, rows), timeout=30)
    assert resp.status_code == 200, resp.text
    preds = resp.json()["predictions"]
    version = preds[0]["model_version"]
    expected = detectors[version].decide(beats.windows[rows], beats.rr[rows], beats.context.select(rows))
    assert [p["label"] for p in preds] == expected.labels().tolist()
    assert np.max(np.abs(np.array([p["prob_v"] for p in preds]) - expected.prob)) <= 1e-5
    assert resp.json()["request_id"]
    bad = requests.post(f"{ab_server['url']}/invocations", json={"instances": [{"sig": [0.1] * 10,
                                                                               "rr": [0.8, 0.8, 1.0]}]}, timeout=30)
    assert bad.status_code == 400 and "sig of beat 0: expected 360" in bad.json()["message"]
    bad = requests.post(f"{ab_server['url']}/invocations", json={**_body(beats, [0]), "subject": [1]}, timeout=30)
    assert bad.status_code == 400 and "subject" in bad.json()["message"]


def test_split_share_within_binomial_bounds_and_subjects_stay_on_one_model(ab_server, beats):
    from arritmias.serving.ab import choose_arm

    s = requests.Session()
    n = 300
    versions = [s.post(f"{ab_server['url']}/invocations", json=_body(beats, [i]), timeout=30).json()["predictions"]
                [0]["model_version"] for i in range(n)]
    share = versions.count(2) / n
    sd = (SPLIT * (1 - SPLIT) / n) ** 0.5
    assert abs(share - SPLIT) < 4 * sd, share
    for k in range(12):
        subject = f"patient-{k}"
        seen = {s.post(f"{ab_server['url']}/invocations", json=_body(beats, [i], subject), timeout=30).json()
                ["predictions"][0]["model_version"] for i in range(5)}
        assert seen == {2 if choose_arm(subject, SPLIT, 0.0) == "challenger" else 1}


def test_champion_scales_to_two_replicas_under_load_and_back(ab_server, beats):
    url = ab_server["url"]
    bodies = [_body(beats, range(i, i + 50)) for i in range(0, 500, 50)]
    stop, failures, done = threading.Event(), [], []

    def client(k):
        s = requests.Session()
        while not stop.is_set():
            r = s.post(f"{url}/invocations", json=bodies[k % len(bodies)], timeout=60)
            (done if r.status_code == 200 else failures).append(r.status_code)
            k += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    t0 = time.time()
    for t in threads:
        t.start()
    try:
        peak = 1
        while time.time() - t0 < 120 and peak < 2:
            peak = max(peak, requests.get(f"{url}/status", timeout=10).json().get("champion", 0))
            time.sleep(0.5)
        scaled_after = time.time() - t0
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert peak == 2, f"champion never reached 2 replicas in {scaled_after:.0f} s"
    assert failures == [] and len(done) > 0
    t1 = time.time()
    while time.time() - t1 < 150 and requests.get(f"{url}/status", timeout=10).json().get("champion") != 1:
        time.sleep(1)
    assert requests.get(f"{url}/status", timeout=10).json()["champion"] == 1


def test_every_dashboard_query_returns_data_from_a_real_prometheus(ab_server, beats, tmp_path):
    """Prometheus scrapes the server's /metrics while split and shadow traffic runs; each panel's PromQL in the
    Grafana dashboard returns data, the alert rules load, and clean traffic fires none of them."""
    import json

    from tests.conftest import ROOT, start_prometheus

    rules = ROOT / "monitoring" / "prometheus" / "alerts.yml"
    prom, prom_url = start_prometheus(tmp_path / "prom", ab_server["url"].removeprefix("http://"), 1.0, rules)
    try:
        s, t0 = requests.Session(), time.time()
        while time.time() - t0 < 12:  # a dozen scrapes of steady traffic
            for rows in ([0, 1, 2], [3, 4]):
                assert s.post(f"{ab_server['url']}/invocations", json=_body(beats, rows), timeout=30).ok
        s.post(f"{ab_server['url']}/invocations", json={"instances": []}, timeout=30)  # one bad request
        time.sleep(3)
        dashboard = json.loads((ROOT / "monitoring" / "grafana" / "dashboards" / "arritmias.json").read_text())
        exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
        assert len(exprs) >= 8
        for expr in exprs:
            result = requests.get(f"{prom_url}/api/v1/query", params={"query": expr}, timeout=10).json()
            assert result["status"] == "success", (expr, result)
            assert result["data"]["result"], f"no data for {expr}"
        groups = requests.get(f"{prom_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        assert len(groups[0]["rules"]) >= 5 and all(r["health"] == "ok" for r in groups[0]["rules"])
        firing = requests.get(f"{prom_url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        assert [a for a in firing if a["state"] == "firing"] == []
    finally:
        prom.terminate()
        prom.wait(timeout=30)


def test_sigterm_mid_load_loses_no_logged_decision_and_the_report_reads_the_log(ab_server, ab_store, beats,
                                                                                   mitdb):
    from arritmias.serving.prediction_log import read_log

    url, answered, lock = ab_server["url"], {}, threading.Lock()
    stop = threading.Event()

    def client(k):
        s = requests.Session()
        while not stop.is_set():
            rows = range(10 * (k % 40), 10 * (k % 40) + 10)
            try:
                r = s.post(f"{url}/invocations", json=_body(beats, rows, "233"), timeout=30)
            except requests.RequestException:
                continue
            if r.status_code == 200:
                with lock:
                    answered[r.json()["request_id"]] = len(r.json()["predictions"])
            k += 8

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    time.sleep(3)
    ab_server["proc"].send_signal(signal.SIGTERM)  # the serving process only, as a supervisor does
    assert ab_server["proc"].wait(timeout=120) == 0, ab_server["out"].read_text()[-3000:]
    stop.set()
    for t in threads:
        t.join(timeout=60)
    log = read_log(ab_server["log_dir"])
    served = log[log["arm"] != "shadow"]
    counts = served.groupby("request_id").size()
    assert len(answered) > 10
    missing = [rid for rid, n in answered.items() if counts.get(rid, 0) != n]
    assert missing == [], f"{len(missing)} answered requests not (fully) in the log"
    shadow = log[log["arm"] == "shadow"]
    assert set(answered) <= set(shadow["request_id"])  # the shadow scored every answered request
    assert set(log["model_version"][log["arm"] == "champion"]) == {1}

    report = run_cli("ab-report", "--log", str(ab_server["log_dir"]), "--records", "233", "--data-dir", str(mitdb),
                     "--tracking-uri", ab_store)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "champion" in report.stdout and "shadow disagrees" in report.stdout and "ab_testing_ecg" in report.stdout
    assert "f1_V" in report.stdout
