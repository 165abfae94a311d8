"""Unit tests of the beat dataset on seeded synthetic signals."""

from __future__ import annotations

import numpy as np
import pytest

from arritmias.data.beats import (AAMI_CLASSES, DS1, DS2, PACED, BeatSet, beats_from_recording, parse_records,
                             rr_features, window_at)
from arritmias.data.records import Recording, lead_order, resample, resolve_data_dir
from tests.conftest import synthetic_ecg


def test_aami_mapping_follows_ec57():
    expected = {"N": "NLRej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ"}
    for cls, symbols in expected.items():
        for s in symbols:
            assert AAMI_CLASSES[s] == cls
    assert len(AAMI_CLASSES) == sum(len(s) for s in expected.values())
    for non_beat in "+~!\"x|[]":
        assert non_beat not in AAMI_CLASSES


def test_splits_are_de_chazal():
    assert len(DS1) == 22 and len(DS2) == 22
    assert not set(DS1) & set(DS2)
    assert not (set(DS1) | set(DS2)) & set(PACED)
    assert parse_records("DS1+DS2") == DS1 + DS2
    assert parse_records("100, 119") == ("100", "119")


def test_lead_order_puts_mlii_first():
    assert lead_order(["MLII", "V1"]) == [0, 1]
    assert lead_order(["V5", "MLII"]) == [1, 0]
    assert lead_order(["V5", "V2"]) == [0, 1]


def test_rr_features_on_known_intervals():
    fs = 360.0
    r = np.array([0, 360, 720, 900, 1440])  # 1 s, 1 s, 0.5 s (premature), 1.5 s (pause)
    rr = rr_features(r, fs)
    assert rr.shape == (5, 3) and rr.dtype == np.float32
    np.testing.assert_allclose(rr[:, 0], [1.0, 1.0, 1.0, 0.5, 1.5])
    np.testing.assert_allclose(rr[:, 1], [1.0, 1.0, 0.5, 1.5, 1.5])
    np.testing.assert_allclose(rr[3, 2], 3.0)
    np.testing.assert_allclose(rr[0, 2], 1.0)


def test_windows_centre_r_peak_and_drop_edges():
    sig = np.arange(1000, dtype=np.float32)
    centres = np.array([100, 179, 180, 500, 820, 821, 900])
    windows, kept = window_at(sig, centres, 360)
    assert kept.tolist() == [False, False, True, True, True, False, False]
    assert windows.shape == (3, 360)
    assert windows[:, 180].tolist() == [180, 500, 820]
    assert windows[-1, -1] == 999


def test_beats_from_synthetic_recording_find_r_at_centre():
    fs = 360.0
    sig, r, symbols = synthetic_ecg(60, fs, seed=1, pvc_every=5)
    ann_symbols = np.array(["+"] + symbols)  # a leading rhythm annotation must be ignored
    ann_samples = np.concatenate([[0], r])
    beats = beats_from_recording(Recording("syn", sig, fs, "MLII", ann_samples, ann_symbols), win=360)
    assert len(beats) + sum(beats.dropped_counts().values()) == len(symbols)
    assert beats.windows.shape == (len(beats), 360)
    # The R peak is the maximum (within 2 samples) of the window's middle half for every beat (a neighbour's
    # taller PVC may sit near the window's edge).
    assert np.all(np.abs(beats.windows[:, 90:270].argmax(axis=1) + 90 - 180) <= 2)
    assert set(beats.aami) == {"N", "V"}
    # PVCs are premature and followed by a pause: next/previous RR ratio well above 1.
    assert np.all(beats.rr[beats.aami == "V", 2] > 1.5)


def test_resample_keeps_r_positions_and_amplitude():
    fs_in = 250.0
    sig, r, _ = synthetic_ecg(20, fs_in, seed=2)
    out = resample(sig, fs_in, 360.0)
    assert len(out) == round(len(sig) * 360 / 250)
    r360 = np.round(r * 360 / 250).astype(int)
    for pos in r360[1:-1]:
        seg = out[pos - 10: pos + 10]
        assert abs(int(seg.argmax()) - 10) <= 1
        assert seg.max() == pytest.approx(sig[r].max(), abs=0.15)


def test_beatset_select_and_concat_keep_rows_aligned():
    fs = 360.0
    sig, r, symbols = synthetic_ecg(30, fs, seed=3, pvc_every=4)
    rec = Recording("a", sig, fs, "MLII", r, np.array(symbols))
    a = beats_from_recording(rec, 360)
    b = beats_from_recording(Recording("b", sig, fs, "MLII", r, np.array(symbols)), 360)
    both = BeatSet.concat([a, b])
    assert len(both) == len(a) + len(b)
    v = both.select(both.aami == "V")
    assert set(v.record) == {"a", "b"} and np.all(v.symbol == "V")


def test_data_dir_rule(monkeypatch, tmp_path):
    monkeypatch.delenv("ARRITMIAS_DATA_DIR", raising=False)
    assert str(resolve_data_dir(None)) == "mit-bih"
    monkeypatch.setenv("ARRITMIAS_DATA_DIR", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path
    assert str(resolve_data_dir("elsewhere")) == "elsewhere"
