"""The training beats' drift reference, saved inside the model (``drift_reference.json`` beside ``detector.json``):
for each per-beat feature of :data:`arritmias.signal.measures.FEATURES` (except ``corr_median_beat``, which is
relative to a batch and means nothing for a stream of single beats), the deciles of the training beats and the share
of them in each decile bin; and the population stability index that compares beats coming in against it
(:mod:`arritmias.serving.live_drift` keeps it up to date while serving).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from arritmias.signal.measures import beat_features

REFERENCE_FILE = "drift_reference.json"
BATCH_RELATIVE = ("corr_median_beat",)  # features that compare a beat with the others of its batch
EPS = 1e-4  # floor on bin shares: an empty bin would make the PSI infinite


def reference(windows: np.ndarray, rr: np.ndarray, fs: float) -> dict:
    """Per live feature, the training beats' deciles as bin edges and the share of training beats in each of the
    10 bins (not exactly 10 % where values tie, e.g. QRS widths counted in samples):
    ``{feature: {"edges": [9], "shares": [10]}}``."""
    table = beat_features(windows, rr, fs)
    out = {}
    for name in table.columns:
        if name in BATCH_RELATIVE:
            continue
        values = table[name].to_numpy()
        edges = np.quantile(values, np.linspace(0.1, 0.9, 9)).round(6)  # as stored: the shares must use these
        shares = np.bincount(bin_of(edges, values), minlength=10) / len(values)
        out[name] = {"edges": edges.tolist(), "shares": shares.round(6).tolist()}
    return out


def bin_of(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The decile bin (0-9) of each value against the 9 ``edges``; a value on an edge goes to the bin above it.
    The one binning the reference shares and the live window both use, so that PSI compares like with like."""
    return np.searchsorted(edges, values, side="right")


def save_reference(ref: dict, folder: Path) -> Path:
    path = Path(folder) / REFERENCE_FILE
    path.write_text(json.dumps({"bins": "deciles of the training beats", "features": ref}, indent=1))
    return path


def load_reference(folder: Path) -> dict | None:
    path = Path(folder) / REFERENCE_FILE
    return json.loads(path.read_text())["features"] if path.is_file() else None


def psi(counts: np.ndarray, expected: np.ndarray) -> float:
    """Population stability index of observed bin ``counts`` against ``expected`` shares."""
    observed = np.maximum(counts / max(counts.sum(), 1), EPS)
    expected = np.maximum(expected, EPS)
    return float(np.sum((observed - expected) * np.log(observed / expected)))
