"""The QRS detector: its rules on seeded synthetic leads, and its beats against the cardiologists' on real
records."""

from __future__ import annotations

import numpy as np
import pytest

from arritmias.data.matching import figures, record_counts
from arritmias.signal.qrs import detect_qrs
from tests.conftest import synthetic_ecg

FS = 360.0


def _matched(found: np.ndarray, truth: np.ndarray, tolerance: int) -> tuple[int, int]:
    """(truth beats with a detection within ``tolerance`` samples, detections with a truth beat within it)."""
    d = np.abs(found[:, None] - truth[None, :])
    return int((d.min(axis=0) <= tolerance).sum()), int((d.min(axis=1) <= tolerance).sum())


def test_every_synthetic_beat_once_at_its_peak():
    sig, r, _ = synthetic_ecg(120, FS, seed=1, pvc_every=5)
    found = detect_qrs(sig, FS)
    hit, true = _matched(found, r, 3)
    assert hit == len(r) and true == len(found)


def test_tall_t_waves_are_not_beats(monkeypatch):
    """Peaked T waves 0.3 s after each QRS at 60 % of its height, 2.5x as wide (MIT-BIH 113 has such T waves): the T-wave slope rule leaves one
    detection per beat; with the rule off, the same lead gets a detection on most T waves."""
    from arritmias.signal import qrs

    sig, r, _ = synthetic_ecg(120, FS, seed=2)
    t = np.arange(len(sig)) / FS
    lead = (sig + sum(0.6 * np.exp(-0.5 * ((t - (k / FS + 0.3)) / 0.025) ** 2) for k in r)).astype(np.float32)
    found = detect_qrs(lead, FS)
    assert len(found) - _matched(found, r, 5)[1] == 0
    monkeypatch.setattr(qrs, "TWAVE_SLOPE_RATIO", 0.0)
    found = detect_qrs(lead, FS)
    assert len(found) - _matched(found, r, 5)[1] > len(r) // 2


def test_search_back_finds_beats_after_the_amplitude_falls():
    """A lead whose QRS drops to a quarter of its height (an electrode moving) loses no beat: the threshold
    learnt on the tall beats is too high, and search-back takes the beats above half of it until it adapts."""
    sig, r, _ = synthetic_ecg(120, FS, seed=3)
    lead = sig.copy()
    lead[len(lead) // 2:] *= 0.25
    found = detect_qrs(lead, FS)
    assert _matched(found, r, 3)[0] >= len(r) - 1


@pytest.mark.parametrize("fs", [128.0, 250.0, 500.0, 1000.0])
def test_other_sampling_rates(fs):
    sig, r, _ = synthetic_ecg(60, fs, seed=4, pvc_every=7)
    found = detect_qrs(sig, fs)
    hit, true = _matched(found, r, int(0.01 * fs) + 1)
    assert hit == len(r) and true == len(found)


def test_flat_or_short_leads_give_no_beats():
    assert len(detect_qrs(np.zeros(int(60 * FS), np.float32), FS)) == 0
    assert len(detect_qrs(np.ones(int(2 * FS), np.float32), FS)) == 0


@pytest.mark.parametrize("record, se, ppv", [("100", 0.999, 0.999), ("119", 0.999, 0.999), ("208", 0.99, 0.99)])
def test_real_records_against_the_reference(mitdb, record, se, ppv):
    """EC57 QRS figures on real records (after the first 5 minutes); 208 has couplets, fusions and PVCs of
    several shapes."""
    from arritmias.data.beats import reference_beats
    from arritmias.data.records import read_recording

    rec = read_recording(mitdb, record, fs=FS)
    ref = reference_beats(rec)
    found = detect_qrs(rec.signal, FS)
    f = figures(record_counts(ref.samples, ref.aami, found, np.zeros(len(found), bool), FS))
    assert f["qrs_se"] >= se and f["qrs_ppv"] >= ppv, f


def test_flutter_episodes_are_not_scored(mitdb):
    """Record 207's ventricular flutter (between its '[' and ']' annotations) has flutter waves and no beats;
    EC57 scores no beat there, so detections inside are neither false nor true."""
    from arritmias.data.beats import reference_beats
    from arritmias.data.matching import outside
    from arritmias.data.records import read_recording

    rec = read_recording(mitdb, "207", fs=FS)
    ref = reference_beats(rec)
    assert len(ref.unscored) >= 2 and np.all(ref.unscored[:, 1] > ref.unscored[:, 0])
    inside = np.concatenate([np.arange(a, b, int(0.3 * FS)) for a, b in ref.unscored])
    test = np.sort(np.r_[ref.samples, inside])
    c = record_counts(ref.samples, ref.aami, test, np.zeros(len(test), bool), FS, start_s=0, exclude=ref.unscored)
    assert c["On"] == 0
    c_all = record_counts(ref.samples, ref.aami, test, np.zeros(len(test), bool), FS, start_s=0)
    assert c_all["On"] == len(inside)
    assert not outside(inside, ref.unscored).any()


# --- the compiled steps against the library functions and numpy forms they stand for ---------------------------

def test_band_filter_is_scipys_butterworth():
    from scipy.signal import butter, sosfilt_zi

    from arritmias.signal.qrs import BAND_HZ, DETECTION_HZ, band_filter

    for f in (DETECTION_HZ, 125.0, 250.0):
        sos, zi = band_filter(f)
        expected = butter(2, [BAND_HZ[0] / (f / 2), BAND_HZ[1] / (f / 2)], "bandpass", output="sos")
        np.testing.assert_array_equal(sos, expected)
        np.testing.assert_array_equal(zi, sosfilt_zi(expected))


@pytest.mark.parametrize("record", ["105", "203"])  # noisy; multiform PVCs
def test_energy_and_peaks_are_scipys_sosfiltfilt_and_find_peaks(mitdb, record):
    """The compiled band-pass, slope integration and peak picking give scipy's filtfilt values (to float32
    rounding) and find_peaks' peaks exactly, on real leads and on a lead with plateaus and ties."""
    from scipy.signal import find_peaks, sosfiltfilt

    from arritmias.signal import qrs
    from arritmias.data.records import read_recording

    x = read_recording(mitdb, record, fs=FS).signal
    slope, hump, k, f = qrs._energy(x, FS)
    y = x[: len(x) // k * k].reshape(-1, k).mean(axis=1)
    band = sosfiltfilt(qrs.band_filter(f)[0], y).astype(np.float32)
    expected_slope = np.abs(np.diff(band, prepend=band[0]))
    np.testing.assert_allclose(slope, expected_slope, rtol=0, atol=1e-6)
    width = int(round(qrs.INTEGRATION_S * f))
    c = np.r_[0.0, np.cumsum(expected_slope, dtype=np.float64)]
    i = np.arange(len(c) - 1)
    expected_hump = c[np.clip(i - width // 2 + width, 0, len(i))] - c[np.clip(i - width // 2, 0, len(i))]
    np.testing.assert_allclose(hump, expected_hump, rtol=1e-5, atol=1e-6)
    distance = int(round(qrs.REFRACTORY_S * f))
    np.testing.assert_array_equal(qrs._peaks(hump, distance), find_peaks(hump, distance=distance)[0])
    rng = np.random.default_rng(0)
    steps = np.round(rng.normal(size=5000), 1).astype(np.float32)  # many plateaus and equal heights
    np.testing.assert_array_equal(qrs._peaks(steps, 7), find_peaks(steps, distance=7)[0])


def test_compiled_decisions_and_placement_match_their_python(mitdb):
    """The candidates' QRS/noise decisions and the R placement, compiled, equal the same functions run as Python
    (and the placement the numpy form it replaced: the largest deflection from the local median, first on a tie)."""
    from arritmias.signal import qrs
    from arritmias.data.records import read_recording

    x = read_recording(mitdb, "208", fs=FS).signal
    slope, hump, k, f = qrs._energy(x, FS)
    cand = qrs._peaks(hump, int(round(qrs.REFRACTORY_S * f)))[:1500]
    steepest = qrs._largest_near(slope, cand, 13)
    heights = hump[cand].astype(np.float64)
    args = (cand, heights, steepest, float(np.median(heights)), float(f), qrs._rules())
    keep = qrs._decide(*args)
    np.testing.assert_array_equal(keep, qrs._decide.py_func(*args))
    assert 0.3 < keep.mean() < 0.95
    found = cand[keep] * k + k // 2
    idx = np.clip(found[:, None] + np.arange(-27, 28)[None, :], 0, len(x) - 1)
    seg = x[idx] - np.median(x[idx], axis=1, keepdims=True)
    np.testing.assert_array_equal(qrs._locate(x, found, 27), idx[np.arange(len(found)), np.argmax(np.abs(seg), axis=1)])
