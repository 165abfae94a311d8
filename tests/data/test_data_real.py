"""The beat dataset on real MIT-BIH records, checked against the reference annotations."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import wfdb

from arritmias.data import cache
from arritmias.data.beats import AAMI_CLASSES, DS1, DS2, build_beats
from arritmias.errors import DataError
from arritmias.data.records import read_recording
from arritmias.signal.mains import remove_mains
from tests.conftest import copy_records

# Beat counts per AAMI class from the MIT-BIH directory's record descriptions (MIT-BIH Arrhythmia Database
# Directory, tables of beats per record).
PUBLISHED = {
    "100": {"N": 2239, "S": 33, "V": 1, "F": 0, "Q": 0},
    "119": {"N": 1543, "S": 0, "V": 444, "F": 0, "Q": 0},
    "208": {"N": 1586, "S": 2, "V": 992, "F": 373, "Q": 2},
    "114": {"N": 1820, "S": 12, "V": 43, "F": 4, "Q": 0},
}


@pytest.mark.parametrize("record", sorted(PUBLISHED))
def test_class_counts_equal_reference_annotations(mitdb, cache_dir, record):
    beats = build_beats(mitdb, [record], cache_dir=cache_dir, progress=False)
    got = {c: beats.counts()[c] + beats.dropped_counts()[c] for c in "NSVFQ"}
    assert got == PUBLISHED[record]
    ann = wfdb.rdann(str(mitdb / record), "atr")
    beat_samples = [s for s, sym in zip(ann.sample, ann.symbol) if sym in AAMI_CLASSES]
    kept = np.isin(beat_samples, beats.sample)
    assert kept.sum() == len(beats)
    assert np.all(beats.windows.shape[1] == 360)


def test_ds1_ds2_v_totals(mitdb, cache_dir):
    beats = build_beats(mitdb, "DS1+DS2", cache_dir=cache_dir, progress=False)
    for names, total in ((DS1, 3788), (DS2, 3221)):
        part = beats.select(np.isin(beats.record, names))
        dropped_v = sum(beats.dropped_edge.get(r, {}).get("V", 0) for r in names)
        assert part.counts()["V"] == total - dropped_v
    # Edge drops are few and reported: at most a couple of beats per record.
    assert 0 < sum(beats.dropped_counts().values()) <= 2 * 44


def test_record_114_mlii_chosen_by_name(mitdb):
    rec = read_recording(mitdb, "114", deriv_idx=0, fs=None)  # as stored
    assert rec.lead == "MLII"
    raw = wfdb.rdrecord(str(mitdb / "114"))
    mlii = raw.p_signal[:, raw.sig_name.index("MLII")]
    np.testing.assert_allclose(rec.signal[:1000], mlii[:1000], atol=1e-6)
    # as the model reads it: the same lead without mains
    np.testing.assert_allclose(read_recording(mitdb, "114").signal, remove_mains(mlii, 360.0), atol=1e-5)
    assert read_recording(mitdb, "114", deriv_idx=1).lead == "V5"
    with pytest.raises(DataError, match="114.*deriv_idx=2"):
        read_recording(mitdb, "114", deriv_idx=2)


def test_r_peak_sits_at_window_centre_on_real_beats(mitdb, cache_dir):
    beats = build_beats(mitdb, ["100"], cache_dir=cache_dir, progress=False)
    n = beats.select(beats.aami == "N")
    # In record 100 (MLII, upright QRS) the reference R is within 25 ms of the window's local maximum.
    centre = n.windows[:, 160:200].argmax(axis=1) + 160
    assert np.median(np.abs(centre - 180)) <= 3


def test_cache_hit_is_identical_and_keyed_by_window(mitdb, tmp_path):
    first = build_beats(mitdb, ["119"], cache_dir=tmp_path, progress=False)
    entries = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    second = build_beats(mitdb, ["119"], cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(first.windows, second.windows)
    assert first.dropped_edge == second.dropped_edge
    other = build_beats(mitdb, ["119"], win=256, cache_dir=tmp_path, progress=False)
    assert other.windows.shape[1] == 256
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2


def test_killed_cache_write_leaves_nothing_that_loads(mitdb, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_save = np.save

    def dying_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the build is killed half-way through writing the entry
        return real_save(*args, **kwargs)

    monkeypatch.setattr(cache.np, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        build_beats(mitdb, ["100"], cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(cache.np, "save", real_save)
    beats = build_beats(mitdb, ["100"], cache_dir=tmp_path, progress=False)
    assert len(beats) > 2000


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_cache_entry_is_rebuilt_and_replaced(mitdb, tmp_path, damage):
    first = build_beats(mitdb, ["119"], cache_dir=tmp_path, progress=False)
    (entry,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    path = entry / "windows.npy"
    data = path.read_bytes()
    if damage == "garbage":  # same size, same header, other values: np.load alone would return them silently
        path.write_bytes(data[:200] + np.random.default_rng(0).bytes(len(data) - 200))
    else:
        path.write_bytes(data[: len(data) // 2])
    assert cache.load(tmp_path, entry.name) is None
    again = build_beats(mitdb, ["119"], cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again.windows, first.windows)
    # The rebuilt entry replaced the damaged one and loads cleanly.
    assert cache.load(tmp_path, entry.name) is not None
    np.testing.assert_array_equal(cache.load(tmp_path, entry.name)[0]["windows"], first.windows)


def test_changed_record_file_misses_the_cache(mitdb, tmp_path):
    data = copy_records(mitdb, tmp_path / "data", ["100"])
    cdir = tmp_path / "cache"
    build_beats(data, ["100"], cache_dir=cdir, progress=False)
    shutil.copy(mitdb / "119.atr", data / "100.atr")  # the annotations change under the same name
    beats = build_beats(data, ["100"], cache_dir=cdir, progress=False)
    assert beats.counts()["V"] > 400
    assert len([p for p in cdir.iterdir() if not p.name.startswith(".")]) == 2


def test_missing_record_is_one_clear_error(mitdb, tmp_path):
    data = copy_records(mitdb, tmp_path / "data", ["100"])
    with pytest.raises(DataError, match="record 119"):
        build_beats(data, ["100", "119"], progress=False)
