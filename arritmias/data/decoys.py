"""Decoys: "not a beat" examples cut where a QRS detector is fooled — on T waves, on P waves, between beats.

The training patients' own false detections teach the network's "not a beat" answer too little: DS1 has a few
hundred (most of them on one record's large P waves), while another patient's tall T waves or blocked P waves
can give a detector a thousand. So every training record also gives windows centred on the T wave after a beat
(its largest deflection 200-500 ms after R), on the P wave before the next (100-300 ms before it) and at a random
point between the two, each with the RR features and record context it would carry as a false detection there.
"""

from __future__ import annotations

import numpy as np

KINDS = {"t": "T wave", "p": "P wave", "_": "between beats"}  # the decoys' symbols in a BeatSet
MIN_RR_S = 0.4  # beats closer than this leave no room for a T wave, a P wave and a gap between


def decoy_positions(signal: np.ndarray, beats: np.ndarray, pairs: np.ndarray, fs: float, win: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where to cut decoys between consecutive beats.

    Parameters
    ----------
    signal : (m,) mV at ``fs`` Hz. beats : (k,) R-peak samples, increasing. pairs : indices i of ``beats``
        whose gap to ``beats[i + 1]`` may hold decoys (both real beats).

    Returns
    -------
    (positions (d,) int64 samples, kinds (d,) '<U1' from :data:`KINDS`, before (d,) int64: the index i of the
    beat before each decoy); every position has a whole ``win``-sample window inside ``signal``.
    """
    half = win // 2
    positions, kinds, before = [], [], []
    for i in np.asarray(pairs, np.int64):
        a, b = int(beats[i]), int(beats[i + 1])
        if b - a < MIN_RR_S * fs:
            continue
        base = float(np.median(signal[max(a - half, 0): a + half]))
        lo, hi = a + int(0.2 * fs), a + int(min(0.5 * fs, 0.65 * (b - a)))
        found = {"t": lo + int(np.argmax(np.abs(signal[lo:hi] - base)))} if hi > lo else {}
        lo, hi = b - int(0.3 * fs), b - int(0.1 * fs)
        if hi > lo > a + int(0.25 * fs):
            found["p"] = lo + int(np.argmax(np.abs(signal[lo:hi] - base)))
        found["_"] = a + int(rng.uniform(0.3, 0.7) * (b - a))
        for kind, t in found.items():
            if t - half >= 0 and t - half + win <= len(signal):
                positions.append(t)
                kinds.append(kind)
                before.append(i)
    return (np.asarray(positions, np.int64), np.asarray(kinds, "<U1"), np.asarray(before, np.int64))


def decoy_rr(positions: np.ndarray, beats: np.ndarray, before: np.ndarray, fs: float) -> np.ndarray:
    """The RR features (d, 3) a false detection at each decoy position would carry: previous RR, next RR (s)
    and next/previous, against the real beats around it."""
    prev = (positions - beats[before]) / fs
    nxt = (beats[before + 1] - positions) / fs
    return np.stack([prev, nxt, nxt / np.maximum(prev, 1e-6)], axis=1).astype(np.float32)
