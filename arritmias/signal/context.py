"""Record context: the patient's usual beat and usual rhythm, from the unlabelled recording itself.

A PVC is recognised against *this patient's* normal beats: wider and larger than the usual beat, earlier than the
usual rhythm. Both references are computed causally, from the beat itself and the beats before it (never later
beats), so the same definition serves a live stream, a served request and a whole record:

* ``template`` — the median of the last ``CONTEXT_BEATS`` baseline-centred windows, recomputed every
  ``CONTEXT_STRIDE`` beats (so a beat sees the median of the beats up to the latest multiple of 8 before it).
  A median of 64 beats is the patient's dominant morphology as long as fewer than half of them are ectopic,
  which holds for every MIT-BIH record but the stretches of ventricular bigeminy and tachycardia.
* ``rr_usual`` — the median previous-RR interval of the same beats (s): the patient's recent rhythm, robust to
  the short-long pairs that premature beats make.

No labels are used. :func:`record_context` is the one place this is computed, for training (reference beats),
``evaluate``, ``analyze``, ``batch-score``, drift features and :func:`arritmias.data.beats.for_recording`, which
builds served requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ~1 minute of beats at 60-100 bpm: long enough to outvote occasional PVCs, short enough to follow a patient's
# morphology drifting with posture and rate. Chosen before any DS2 figure was seen.
CONTEXT_BEATS = 64
# The template is recomputed every 8 beats (the median of 64 beats moves little in 8): 8x fewer medians than one
# at every beat, and consecutive windows share whole blocks of 8 beats, which _window_medians exploits.
CONTEXT_STRIDE = 8
# Windows whose medians are computed together: ~32 x 32 x win floats per merge step stay in the CPU's cache.
_CHUNK = 32
# Rows of windows processed together by centre and template_correlation (~6 MB of float32 at 360 samples).
_ROWS = 4096


@dataclass(frozen=True)
class Context:
    """Per-beat record context, row-aligned with the beats it was computed for.

    Attributes
    ----------
    template : ndarray, shape (n, win), float32
        The patient's usual beat at each beat, in mV, baseline-centred (each window's median removed).
    rr_usual : ndarray, shape (n,), float32
        The patient's usual RR interval at each beat, in seconds.
    """

    template: np.ndarray
    rr_usual: np.ndarray

    def __len__(self) -> int:
        return len(self.rr_usual)

    def select(self, rows) -> Context:
        return Context(self.template[rows], self.rr_usual[rows])


def centre(windows: np.ndarray) -> np.ndarray:
    """Windows (n, win) in mV minus each window's median (its isoelectric level), float32."""
    x = np.asarray(windows, np.float32)
    out = np.empty_like(x)
    for a in range(0, len(x), _ROWS):  # np.median copies what it sorts: a day's windows are 160 MB
        out[a:a + _ROWS] = x[a:a + _ROWS] - np.median(x[a:a + _ROWS], axis=1, keepdims=True)
    return out


def _running_median(values: np.ndarray, k: int, stride: int) -> np.ndarray:
    """Causal running median of the rows of ``values`` (n, d), finite floats -> (n, d), float32.

    Row i gets the median of rows ``max(0, a-k+1) .. a`` with ``a = i - i % stride``, the latest anchor at or
    before i: only rows up to i take part, and one median serves ``stride`` rows. The value is exactly
    ``np.median``'s; it is computed by :func:`_window_medians` at ~5 us per row for 360 columns on one core
    (``np.median`` on each window: ~50 us).
    """
    n, d = values.shape
    anchors = np.arange(0, n, stride)
    med = np.empty((len(anchors), d), np.float32)
    early = anchors < k - 1  # anchors with fewer than k rows behind them: the median of what there is
    for j in np.flatnonzero(early):
        med[j] = np.median(values[: anchors[j] + 1], axis=0)
    late = anchors[~early]
    if len(late):
        med[int(early.sum()):] = _window_medians(np.asarray(values, np.float32), late // stride, k, stride)
    return med[np.arange(n) // stride]


def _window_medians(values: np.ndarray, ends: np.ndarray, k: int, stride: int) -> np.ndarray:
    """Medians (len(ends), d) of the k-row windows ending at rows ``ends * stride`` of ``values`` (n, d).

    A window is ``k // stride`` blocks of ``stride`` rows (block m: rows ``m*stride+1 .. (m+1)*stride``), and
    neighbouring windows share all but one block. So each block is sorted once (per column, by a bitonic
    network: elementwise minimum and maximum over whole arrays, which numpy runs at memory speed, where a
    selection per window and column is a branchy loop of 64 numbers), sorted runs of 2, 4, ... blocks are merged
    once and shared, and each window's median comes from its two sorted halves: the lower half of two sorted
    runs A, B of h numbers is ``min(A[i], B[h-1-i])``, so its largest is the lower median and the smallest of the
    ``max`` is the upper one. Needs k and stride powers of two, k >= 2 * stride.
    """
    blocks_per_window = k // stride
    if stride & (stride - 1) or blocks_per_window & (blocks_per_window - 1) or blocks_per_window < 2 \
            or k % stride:
        raise ValueError(f"window {k} and stride {stride} must be powers of two with window >= 2 x stride")
    n_blocks = (len(values) - 1) // stride
    blocks = values[1:1 + stride * n_blocks].reshape(n_blocks, stride, -1).transpose(1, 0, 2)  # (stride, M, d)
    out = np.empty((len(ends), values.shape[1]), np.float32)
    for c in range(0, len(ends), _CHUNK):
        last = ends[c:c + _CHUNK]
        first_block = last[0] - blocks_per_window
        runs, span = _sort_rows(np.ascontiguousarray(blocks[:, first_block:last[-1]])), 1
        while 2 * span < blocks_per_window:  # runs[:, m]: blocks m .. m + 2*span - 1 sorted together
            runs, span = _merge(runs[:, :-span], runs[:, span:]), 2 * span
        a = runs[:, last - blocks_per_window - first_block]
        b = runs[:, last - span - first_block][::-1]
        out[c:c + len(last)] = (np.minimum(a, b).max(axis=0) + np.maximum(a, b).min(axis=0)) * np.float32(0.5)
    return out


def _sort_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (h, ...) sorted along its first axis (h a power of two) by bitonic merges."""
    if len(x) == 1:
        return x
    half = len(x) // 2
    return _merge(_sort_rows(x[:half]), _sort_rows(x[half:]))


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two stacks (h, ...) sorted along the first axis -> one (2h, ...) sorted: a bitonic merge network."""
    x = np.concatenate([a, b[::-1]])
    y = np.empty_like(x)
    h = len(a)
    while h >= 1:
        pairs, into = x.reshape(len(x) // (2 * h), 2, h, -1), y.reshape(len(x) // (2 * h), 2, h, -1)
        np.minimum(pairs[:, 0], pairs[:, 1], out=into[:, 0])
        np.maximum(pairs[:, 0], pairs[:, 1], out=into[:, 1])
        x, y, h = y, x, h // 2
    return x


def record_context(windows: np.ndarray, rr: np.ndarray, k: int = CONTEXT_BEATS,
                   centred: np.ndarray | None = None) -> Context:
    """The context of every beat of one recording.

    Parameters
    ----------
    windows : ndarray, shape (n, win)
        Raw windows in mV of the recording's beats **in time order** (every beat, whatever its class: the
        context is the patient's, not the N beats').
    rr : ndarray, shape (n, 3)
        Their RR features (previous s, next s, next/previous), as :func:`arritmias.data.beats.rr_features` makes them.
    k : int
        Beats in the running median.
    centred : ndarray, shape (n, win), optional
        ``centre(windows)``, when the caller has it already.

    Returns
    -------
    Context with ``template`` (n, win) and ``rr_usual`` (n,).
    """
    windows = np.asarray(windows, np.float32)
    rr = np.asarray(rr, np.float32)
    if len(windows) == 0:
        return Context(np.zeros((0, windows.shape[1] if windows.ndim == 2 else 0), np.float32),
                       np.zeros(0, np.float32))
    template = _running_median(centre(windows) if centred is None else centred, k, CONTEXT_STRIDE)
    rr_usual = _running_median(rr[:, :1].astype(np.float32), k, CONTEXT_STRIDE)[:, 0]
    return Context(template, rr_usual)


def template_correlation(centred: np.ndarray, context: Context, fs: float) -> np.ndarray:
    """Correlation (n,) of each beat's QRS region (+-150 ms around R) with its usual beat's, from the beats'
    centred windows (n, win) (:func:`centre`): near 1 for the patient's normal beats, lower for ectopic beats,
    and low for all "beats" a QRS detector finds in noise."""
    centred = np.asarray(centred, np.float32)
    out = np.empty(len(centred), np.float32)
    c, half = centred.shape[1] // 2, int(round(0.15 * fs))
    for r in range(0, len(centred), _ROWS):  # a block of beats at a time: no whole-recording temporaries
        x, t = centred[r:r + _ROWS, c - half: c + half], context.template[r:r + _ROWS, c - half: c + half]
        a, b = x - x.mean(axis=1, keepdims=True), t - t.mean(axis=1, keepdims=True)
        out[r:r + _ROWS] = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1) + 1e-12)
    return out
