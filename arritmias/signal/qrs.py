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

from arritmias.util.jit import njit

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


# The band-pass at the detection rate, as ``scipy.signal.butter(2, [5 / 90, 15 / 90], "bandpass", output="sos")``
# designs it for 180 Hz, with ``scipy.signal.sosfilt_zi``'s initial conditions: written out so that analysing a
# recording does not import scipy.signal (~1 s of start-up); tests/signal/test_qrs.py checks them against scipy. Other
# rates are designed by scipy when asked for.
_SOS_180 = np.array([[0.02428136794066703, 0.04856273588133406, 0.02428136794066703, 1.0, -1.5271354699214956,
                      0.7087433160727817],
                     [1.0, -2.0, 1.0, 1.0, -1.8252944086446017, 0.8613940213519482]])
_ZI_180 = np.array([[0.5105274182488844, -0.35476078464817495], [-0.5348087861895517, 0.5348087861895517]])


def band_filter(f: float) -> tuple[np.ndarray, np.ndarray]:
    """``(sos (2, 6), zi (2, 2))``: the order-2 Butterworth band-pass ``BAND_HZ`` at ``f`` Hz as second-order
    sections, and the sections' steady-state initial conditions for a unit step."""
    if f == DETECTION_HZ:
        return _SOS_180, _ZI_180
    from scipy.signal import butter, sosfilt_zi

    sos = butter(2, [BAND_HZ[0] / (f / 2), BAND_HZ[1] / (f / 2)], "bandpass", output="sos")
    return sos, sosfilt_zi(sos)


def _energy(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(|slope|, integrated |slope|, decimation factor, their rate in Hz) of lead ``x`` (mV at ``fs`` Hz)."""
    k = max(int(round(fs / DETECTION_HZ)), 1)
    m = len(x) // k
    f = fs / k
    sos, zi = band_filter(f)
    # scipy's sosfiltfilt pads 3 x (2 x sections + 1) samples, less the taps that are zero in every section.
    taps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    if m <= 3 * taps:
        raise ValueError(f"{m} samples at {f:g} Hz: too short to filter (more than {3 * taps} needed)")
    slope, hump = _slope_energy(np.asarray(x, np.float32), k, sos, zi, 3 * taps,
                                max(int(round(INTEGRATION_S * f)), 1))
    return slope, hump, k, f


@njit
def _slope_energy(x, k, sos, zi, edge, width):
    """Steps 1-2 of the module docstring in four passes over the lead and one float64 buffer: ``x`` (n,) averaged
    over blocks of ``k`` samples (the float32 mean numpy takes); band-passed forward and backward as
    ``scipy.signal.sosfiltfilt`` does it (``edge`` samples of odd extension at each end, each pass started in the
    steady state ``zi`` of its first sample, direct form II transposed); the absolute first difference; its
    centred moving sum over ``width`` samples (shorter at the edges) from a float64 running sum.
    Returns (|slope|, hump), float32 (n // k,) each."""
    m = len(x) // k
    ext = np.empty(m + 2 * edge)
    for i in range(m):
        acc = x[i * k]
        for j in range(1, k):
            acc += x[i * k + j]
        ext[edge + i] = acc / np.float32(k)
    for i in range(edge):
        ext[i] = 2.0 * ext[edge] - ext[2 * edge - i]
        ext[m + edge + i] = 2.0 * ext[m + edge - 1] - ext[m + edge - 2 - i]
    sections = sos.shape[0]
    z = np.empty((sections, 2))
    size = len(ext)
    for direction in range(2):
        start = ext[0] if direction == 0 else ext[size - 1]
        for s in range(sections):
            z[s, 0], z[s, 1] = zi[s, 0] * start, zi[s, 1] * start
        for step in range(size):
            i = step if direction == 0 else size - 1 - step
            v = ext[i]
            for s in range(sections):
                out = sos[s, 0] * v + z[s, 0]
                z[s, 0] = sos[s, 1] * v - sos[s, 4] * out + z[s, 1]
                z[s, 1] = sos[s, 2] * v - sos[s, 5] * out
                v = out
            ext[i] = v
    slope = np.empty(m, np.float32)
    previous = np.float32(ext[edge])
    slope[0] = 0.0
    for i in range(1, m):
        band = np.float32(ext[edge + i])
        slope[i] = abs(band - previous)
        previous = band
    # hump[i] = the sum of slope[i - before : i - before + width] clipped to the lead = c[hi] - c[lo], c the
    # running sum from c[0] = 0, kept in the filter's buffer.
    before = width // 2
    c = ext[: m + 1]
    c[0] = 0.0
    for i in range(m):
        c[i + 1] = c[i] + slope[i]
    hump = np.empty(m, np.float32)
    for i in range(m):
        hump[i] = c[min(max(i - before + width, 0), m)] - c[min(max(i - before, 0), m)]
    return slope, hump


def _peaks(v: np.ndarray, distance: int) -> np.ndarray:
    """Local maxima (int64, increasing) of ``v`` at least ``distance`` samples apart, the larger kept first: what
    ``scipy.signal.find_peaks(v, distance=distance)`` returns (a plateau's maximum at its middle; ties between
    heights broken by ``np.argsort``, as there)."""
    peaks = _local_maxima(v)
    order = np.argsort(v[peaks].astype(np.float64))
    return peaks[_keep_apart(peaks, order, distance)]


@njit
def _local_maxima(v):
    out = np.empty(len(v) // 2 + 1, np.int64)
    count, i, last = 0, 1, len(v) - 1
    while i < last:
        if v[i - 1] < v[i]:
            ahead = i + 1
            while ahead < last and v[ahead] == v[i]:  # a plateau: its middle is the peak
                ahead += 1
            if v[ahead] < v[i]:
                out[count] = (i + ahead - 1) // 2
                count += 1
                i = ahead
        i += 1
    return out[:count]


@njit
def _keep_apart(peaks, order, distance):
    keep = np.ones(len(peaks), np.bool_)
    for r in range(len(order) - 1, -1, -1):  # the highest first
        j = order[r]
        if not keep[j]:
            continue
        k = j - 1
        while k >= 0 and peaks[j] - peaks[k] < distance:
            keep[k] = False
            k -= 1
        k = j + 1
        while k < len(peaks) and peaks[k] - peaks[j] < distance:
            keep[k] = False
            k += 1
    return keep


@njit
def _median(values, buf):
    """The median of ``values`` (float64), sorted into ``buf`` (same length) by insertion."""
    k = len(values)
    for r in range(k):
        v, p = values[r], r
        while p > 0 and buf[p - 1] > v:
            buf[p] = buf[p - 1]
            p -= 1
        buf[p] = v
    return 0.5 * (buf[(k - 1) // 2] + buf[k // 2])


@njit
def _decide(times, heights, slopes, first_level, f, rules):
    """Steps 4-5 of the module docstring over the candidates (time order, in samples at ``f`` Hz): (n,) bool.
    ``rules`` is :func:`_rules`' tuple: the module's constants as they are when called (compiled code would
    otherwise freeze them at their first values)."""
    TWAVE_S, TWAVE_SLOPE_RATIO, THRESHOLD_FRACTION, SEARCHBACK_RR, SEARCHBACK_FRACTION = rules
    n = len(times)
    keep = np.zeros(n, np.bool_)
    qrs, noise, rrs = np.full(HISTORY, first_level), np.zeros(HISTORY), np.full(HISTORY, 0.8 * f)
    buf = np.empty(HISTORY)
    q_level, n_level, rr_sum = first_level, 0.0, rrs.sum()
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
                qrs[:-1] = qrs[1:]
                qrs[-1] = heights[best]
                q_level = _median(qrs, buf)
                rr_sum += (times[best] - last) - rrs[0]
                rrs[:-1] = rrs[1:]
                rrs[-1] = times[best] - last
                last, last_i, last_slope = times[best], best, slopes[best]
                i = best + 1
                continue
        h = heights[i]
        t_wave = last_i >= 0 and t - last < twave and slopes[i] < TWAVE_SLOPE_RATIO * last_slope
        if h >= threshold and not t_wave:
            keep[i] = True
            qrs[:-1] = qrs[1:]
            qrs[-1] = h
            q_level = _median(qrs, buf)
            if last_i >= 0:
                rr_sum += (t - last) - rrs[0]
                rrs[:-1] = rrs[1:]
                rrs[-1] = t - last
            last, last_i, last_slope = t, i, slopes[i]
        else:
            noise[:-1] = noise[1:]
            noise[-1] = h
            n_level = _median(noise, buf)
        i += 1
    return keep


def detect_qrs(signal: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices (int64, strictly increasing) of one ECG lead ``signal`` (n,) in mV at ``fs`` Hz.

    ~50,000 beats/s on one core of the project's machine at 360 Hz (``benchmarks/bench_qrs.py``).
    """
    x = np.asarray(signal, np.float32)
    if len(x) < 3 * fs:
        return np.zeros(0, np.int64)
    slope, hump, k, f = _energy(x, fs)
    cand = _peaks(hump, max(int(round(REFRACTORY_S * f)), 1))
    if len(cand) == 0:
        return np.zeros(0, np.int64)
    steepest = _largest_near(slope, cand, max(int(round(SLOPE_S * f / 2)), 1))
    second = max(int(f), 1)
    first_level = float(np.median([hump[s:s + second].max() for s in range(0, min(len(hump), LEARNING_S * second),
                                                                              second)]))
    keep = _decide(cand, hump[cand].astype(np.float64), steepest, first_level, float(f), _rules())
    return np.unique(_locate(x, cand[keep] * k + k // 2, int(LOCATE_S * fs)))


def _rules() -> tuple[float, ...]:
    return float(TWAVE_S), float(TWAVE_SLOPE_RATIO), float(THRESHOLD_FRACTION), float(SEARCHBACK_RR), \
        float(SEARCHBACK_FRACTION)


@njit
def _largest_near(v, at, half):
    """The largest of ``v`` within ``half`` samples of each index ``at`` (clipped to ``v``): float64 (len(at),)."""
    out = np.empty(len(at))
    for r in range(len(at)):
        best = v[min(max(at[r] - half, 0), len(v) - 1)]
        for i in range(at[r] - half + 1, at[r] + half + 1):
            best = max(best, v[min(max(i, 0), len(v) - 1)])
        out[r] = best
    return out


@njit
def _locate(x, at, span):
    """Step 6: for each sample ``at`` (at the full rate), the sample within +-``span`` (clipped to the lead) that
    lies furthest from those samples' median, the first on a tie: int64 (len(at),)."""
    out = np.empty(len(at), np.int64)
    seg = np.empty(2 * span + 1, np.float32)
    work = np.empty(2 * span + 1, np.float32)
    last = len(x) - 1
    for r in range(len(at)):
        for i in range(2 * span + 1):
            seg[i] = x[min(max(at[r] - span + i, 0), last)]
        work[:] = seg
        middle = _select(work, span)  # an odd count: the median is the middle value
        best, where = np.float32(-1.0), 0
        for i in range(2 * span + 1):
            d = abs(seg[i] - middle)
            if d > best:
                best, where = d, i
        out[r] = min(max(at[r] - span + where, 0), last)
    return out


@njit
def _select(v, k):
    """The k-th smallest of ``v`` (reordered in place): Wirth's selection (Algorithms + Data Structures, 1976)."""
    lo, hi = 0, len(v) - 1
    while lo < hi:
        pivot = v[k]
        i, j = lo, hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while pivot < v[j]:
                j -= 1
            if i <= j:
                v[i], v[j] = v[j], v[i]
                i += 1
                j -= 1
        if j < k:
            lo = i
        if k < i:
            hi = j
    return v[k]
