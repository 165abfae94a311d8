"""The S answer's second stage: rhythm features, the exported trees, and how the Detector applies them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from arritmias.config import TrainConfig
from arritmias.model.detector import Detector
from arritmias.model.rule import Decisions, Rule
from arritmias.model.supra import SupraStage, Tree
from arritmias.signal.rhythm import FEATURES, beat_times, irregular_rhythm, rhythm_features
from arritmias.training.supra import fit_stage, out_of_fold


def _sinus(n: int, rr: float = 0.8, premature: tuple[int, ...] = (), early: float = 0.6) -> np.ndarray:
    """Beat times (s) of a regular rhythm with atrial premature beats at ``premature``: each comes ``early`` x RR
    after the beat before it, and the sinus node restarts from it (a non-compensatory pause)."""
    gaps = np.full(n - 1, rr)
    for i in premature:
        gaps[i - 1] = early * rr
    return np.concatenate([[0.0], np.cumsum(gaps)])


def test_rhythm_features_say_premature_abrupt_and_irregular():
    x = rhythm_features(_sinus(200, premature=(100,)))
    col = {name: x[:, i] for i, name in enumerate(FEATURES)}
    assert col["prematurity"][100] == pytest.approx(np.log(0.6), abs=1e-6)  # 0.48 s against the usual 0.8 s
    assert col["abruptness"][100] == pytest.approx(np.log(0.6), abs=1e-6)
    assert col["vs_recent"][100] == pytest.approx(np.log(0.6), abs=1e-6)
    assert col["next_vs_prev"][100] == pytest.approx(np.log(1 / 0.6), abs=1e-6)
    assert col["next_vs_usual"][100] == pytest.approx(0, abs=1e-6)
    assert np.abs(col["prematurity"][:100]).max() < 1e-6 and col["irregularity"].max() < 1e-6
    # Atrial fibrillation: every RR is different, the beats around are irregular; a gradual change (sinus
    # arrhythmia) is not abrupt.
    rng = np.random.default_rng(0)
    af = rhythm_features(np.concatenate([[0.0], np.cumsum(rng.uniform(0.4, 1.2, 199))]))
    assert np.median(af[:, 3]) > 0.3
    slowing = rhythm_features(np.concatenate([[0.0], np.cumsum(np.linspace(0.6, 1.0, 199))]))
    assert np.abs(slowing[:, 4]).max() < 0.01
    assert rhythm_features(np.array([1.0])).shape == (1, len(FEATURES))


def test_prematurity_is_also_read_against_the_patients_own_spread():
    """The same beat, 10 % early, is unusual in a steady rhythm and ordinary in a breathing one (sinus arrhythmia:
    RR swinging +-15 % every 4 beats); a perfectly steady rhythm does not divide by zero."""
    n = 400
    steady = _sinus(n, premature=(200,), early=0.9)
    swing = 0.8 * (1 + 0.15 * np.sin(2 * np.pi * np.arange(1, n) / 4.0))  # the RR before beat 200 is 0.8 s
    breathing = np.concatenate([[0.0], np.cumsum(swing)])
    breathing[200:] -= 0.1 * 0.8  # beat 200 comes 10 % of an RR early, then the rhythm goes on
    z = FEATURES.index("prematurity_z")
    x_steady, x_breathing = rhythm_features(steady), rhythm_features(breathing)
    assert x_steady[200, 0] == pytest.approx(np.log(0.9), abs=1e-6)
    assert x_breathing[200, 0] == pytest.approx(np.log(0.9), abs=1e-6)  # as early against the usual RR (median)
    assert x_steady[200, z] < -8  # 0.105 against a spread of 0 (floored at 0.01)
    assert -1.5 < x_breathing[200, z] < 0
    assert np.isfinite(rhythm_features(_sinus(100))).all()


def test_a_stage_saved_before_a_feature_was_added_answers_from_its_own_columns():
    """A stage fitted on the first six features (what stages saved before ``prematurity_z`` hold) loads and gives
    the P(S) it was fitted to give; a stage whose trees read columns it does not name is refused."""
    from arritmias.model.supra import supra_probability

    x, y, _ = _training_rows()
    cfg = TrainConfig(supra_trees=20, supra_leaves=7)
    six = replace(fit_stage(cfg, x[:, :6], y), features=FEATURES[:6])
    old = SupraStage.from_dict(six.to_dict())
    assert old.features == FEATURES[:6]
    times = _sinus(300, premature=(100, 200))
    rr = np.column_stack([np.r_[0.8, np.diff(times)], np.r_[np.diff(times), 0.8], np.ones(300)])
    p_s, _ = supra_probability(old, rr, np.zeros(300, bool), np.zeros(300, bool))
    np.testing.assert_array_equal(p_s, six.prob(rhythm_features(times)[:, :6]))
    assert p_s[100] > 0.5 and p_s[50] < 0.5
    with pytest.raises(ValueError, match="features"):
        SupraStage.from_dict({**fit_stage(cfg, x, y).to_dict(), "features": list(FEATURES[:6])})


def test_irregular_rhythm_is_atrial_fibrillation_not_ectopy():
    """AF is irregular everywhere; sinus rhythm with isolated premature beats is not; PVC bigeminy alternates short
    and long RRs but the steps beside a V beat do not count; the gate is off at 0."""
    rng = np.random.default_rng(1)
    n = 300
    sinus = _sinus(n, premature=(60, 120, 180, 240))
    af = np.concatenate([[0.0], np.cumsum(rng.uniform(0.4, 1.2, n - 1))])
    no_v = np.zeros(n, bool)
    assert not irregular_rhythm(sinus, no_v).any()
    assert irregular_rhythm(af, no_v)[20:-20].all()
    bigeminy = np.concatenate([[0.0], np.cumsum(np.tile([0.5, 1.1], n // 2)[: n - 1])])
    every_other = np.arange(n) % 2 == 1
    assert irregular_rhythm(bigeminy, no_v).all()  # read as if every beat were supraventricular: irregular
    assert not irregular_rhythm(bigeminy, every_other).any()
    # Sinus, then AF from beat 150: the gate closes within the window's half (16 beats) of the change.
    mixed = np.concatenate([sinus[:150], sinus[149] + np.cumsum(rng.uniform(0.4, 1.2, n - 150))])
    gate = irregular_rhythm(mixed, no_v)
    assert not gate[:130].any() and gate[170:].all()
    assert not irregular_rhythm(af, no_v, threshold=0).any()
    assert irregular_rhythm(af[:2], no_v[:2]).shape == (2,)


def test_beat_times_undo_the_rr_features():
    times = _sinus(50, premature=(10, 30))
    rr = np.column_stack([np.r_[times[1] - times[0], np.diff(times)], np.r_[np.diff(times), 0.8], np.ones(50)])
    np.testing.assert_allclose(beat_times(rr), times - times[0], atol=1e-9)


def _training_rows(seed: int = 0, n: int = 4000):
    """Rhythm features of six synthetic patients with atrial premature beats at ~5 %."""
    rng = np.random.default_rng(seed)
    xs, ys, recs = [], [], []
    for p in range(6):
        premature = tuple(sorted(rng.choice(np.arange(70, n - 2), n // 20, replace=False)))
        premature = tuple(i for k, i in enumerate(premature) if k == 0 or i - premature[k - 1] > 2)
        times = _sinus(n, rr=rng.uniform(0.6, 1.0), premature=premature, early=rng.uniform(0.55, 0.75))
        times += rng.normal(0, 0.01, n)  # detection jitter
        y = np.zeros(n, bool)
        y[list(premature)] = True
        xs.append(rhythm_features(np.sort(times)))
        ys.append(y)
        recs.append(np.full(n, f"p{p}"))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(recs)


def test_exported_trees_answer_as_the_fitted_model_and_survive_json():
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y, _ = _training_rows()
    cfg = TrainConfig(supra_trees=30, supra_leaves=7)
    stage = fit_stage(cfg, x, y, threshold=0.7)
    model = HistGradientBoostingClassifier(max_iter=30, learning_rate=0.05, max_leaf_nodes=7, class_weight="balanced",
                                           early_stopping=False, random_state=cfg.seed).fit(x, y)
    np.testing.assert_allclose(stage.prob(x), model.predict_proba(x)[:, 1], atol=1e-6)
    again = SupraStage.from_dict(stage.to_dict())
    np.testing.assert_array_equal(again.prob(x), stage.prob(x))
    assert again.threshold == 0.7 and len(again.trees) == 30
    with pytest.raises(ValueError, match="features"):
        SupraStage.from_dict({**stage.to_dict(), "features": ["prematurity"]})
    with pytest.raises(ValueError, match="shape"):
        stage.prob(x[:, :3])


def test_out_of_fold_never_sees_the_patient_and_separates_premature_beats():
    x, y, rec = _training_rows()
    cfg = TrainConfig(supra_trees=30, supra_leaves=7, cv_folds=3)
    p = out_of_fold(cfg, x, y, rec)
    assert np.mean(p[y] >= 0.5) > 0.95 and np.mean(p[~y] >= 0.5) < 0.02
    # A patient whose fold set holds no S beat to learn from answers 0 rather than a made-up P(S).
    none = out_of_fold(cfg, x, y & (rec == "p0"), rec)
    assert np.all(none[rec == "p0"] == 0)
    # Rows outside ``learn`` (false detections, beats in AF) are answered but never learnt from: adding them with
    # contradictory labels changes nothing.
    extra = np.arange(len(x)) % 7 == 0
    learn = ~extra
    flipped = np.where(extra, ~y, y)
    np.testing.assert_array_equal(out_of_fold(cfg, x, flipped, rec, learn)[learn],
                                  out_of_fold(cfg, x[learn], y[learn], rec[learn]))


def _premature_stage() -> SupraStage:
    """One tree: P(S) 0.9 for a beat 25 % or more early against the usual RR, else 0.1."""
    logit = float(np.log(9))
    tree = Tree(np.array([0, -1, -1]), np.array([np.log(0.75), 0, 0]), np.array([1, -1, -1]), np.array([2, -1, -1]),
                np.array([0, logit, -logit]))
    return SupraStage((tree,), 0.0, 0.5)


def test_detector_s_answer_skips_detections_that_are_not_beats_and_never_overrides_v():
    """A T wave detected between two beats would make the next beat look premature; judged not a beat, it does not
    end an RR interval. A premature beat is S unless the V network called it V."""
    times = _sinus(120, premature=(80, 100))
    fake = times[60] + 0.4  # a detection on the T wave after beat 60
    times = np.sort(np.r_[times, fake])
    n = len(times)
    rr = np.column_stack([np.r_[0.8, np.diff(times)], np.r_[np.diff(times), 0.8], np.ones(n)])
    not_beat = np.isclose(times, fake)
    is_v = np.zeros(n, bool)
    is_v[101] = True  # the premature beat at 100 (index 101 after the fake one) was called V
    d = Decisions(np.zeros(n), is_v, np.zeros(n, bool), np.ones(n, bool), None, not_beat.astype(float), not_beat)
    detector = Detector(None, Rule(0.5, 0.5, 0.5, 0.5), 360, 360.0, supra=_premature_stage())
    out = detector.supra_answer(d, rr)
    assert np.flatnonzero(out.is_s).tolist() == [81]  # beat 80; beat 100 stays V; beat 61 is not premature
    assert np.isnan(out.prob_s[not_beat]).all() and out.prob_s[62] == pytest.approx(0.1)
    assert out.classes()[81] == "S" and out.labels()[81] == "N" and out.classes()[101] == "V"


def test_no_s_answer_inside_atrial_fibrillation():
    """A stage with a gate never says S (and gives no P(S)) in an irregular rhythm; a stage saved before the gate
    (no ``af_gate`` in its JSON) has none and answers as it did."""
    rng = np.random.default_rng(2)
    sinus = _sinus(150, premature=(80,))
    times = np.concatenate([sinus, sinus[-1] + np.cumsum(rng.uniform(0.3, 1.0, 150))])
    n = len(times)
    rr = np.column_stack([np.r_[0.8, np.diff(times)], np.r_[np.diff(times), 0.8], np.ones(n)])
    d = Decisions(np.zeros(n), np.zeros(n, bool), np.zeros(n, bool), np.ones(n, bool), None, np.zeros(n),
                  np.zeros(n, bool))
    gated = replace(_premature_stage(), af_gate=0.15)
    out = Detector(None, Rule(0.5, 0.5, 0.5, 0.5), 360, 360.0, supra=gated).supra_answer(d, rr)
    assert out.is_s[80] and not out.is_s[170:].any() and np.isnan(out.prob_s[170:]).all()
    old = {k: v for k, v in gated.to_dict().items() if k != "af_gate"}
    assert SupraStage.from_dict(old).af_gate == 0 and SupraStage.from_dict(gated.to_dict()).af_gate == 0.15
    ungated = Detector(None, Rule(0.5, 0.5, 0.5, 0.5), 360, 360.0, supra=SupraStage.from_dict(old)).supra_answer(d, rr)
    assert ungated.is_s[170:].sum() > 20  # what the gate removes: early beats of AF called S


def test_registry_page_names_the_s_answer_only_for_a_model_trained_with_it():
    from types import SimpleNamespace

    from arritmias.tracking.registry import version_description

    metrics = {"test_ec57_detected_veb_se": 0.9, "threshold_s": 0.83, "test_ec57_detected_sveb_se": 0.4}
    run = SimpleNamespace(info=SimpleNamespace(run_name="CNN_v7_x"), data=SimpleNamespace(metrics=metrics, params={}))
    plain = version_description(run)
    assert plain.startswith("PVC (AAMI V) vs normal beat detector") and "SVEB" not in plain and "P(S)" not in plain
    run.data.params = {"use_supra": "True"}
    with_s = version_description(run)
    assert with_s.startswith("PVC (AAMI V) and supraventricular (S) beat detector")
    assert "SVEB): Se 0.400" in with_s and "P(S) 0.830" in with_s
