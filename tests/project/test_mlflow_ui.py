"""start_mlflow.sh: a real MLflow UI over the project's store, found through MLflow's REST API."""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

from tests.conftest import ROOT, mlflow_ui

pytestmark = pytest.mark.slow


def test_ui_serves_the_experiment_and_refuses_a_taken_port(trained, store):
    with mlflow_ui(store) as base:
        exp = requests.get(f"{base}/api/2.0/mlflow/experiments/get-by-name",
                           params={"experiment_name": "deteccion_arritmias_ecg"}, timeout=10).json()["experiment"]
        runs = requests.post(f"{base}/api/2.0/mlflow/runs/search",
                             json={"experiment_ids": [exp["experiment_id"]], "max_results": 10}, timeout=10).json()
        assert trained.run_id in [r["info"]["run_id"] for r in runs["runs"]]

        port = base.rsplit(":", 1)[1]
        env = {**os.environ, "MLFLOW_PORT": port, "MLFLOW_TRACKING_URI": store}
        taken = subprocess.run(["bash", str(ROOT / "start_mlflow.sh")], env=env, capture_output=True, text=True,
                               timeout=60)
        assert taken.returncode == 1 and f"port {port}" in taken.stderr and "already in use" in taken.stderr
