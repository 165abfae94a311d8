"""Morphology families: the patient's beats grouped by QRS shape, in time order, without labels.

A cardiologist reading a Holter does not judge a beat alone: a shape that keeps coming back, different from the
patient's dominant beat, is an ectopic focus; a shape seen once is more likely noise or an odd conduction.
OSEA (Hamilton 2002) keeps such templates of the patient's beats for the same reason. Here every beat, in time
order, joins the earlier family whose QRS it matches best (correlation of the +-100 ms around R at or above
``corr``, amplitude within a factor of two), or starts a new one; a family's template is the sum of its members.
A beat's *family evidence* is then the mean of the network's answers over the members of its family up to and
including itself, and the decision uses ``(1 - w) * own + w * family`` (``w`` chosen by cross-validation on DS1,
0 among the candidates: the ablation).

Causal: a beat's family and its evidence use only that beat and earlier ones, so a live stream that feeds beats
in order through the same functions gets exactly the labels ``analyze`` gives the whole recording; the first
member of a new family has only its own answer.
"""

from __future__ import annotations

import numpy as np

from arritmias.util.jit import njit

QRS_HALF_S = 0.1
MAX_FAMILIES = 24  # enough for a dominant beat, multiform PVCs and a few noise shapes; when full, the smallest goes
AMPLITUDE_FACTOR = 2.0  # a beat twice as large or small as a family's members is not of that family


def _qrs_vectors(windows: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Each window's QRS region (+-``QRS_HALF_S``), mean removed, and its norm: ((n, L) float64, (n,))."""
    c, h = windows.shape[1] // 2, max(int(round(QRS_HALF_S * fs)), 2)
    q = np.asarray(windows[:, max(c - h, 0): c + h], np.float64)
    q -= q.mean(axis=1, keepdims=True)  # in place: a day's q is 64 MB
    norm = np.empty(len(q))
    for a in range(0, len(q), 4096):  # (q * q) a block at a time: no second whole-day array
        block = q[a:a + 4096]
        norm[a:a + 4096] = np.sqrt((block * block).sum(axis=1))
    return q, norm


def assign(windows: np.ndarray, fs: float, corr: float = 0.9) -> np.ndarray:
    """Family number (n,) int64 of each beat of one recording, ``windows`` (n, win) raw mV in time order with R at
    ``win // 2``; numbers grow as families appear (a family evicted when ``MAX_FAMILIES`` are full never comes
    back under its number)."""
    q, norm = _qrs_vectors(windows, fs)
    return _assign(q, norm, float(corr), MAX_FAMILIES, 1 / AMPLITUDE_FACTOR, AMPLITUDE_FACTOR)


@njit
def _assign(q, norm, corr, max_families, lo, hi):
    """:func:`assign`'s beat-by-beat loop over the QRS vectors ``q`` (n, L) and their norms ``norm`` (n,)."""
    n, length = q.shape
    sums = np.zeros((max_families, length))
    sum_norm = np.zeros(max_families)  # the family's template norm
    amp = np.zeros(max_families)  # the mean QRS norm of its members
    count = np.zeros(max_families, np.int64)
    number = np.zeros(max_families, np.int64)
    out = np.empty(n, np.int64)
    used, next_number = 0, 0
    for i in range(n):
        v, nv = q[i], norm[i]
        j, best = -1, -np.inf
        if nv > 0:
            for f in range(used):  # the best-correlated family whose members' size is within the factor
                ratio = nv / (amp[f] + 1e-12)
                c = -1.0
                if lo <= ratio <= hi:
                    c = np.dot(sums[f], v) / (sum_norm[f] * nv + 1e-12)
                if c > best:
                    j, best = f, c
            if best < corr:
                j = -1
        if j >= 0:
            sums[j] += v
            sum_norm[j] = np.sqrt(np.dot(sums[j], sums[j]))
            amp[j] += (nv - amp[j]) / (count[j] + 1)
            count[j] += 1
        else:
            j = used if used < max_families else int(np.argmin(count[:used]))
            used = max(used, j + 1)
            sums[j] = v
            sum_norm[j], amp[j], count[j] = nv, nv, 1
            number[j], next_number = next_number, next_number + 1
        out[i] = number[j]
    return out


def evidence(family: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Causal family mean: row i is the mean of ``values`` (n, k) over the beats of ``family`` (n,) equal to
    ``family[i]`` at or before i."""
    values = np.asarray(values, np.float64)
    n = len(family)
    if n == 0:
        return values.copy()
    order = np.argsort(family, kind="stable")  # by family, time order kept inside each
    grouped = values[order]
    run = np.cumsum(grouped, axis=0)
    fam_sorted = family[order]
    starts = np.r_[0, np.flatnonzero(np.diff(fam_sorted)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, n]))
    before = np.where(first[:, None] > 0, run[first - 1], 0.0)
    rank = np.arange(n) - first + 1
    out = np.empty_like(values)
    out[order] = (run - before) / rank[:, None]
    return out


def smooth(prob: np.ndarray, family: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * prob + weight * evidence(family, prob)``: the beats' class probabilities (n, k) moved
    towards their family's so far (rows still sum to one)."""
    prob = np.asarray(prob, np.float32)
    if weight == 0 or len(prob) == 0:
        return prob
    return ((1 - weight) * prob + weight * evidence(family, prob)).astype(np.float32)
