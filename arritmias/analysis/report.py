"""Outputs of an analysed recording: WFDB annotation file, JSON summary, the HTML report
(:mod:`arritmias.analysis.clinical_report`) and, for batch scoring, a Parquet table of beats.

Everything is written into a temporary folder beside the output folder and moved in file by file only when all
were written, so an interrupted run never leaves a summary without its annotation file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from arritmias.analysis.recording import Analysis
from arritmias.util.atomic import staged_files
from arritmias.analysis.clinical_report import render_html

ANNOTATOR = "pvc"  # annotation file extension: <record>.pvc, read with wfdb.rdann(path, "pvc") or bxb -t pvc
BEATS_DIR = "beats"  # batch-score: one Parquet part per recording; the folder reads as one table


def input_samples(a: Analysis) -> np.ndarray:
    """R peaks of ``a`` as sample indices at the input's own sampling rate (int64, shape (n,))."""
    return np.round(a.samples * (a.fs_in / a.fs)).astype(np.int64)


def write_annotations(a: Analysis, folder: Path) -> Path:
    """``<name>.pvc``: one annotation per detection at the input's own sampling rate: N, V or A (a supraventricular
    ectopic beat: bxb scores it as SVEB) for a classified beat, Q for a beat in an unreadable stretch, ``|`` (isolated artifact: not a beat to bxb) for a detection
    judged not a beat."""
    import wfdb

    wfdb.wrann(a.name, ANNOTATOR, input_samples(a), a.decisions.annotation_symbols().tolist(), fs=a.fs_in,
               write_dir=str(folder))
    return folder / f"{a.name}.{ANNOTATOR}"


def beats_table(a: Analysis):
    """One row per detection: record, beat index, sample (input rate), time_s, prob_v, prob_not_beat, prob_s (NaN
    for a model without the S answer, and where its S stage is not asked: not a beat, V, or in an irregular
    rhythm), label (N, V, or Q: not a beat or unreadable), class (the label with S told apart), not_beat (the
    detection judged not a beat), ruleguard_changed — a pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame({
        "record": a.name,
        "beat": np.arange(len(a.samples), dtype=np.int64),
        "sample": input_samples(a),
        "time_s": a.samples / a.fs,
        "prob_v": a.decisions.prob.astype(np.float32),
        "prob_not_beat": (a.decisions.prob_not_beat if a.decisions.prob_not_beat is not None
                          else np.zeros(len(a.samples))).astype(np.float32),
        "prob_s": (a.decisions.prob_s if a.decisions.prob_s is not None
                   else np.full(len(a.samples), np.nan)).astype(np.float32),
        "label": a.decisions.labels(),
        "class": a.decisions.classes(),
        "not_beat": (a.decisions.not_beat if a.decisions.not_beat is not None
                     else np.zeros(len(a.samples), bool)).astype(bool),
        "ruleguard_changed": a.decisions.ruleguard_changed.astype(bool),
    })


def provenance(detector, model_uri: str) -> dict:
    """What a summary says about how it was made: ``{"model": {uri, name, version, run_id, threshold,
    threshold_no_context, threshold_recording, not_beat_threshold, family_weight, ruleguard, arritmias_version, and
    for a model with the S answer threshold_s}, "analysed_at_utc": "YYYY-MM-DD HH:MM"}``.
    """
    from datetime import datetime, timezone

    from arritmias import __version__
    from arritmias.tracking import registry

    r = detector.rule
    model = registry.model_provenance(model_uri) | {
        "threshold": round(r.threshold, 4), "threshold_no_context": round(r.threshold_no_context, 4),
        "threshold_recording": round(r.threshold_recording, 4), "not_beat_threshold": round(r.not_beat_threshold, 4),
        "family_weight": r.family_weight, "ruleguard": r.guard is not None, "arritmias_version": __version__}
    if detector.supra is not None:
        model |= {"threshold_s": round(detector.supra.threshold, 4)}
    return {"model": model, "analysed_at_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")}


def output_paths(name: str, out_dir: Path, report: bool = True, beats: bool = False) -> dict[str, Path]:
    """Where :func:`write_outputs` puts a recording's files; the summary is written last, so a recording whose
    files all exist was written completely."""
    paths = {"annotations": out_dir / f"{name}.{ANNOTATOR}"}
    if beats:
        paths["beats"] = out_dir / BEATS_DIR / f"{name}.parquet"
    if report:
        paths["report"] = out_dir / f"{name}_report.html"
    paths["summary"] = out_dir / f"{name}_summary.json"
    return paths


def write_outputs(a: Analysis, out_dir: Path, report: bool = True, beats: bool = False) -> dict[str, Path]:
    """Write ``<name>.pvc``, ``<name>_summary.json``, and ``<name>_report.html`` (``report``) and
    ``beats/<name>.parquet`` (``beats``) into ``out_dir`` atomically: each file is written into a temporary folder
    and moved in when all are written, the summary last."""
    paths = output_paths(a.name, out_dir, report, beats)
    with staged_files(paths) as tmp:  # the summary is the last key: on disk, it means all the rest is
        write_annotations(a, tmp["annotations"].parent)
        if beats:
            beats_table(a).to_parquet(tmp["beats"], index=False)
        if report:
            tmp["report"].write_text(render_html(a))
        tmp["summary"].write_text(json.dumps(a.summary, indent=2))
    return paths
