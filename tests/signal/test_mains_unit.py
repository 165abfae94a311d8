"""Mains interference (50 / 60 Hz) removed from a lead, and what an analysis then finds with it."""

from __future__ import annotations

import numpy as np
import pytest

from arritmias.analysis.recording import Signal, analyze_signal
from arritmias.data.records import read_recording
from arritmias.signal.mains import remove_mains
from tests.conftest import synthetic_ecg


def _hum(n: int, fs: float, hz: float, mv: float) -> np.ndarray:
    return (mv * np.sin(2 * np.pi * hz * np.arange(n) / fs + 0.3)).astype(np.float32)


@pytest.mark.parametrize("hz", [50.0, 60.0])
@pytest.mark.parametrize("fs", [250.0, 360.0, 500.0])
def test_mains_is_removed_and_the_ecg_kept(hz, fs):
    ecg = synthetic_ecg(60, fs, seed=1)[0]
    inner = slice(int(fs), -int(fs))  # the filter's edges settle within a second
    cleaned = remove_mains(ecg + _hum(len(ecg), fs, hz, 0.2), fs)
    assert cleaned.dtype == np.float32 and cleaned.shape == ecg.shape
    assert np.max(np.abs(cleaned - remove_mains(ecg, fs))[inner]) < 0.01  # the 0.2 mV hum is gone
    # and the ECG itself barely changes: its energy lies below 40 Hz
    assert np.sqrt(np.mean((remove_mains(ecg, fs) - ecg)[inner] ** 2)) < 0.02 * np.ptp(ecg)


def test_a_day_is_filtered_in_blocks_without_a_seam():
    """A lead longer than a block (2 h here) gives what one filtfilt over all of it gives."""
    from scipy.signal import iirnotch, sosfiltfilt, tf2sos

    from arritmias.signal import mains

    fs = 360.0
    x = np.tile(synthetic_ecg(600, fs, seed=3)[0], 12) + _hum(int(7200 * fs), fs, 50.0, 0.2)
    assert len(x) > 3 * mains.BLOCK_SAMPLES
    whole = sosfiltfilt(np.vstack([tf2sos(*iirnotch(f, mains.NOTCH_Q, fs)) for f in mains.MAINS_HZ]), x)
    assert np.max(np.abs(remove_mains(x, fs) - whole)) < 1e-5
    copy = x.copy()
    assert remove_mains(copy, fs, in_place=True) is copy  # over the lead itself, the same answer
    assert np.max(np.abs(copy - whole)) < 1e-5
    assert np.array_equal(remove_mains(x.astype(np.float64), fs, in_place=True), remove_mains(x, fs))


def test_not_a_number_samples_stay_put_and_do_not_spread():
    fs = 360.0
    x = synthetic_ecg(20, fs, seed=2)[0] + _hum(int(20 * fs), fs, 50.0, 0.2)
    x[3000:3100] = np.nan
    out = remove_mains(x, fs)
    assert np.isnan(out[3000:3100]).all() and np.isfinite(np.delete(out, np.s_[3000:3100])).all()
    assert np.isnan(x[3000:3100]).all() and np.isfinite(x[:3000]).all()  # the input untouched
    assert np.array_equal(remove_mains(x, fs, in_place=True), out, equal_nan=True) and np.isnan(x[3050])


def test_short_or_slow_leads_are_left_as_they_are():
    assert np.array_equal(remove_mains(np.ones(10, np.float32), 360.0), np.ones(10, np.float32))
    x = synthetic_ecg(10, 100.0)[0]  # 100 Hz: both mains frequencies at or above Nyquist
    assert np.array_equal(remove_mains(x, 100.0), x)


def test_a_record_read_for_the_model_has_no_mains_and_as_stored_keeps_it(mitdb):
    model = read_recording(mitdb, "100", fs=360.0)
    stored = read_recording(mitdb, "100", fs=None)
    spectrum = np.abs(np.fft.rfft(stored.signal[: 360 * 60] - np.mean(stored.signal[: 360 * 60])))
    cleaned = np.abs(np.fft.rfft(model.signal[: 360 * 60] - np.mean(model.signal[: 360 * 60])))
    at60 = slice(60 * 60 - 30, 60 * 60 + 31)  # bins of 1/60 Hz: 60 Hz +- 0.5 Hz
    assert cleaned[at60].max() < 0.2 * spectrum[at60].max()


def test_an_analysis_with_50_hz_mains_labels_as_without(trained, mitdb):
    """Record 119's first 10 minutes (PVC bigeminy) with 0.15 mV of 50 Hz added: the same beats, the same labels."""
    from arritmias.model.detector import Detector

    detector = Detector.from_model_uri(f"runs:/{trained.run_id}/model")
    rec = read_recording(mitdb, "119", fs=None)
    lead = rec.signal[: 10 * 60 * 360]
    clean = analyze_signal(Signal("clean", lead, rec.fs, rec.lead, "119"), detector)
    hum = analyze_signal(Signal("hum", lead + _hum(len(lead), rec.fs, 50.0, 0.15), rec.fs, rec.lead, "119"), detector)
    assert np.array_equal(clean.samples, hum.samples)
    assert np.mean(clean.decisions.is_v == hum.decisions.is_v) > 0.995
    assert clean.summary["pvc_count"] > 100
