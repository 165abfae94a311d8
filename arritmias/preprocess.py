"""The one per-beat preprocessing, shared by training, evaluation, serving and analysis.

A served request carries only a raw window (mV, as wfdb reads it, R peak at the centre) and its three RR
features, so everything the model needs is computed here from those two arrays and nothing else.
"""

from __future__ import annotations

import numpy as np

# Added to the window's standard deviation before dividing (mV). A flat or near-flat window (lead off, pure
# noise of a few tens of uV) is then scaled down instead of being blown up to unit variance.
SCALE_FLOOR_MV = 0.05
# Plausible RR range in seconds (30-300 bpm); values outside are artefacts of missed or extra detections.
RR_RANGE_S = (0.2, 2.0)


def preprocess_windows(windows: np.ndarray) -> np.ndarray:
    """Remove the baseline offset and normalise the amplitude of each beat window.

    Parameters
    ----------
    windows : ndarray, shape (n, win), float
        Raw lead signal in mV, R peak at index ``win // 2``.

    Returns
    -------
    ndarray, shape (n, win, 1), float32
        ``(x - median(x)) / (std(x) + SCALE_FLOOR_MV)`` per window. The median is the isoelectric level for
        a 1 s window (the QRS occupies under 15 % of it), and baseline wander below 0.5 Hz is close to a
        constant over 1 s; dividing by the spread removes the between-patient gain differences (electrode
        placement, body habitus) that otherwise dominate inter-patient error. No band-pass filter: the first
        convolution learns its own band, and a fixed filter on a 1 s window adds edge effects.
    """
    x = np.asarray(windows, dtype=np.float32)
    centred = x - np.median(x, axis=1, keepdims=True)
    scale = centred.std(axis=1, keepdims=True) + SCALE_FLOOR_MV
    return (centred / scale)[..., None]


def model_inputs(windows: np.ndarray, rr: np.ndarray) -> dict[str, np.ndarray]:
    """The network's two inputs: ``beat`` (n, win, 1) and ``rr`` (n, 3), from raw windows and request RR."""
    return {"beat": preprocess_windows(windows), "rr": preprocess_rr(rr)}


def preprocess_rr(rr: np.ndarray) -> np.ndarray:
    """Model inputs from the RR features.

    Parameters
    ----------
    rr : ndarray, shape (n, 3)
        Previous RR (s), next RR (s), next/previous ratio, as carried by a request.

    Returns
    -------
    ndarray, shape (n, 3), float32
        Previous and next RR clipped to ``RR_RANGE_S``, and log of their ratio (recomputed from the clipped
        intervals, so a request's ratio cannot disagree with its intervals). The log makes a premature beat
        followed by a compensatory pause (ratio ~2) and its mirror (ratio ~0.5) symmetric around 0.
    """
    r = np.asarray(rr, dtype=np.float32)
    prev = np.clip(r[:, 0], *RR_RANGE_S)
    nxt = np.clip(r[:, 1], *RR_RANGE_S)
    return np.stack([prev, nxt, np.log(nxt / prev)], axis=1).astype(np.float32)
