"""Morphology families, decoys, the not-a-beat answer and the fast EC57 counting, on hand-built and seeded
synthetic inputs."""

from __future__ import annotations

import numpy as np
import pytest

from arritmias.data import decoys
from arritmias.signal import families
from arritmias.data.beats import beat_inputs
from arritmias.config import TrainConfig
from arritmias.training.fit import class_index
from arritmias.model.detector import Decisions
from arritmias.data.matching import counts_of, match_detections, record_counts
from arritmias.training.fit import epoch_rows
from tests.conftest import synthetic_ecg

FS = 360.0


def _beats(seconds=120, pvc_every=5, seed=0):
    sig, r, symbols = synthetic_ecg(seconds, FS, seed=seed, pvc_every=pvc_every)
    inputs = beat_inputs(sig, r, FS, 360)
    return sig, r[inputs.kept], np.array(symbols)[inputs.kept], inputs


def test_pvcs_and_normal_beats_form_their_own_families():
    _, _, symbols, inputs = _beats()
    fam = families.assign(inputs.windows, FS)
    normal, pvc = fam[symbols == "N"], fam[symbols == "V"]
    assert len(np.unique(normal)) == 1 and len(np.unique(pvc)) == 1 and normal[0] != pvc[0]
    # A beat four times larger than any family is not of that family, whatever its shape.
    windows = inputs.windows.copy()
    windows[40] *= 4
    assert families.assign(windows, FS)[40] not in set(fam)


def test_families_are_causal():
    """A beat's family never depends on later beats: changing the second half leaves the first half's alone."""
    _, _, _, inputs = _beats(seed=1)
    fam = families.assign(inputs.windows, FS)
    later = inputs.windows.copy()
    half = len(later) // 2
    later[half:] = np.random.default_rng(0).standard_normal(later[half:].shape)
    np.testing.assert_array_equal(families.assign(later, FS)[:half], fam[:half])


def test_evidence_is_the_mean_of_the_family_so_far():
    family = np.array([0, 1, 0, 0, 1, 2])
    values = np.array([[1.0], [10.0], [3.0], [5.0], [20.0], [7.0]])
    np.testing.assert_allclose(families.evidence(family, values)[:, 0], [1, 10, 2, 3, 15, 7])
    probs = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]] * 3, np.float32)
    smoothed = families.smooth(probs, np.zeros(6, np.int64), 0.5)
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(smoothed[1], [0.3, 0.7, 0.0], rtol=1e-6)  # half its own, half the mean so far
    np.testing.assert_array_equal(families.smooth(probs, np.zeros(6, np.int64), 0.0), probs)


def test_decoys_sit_on_t_waves_p_waves_and_between_beats():
    sig, r, _, _ = _beats(pvc_every=0, seed=2)
    rng = np.random.default_rng(0)
    pos, kinds, before = decoys.decoy_positions(sig, r, np.arange(5, 25), FS, 360, rng)
    assert set(kinds) == set(decoys.KINDS)
    after_r = (pos - r[before]) / FS
    # The synthetic T wave peaks 0.25 s after R, the P wave 0.16 s before the next R.
    assert np.all(np.abs(after_r[kinds == "t"] - 0.25) < 0.02)
    assert np.all(np.abs((r[before + 1] - pos)[kinds == "p"] / FS - 0.16) < 0.03)  # a 0.1 mV P in 0.02 mV noise
    between = after_r[kinds == "_"] / ((r[before + 1] - r[before])[kinds == "_"] / FS)
    assert np.all((between >= 0.3) & (between <= 0.7))
    rr = decoys.decoy_rr(pos, r, before, FS)
    np.testing.assert_allclose(rr[:, 0] + rr[:, 1], (r[before + 1] - r[before]) / FS, rtol=1e-5)


def test_class_index_and_epoch_rows():
    aami = np.array(list("NNNNNNNNSSVVXXXXF"))
    y = class_index(aami)
    assert y.tolist() == [0] * 10 + [1, 1] + [2] * 4 + [-1]  # an S beat is not ectopic to the V network
    cfg = TrainConfig(balance_ratio=3, not_beat_ratio=1)
    rows = epoch_rows(y, cfg, np.random.default_rng(0))
    assert sorted(np.bincount(y[rows], minlength=3).tolist()) == sorted([6, 2, 2])
    assert -1 not in y[rows] and len(set(rows)) == len(rows)


def test_labels_of_not_beats_and_unreadable_beats():
    d = Decisions(np.array([0.9, 0.9, 0.1, 0.9]), np.array([True, False, False, True]), np.zeros(4, bool),
                  np.ones(4, bool), None, np.array([0.0, 0.8, 0.1, 0.0]), np.array([False, True, False, False]))
    d = d.excluding(np.array([False, False, False, True]))
    assert d.labels().tolist() == ["V", "Q", "N", "Q"]
    assert d.annotation_symbols().tolist() == ["V", "|", "N", "Q"]
    assert d.unclassified().tolist() == [False, True, False, True]
    # A detection judged not a beat inside an unreadable stretch is an unreadable beat (Q), not an artifact:
    # the summary counts it among the beats, out of the burden, as the stretch's other beats.
    both = Decisions(np.array([0.2, 0.2]), np.zeros(2, bool), np.zeros(2, bool), np.ones(2, bool), None,
                     np.array([0.9, 0.9]), np.array([True, True])).excluding(np.array([True, False]))
    assert both.not_beat.tolist() == [False, True] and both.annotation_symbols().tolist() == ["Q", "|"]


def test_fast_counting_agrees_with_record_counts():
    """counts_of (many labellings of one matching, for choosing thresholds) gives record_counts' counts when
    nothing is dropped, and when detections are dropped it charges their reference beats as missed."""
    rng = np.random.default_rng(3)
    ref = np.sort(rng.choice(np.arange(int(300 * FS), int(1800 * FS)), 800, replace=False))
    classes = rng.choice(list("NNNNNNVVSF"), len(ref))
    found = ref[rng.random(len(ref)) > 0.02]  # 2 % missed
    found = found + rng.integers(-20, 21, len(found))  # within 56 ms of their beat
    test = np.unique(np.r_[found, rng.integers(int(300 * FS), int(1800 * FS), 30)])  # 30 false detections
    is_v = rng.random(len(test)) < 0.3
    matched = match_detections(ref, classes, test, FS)
    assert counts_of(matched, np.ones(len(test), bool), is_v) == record_counts(ref, classes, test, is_v, FS)
    keep = rng.random(len(test)) > 0.1
    fast, exact = counts_of(matched, keep, is_v), record_counts(ref, classes, test[keep], is_v[keep], FS)
    assert fast == exact  # the dropped detections' beats have no other detection within 150 ms here
    assert fast["Vo"] + fast["Vv"] + fast["Vn"] == int(np.sum(classes == "V"))


@pytest.mark.parametrize("weight", [0.5, 0.8])
def test_a_one_off_odd_beat_leans_on_nothing_but_a_family_leans_on_its_members(weight):
    """The first member of a family has only its own answer; later members are pulled to their family's."""
    family = np.array([0, 0, 0, 1, 0, 1, 1])
    p_v = np.array([0.1, 0.1, 0.1, 0.9, 0.1, 0.3, 0.9])
    probs = np.c_[1 - p_v, p_v, np.zeros(7)].astype(np.float32)
    s = families.smooth(probs, family, weight)[:, 1]
    assert s[3] == pytest.approx(0.9)  # a new family: its own answer
    assert s[5] == pytest.approx((1 - weight) * 0.3 + weight * 0.6)  # pulled up by the earlier member


def test_unreadable_marking_is_scipys_moving_variance():
    """A lead off at either end and in the middle, on a 10 mV baseline, and rail runs: the one-pass running
    variance marks what scipy.ndimage's moving means (float64, ends repeated) mark, and the rules hold."""
    from scipy.ndimage import uniform_filter1d

    from arritmias.analysis import recording as analysis

    fs = 360.0
    rng = np.random.default_rng(3)
    x = 10.0 + rng.normal(0, 0.3, 20_000)
    x[:500] = 10.2  # lead off at the start, then in the middle and at the end (a 5 uV spread stays "off")
    x[4_800:6_300] = 10.2 + rng.normal(0, 0.002, 1_500)
    x[19_700:] = 9.9
    x[9_990:10_030] = x.max() + 1  # 0.11 s at the top rail
    x[15_000:15_003] = x.max()  # 3 samples at the rail: shorter than RAIL_RUN_S, not unreadable
    mean = uniform_filter1d(x, 360, mode="nearest")
    expected = uniform_filter1d(x * x, 360, mode="nearest") - mean * mean < analysis.LEAD_OFF_MV ** 2
    np.testing.assert_array_equal(analysis._lead_off(x, 360, analysis.LEAD_OFF_MV ** 2), expected)
    whole = analysis.unreadable_samples(x, fs)
    assert whole[5_000:6_100].all() and whole[9_990:10_030].all() and whole[:300].all() and whole[19_900:].all()
    assert not whole[15_000:15_003].any() and not whole[700:4_500].any()


def test_compiled_families_are_the_python_loop(mitdb):
    """The compiled assignment equals the same loop run as Python, on a real record with multiform PVCs, and its
    families hold the shapes apart: 208's largest family has no PVC (its N beats and some fusions), its next two
    only PVCs (two PVC shapes)."""
    from arritmias.data.beats import reference_beats
    from arritmias.data.records import read_recording

    rec = read_recording(mitdb, "208", fs=FS)
    ref = reference_beats(rec)
    inputs = beat_inputs(rec.signal, ref.samples, FS, 360)
    q, norm = families._qrs_vectors(inputs.windows[:1200], FS)
    args = (q, norm, 0.9, families.MAX_FAMILIES, 1 / families.AMPLITUDE_FACTOR, families.AMPLITUDE_FACTOR)
    np.testing.assert_array_equal(families._assign(*args), families._assign.py_func(*args))
    fam = families.assign(inputs.windows, FS)
    aami = ref.aami[inputs.kept]
    first, second, third = np.argsort(np.bincount(fam))[::-1][:3]
    assert np.sum(aami[fam == first] == "V") == 0 and np.mean(aami[fam == first] == "N") > 0.95
    assert np.all(aami[(fam == second) | (fam == third)] == "V")


def test_supraventricular_answers_keep_the_served_label_and_read_as_s_elsewhere():
    """An S call is N in the served ``label`` (unchanged for clients that count V), S in ``class``, S to EC57 and
    ``A`` in an annotation file; V, not a beat and unreadable win over S."""
    d = Decisions(np.array([0.1, 0.9, 0.1, 0.1, 0.1]), np.array([False, True, False, False, False]), np.zeros(5, bool),
                  np.ones(5, bool), None, np.array([0.0, 0.0, 0.9, 0.0, 0.0]),
                  np.array([False, False, True, False, False]), np.array([0.9, 0.9, 0.9, 0.1, 0.9]),
                  np.array([True, True, True, False, True]))
    d = d.excluding(np.array([False, False, False, False, True]))
    assert d.labels().tolist() == ["N", "V", "Q", "N", "Q"]
    assert d.classes().tolist() == ["S", "V", "Q", "N", "Q"]
    assert d.ec57_labels().tolist() == ["S", "V", "N", "N", "N"]
    assert d.annotation_symbols().tolist() == ["A", "V", "|", "N", "Q"]
    old = Decisions(np.array([0.1, 0.9]), np.array([False, True]), np.zeros(2, bool), np.ones(2, bool))
    assert old.classes().tolist() == ["N", "V"] and not old.supra().any()  # a model from before the S answer
