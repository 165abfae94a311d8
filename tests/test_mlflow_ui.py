"""start_mlflow.sh: a real MLflow UI over the project's store, found through MLflow's REST API."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import requests

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow


def test_ui_serves_the_experiment_and_refuses_a_taken_port(trained, store):
    port = free_port()
    env = {**os.environ, "MLFLOW_PORT": str(port), "MLFLOW_TRACKING_URI": store}
    proc = subprocess.Popen(["bash", str(ROOT / "start_mlflow.sh")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                if requests.get(f"{base}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"MLflow UI did not come up: {proc.stdout.read() if proc.poll() is not None else ''}")
            time.sleep(1)
        exp = requests.get(f"{base}/api/2.0/mlflow/experiments/get-by-name",
                           params={"experiment_name": "deteccion_arritmias_ecg"}, timeout=10).json()["experiment"]
        runs = requests.post(f"{base}/api/2.0/mlflow/runs/search",
                             json={"experiment_ids": [exp["experiment_id"]], "max_results": 10}, timeout=10).json()
        assert trained.run_id in [r["info"]["run_id"] for r in runs["runs"]]

        taken = subprocess.run(["bash", str(ROOT / "start_mlflow.sh")], env=env, capture_output=True, text=True,
                               timeout=60)
        assert taken.returncode == 1 and f"port {port}" in taken.stderr and "already in use" in taken.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
