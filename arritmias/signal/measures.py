"""Measurements of single beats that a cardiologist would read off a strip: QRS width, amplitudes, the noise and
baseline wander around a beat, its rhythm. RuleGuard's rules use the QRS width; drift monitoring compares every one
of :data:`FEATURES` between the training beats and the beats coming in (the model keeps the training beats'
deciles: :mod:`arritmias.model.drift_reference`).
"""

from __future__ import annotations

import numpy as np

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

def qrs_width_ms(windows: np.ndarray, fs: float) -> np.ndarray:
    """Estimated QRS duration (ms) of each raw window (n, win), R peak at the centre.

    The QRS is where the signal changes fast: the span, within +-150 ms of the centre, where the absolute
    first difference (smoothed over ~8 ms) exceeds 25 % of its maximum there.
    """
    from scipy.ndimage import uniform_filter1d  # ~0.3 s to import: only when a rule or the drift features run

    n, win = windows.shape
    half = int(0.15 * fs)
    c = win // 2
    seg = windows[:, max(c - half, 0): c + half + 1]
    slope = np.abs(np.diff(seg, axis=1))
    smooth = uniform_filter1d(slope, size=max(int(0.008 * fs), 1), axis=1)
    above = smooth >= 0.25 * smooth.max(axis=1, keepdims=True)
    first = above.argmax(axis=1)
    last = above.shape[1] - 1 - above[:, ::-1].argmax(axis=1)
    return (last - first + 1) * 1000.0 / fs


def beat_features(windows: np.ndarray, rr: np.ndarray, fs: float):
    """``FEATURES`` of raw windows (n, win) in mV at ``fs`` Hz with RR features (n, 3): a pandas DataFrame, one
    row per beat."""
    import pandas as pd
    from scipy.ndimage import uniform_filter1d

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
