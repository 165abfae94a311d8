"""Per-beat monitoring features: rhythm, morphology, signal quality and (optionally) the model's output.

These are what drift monitoring compares between the training data and incoming data. Beats are found by
:func:`arritmias.analysis.find_beats`, the path ``analyze`` and ``batch-score`` take (QRS detection by arritmias.qrs), for
reference and production data alike, so detector jitter is the same on both sides and cannot look like drift.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter1d

from arritmias.analysis import Signal, find_beats, read_signal
from arritmias.errors import DataError
from arritmias.ruleguard import qrs_width_ms

# Column -> what it measures (units). The drift detector monitors exactly these.
FEATURES = {
    "rr_prev_s": "previous RR interval (s)",
    "rr_next_s": "next RR interval (s)",
    "rr_ratio": "next / previous RR",
    "r_amplitude_mv": "R-peak height above the window median (mV)",
    "ptp_mv": "peak-to-peak amplitude of the window (mV)",
    "qrs_width_ms": "estimated QRS duration (ms)",
    "energy_mv2": "mean squared centred window (mV^2)",
    "corr_median_beat": "correlation with the batch's median beat",
    "noise_mv2": "power above ~40 Hz: residual after a 9-sample moving average (mV^2)",
    "wander_mv": "baseline difference between the window's first and last 100 ms (mV)",
}
PREDICTION_FEATURES = {"prob_v": "model P(V)", "pred_v": "model decision (1 = V)"}


def beat_features(windows: np.ndarray, rr: np.ndarray, fs: float) -> pd.DataFrame:
    """``FEATURES`` of raw windows (n, win) in mV at ``fs`` Hz with RR features (n, 3); one row per beat."""
    x = np.asarray(windows, np.float32)
    c = x.shape[1] // 2
    centred = x - np.median(x, axis=1, keepdims=True)
    median_beat = np.median(centred, axis=0)
    mb = (median_beat - median_beat.mean()) / (median_beat.std() + 1e-9)
    zc = centred - centred.mean(axis=1, keepdims=True)
    corr = (zc @ mb) / (len(mb) * (zc.std(axis=1) + 1e-9))
    k = 9  # ~25 ms at 360 Hz: passes the QRS band, removes what is above ~40 Hz
    smooth = uniform_filter1d(x, size=k, axis=1, mode="nearest")
    edge = max(int(0.1 * fs), 1)
    return pd.DataFrame({
        "rr_prev_s": rr[:, 0], "rr_next_s": rr[:, 1], "rr_ratio": rr[:, 2],
        "r_amplitude_mv": centred[:, c],
        "ptp_mv": np.ptp(x, axis=1),
        "qrs_width_ms": qrs_width_ms(x, fs),
        "energy_mv2": np.mean(centred ** 2, axis=1),
        "corr_median_beat": corr,
        "noise_mv2": np.mean((x - smooth)[:, k:-k] ** 2, axis=1),
        "wander_mv": np.median(x[:, -edge:], axis=1) - np.median(x[:, :edge], axis=1),
    }).astype("float64")


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


def record_paths(names, data_dir: Path) -> list[Path]:
    """A name like ``100`` is a record in ``data_dir``; a lead CSV or anything with a folder is a path as given."""
    return [Path(n) if Path(n).suffix.lower() == ".csv" or "/" in n or os.sep in n else data_dir / n
            for n in names]


def records_features(paths: list[str | Path], fs_csv: float | None = None, detector=None,
                     deriv_idx: int = 0, units: str = "mV", decimal: str = "auto") -> pd.DataFrame:
    """Features of WFDB records or lead CSVs (``fs_csv`` Hz, ``units``, ``decimal``: see
    :func:`arritmias.analysis.read_signal`), concatenated."""
    frames = [signal_features(read_signal(p, fs=fs_csv, deriv_idx=deriv_idx, units=units, decimal=decimal),
                              detector=detector) for p in paths]
    if not frames:
        raise DataError("no records given")
    return pd.concat(frames, ignore_index=True)
