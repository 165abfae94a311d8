"""EC57 beat-by-beat counting: hand-built cases whose answer is known, and the WFDB toolkit's own matcher on
real records."""

from __future__ import annotations

import numpy as np
import pytest

from arritmias.data.matching import MATCH_WINDOW_S, figures, match_beats, record_counts, summarize

FS = 360.0


def test_matching_uses_150_ms_and_each_beat_once():
    ref = np.array([1000, 2000, 3000, 4000])
    test = np.array([1054, 1990, 2010, 3055, 5000])  # 54 samples = 150 ms: in; 55 = 152.8 ms: out
    match = match_beats(ref, test, FS)
    assert match.tolist() == [0, 1, -1, -1]  # 2000 takes the closer 1990; 2010 stays unmatched


def test_counts_and_figures_on_a_known_record():
    start = int(300 * FS)
    # Reference: 6 N, 1 S, 3 V, 1 F after the 5-minute mark, plus beats inside the first 5 minutes.
    ref = np.array([100, 200] + [start + 1000 * k for k in range(11)])
    cls = np.array(list("NV") + list("NNNNNNSVVVF"))
    test_samples = ref[2:].copy()
    test_samples[9] += 30  # still matched (83 ms)
    test_v = np.array([False] * 5 + [True] + [True, True, True, False, True])  # N5 called V, S called V,
    test_samples = np.delete(test_samples, 8)  # reference V at index 8 of the kept list is missed by the test
    test_v = np.delete(test_v, 8)
    test_samples = np.r_[test_samples, start + 10_500]  # one extra test beat, called V
    test_v = np.r_[test_v, True]
    c = record_counts(ref, cls, test_samples, test_v, FS)
    assert c["Nn"] == 5 and c["Nv"] == 1
    assert c["Sv"] == 1 and c["Sn"] == 0
    assert c["Vv"] == 1 and c["Vn"] == 1 and c["Vo"] == 1
    assert c["Fv"] == 1 and c["Ov"] == 1 and c["On"] == 0 and c["No"] == 0
    f = figures(c)
    assert f["veb_se"] == pytest.approx(1 / 3)  # Vv / (Vv + Vn + Vo)
    assert f["veb_ppv"] == pytest.approx(1 / 4)  # Vv / (Vv + Nv + Sv + Ov); Fv is not a false positive
    assert f["qrs_se"] == pytest.approx(10 / 11)
    assert f["qrs_ppv"] == pytest.approx(10 / 11)


def test_sveb_counts_and_figures_with_three_test_labels():
    """Test labels N / S / V: SVEB Se = Ss / (Ss + Sn + Sv + So), SVEB +P = Ss / (Ss + Ns + Vs + Fs + Os); an S
    beat called S is no VEB false positive, a V beat called S is a missed V; a Q beat called S costs nothing."""
    ref = np.array([1000 * k for k in range(1, 11)])
    cls = np.array(list("NNSSSSVVFQ"))
    test = np.r_[ref[:9], ref[9], 10_500]  # the fifth S (index 5) goes missing below; one extra beat
    labels = np.array(list("NSSSVNSVSSS"))
    keep = np.ones(len(test), bool)
    keep[5] = False  # the S beat at 6000 is dropped: missed
    c = record_counts(ref, cls, test[keep], labels[keep], FS, start_s=0)
    assert (c["Nn"], c["Ns"], c["Ss"], c["Sv"], c["So"]) == (1, 1, 2, 1, 1)
    assert (c["Vs"], c["Vv"], c["Fs"], c["Qs"], c["Os"]) == (1, 1, 1, 1, 1)
    f = figures(c)
    assert f["sveb_se"] == pytest.approx(2 / 4)  # Ss / (Ss + Sn + Sv + So)
    assert f["sveb_ppv"] == pytest.approx(2 / 6)  # Ss / (Ss + Ns + Vs + Fs + Os); Qs is not a false positive
    assert f["veb_se"] == pytest.approx(1 / 2)  # Vv / (Vv + Vn + Vs + Vo): the V called S is missed
    assert f["veb_ppv"] == pytest.approx(1 / 2)  # Vv / (Vv + Nv + Sv + Ov)
    # A bool labelling (a detector without the S answer) counts exactly as "V" / "N" labels.
    is_v = labels[keep] == "V"
    assert record_counts(ref, cls, test[keep], is_v, FS, start_s=0) == \
        record_counts(ref, cls, test[keep], np.where(is_v, "V", "N"), FS, start_s=0)


def test_first_five_minutes_can_be_included():
    ref = np.array([100, 200, 400])
    cls = np.array(list("VVN"))
    test = np.array([100, 200, 400])
    is_v = np.array([True, False, False])
    assert record_counts(ref, cls, test, is_v, FS)["Vv"] == 0
    c = record_counts(ref, cls, test, is_v, FS, start_s=0)
    assert (c["Vv"], c["Vn"], c["Nn"]) == (1, 1, 1)


def test_gross_pools_counts_and_average_skips_undefined_records():
    a = {"Nn": 10, "Nv": 0, "Sn": 0, "Sv": 0, "Vn": 0, "Vv": 10, "Fn": 0, "Fv": 0, "Qn": 0, "Qv": 0,
         "Vo": 0, "No": 0, "On": 0, "Ov": 0}
    b = {**a, "Vv": 0, "Vn": 0, "Nv": 5}  # no V beats: Se undefined, +P = 0
    result = summarize("reference", {"a": a, "b": b})
    assert result.gross["veb_se"] == pytest.approx(1.0)
    assert result.gross["veb_ppv"] == pytest.approx(10 / 15)
    assert result.average["veb_se"] == pytest.approx(1.0)  # b has no Se and is skipped
    assert result.average["veb_ppv"] == pytest.approx(0.5)


@pytest.mark.parametrize("record", ["119", "208", "233", "105"])
def test_matching_agrees_with_wfdb_compare_annotations(mitdb, record):
    """Our detector's beats against the reference annotations, matched by match_beats and by wfdb-python's
    ``compare_annotations`` (the bxb-style matcher): the same pairs, beat for beat. 119 is regular bigeminy,
    208 has couplets and fusions, 233 frequent PVCs, 105 heavy noise. Our detector rarely puts two beats near
    one reference beat, where the order of matching matters, so a worse detector is imitated too (seeded): 5 %
    of its beats missed, 10 % detected twice 25-165 ms apart, every beat moved up to 55 ms."""
    import wfdb.processing

    from arritmias.analysis.recording import Signal, find_beats
    from arritmias.data.beats import reference_beats
    from arritmias.data.records import read_recording

    rec = read_recording(mitdb, record, fs=FS)
    ref = reference_beats(rec).samples
    found = find_beats(Signal(record, rec.signal, rec.fs, rec.lead, str(mitdb / record)), FS, 360).samples
    rng = np.random.default_rng(int(record))
    kept = rng.random(len(found)) > 0.05
    twice = found[rng.random(len(found)) < 0.10]
    worse = np.unique(np.r_[found[kept] + rng.integers(-20, 21, kept.sum()), twice + rng.integers(9, 60, len(twice))])
    window = int(round(MATCH_WINDOW_S * FS)) + 1  # wfdb matches strictly inside; 150 ms itself (54 samples) is in
    for test in (found, worse):
        ours = match_beats(ref, test, FS)
        theirs = wfdb.processing.compare_annotations(ref, test, window)
        assert (ours >= 0).sum() == theirs.tp and len(test) - theirs.tp == theirs.fp
        np.testing.assert_array_equal(ours, theirs.matching_sample_nums)
