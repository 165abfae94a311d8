"""Shared fixtures: where the real MIT-BIH copy lives, a per-session dataset cache, and CLI runners."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from arritmias.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _mitdb_dir() -> Path:
    env = os.environ.get("ARRITMIAS_DATA_DIR", "").strip()
    return Path(env) if env else SHARED / "mitdb"


@pytest.fixture(scope="session")
def mitdb() -> Path:
    """The real MIT-BIH copy (``$ARRITMIAS_DATA_DIR`` or ``../shared/mitdb``); a missing copy is an error."""
    path = _mitdb_dir()
    if not (path / "RECORDS").is_file():
        pytest.fail(f"MIT-BIH records not found at {path}: set ARRITMIAS_DATA_DIR to a copy of mitdb")
    return path


@pytest.fixture(scope="session")
def nstdb() -> Path:
    path = SHARED / "nstdb"
    if not (path / "bw.hea").is_file():
        pytest.fail(f"NSTDB noise records not found at {path}")
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One dataset cache for the whole test session, so each record set is built once."""
    env = os.environ.get("ARRITMIAS_CACHE_DIR", "").strip()
    return Path(env) if env else tmp_path_factory.mktemp("cache")


# Two records cross-validated in two folds (each rich in PVCs, each held out once), one epoch; 233 (DS2) tests.
# With the S answer (off by default), so analysis, batch scoring, reports and serving are tested with it.
SHRUNK = TrainConfig(train_records=("208", "119"), cv_folds=2, test_records=("233",), epochs_max=1, use_supra=True)
LENIENT_GATE = {"test_ec57_detected_veb_se": 0.0, "test_ec57_detected_veb_ppv": 0.0}
# The same as command-line options of `gate`, `train` and `ci-summary`.
LENIENT_GATE_ARGS = ["--min-ec57-detected-veb-se", "0", "--min-ec57-detected-veb-ppv", "0"]
# SHRUNK as command-line options, for tests that run `arritmias train` / `tune` in a process of their own.
SHRUNK_ARGS = ["--train-records", ",".join(SHRUNK.train_records), "--cv-folds", str(SHRUNK.cv_folds),
               "--test-records", ",".join(SHRUNK.test_records), "--epochs-max", str(SHRUNK.epochs_max), "--supra"]


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> str:
    """A real sqlite MLflow tracking store for the session."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def trained(store, mitdb, cache_dir):
    """One shrunk training into ``store``, registered as version 1 (a lenient gate, so it always registers)."""
    from arritmias.training.train import train

    return train(SHRUNK, data_dir=mitdb, cache_dir=cache_dir, tracking=store, tags={"purpose": "test"},
                 gate_thresholds=LENIENT_GATE, progress=False)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_records(src: Path, dst: Path, names: list[str]) -> Path:
    """Copy records ``names`` (all their files) into ``dst`` with a RECORDS listing; returns ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        for f in src.glob(f"{name}.*"):
            shutil.copy(f, dst / f.name)
    (dst / "RECORDS").write_text("".join(f"{n}\n" for n in names))
    return dst


# Records of MIT-BIH written as another recorder would: leads named as on a 12-lead machine (lead I stored first),
# 257 Hz like St Petersburg INCART, format 16. "II" carries MLII, "I" the record's other lead.
ANOTHER_DB_FS = 257.0
ANOTHER_DB_RECORDS = {"I100": "100", "I119": "119"}


@pytest.fixture(scope="session")
def another_db(mitdb, tmp_path_factory) -> Path:
    """A WFDB database of another recorder (:data:`ANOTHER_DB_RECORDS`, the first 12 minutes of each, annotations
    moved to 257 Hz: ``bench_recorder.rewrite``), with a RECORDS listing."""
    from benchmarks.bench_recorder import rewrite

    folder = tmp_path_factory.mktemp("another_db")
    for name, source in ANOTHER_DB_RECORDS.items():
        rewrite(mitdb, source, folder, ANOTHER_DB_FS, seconds=12 * 60, as_name=name)
    (folder / "RECORDS").write_text("".join(f"{n}\n" for n in ANOTHER_DB_RECORDS))
    return folder


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``arritmias ARGS`` in a fresh interpreter, as a user would; returns the completed process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "arritmias.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=timeout, input=input)


def synthetic_ecg(seconds: float, fs: float, hr_bpm: float = 72.0, seed: int = 0,
                  pvc_every: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Seeded synthetic lead: Gaussian P-QRS-T complexes at ``hr_bpm`` with small RR jitter, in mV.

    Every ``pvc_every``-th beat (0 = none) is a PVC: premature by 35 %, wide (QRS sigma x3), inverted T, then a
    compensatory pause. Returns ``(signal, r_samples, symbols)`` with signal shape (round(seconds*fs),).
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    sig = 0.02 * rng.standard_normal(n)
    rr0 = 60.0 / hr_bpm
    r_times, symbols = [], []
    time = 0.5
    k = 0
    while time < seconds - 0.5:
        k += 1
        is_pvc = pvc_every > 0 and k % pvc_every == 0
        if is_pvc:
            time -= 0.35 * rr0
        r_times.append(time)
        symbols.append("V" if is_pvc else "N")
        width = 0.03 if is_pvc else 0.01
        sig += (1.6 if is_pvc else 1.0) * np.exp(-0.5 * ((t - time) / width) ** 2)
        sig += (-0.3 if is_pvc else 0.25) * np.exp(-0.5 * ((t - time - 0.25) / 0.04) ** 2)
        if not is_pvc:
            sig += 0.1 * np.exp(-0.5 * ((t - time + 0.16) / 0.02) ** 2)
        time += rr0 * (1.7 if is_pvc else 1.0) + 0.02 * rng.standard_normal()
    r = np.round(np.array(r_times) * fs).astype(np.int64)
    return sig.astype(np.float32), r, symbols


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Poll ``url`` until it answers 2xx; fail with the server's output if it exits or ``timeout`` s pass (the
    server's stdout must be a pipe)."""
    import time

    import requests

    deadline = time.time() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.time() > deadline:
            if proc.poll() is None:
                proc.kill()
            pytest.fail(f"{url} did not come up: {proc.stdout.read()[-3000:] if proc.stdout else ''}")
        time.sleep(1)


@contextmanager
def mlflow_ui(store: str):
    """``start_mlflow.sh`` over ``store`` on a free loopback port, as users start it; yields its base URL."""
    import signal

    port = free_port()
    env = {**os.environ, "MLFLOW_PORT": str(port), "MLFLOW_TRACKING_URI": store}
    proc = subprocess.Popen(["bash", str(ROOT / "start_mlflow.sh")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health", proc)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def need_binary(name: str) -> str:
    """Path of Debian's ``name`` (Prometheus, promtool, Alertmanager): skipped without it, failed in CI, where
    `make test` installs it."""
    found = shutil.which(name)
    if not found:
        message = f"{name} not found (Debian: apt-get install prometheus prometheus-alertmanager; make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def start_prometheus(folder: Path, target: str, interval_s: float = 1.0, rules: Path | None = None,
                     alertmanager: str | None = None):
    """A real Prometheus scraping ``target`` (host:port) every ``interval_s`` and evaluating ``rules``, from the
    project's monitoring/prometheus/prometheus.yml with the addresses and intervals replaced; returns
    ``(process, url)``. The caller stops it."""
    import yaml

    binary = need_binary("prometheus")
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    every = f"{int(round(interval_s * 1000))}ms"  # Prometheus durations are whole units
    config["global"].update(scrape_interval=every, evaluation_interval=every)
    config["rule_files"] = [str(rules)] if rules else []
    config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alertmanager]}] if alertmanager else []
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={folder / 'prometheus.yml'}",
                             f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=(folder / "prometheus.log").open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/-/ready", proc, timeout=60)
    return proc, url


def webhook_receiver():
    """A local Alertmanager webhook receiver: ``(url, received list of (arrival time, alert), server)``."""
    import json
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.extend((time.time(), a) for a in body["alerts"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/alerts", received, server


def fast_rules(folder: Path, hold: str = "2s") -> Path:
    """alerts.yml with every rule's `for` shortened to ``hold``: the same expressions, a test-sized wait."""
    import yaml

    rules = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "alerts.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        rule["for"] = hold
    path = folder / "alerts.yml"
    path.write_text(yaml.safe_dump(rules))
    return path


def start_alertmanager(folder: Path, webhook: str):
    import yaml

    binary = need_binary("prometheus-alertmanager")
    config = yaml.safe_load((ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    config["receivers"][0]["webhook_configs"][0]["url"] = webhook
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port, cluster = free_port(), free_port()
    proc = subprocess.Popen([binary, f"--config.file={folder / 'alertmanager.yml'}", f"--storage.path={folder}",
                             f"--web.listen-address=127.0.0.1:{port}", f"--cluster.listen-address=127.0.0.1:{cluster}"],
                            stdout=(folder / "alertmanager.log").open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_until_up(f"http://127.0.0.1:{port}/-/ready", proc, timeout=60)
    return proc, f"127.0.0.1:{port}"
