"""Shrunk end-to-end trainings into a real temporary sqlite MLflow store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest

from arritmias.tracking import runs
from arritmias.data.beats import build_beats
from arritmias.model.detector import Detector
from arritmias.training.train import train
from tests.conftest import LENIENT_GATE_ARGS, ROOT, SHRUNK, run_cli

pytestmark = pytest.mark.slow


PARAMS = ["deriv_idx", "fs", "win", "use_augment", "use_ruleguard", "use_context", "context_dropout", "focal_gamma",
          "not_beat_ratio", "decoys_per_record", "family_corr", "family_weights",
          "batch_size", "epochs_max", "cv_folds", "target_prec", "target_rec", "split",
          "train_records", "test_records", "cv_fold_1_records", "cv_fold_2_records", "seed", "code_version"]
# The guide's per-epoch names: val_* pooled out of fold over the folds, train_* the final fit's.
EPOCH_METRICS = ["val_loss", "val_accuracy", "val_pr_auc", "val_pr_auc_no_context", "train_loss", "train_accuracy",
                 "train_pr_auc", "lr_epoch"]
FOLD_EPOCH_METRICS = ["train_loss", "train_accuracy", "train_pr_auc", "lr_epoch", "val_loss", "val_accuracy",
                      "val_pr_auc", "val_pr_auc_no_context"]
EC57 = [f"{p}_ec57_{mode}_{k}" for p in ("cv", "test") for mode in ("detected", "reference")
        for k in ("veb_se", "veb_ppv", "qrs_se", "qrs_ppv")]
METRICS = EPOCH_METRICS + EC57 + [
    "train_samples_total", "test_samples_total", "train_V_total", "train_N_total", "balance_ratio",
    "train_V_balanced", "train_N_balanced", "train_X_balanced", "train_X_total", "train_decoys_total",
    "threshold_recording", "not_beat_threshold", "family_weight", "cv_ec57_detected_veb_ppv_w0",
    "test_accuracy", "test_precision_V", "test_recall_V", "test_f1_V", "test_precision_N", "test_recall_N",
    "test_f1_N", "test_TN", "test_FP", "test_FN", "test_TP", "test_pr_auc", "train_time_s", "threshold",
    "threshold_no_context", "best_epoch", "cv_pr_auc", "cv_precision_V", "cv_recall_V", "cv_f1_V",
    "cv_nocontext_pr_auc", "cv_nocontext_f1_V", "test_nocontext_precision_V", "test_nocontext_recall_V",
    "test_nocontext_f1_V", "test_nocontext_pr_auc"]
# The run's own files (the served model is a LoggedModel of its own: MLflow 3 keeps it apart from them).
ARTIFACTS = ["models/model_v7.keras", "metadata/meta_v7.json", "metrics/history_v7.csv",
             "training_curves.png", "confusion_matrix.png", "pr_curve.png"]


def _artifact_paths(client, run_id, path=""):
    out = []
    for item in client.list_artifacts(run_id, path):
        out.extend(_artifact_paths(client, run_id, item.path) if item.is_dir else [item.path])
    return out


def test_run_logs_every_param_metric_and_artifact(trained, store):
    runs.use_tracking(store)
    client = mlflow.MlflowClient()
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith("CNN_v7_") and len(run.info.run_name) == len("CNN_v7_YYYYMMDD_HHMMSS")
    assert client.get_experiment(run.info.experiment_id).name == "deteccion_arritmias_ecg"
    assert set(PARAMS) <= set(run.data.params)
    assert run.data.params["test_records"] == "233" and run.data.params["cv_folds"] == "2"
    assert {run.data.params["cv_fold_1_records"], run.data.params["cv_fold_2_records"]} == {"208", "119"}
    assert set(METRICS) <= set(run.data.metrics), set(METRICS) - set(run.data.metrics)
    for name in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(trained.run_id, name)] == [1]
    # Each fold is a nested run holding out one patient, with its own per-epoch curve.
    folds = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{trained.run_id}'")
    assert sorted(f.data.params["held_out_records"] for f in folds) == ["119", "208"]
    for fold in folds:
        assert fold.info.status == "FINISHED" and fold.data.tags["chosen_epoch"] == "1"
        assert 0 <= fold.data.metrics["val_pr_auc_chosen_epoch"] <= 1
        for name in FOLD_EPOCH_METRICS:
            assert [m.step for m in client.get_metric_history(fold.info.run_id, name)] == [1]
    assert run.data.tags["purpose"] == "test"
    assert set(ARTIFACTS) <= set(_artifact_paths(client, trained.run_id))
    m = run.data.metrics
    assert m["test_TP"] + m["test_FN"] == pytest.approx(831 - 0, abs=2)  # record 233's V beats
    assert 0 <= m["threshold"] <= 1
    # The S answer (SHRUNK turns it on): its threshold and out-of-fold figures are logged, and the logged model
    # carries the stage that chose them.
    assert 0 <= m["threshold_s"] <= 1 and 0 <= m["cv_pr_auc_S"] <= 1 and "test_recall_S" in m
    assert run.data.params["use_supra"] == "True"
    meta = json.loads(Path(client.download_artifacts(trained.run_id, "metadata/meta_v7.json")).read_text())
    assert meta["records"]["test"] == ["233"] and "233.dat" in meta["data_sha256"]


def test_training_logs_its_model_as_an_mlflow_3_logged_model_with_its_figures_and_data(trained, store):
    """MLflow 3 as its users know it: the run's served model is a LoggedModel (the experiment's Models tab) holding
    the training's params and the run's figures, the registered version comes from it, the run names the datasets
    it read (DS1 training, DS2 test) with a digest of their files, and its source is the command the user ran."""
    runs.use_tracking(store)
    run = mlflow.get_run(trained.run_id)
    [model_id] = [o.model_id for o in run.outputs.model_outputs]
    [model] = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert model.model_id == model_id and model.name == "model" and model.source_run_id == trained.run_id
    figures = {m.key: m.value for m in model.metrics}
    for name in ("test_ec57_detected_veb_se", "test_ec57_detected_veb_ppv", "test_f1_V", "cv_ec57_detected_veb_se"):
        assert figures[name] == pytest.approx(run.data.metrics[name])
    assert model.params["cv_folds"] == "2" and model.params["test_records"] == "233"
    version = mlflow.MlflowClient().get_model_version("ECG_Arritmias_NvsV", str(trained.registered_version))
    assert version.source == f"models:/{model_id}"
    inputs = {d.dataset.name: [t.value for t in d.tags if t.key == "mlflow.data.context"]
              for d in run.inputs.dataset_inputs}
    assert inputs == {"mitdb-208-119": ["training"], "mitdb-233": ["test"]}
    assert all(len(d.dataset.digest) == 20 for d in run.inputs.dataset_inputs)
    assert run.data.tags["mlflow.source.name"] != "__main__.py"
    proc = run_cli("compare", "--models", "--tracking-uri", store)
    assert proc.returncode == 0 and model_id in proc.stdout and "test_f1_V" in proc.stdout, proc.stderr


def test_registered_when_gate_passes(trained, store):
    runs.use_tracking(store)
    assert trained.gate.passed and trained.registered_version == 1
    version = mlflow.MlflowClient().get_model_version("ECG_Arritmias_NvsV", "1")
    assert version.run_id == trained.run_id
    # A person browsing the registry sees what the model is, how good, and what it expects.
    assert "cross-validation" in version.description and "ctx_sig" in version.description
    assert version.tags["gate"] == "passed" and version.tags["run_name"] == trained.run_name
    experiment = mlflow.MlflowClient().get_experiment_by_name("deteccion_arritmias_ecg")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_logged_model_predicts_same_in_fresh_process(trained, store, mitdb, cache_dir, tmp_path):
    # Beats of a training record: one epoch on two records separates their V from their N (P(V) ~0.49 against
    # ~0.25), where on another patient it is still near chance and the check below would be a coin toss.
    beats = build_beats(mitdb, ["119"], cache_dir=cache_dir, progress=False)
    beats = beats.select(np.isin(beats.aami, ("N", "V")))
    pick = np.r_[np.flatnonzero(beats.aami == "V")[:20], np.flatnonzero(beats.aami == "N")[:20]]
    np.savez(tmp_path / "beats.npz", windows=beats.windows[pick], rr=beats.rr[pick], template=beats.template[pick],
             rr_usual=beats.rr_usual[pick])
    script = (
        "import sys, json, numpy as np, pandas as pd, mlflow\n"
        f"mlflow.set_tracking_uri({store!r})\n"
        f"m = mlflow.pyfunc.load_model('runs:/{trained.run_id}/model')\n"
        f"d = np.load({str(tmp_path / 'beats.npz')!r})\n"
        "df = pd.DataFrame({'sig': list(d['windows'].astype(float)), 'rr': list(d['rr'].astype(float)),\n"
        "                   'ctx_sig': list(d['template'].astype(float)),\n"
        "                   'ctx_rr': d['rr_usual'].astype(float)})\n"
        "out = m.predict(df)\n"
        "print(json.dumps({'prob': out['prob_v'].tolist(), 'label': out['label'].tolist(),\n"
        "                  'context_used': out['context_used'].tolist()}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    local = mlflow.artifacts.download_artifacts(run_id=trained.run_id, artifact_path="model/artifacts/detector",
                                                dst_path=str(tmp_path / "det"))
    detector = Detector.load(Path(local))
    expected = detector.decide(beats.windows[pick], beats.rr[pick], beats.context.select(pick))
    np.testing.assert_allclose(served["prob"], expected.prob, atol=1e-5)
    assert served["label"] == expected.labels().tolist() and all(served["context_used"])
    # The model learned something in one epoch: its training PVCs score higher than its normal beats on average.
    assert np.mean(served["prob"][:20]) > np.mean(served["prob"][20:])


def test_gate_cli_pass_and_fail(trained, store):
    ok = run_cli("gate", "--run-id", trained.run_id, "--tracking-uri", store, *LENIENT_GATE_ARGS)
    assert ok.returncode == 0, ok.stderr
    assert "gate passed" in ok.stdout
    runs.use_tracking(store)
    assert mlflow.MlflowClient().get_run(trained.run_id).data.tags["gate"] == "passed"
    bad = run_cli("gate", "--run-id", trained.run_id, "--tracking-uri", store, "--min-ec57-detected-veb-se", "1.01")
    assert bad.returncode == 1
    assert "test_ec57_detected_veb_se=" in bad.stderr and "< 1.01" in bad.stderr and "Traceback" not in bad.stderr
    assert bad.stdout.count("< 1.01") + bad.stderr.count("< 1.01") == 1  # said once
    assert mlflow.MlflowClient().get_run(trained.run_id).data.tags["gate"] == "failed"
    run_cli("gate", "--run-id", trained.run_id, "--tracking-uri", store,
            *LENIENT_GATE_ARGS)  # leave it as the other tests expect


def test_promote_sets_production_alias_and_loads(trained, store):
    proc = run_cli("promote", "--version", "1", "--tracking-uri", store)
    assert proc.returncode == 0, proc.stderr
    assert "models:/ECG_Arritmias_NvsV@production" in proc.stdout
    runs.use_tracking(store)
    mv = mlflow.MlflowClient().get_model_version_by_alias("ECG_Arritmias_NvsV", "production")
    assert int(mv.version) == 1
    missing = run_cli("promote", "--version", "99", "--tracking-uri", store)
    assert missing.returncode == 2 and "no version 99" in missing.stderr
    latest = run_cli("promote", "--latest", "--tracking-uri", store)
    assert latest.returncode == 0 and "is now @production" in latest.stdout, latest.stderr


def test_compare_prints_table(trained, store):
    proc = run_cli("compare", "--top", "5", "--tracking-uri", store, "--filter", "metrics.test_f1_V >= 0")
    assert proc.returncode == 0, proc.stderr
    assert trained.run_id in proc.stdout and "test_f1_V" in proc.stdout
    bad = run_cli("compare", "--tracking-uri", store, "--filter", "metrics.nope >>> 1")
    assert bad.returncode == 2 and "bad --filter" in bad.stderr and "Traceback" not in bad.stderr


def test_ci_summary_appends_to_the_job_summary_and_writes_the_comment(trained, store, tmp_path):
    step_summary, comment = tmp_path / "step_summary.md", tmp_path / "out" / "comment.md"
    step_summary.write_text("## an earlier step's table\n")
    lenient = LENIENT_GATE_ARGS
    proc = run_cli("ci-summary", "--run-id", trained.run_id, "--tracking-uri", store, "--out", str(comment),
                   *lenient, env={"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = comment.read_text()
    assert step_summary.read_text() == "## an earlier step's table\n" + body + "\n"  # appended, not replaced
    assert trained.run_name in body and trained.run_id in body
    assert "✅ passed" in body and "ECG_Arritmias_NvsV version 1" in body
    for name in ("test_ec57_detected_veb_se", "test_ec57_detected_veb_ppv", "test_precision_V", "test_recall_V"):
        assert f"| {name} | {trained.metrics[name]:.4f} |" in body, name
    # The verdict is the gate's, with the thresholds given: an unreachable Se fails and says by how much.
    strict = run_cli("ci-summary", "--run-id", trained.run_id, "--tracking-uri", store, *lenient[2:],
                     "--min-ec57-detected-veb-se", "1.01", env={"GITHUB_STEP_SUMMARY": ""})
    assert strict.returncode == 0 and "❌ failed: test_ec57_detected_veb_se=" in strict.stdout
    assert "< 1.01" in strict.stdout
    assert "| test_ec57_detected_veb_se |" in strict.stdout and "| 1.01 |" in strict.stdout


def test_same_seed_same_model(trained, store, mitdb, cache_dir):
    """Equal, not close: TensorFlow's CPU kernels are deterministic for this network once keras seeds Python,
    NumPy and TensorFlow (training.fit), so a retrain gives bit-identical weights, thresholds and figures."""
    again = train(SHRUNK, data_dir=mitdb, cache_dir=cache_dir, tracking=store, register=False, progress=False)
    timing = {"train_time_s"}
    assert {k: v for k, v in again.metrics.items() if k not in timing} == \
        {k: v for k, v in trained.metrics.items() if k not in timing}
    beats = build_beats(mitdb, SHRUNK.test_records, cache_dir=cache_dir, progress=False)
    first, second = (Detector.from_model_uri(f"runs:/{r}/model").decide(beats.windows, beats.rr, beats.context)
                     for r in (trained.run_id, again.run_id))
    np.testing.assert_array_equal(first.prob, second.prob)
    np.testing.assert_array_equal(first.is_v, second.is_v)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_training_leaves_failed_run_and_no_version(mitdb, cache_dir, tmp_path, sig):
    """SIGTERM: the training closes its own run as FAILED. SIGKILL gives it no chance: the next command that
    looks for runs (here `gate`) finds the RUNNING run whose process is gone, marks it FAILED and says so."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs.use_tracking(store)
    mlflow.MlflowClient().search_experiments()  # create the tables first: two processes creating them race
    env = {**os.environ, "ARRITMIAS_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "deteccionarritmias.py"), "--data-dir", str(mitdb), "--tracking-uri", store,
         "--train-records", "208,119", "--cv-folds", "2", "--test-records", "233", "--epochs-max", "200",
         *LENIENT_GATE_ARGS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.time() + 240
    run_id = None
    while time.time() < deadline and proc.poll() is None:
        time.sleep(2)
        try:
            found = mlflow.search_runs(experiment_names=["deteccion_arritmias_ecg"])
        except Exception:
            continue
        # The first fold's nested run reports its held-out PR-AUC after its first epoch.
        if not found.empty and "metrics.val_pr_auc" in found and found["metrics.val_pr_auc"].notna().any():
            fold = found[found["metrics.val_pr_auc"].notna()].iloc[0]
            fold_id, run_id = fold["run_id"], fold["tags.mlflow.parentRunId"]
            break
    if run_id is None or proc.poll() is not None:
        proc.kill()
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"training did not reach its first epoch (exit {proc.returncode}): {err[-3000:]}")
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    if sig == signal.SIGKILL:
        assert mlflow.MlflowClient().get_run(run_id).info.status == "RUNNING"  # nobody closed it
        gate = run_cli("gate", "--tracking-uri", store, cwd=tmp_path)
        assert f"run {run_id} was still RUNNING but its process" in gate.stderr and "marked FAILED" in gate.stderr
        assert gate.returncode == 2 and "no finished run" in gate.stderr and "Traceback" not in gate.stderr
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.info.status == "FAILED"
    assert ("KeyboardInterrupt" if sig == signal.SIGTERM else "reaped: its process") in run.data.tags["error"]
    assert mlflow.MlflowClient().get_run(fold_id).info.status == "FAILED"
    assert mlflow.MlflowClient().search_model_versions("name='ECG_Arritmias_NvsV'") == []
