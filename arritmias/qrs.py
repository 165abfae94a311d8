"""QRS detection: where the beats of a recording are, before anything classifies them.

The design is the classic one of Pan & Tompkins (1985) and Hamilton & Tompkins (1986; Hamilton's OSEA, 2002),
written here in numpy with one Python loop over candidate peaks:

1. the lead is averaged down to ~180 Hz (QRS energy lies below ~40 Hz) and band-passed at 5-15 Hz, the band
   where QRS slopes dominate P and T waves and baseline wander (Hamilton & Tompkins 1986);
2. the absolute first difference is integrated over 80 ms (OSEA's window): one smooth hump per QRS;
3. candidates are the hump maxima at least ``REFRACTORY_S`` apart (no two ventricular depolarisations can be
   closer than ~200 ms);
4. a candidate is a QRS when it exceeds ``noise + TH (qrs - noise)``, where qrs and noise are the medians of the
   last 8 accepted QRS and noise peaks (OSEA's threshold, TH = 0.3125), except
   - within ``TWAVE_S`` of the previous QRS a candidate whose steepest slope is under half of that QRS's is a
     T wave (both papers' T-wave rule);
5. when no QRS has come for ``SEARCHBACK_RR`` times the mean of the last 8 RR intervals, the largest candidate
   since the last QRS (at least ``TWAVE_S`` after it) above half the threshold is taken (search-back);
6. each detection is placed at the largest deflection from the local median within +-75 ms, at the full rate.

What it does not decide: whether a detection is a beat at all when it sits on a P wave, a T wave or noise that
passed these rules. That is the classifier's third answer (:mod:`arritmias.model`), learnt from this detector's
own mistakes on the training patients.

Chosen on DS1 alone (``benchmarks/bench_qrs.py`` prints the candidates' EC57 QRS figures and speed).
"""

from __future__ import annotations

import numpy as np

DETECTION_HZ = 180.0  # the lead is averaged down to about this rate before filtering
BAND_HZ = (5.0, 15.0)
INTEGRATION_S = 0.08
REFRACTORY_S = 0.2
TWAVE_S = 0.36
TWAVE_SLOPE_RATIO = 0.5
THRESHOLD_FRACTION = 0.3125
SEARCHBACK_RR = 1.66  # Pan & Tompkins' search-back interval, in mean RR intervals
SEARCHBACK_FRACTION = 0.5
HISTORY = 8  # peaks and RR intervals the thresholds remember
LEARNING_S = 8  # the first QRS level: the median of the per-second maxima over the first 8 s (OSEA)
SLOPE_S = 0.15  # span around a candidate where its steepest slope is measured
LOCATE_S = 0.075
VERSION = 1  # bump when detections change for the same input: part of every dataset cache key


def _median(values: list[float]) -> float:
    s = sorted(values)
    k = len(s)
    return 0.5 * (s[(k - 1) // 2] + s[k // 2])


def _moving_sum(v: np.ndarray, width: int) -> np.ndarray:
    """Centred moving sum of ``width`` samples, same length as ``v`` (shorter sums at the edges), float32."""
    n, before = len(v), width // 2
    c = np.empty(n + 1, np.float64)
    c[0] = 0.0
    np.cumsum(v, out=c[1:])
    # Sample i sums v[i - before : i - before + width] clipped to the lead, c[hi] - c[lo]: plain slices where
    # neither end is clipped, indices only at the edges (fancy indexing of a day's 15 M samples cost 1 s).
    out = np.empty(n, np.float32)
    first, last = min(before, n), max(min(before, n), n - width + before + 1)  # unclipped: first <= i < last
    np.subtract(c[first - before + width: last - before + width], c[first - before: last - before],
                out=out[first:last])
    edges = np.r_[0:first, last:n]
    out[edges] = c[np.clip(edges - before + width, 0, n)] - c[np.clip(edges - before, 0, n)]
    return out


def _energy(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(|slope|, integrated |slope|, decimation factor, their rate in Hz) of lead ``x`` (mV at ``fs`` Hz)."""
    from scipy.signal import butter, sosfiltfilt

    k = max(int(round(fs / DETECTION_HZ)), 1)
    m = len(x) // k
    y = x[: m * k].reshape(m, k).mean(axis=1) if k > 1 else x
    f = fs / k
    sos = butter(2, [BAND_HZ[0] / (f / 2), BAND_HZ[1] / (f / 2)], "bandpass", output="sos")
    band = sosfiltfilt(sos, y).astype(np.float32)
    slope = np.empty_like(band)  # |first difference|, 0 at the first sample
    slope[0] = 0.0
    np.subtract(band[1:], band[:-1], out=slope[1:])
    np.abs(slope, out=slope)
    return slope, _moving_sum(slope, max(int(round(INTEGRATION_S * f)), 1)), k, f


def _decide(times: list[int], heights: list[float], slopes: list[float], first_level: float, f: float) -> list[bool]:
    """Steps 4-5 of the module docstring over the candidates (time order, in samples at ``f`` Hz)."""
    n = len(times)
    keep = [False] * n
    qrs, noise, rrs = [first_level] * HISTORY, [0.0] * HISTORY, [0.8 * f] * HISTORY
    q_level, n_level, rr_sum = first_level, 0.0, sum(rrs)
    last, last_i, last_slope = 0, -1, 0.0
    twave, search_after = int(TWAVE_S * f), SEARCHBACK_RR / HISTORY
    i = 0
    while i < n:
        t = times[i]
        threshold = n_level + THRESHOLD_FRACTION * (q_level - n_level)
        if last_i >= 0 and t - last > search_after * rr_sum:
            best, best_h = -1, SEARCHBACK_FRACTION * threshold
            for j in range(last_i + 1, i):
                if times[j] - last > twave and heights[j] > best_h:
                    best, best_h = j, heights[j]
            if best >= 0:  # accept it and go on from there: the candidates after it are judged again
                keep[best] = True
                qrs.pop(0)
                qrs.append(heights[best])
                q_level = _median(qrs)
                rr_sum += (times[best] - last) - rrs.pop(0)
                rrs.append(times[best] - last)
                last, last_i, last_slope = times[best], best, slopes[best]
                i = best + 1
                continue
        h = heights[i]
        t_wave = last_i >= 0 and t - last < twave and slopes[i] < TWAVE_SLOPE_RATIO * last_slope
        if h >= threshold and not t_wave:
            keep[i] = True
            qrs.pop(0)
            qrs.append(h)
            q_level = _median(qrs)
            if last_i >= 0:
                rr_sum += (t - last) - rrs.pop(0)
                rrs.append(t - last)
            last, last_i, last_slope = t, i, slopes[i]
        else:
            noise.pop(0)
            noise.append(h)
            n_level = _median(noise)
        i += 1
    return keep


def detect_qrs(signal: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices (int64, strictly increasing) of one ECG lead ``signal`` (n,) in mV at ``fs`` Hz.

    ~50,000 beats/s on one core of the project's machine at 360 Hz (``benchmarks/bench_qrs.py``).
    """
    from scipy.signal import find_peaks

    x = np.asarray(signal, np.float32)
    if len(x) < 3 * fs:
        return np.zeros(0, np.int64)
    slope, hump, k, f = _energy(x, fs)
    cand, _ = find_peaks(hump, distance=max(int(round(REFRACTORY_S * f)), 1))
    if len(cand) == 0:
        return np.zeros(0, np.int64)
    half = max(int(round(SLOPE_S * f / 2)), 1)
    around = np.clip(cand[:, None] + np.arange(-half, half + 1)[None, :], 0, len(slope) - 1)
    steepest = slope[around].max(axis=1)
    second = max(int(f), 1)
    first_level = float(np.median([hump[s:s + second].max() for s in range(0, min(len(hump), LEARNING_S * second),
                                                                              second)]))
    keep = _decide(cand.tolist(), hump[cand].tolist(), steepest.tolist(), first_level, f)
    found = cand[np.asarray(keep, bool)] * k + k // 2
    span = int(LOCATE_S * fs)
    idx = np.clip(found[:, None] + np.arange(-span, span + 1)[None, :], 0, len(x) - 1)
    seg = x[idx]
    seg = seg - np.median(seg, axis=1, keepdims=True)
    return np.unique(idx[np.arange(len(found)), np.argmax(np.abs(seg), axis=1)]).astype(np.int64)
