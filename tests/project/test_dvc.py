"""DVC as its users know it: mit-bih.dvc describes exactly the verified 48 records (and RECORDS, SHA256SUMS), the
data stays out of git, and dvc.yaml's pipeline reproduces a training, then has nothing left to do."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.conftest import ROOT


def test_dvc_file_matches_the_verified_records(mitdb):
    out = yaml.safe_load((ROOT / "mit-bih.dvc").read_text())["outs"][0]
    files = [p for p in mitdb.iterdir() if p.is_file()]
    assert out["path"] == "mit-bih" and out["hash"] == "md5" and out["md5"].endswith(".dir")
    assert out["nfiles"] == len(files) == 48 * 3 + 2
    assert out["size"] == sum(p.stat().st_size for p in files)


def test_data_folder_is_ignored_by_git():
    proc = subprocess.run(["git", "check-ignore", "-q", "mit-bih/100.dat"], cwd=ROOT)
    assert proc.returncode == 0


def test_params_yaml_is_trainconfigs_defaults():
    """params.yaml, what `dvc repro` trains with, is generated from TrainConfig (`make params`) and reads back as
    exactly its defaults."""
    from arritmias.config import TrainConfig, params_yaml, read_params

    assert (ROOT / "params.yaml").read_text() == params_yaml(), "params.yaml is stale: run `make params`"
    assert TrainConfig(**read_params(ROOT / "params.yaml")) == TrainConfig()


@pytest.mark.slow
def test_dvc_repro_trains_once_and_then_does_nothing(mitdb, cache_dir, tmp_path):
    """The project's dvc.yaml in a fresh git repository with three records and a shrunk params.yaml: `dvc repro`
    verifies, trains (one MLflow run, its figures and curves for `dvc metrics/plots show`) and evaluates; run
    again, it does nothing."""
    import os
    import shutil
    import sys

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "arritmias", repo / "arritmias", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "mit-bih").mkdir()
    for record in ("208", "119", "233"):
        for ext in ("hea", "dat", "atr"):
            shutil.copy(mitdb / f"{record}.{ext}", repo / "mit-bih" / f"{record}.{ext}")
    (repo / "mit-bih" / "RECORDS").write_text("208\n119\n233\n")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(train_records=["208", "119"], cv_folds=2, test_records=["233"], epochs_max=1)
    params["evaluate"]["records"] = "233"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "ARRITMIAS_CACHE_DIR": str(cache_dir),
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    dvc = [os.path.join(os.path.dirname(sys.executable), "dvc")]

    def run(*cmd):
        proc = subprocess.run(list(cmd), cwd=repo, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]} {proc.stderr[-3000:]}"
        return proc.stdout

    run("git", "init", "-q")
    run(*dvc, "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-q", "-m", "pipeline")
    first = run(*dvc, "repro")
    assert "Running stage 'train'" in first and "Running stage 'evaluate'" in first
    figures = json.loads((repo / "pipeline" / "train" / "metrics.json").read_text())
    assert 0 <= figures["test_ec57_detected_veb_se"] <= 1
    assert (repo / "pipeline" / "train" / "model_uri.txt").read_text().startswith("runs:/")
    assert "test_ec57_detected_veb_ppv" in run(*dvc, "metrics", "show")
    second = run(*dvc, "repro")
    assert "Running stage" not in second and "up to date" in second, second
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    trainings = mlflow.search_runs(experiment_names=["deteccion_arritmias_ecg"],
                                   filter_string="tags.`mlflow.parentRunId` IS NULL")
    assert len(trainings) == 1
