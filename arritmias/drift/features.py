"""Per-beat monitoring features of whole recordings: rhythm, morphology, signal quality
(:data:`arritmias.signal.measures.FEATURES`) and, optionally, the model's output.

These are what drift monitoring compares between the training data and incoming data. Beats are found by
:func:`arritmias.analysis.find_beats`, the path ``analyze`` and ``batch-score`` take (QRS detection by arritmias.signal.qrs), for
reference and production data alike, so detector jitter is the same on both sides and cannot look like drift.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from arritmias.analysis.recording import Signal, find_beats, read_signal
from arritmias.errors import DataError
from arritmias.signal.measures import beat_features

PREDICTION_FEATURES = {"prob_v": "model P(V)", "pred_v": "model decision (1 = V)"}


def signal_features(sig: Signal, fs: float = 360.0, win: int = 360, detector=None) -> pd.DataFrame:
    """Features of every detected beat of one lead; with ``detector``, also its ``prob_v`` and ``pred_v``."""
    found = find_beats(sig, fs, win, require_ecg_shape=False)
    frame = beat_features(found.windows, found.rr, fs)
    if detector is not None:
        d = detector.decide_recording(found.windows, found.rr, found.context)
        frame["prob_v"], frame["pred_v"] = d.prob.astype(float), d.is_v.astype(float)
    frame.insert(0, "time_s", found.samples / fs)
    frame.insert(0, "record", sig.name)
    return frame


def records_features(paths: list[str | Path], fs_csv: float | None = None, detector=None,
                     deriv_idx: int = 0, units: str = "mV", decimal: str = "auto") -> pd.DataFrame:
    """Features of WFDB records or lead CSVs (``fs_csv`` Hz, ``units``, ``decimal``: see
    :func:`arritmias.analysis.read_signal`), concatenated."""
    frames = [signal_features(read_signal(p, fs=fs_csv, deriv_idx=deriv_idx, units=units, decimal=decimal),
                              detector=detector) for p in paths]
    if not frames:
        raise DataError("no records given")
    return pd.concat(frames, ignore_index=True)
