"""Batch scoring on a real local Ray: outputs equal ``analyze``'s, a corrupt record is an error row, runs resume."""

from __future__ import annotations

import contextlib
import csv
import filecmp
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from arritmias.analysis.batch import batch_score, check_manifest, find_recordings
from arritmias.errors import DataError
from tests.conftest import copy_records, free_port, run_cli


def test_find_recordings_accepts_paths_folders_and_globs(mitdb, tmp_path):
    names = [r.name for r in find_recordings([str(mitdb / "100"), str(mitdb / "101.hea"), str(mitdb / "10[0-2].hea")])]
    assert names == ["100", "101", "102"]  # duplicates dropped, order kept
    nested = copy_records(mitdb, tmp_path / "archive" / "day1", ["100", "103"])
    assert [r.name for r in find_recordings([str(nested.parent.parent)])] == ["100", "103"]


def test_find_recordings_refuses_missing_inputs_and_name_clashes(mitdb, tmp_path):
    with pytest.raises(DataError, match="names no WFDB record"):
        find_recordings([str(tmp_path / "nothing*")])
    with pytest.raises(DataError, match="names no WFDB record"):
        find_recordings([str(tmp_path / "999")])
    other = copy_records(mitdb, tmp_path / "other", ["100"])
    with pytest.raises(DataError, match="two records are named '100'"):
        find_recordings([str(mitdb / "100"), str(other / "100")])


def test_outputs_of_another_model_are_not_mixed(tmp_path):
    check_manifest(tmp_path, "models:/X/1", resume=True)
    check_manifest(tmp_path, "models:/X/1", resume=True)
    with pytest.raises(DataError, match="holds outputs of model 'models:/X/1'"):
        check_manifest(tmp_path, "models:/X/2", resume=True)
    check_manifest(tmp_path, "models:/X/2", resume=False)  # --no-resume rescores everything
    assert json.loads((tmp_path / "batch_manifest.json").read_text())["model_uri"] == "models:/X/2"


@contextlib.contextmanager
def ray_cluster():
    """A real one-node Ray cluster started with `ray start --head`, as an operator would; yields its address."""
    ray_cli = str(Path(sys.executable).parent / "ray")
    port = free_port()
    # Every port the head binds is picked free: the defaults (52365 for the dashboard agent, ...) can still be held
    # by the previous run's Ray shutting down, and then the head starts without its agent and the job fails.
    agent_ports = [f"--{flag}={free_port()}" for flag in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                                          "metrics-export-port", "runtime-env-agent-port")]
    subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats", *agent_ports], check=True, capture_output=True, timeout=180)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_cli, "stop"], capture_output=True, timeout=180)


def _analyze(record_path, model_uri, out):
    """What ``arritmias analyze`` does for one record (cmd_analyze's calls)."""
    from arritmias.analysis.recording import analyze_signal, read_signal
    from arritmias.model.detector import Detector
    from arritmias.analysis.report import provenance, write_outputs

    detector = Detector.from_model_uri(model_uri)
    write_outputs(analyze_signal(read_signal(record_path), detector, provenance(detector, model_uri)), out)


def _summary(folder, name: str) -> dict:
    """A written summary without its analysis time (two writes may fall in different minutes)."""
    summary = json.loads((folder / f"{name}_summary.json").read_text())
    summary.pop("analysed_at_utc")
    return summary


@pytest.mark.slow
def test_batch_on_local_ray_matches_analyze_survives_corruption_and_resumes(trained, store, mitdb, tmp_path):
    import mlflow

    mlflow.set_tracking_uri(store)
    uri = f"runs:/{trained.run_id}/model"
    archive = copy_records(mitdb, tmp_path / "archive", ["100", "119", "233", "101"])
    (archive / "101.dat").write_bytes(b"")  # a 0-byte signal file (a copy that failed)
    out = tmp_path / "out"

    result = batch_score([str(archive)], uri, out, workers=2, progress=False)

    assert result.scored == 3 and result.skipped == 0
    assert [name for name, _ in result.errors] == ["101"]
    assert "is empty (the header says 650000 samples)" in result.errors[0][1]
    rows = {r["record"]: r for r in csv.DictReader(result.results_path.open())}
    assert {k: r["status"] for k, r in rows.items()} == {"100": "scored", "119": "scored", "233": "scored",
                                                          "101": "error"}
    beats = pd.read_parquet(out / "beats")  # the folder reads as one table
    assert sorted(beats["record"].unique()) == ["100", "119", "233"]

    reference = tmp_path / "analyze"
    for name in ("100", "119", "233"):
        _analyze(archive / name, uri, reference)
        batch_summary, analyze_summary = (_summary(folder, name) for folder in (out, reference))
        assert batch_summary == analyze_summary and batch_summary["model"]["uri"] == uri
        assert filecmp.cmp(out / f"{name}.pvc", reference / f"{name}.pvc", shallow=False)
        part = beats[beats["record"] == name]
        summary = json.loads((out / f"{name}_summary.json").read_text())
        # One row per detection: the beats and those judged not beats (flagged).
        assert len(part) == summary["beats"] + summary["detections_not_beats"]
        assert part["not_beat"].sum() == summary["detections_not_beats"]
        assert (part["label"] == "V").sum() == summary["pvc_count"]
        assert (part["class"] == "S").sum() == summary["sve_count"] == int(rows[name]["sve_count"])
        assert int(rows[name]["beats"]) == summary["beats"]
        # P(S) for the beats the S stage is asked about; none for a detection judged not a beat or a V beat, nor
        # for a beat in an irregular rhythm (at most the summary's count of those).
        asked = part["label"] == "N"
        assert part.loc[part["not_beat"] | (part["label"] == "V"), "prob_s"].isna().all()
        assert part.loc[asked, "prob_s"].dropna().between(0, 1).all() and part.loc[part["class"] == "S", "prob_s"].notna().all()
        assert part.loc[asked, "prob_s"].isna().sum() <= summary.get("irregular_rhythm_beats", 0) < summary["beats"]
    assert (beats["prob_v"].between(0, 1)).all() and np.all(np.diff(beats[beats.record == "233"]["sample"]) > 0)

    # A job killed while writing 233: its summary (moved in last) is missing and a temporary folder is left.
    # The rerun joins an existing Ray cluster (--address) instead of starting its own.
    (out / "233_summary.json").unlink()
    (out / ".233.leftover").mkdir()
    kept = (out / "100.pvc").stat().st_mtime_ns
    with ray_cluster() as address:
        proc = run_cli("batch-score", str(archive), "--model-uri", uri, "--out", str(out), "--tracking-uri", store,
                       "--address", address)
    assert proc.returncode == 1, proc.stderr[-2000:]  # 101 is still corrupt
    assert "1 recordings scored" in proc.stdout and "2 already done, 1 failed" in proc.stdout, proc.stderr[-3000:]
    assert "101" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "233_summary.json").is_file() and not (out / ".233.leftover").exists()
    assert (out / "100.pvc").stat().st_mtime_ns == kept
    assert filecmp.cmp(out / "233.pvc", reference / "233.pvc", shallow=False)

    # Resume checks what it skips: an empty summary and a garbage Parquet part are rescored, not trusted; the
    # skipped recording is reported with its real counts; a damaged manifest is refused, not a traceback.
    (out / "100_summary.json").write_text("")
    (out / "beats" / "119.parquet").write_bytes(b"not parquet at all")
    again = batch_score([str(archive)], uri, out, workers=1, progress=False)
    assert again.scored == 2 and again.skipped == 1
    rows = {r["record"]: r for r in csv.DictReader(again.results_path.open())}
    assert rows["233"]["status"] == "skipped"
    assert int(rows["233"]["beats"]) == json.loads((out / "233_summary.json").read_text())["beats"] > 0
    assert _summary(out, "100") == _summary(reference, "100")
    summaries = [json.loads((out / f"{n}_summary.json").read_text()) for n in ("100", "119", "233")]
    assert len(pd.read_parquet(out / "beats")) == sum(s["beats"] + s["detections_not_beats"] for s in summaries)
    (out / "batch_manifest.json").write_text('{"model_uri": ')
    damaged = run_cli("batch-score", str(archive), "--model-uri", uri, "--out", str(out), "--tracking-uri", store)
    assert damaged.returncode == 2 and "is damaged" in damaged.stderr and "Traceback" not in damaged.stderr
