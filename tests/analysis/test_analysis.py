"""Whole-record analysis: summary logic on synthetic sequences, bad signals, and a real record end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import wfdb

from arritmias.analysis.ectopy import summarize
from arritmias.analysis.recording import SUPRA_CAUTION, Signal, check_signal, detect_qrs, find_beats, read_signal
from arritmias.errors import DataError
from arritmias.data.records import read_recording
from tests.conftest import run_cli, synthetic_ecg

FS = 360.0


def test_summary_counts_patterns():
    # N N V V N | N V N V N V N V | N N V N N V N N V | V V V V N
    seq = "NNVVN" + "NVNVNVNV" + "NNVNNVNNV" + "VVVVN"
    is_v = np.array([c == "V" for c in seq])
    samples = np.arange(len(seq)) * 360
    s = summarize(is_v, samples, FS, len(seq))
    assert s["beats"] == len(seq) and s["pvc_count"] == seq.count("V")
    assert s["pvc_burden_percent"] == pytest.approx(100 * seq.count("V") / len(seq), abs=0.01)
    assert s["couplets"] == 1
    assert [r["beats"] for r in s["runs_of_3_or_more"]] == [5]  # the trigeminy's last V joins the VVVV run
    assert [(e["start_s"], e["beats"]) for e in s["bigeminy_episodes"]] == [(6.0, 8)]  # V N V N V N V N
    assert [(e["start_s"], e["beats"]) for e in s["trigeminy_episodes"]] == [(12.0, 9)]  # V N N V N N V N N
    assert s["mean_heart_rate_bpm"] == pytest.approx(60.0)


def test_qrs_detector_finds_synthetic_beats():
    sig, r, _ = synthetic_ecg(60, FS, seed=4, pvc_every=6)
    peaks = detect_qrs(sig, FS)
    assert abs(len(peaks) - len(r)) <= 1
    nearest = np.abs(peaks[:, None] - r[None, :]).min(axis=0)
    assert np.median(nearest) <= 2


@pytest.mark.parametrize("values, needle", [
    (np.full(36000, np.nan), "no finite samples"),
    (np.zeros(36000), "flat"),
    (np.random.default_rng(0).standard_normal(360 * 5), "at least 10 s"),
    (np.clip(np.random.default_rng(1).standard_normal(36000), -0.5, 0.5), "clipped"),
])
def test_bad_signals_are_refused_with_a_reason(values, needle):
    with pytest.raises(DataError, match=needle):
        check_signal(Signal("x", values.astype(np.float32), FS, "MLII", "test"))


@pytest.mark.parametrize("kind", ["gaussian", "nstdb_ma"])
def test_pure_noise_is_refused_not_analysed(kind, nstdb):
    """Noise gets QRS detections too; their windows share no shape, and analysis refuses instead of reporting
    beats and PVCs."""
    if kind == "gaussian":
        values = 0.3 * np.random.default_rng(0).standard_normal(360 * 120)
    else:
        values = read_recording(nstdb, "ma", annotator=None).signal[: 360 * 120]
    with pytest.raises(DataError, match="share no consistent shape"):
        find_beats(Signal(kind, values.astype(np.float32), FS, "MLII", "test"), FS, 360)


def test_real_and_synthetic_ecg_pass_the_consistency_check(mitdb):
    for name in ("208", "203"):  # a third PVCs; noisy and multiform
        sig = read_recording(mitdb, name, annotator=None).signal[: 360 * 300]
        assert len(find_beats(Signal(name, sig, FS, "MLII", "test"), FS, 360).windows) > 250
    sig, _, _ = synthetic_ecg(60, FS, pvc_every=3)
    assert len(find_beats(Signal("syn", sig, FS, "MLII", "test"), FS, 360).windows) > 50


def test_few_nan_samples_are_repaired():
    sig, _, _ = synthetic_ecg(30, FS, seed=5)
    sig[1000:1010] = np.nan
    out = check_signal(Signal("x", sig, FS, "MLII", "test"))
    assert np.all(np.isfinite(out))


def test_csv_needs_fs_and_a_column(tmp_path):
    path = tmp_path / "ecg.csv"
    path.write_text("time,MLII\n" + "".join(f"{i / 250},{v}\n" for i, v in enumerate(np.zeros(10))))
    with pytest.raises(DataError, match="--fs"):
        read_signal(path)
    with pytest.raises(DataError, match="--column"):
        read_signal(path, fs=250)
    assert read_signal(path, fs=250, column="MLII").lead == "MLII"


@pytest.mark.slow
def test_analyze_real_record_and_250hz_csv(trained, store, mitdb, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("analyze", str(mitdb / "233"), "--out", str(out), "--tracking-uri", store,
                   "--model-uri", f"runs:/{trained.run_id}/model")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "233_summary.json").read_text())
    ann = wfdb.rdann(str(out / "233"), "pvc")
    # Every detection is written: N, V, A (a supraventricular ectopic beat, S to bxb), Q (unreadable) or '|'
    # (judged not a beat, an artifact to bxb).
    assert set(ann.symbol) <= {"N", "V", "A", "Q", "|"}
    assert len(ann.sample) == summary["beats"] + summary["detections_not_beats"]
    assert ann.symbol.count("|") == summary["detections_not_beats"]
    assert summary["pvc_count"] == ann.symbol.count("V") and summary["sve_count"] == ann.symbol.count("A")
    assert sum(h["sve_count"] for h in summary["per_hour"]) == summary["sve_count"]
    # QRS detection finds the record's beats: 3079 reference beats in 233, a few at the edges. (How many of them
    # the shrunk test network then calls "not a beat" says nothing of the real one: benchmarks measure that.)
    assert abs(summary["beats"] + summary["detections_not_beats"] - 3079) < 40
    assert summary["beats"] > summary["detections_not_beats"]
    assert sum(h["pvc_count"] for h in summary["per_hour"]) == summary["pvc_count"]
    assert summary["model"]["run_id"] == trained.run_id and summary["model"]["threshold"] > 0
    page = (out / "233_report.html").read_text()
    assert '<html lang="es">' in page and "Solo para uso en investigación" in page
    assert f"{summary['pvc_count']}</td>" in page and "Tiras de ECG" in page
    assert "Extrasístoles supraventriculares (ESV)" in page and f"{summary['sve_count']}</td>" in page
    assert "Recuento de ESV experimental" in page and "the SVE count is experimental" in proc.stdout
    assert "stderr" not in proc.stderr and "Add type hints" not in proc.stderr and "oneDNN" not in proc.stderr

    # The same lead as a 250 Hz CSV: resampled to 360 Hz, annotations written at 250 Hz.
    from arritmias.data.records import resample

    rec = wfdb.rdrecord(str(mitdb / "233"), channels=[0], sampto=360 * 120)
    csv = tmp_path / "lead.csv"
    csv.write_text("MLII\n" + "\n".join(f"{v:.4f}" for v in resample(rec.p_signal[:, 0], 360, 250)))
    proc = run_cli("analyze", str(csv), "--fs", "250", "--out", str(out), "--tracking-uri", store,
                   "--model-uri", f"runs:/{trained.run_id}/model")
    assert proc.returncode == 0, proc.stderr[-2000:]
    ann = wfdb.rdann(str(out / "lead"), "pvc")
    assert ann.fs == 250 and ann.sample.max() < 250 * 120


@pytest.mark.slow
def test_analyze_flat_csv_is_one_line_error(trained, store, tmp_path):
    csv = tmp_path / "flat.csv"
    csv.write_text("\n".join("0.0" for _ in range(360 * 30)))
    proc = run_cli("analyze", str(csv), "--fs", "360", "--out", str(tmp_path / "o"), "--tracking-uri", store,
                   "--model-uri", f"runs:/{trained.run_id}/model")
    assert proc.returncode == 2 and "flat" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_unreadable_stretches_are_marked_and_never_called_pvc(trained, store, mitdb):
    """A lead off for 30 s, the amplifier at its rail for 10 s and a repaired gap: those beats are labelled Q,
    left out of the PVC count and the burden, and the summary says how much could not be read."""
    import mlflow

    from arritmias.analysis.recording import analyze_signal
    from arritmias.model.detector import Detector

    x = read_recording(mitdb, "119", annotator=None).signal[: int(FS * 300)].copy()
    x[int(FS * 60): int(FS * 90)] = x[int(FS * 60)]  # lead off
    bottom, top = x.min(), x.max()
    clipped = slice(int(FS * 200), int(FS * 210))
    x[clipped] = np.clip(x[clipped] * 10, bottom, top)  # a gain fault: the amplifier sits at its rails
    x[int(FS * 250): int(FS * 250) + 100] = np.nan  # a dropped packet, filled in by the repair
    sig = Signal("119", x, FS, "MLII", "test")
    found = find_beats(sig, FS, 360)
    t = found.samples / FS
    assert 35 <= found.seconds_unreadable <= 45  # the flat 30 s (less the 1-s window's edges) and the clipped 10 s
    assert found.unreadable[(t > 200.3) & (t < 209.7)].all()
    assert found.unreadable[np.abs(t - 250.1) < 0.3].any()
    assert not found.unreadable[(t > 100) & (t < 190)].any()  # clean ECG, PVCs included, is never unreadable
    mlflow.set_tracking_uri(store)
    a = analyze_signal(sig, Detector.from_model_uri(f"runs:/{trained.run_id}/model"))
    labels = a.decisions.labels()
    # Q: the unreadable beats (all of them: an unreadable detection is never judged "not a beat") and the
    # detections judged not beats elsewhere.
    assert found.unreadable.sum() == a.summary["beats_unreadable_not_classified"]
    assert not (a.decisions.not_beat & found.unreadable).any()
    assert (labels == "Q").sum() == found.unreadable.sum() + a.summary["detections_not_beats"]
    assert not (a.decisions.is_v & found.unreadable).any()
    assert a.summary["pvc_count"] == (labels == "V").sum()
    readable = a.summary["beats"] - a.summary["beats_unreadable_not_classified"]
    assert a.summary["pvc_burden_percent"] == round(100 * a.summary["pvc_count"] / readable, 2)
    assert a.summary["seconds_unreadable"] == found.seconds_unreadable


def test_analyze_finds_a_record_by_name_in_the_data_folder(trained, store, mitdb, tmp_path):
    """`arritmias analyze 119` with ARRITMIAS_DATA_DIR set, like `evaluate` and `features`."""
    proc = run_cli("analyze", "119", "--model-uri", f"runs:/{trained.run_id}/model", "--tracking-uri", store,
                   "--out", str(tmp_path), env={"ARRITMIAS_DATA_DIR": str(mitdb)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "119.pvc").is_file() and "119 (lead MLII):" in proc.stdout
    # MLII is the model's lead: nothing to say of it; the one note is the SVE count's (the model answers S).
    assert [line for line in proc.stdout.splitlines() if "note:" in line] == [f"  note: {SUPRA_CAUTION}"]


def test_a_record_without_mlii_names_its_lead_and_how_to_choose(trained, store, mitdb, tmp_path):
    """Record 102 has V5 and V2 only: the console and the report name the lead and --deriv-idx's choices."""
    rec = wfdb.rdrecord(str(mitdb / "102"), sampto=int(120 * FS))
    wfdb.wrsamp("v5v2", fs=FS, units=rec.units, sig_name=rec.sig_name, p_signal=rec.p_signal,
                fmt=["16"] * 2, write_dir=str(tmp_path))
    out = tmp_path / "out"
    proc = run_cli("analyze", str(tmp_path / "v5v2"), "--model-uri", f"runs:/{trained.run_id}/model",
                   "--tracking-uri", store, "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "v5v2 (lead V5):" in proc.stdout
    assert "--deriv-idx (0 = V5, 1 = V2)" in proc.stdout
    assert "do not rely on these counts" in proc.stdout  # V5 is neither MLII nor lead II: measured unreliable
    html = next(out.glob("v5v2*.html")).read_text(encoding="utf-8")
    assert "V5" in html and "--deriv-idx" in html and "no se fíe de estos recuentos" in html


def test_analyze_csv_in_microvolts_or_spanish_locale(trained, store, mitdb, tmp_path):
    """Microvolts without --units: one line with the fix, nothing written; with --units uV, or written the way a
    Spanish-locale spreadsheet writes it (';' and decimal commas), the same analysis as the mV lead."""
    x = read_recording(mitdb, "119", annotator=None).signal[: int(60 * FS)]
    uv, es, mv = tmp_path / "uv.csv", tmp_path / "es.csv", tmp_path / "mv.csv"
    uv.write_text("MLII\n" + "\n".join(f"{v * 1000:.1f}" for v in x))
    es.write_text("MLII;V1\n" + "\n".join(f"{v:.4f};0,0".replace(".", ",") for v in x))
    mv.write_text("MLII\n" + "\n".join(f"{v:.4f}" for v in x))
    model = ("--model-uri", f"runs:/{trained.run_id}/model", "--tracking-uri", store)
    out = tmp_path / "out"
    refused = run_cli("analyze", str(uv), "--fs", "360", *model, "--out", str(out))
    assert refused.returncode == 2 and "microvolts? give --units uV" in refused.stderr, refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr and not (out.exists() and any(out.iterdir()))
    counts = {}
    for path, extra in ((uv, ("--units", "uV")), (es, ("--column", "MLII")), (mv, ())):
        proc = run_cli("analyze", str(path), "--fs", "360", *extra, *model, "--out", str(out))
        assert proc.returncode == 0, proc.stderr[-2000:]
        counts[path.stem] = json.loads((out / f"{path.stem}_summary.json").read_text())["pvc_count"]
    assert counts["uv"] == counts["es"] == counts["mv"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.slow
def test_analyze_of_a_model_folder_needs_no_store_and_the_served_model_no_numba(trained, store, mitdb, tmp_path):
    """A model given as a folder on disk is read directly: `analyze` imports neither MLflow nor pyplot (seconds of
    start-up) and gives what the `runs:/` URI of the same model gives; loading the Detector, as the served model
    does, imports no Numba (only a recording's loops need it)."""
    import subprocess
    import sys

    import mlflow

    mlflow.set_tracking_uri(store)
    folder = mlflow.artifacts.download_artifacts(f"runs:/{trained.run_id}/model", dst_path=str(tmp_path / "m"))
    script = ("import sys; from arritmias.cli import main; code = main(sys.argv[1:]); "
              "print('IMPORTED', sorted(m for m in ('mlflow', 'matplotlib.pyplot') if m in sys.modules)); "
              "sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", script, "analyze", str(mitdb / "119"), "--out", str(tmp_path / "a"),
                           "--model-uri", folder, "--tracking-uri", "sqlite:////nowhere/at/all.db"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "IMPORTED []" in proc.stdout
    proc = run_cli("analyze", str(mitdb / "119"), "--out", str(tmp_path / "b"), "--tracking-uri", store,
                   "--model-uri", f"runs:/{trained.run_id}/model")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "a" / "119.pvc").read_bytes() == (tmp_path / "b" / "119.pvc").read_bytes()
    served = subprocess.run([sys.executable, "-c", "import sys; from arritmias.model.detector import Detector; "
                             f"Detector.from_model_uri({folder!r}).decide; import arritmias.serving.pyfunc; "
                             "print('numba' in sys.modules)"], capture_output=True, text=True, timeout=120)
    assert served.stdout.strip() == "False", served.stderr[-2000:]
