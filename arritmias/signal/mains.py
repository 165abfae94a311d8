"""Mains interference removed from a lead before its beats are found: the 50 Hz of Europe and most of Latin
America and the 60 Hz of North America, wherever the recording was made. Applied where a lead is read for the model
(:func:`arritmias.data.records.read_recording` at the model's rate, :func:`arritmias.analysis.recording.find_beats`
for a recording being analysed, :func:`arritmias.data.beats.for_recording`), at the recording's own rate before
resampling, so training, evaluation and analysis see the same lead.

MIT-BIH was recorded in Boston (60 Hz) and holds little of either; a recorder without its own mains filter hands
the model a hum it never learnt to ignore. On DS1 (the default model, seed 42, end to end), 0.1 mV of 50 Hz cost 2.0
points of VEB sensitivity and 60 Hz 2.9; with this filter both recover to the clean figure, and the clean figure
moves by less than 0.2 points. It is what every ECG recorder's "50/60 Hz filter" does: two narrow zero-phase
notches (quality factor 30: -3 dB over ~1.7 Hz), which leave the QRS (most of its energy below 40 Hz) as it was.
Its cost in a 24-hour ``analyze`` (``benchmarks/bench_profile.py``): under a second of 25. It runs a block at a
time and, on a lead the analysis owns, over the lead itself: a day is 125 MB, not to be kept twice.
"""

from __future__ import annotations

import numpy as np

MAINS_HZ = (50.0, 60.0)
NOTCH_Q = 30.0  # bandwidth = f0 / Q: 1.7 Hz at 50 Hz, narrow enough to keep the QRS, wide enough for mains drift
# A 24-hour lead is filtered in blocks: scipy's filtfilt works in float64 on padded copies, ~0.5 GB at once for
# 31 million samples (the analysis of a day has a 1 GB budget). A notch's ringing decays as exp(-pi f0 t / Q):
# after MARGIN_S it is below 1e-6 of the input, so blocks overlapping by that much join without a seam.
BLOCK_SAMPLES = 1 << 18  # ~12 minutes at 360 Hz
MARGIN_S = 5.0


def remove_mains(signal: np.ndarray, fs: float, in_place: bool = False) -> np.ndarray:
    """``signal`` (m,) mV at ``fs`` Hz without its 50 and 60 Hz components, float32 (m,): a cascade of two notches
    run forwards and backwards (no phase shift: R peaks stay where they are). Frequencies at or above Nyquist are
    skipped; a lead too short to filter (under ~0.1 s) is returned unchanged. Samples that are not numbers stay
    so, and do not spread: the filter runs over them linearly bridged, then they are put back. ``in_place``
    writes the result over ``signal`` when it is float32 (a day's lead is 125 MB: not kept twice)."""
    from scipy.signal import iirnotch, tf2sos

    x = np.asarray(signal, np.float32)
    notches = [tf2sos(*iirnotch(f, NOTCH_Q, fs)) for f in MAINS_HZ if f < fs / 2]
    sos = np.vstack(notches) if notches else None
    finite = np.isfinite(x)
    if sos is None or finite.sum() <= 3 * (2 * len(sos) + 1):  # sosfiltfilt's edge padding needs this many
        return x
    out = x if in_place and x is signal else np.empty_like(x)
    if finite.all():
        return _filtfilt_blocks(sos, x, int(MARGIN_S * fs), out)
    idx = np.arange(len(x))
    gaps = ~finite
    bridged = np.interp(idx, idx[finite], x[finite]).astype(np.float32)
    kept = x[gaps]  # what the gaps held (NaN, inf), put back after filtering
    _filtfilt_blocks(sos, bridged, int(MARGIN_S * fs), out)
    out[gaps] = kept
    return out


def _filtfilt_blocks(sos: np.ndarray, x: np.ndarray, margin: int, out: np.ndarray) -> np.ndarray:
    """``sosfiltfilt(sos, x)`` written into ``out`` (m,) float32 (which may be ``x`` itself), computed
    ``BLOCK_SAMPLES`` at a time, each block filtered with ``margin`` samples of its neighbours on both sides and
    those then dropped."""
    from scipy.signal import sosfiltfilt

    n = len(x)
    if n <= BLOCK_SAMPLES + 2 * margin:
        out[:] = sosfiltfilt(sos, x)
        return out
    before = x[:0].copy()  # the input just before the block, as it was (out may already hold the last block there)
    for start in range(0, n, BLOCK_SAMPLES):
        stop, left = min(start + BLOCK_SAMPLES, n), len(before)
        y = sosfiltfilt(sos, np.concatenate([before, x[start:min(n, stop + margin)]]))
        before = x[max(start, stop - margin):stop].copy()  # kept before the block is written over it
        out[start:stop] = y[left:left + stop - start]
    return out
