"""Drift monitoring: the Evidently detector on real shifts of real records, its command, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from arritmias.analysis.recording import read_signal
from arritmias.errors import DataError
from arritmias.drift.features import signal_features
from arritmias.signal.measures import FEATURES
from monitoring import scenarios as sc
from arritmias.drift.check import ECGDriftDetector
from tests.conftest import ROOT

from arritmias.data.beats import DS1

RECORDS = DS1  # the reference is the training patients, as in production


@pytest.fixture(scope="module")
def halves(mitdb):
    first, second = [], []
    for r in RECORDS:
        a, b = sc.halves(read_signal(mitdb / r))
        first.append(signal_features(a))
        second.append(signal_features(b))
    return pd.concat(first, ignore_index=True), pd.concat(second, ignore_index=True), second


@pytest.fixture(scope="module")
def detector(halves):
    d = ECGDriftDetector()
    d.load_reference_data(halves[0])
    return d


def _second_halves(mitdb, shift):
    return pd.concat([signal_features(shift(sc.halves(read_signal(mitdb / r))[1])) for r in RECORDS],
                     ignore_index=True)


def test_same_patients_later_is_not_drift(detector, halves):
    for seed in range(5):
        result = detector.detect_drift(halves[1].sample(1000, random_state=seed))
        assert not result["drift_detected"], result["drifted_features"]


@pytest.mark.parametrize("name", ["gain_x2", "ma_6dB", "bw_6dB", "other_lead", "250Hz_unresampled"])
def test_real_acquisition_shifts_are_drift(detector, mitdb, nstdb, name):
    if name == "other_lead":
        current = pd.concat([signal_features(sc.halves(sc.other_lead(mitdb, r))[1]) for r in RECORDS])
    else:
        shift = {"gain_x2": lambda s: sc.with_gain(s, 2.0),
                 "ma_6dB": lambda s: sc.with_nstdb_noise(s, nstdb, "ma", 6.0),
                 "bw_6dB": lambda s: sc.with_nstdb_noise(s, nstdb, "bw", 6.0),
                 "250Hz_unresampled": sc.not_resampled}[name]
        current = _second_halves(mitdb, shift)
    result = detector.detect_drift(current.sample(1000, random_state=0))
    assert result["drift_detected"], result["features"]
    assert result["drift_share"] >= 0.3 or set(result["drifted_features"]) & {"noise_mv2", "wander_mv"}


def test_ds2_with_real_noise_is_drift(detector, mitdb, nstdb):
    current = pd.concat([signal_features(sc.with_nstdb_noise(read_signal(mitdb / r), nstdb, "ma", 6.0))
                         for r in ("100", "103")])
    result = detector.detect_drift(current)
    assert result["drift_detected"] and "noise_mv2" in result["drifted_features"]


def test_results_hold_each_feature_and_counts(detector, halves):
    result = detector.detect_drift(halves[1])
    assert set(result["features"]) == set(FEATURES)
    for info in result["features"].values():
        assert info["method"] == "wasserstein" and info["threshold"] == 0.3 and info["score"] >= 0
    assert result["n_reference"] == len(halves[0]) and result["n_current"] == len(halves[1])
    assert result["report_html"] is None


def test_nst_noise_scale_gives_the_asked_snr():
    rng = np.random.default_rng(0)
    clean = np.tile(np.r_[np.zeros(300), np.hanning(60)], 100)  # ptp 1 per second at 360 Hz
    noise = rng.standard_normal(len(clean))
    g = sc.nst_noise_scale(clean, noise, 360.0, 6.0)
    snr = 10 * np.log10((1.0 ** 2 / 8) / np.var(g * noise))
    assert snr == pytest.approx(6.0, abs=0.05)


@pytest.mark.parametrize("frame, needle", [
    (pd.DataFrame(), "empty"),
    (pd.DataFrame({"rr_prev_s": [0.8]}), "lacks columns"),
    (pd.DataFrame({c: [np.nan] for c in FEATURES}), "NaN"),
    (pd.DataFrame({**{c: [1.0] for c in FEATURES}, "ptp_mv": ["high"]}), "not numeric"),
    (pd.DataFrame({c: [1.0] for c in FEATURES}), "has 1 beats; at least 50"),
    ([1, 2, 3], "DataFrame"),
])
def test_bad_input_names_the_problem(halves, frame, needle):
    d = ECGDriftDetector()
    d.load_reference_data(halves[0])
    with pytest.raises(DataError, match=needle):
        d.detect_drift(frame)


@pytest.mark.parametrize("threshold", [float("nan"), 0.0, -0.3, float("inf")])
def test_threshold_must_be_a_positive_number(threshold):
    with pytest.raises(DataError, match="threshold"):
        ECGDriftDetector(threshold=threshold)


def test_no_reference_is_a_clear_error(halves):
    with pytest.raises(DataError, match="load_reference_data"):
        ECGDriftDetector().detect_drift(halves[1])


def test_command_writes_reports_log_and_mlflow_run(halves, tmp_path, mitdb):
    ref_csv, cur_csv, bad_csv = tmp_path / "reference_features.csv", tmp_path / "current.csv", tmp_path / "bad.csv"
    halves[0].to_csv(ref_csv, index=False)
    halves[1].to_csv(cur_csv, index=False)
    halves[1].drop(columns=["ptp_mv"]).to_csv(bad_csv, index=False)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "reports"
    script = str(ROOT / "monitoring" / "drift_detector.py")

    def run(*args):
        return subprocess.run([sys.executable, script, *args, "--out", str(out)], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)

    ok = run("--reference", str(ref_csv), "--current", str(cur_csv), "--tracking-uri", store)
    assert ok.returncode == 0, ok.stderr[-2000:]
    gain = halves[1].copy()
    for col in ("r_amplitude_mv", "ptp_mv", "wander_mv"):
        gain[col] *= 2
    for col in ("energy_mv2", "noise_mv2"):
        gain[col] *= 4
    gain.to_csv(cur_csv, index=False)
    drift = run("--reference", str(ref_csv), "--current", str(cur_csv))
    assert drift.returncode == 1, drift.stderr[-2000:]
    bad = run("--reference", str(ref_csv), "--current", str(bad_csv))
    assert bad.returncode == 2 and "ptp_mv" in bad.stderr and "Traceback" not in bad.stderr

    assert len(list(out.glob("drift_report_*.html"))) == 2 and len(list(out.glob("drift_summary_*.json"))) == 2
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left
    log = (out / "drift_alerts.log").read_text().splitlines()
    assert len(log) == 2 and "drift=no" in log[0] and "drift=yes" in log[1] and "ptp_mv" in log[1]
    summary = json.loads(sorted(out.glob("drift_summary_*.json"))[-1].read_text())
    assert summary["drift_detected"] is True
    # The summary page says what was compared and why it alarmed; Evidently's page carries the sandbox shim.
    page = Path(summary["summary_html"]).read_text()
    assert f"fichero {cur_csv}" in page and f"fichero {ref_csv}" in page and "DERIVA DETECTADA" in page
    assert "<script" not in page and all(f"<code>{f}</code>" in page for f in summary["drifted_features"])
    assert "calidad de señal" in page  # noise_mv2 and wander_mv moved: the acquisition changed
    assert summary["features"]["ptp_mv"]["current_median"] == pytest.approx(
        2 * summary["features"]["ptp_mv"]["reference_median"], rel=0.05)
    assert 0 <= Path(summary["report_html"]).read_text().find("in-memory localStorage") < 2000
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["monitoring_ecg"])
    assert len(runs) == 1 and runs.iloc[0]["metrics.drift_detected"] == 0.0
    logged = sorted(a.path.split("_")[1] + a.path[-5:] for a in
                    mlflow.MlflowClient().list_artifacts(runs.iloc[0]["run_id"]))
    assert logged == ["report.html", "summary.html", "summary.json"]


@pytest.mark.slow
def test_features_command_and_prediction_drift(trained, store, mitdb, tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "reference_features.csv"
    proc = run_cli("features", "--records", "119,208", "--out", str(out), "--data-dir", str(mitdb),
                   "--model-uri", f"runs:/{trained.run_id}/model", "--tracking-uri", store)
    assert proc.returncode == 0, proc.stderr[-2000:]
    frame = pd.read_csv(out)
    assert {"record", "time_s", "prob_v", "pred_v", *FEATURES} <= set(frame.columns)
    d = ECGDriftDetector()
    d.load_reference_data(frame)
    assert "prob_v" in d.features and "pred_v" in d.features
