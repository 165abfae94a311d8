"""Unit tests of the decision core on hand-built inputs: record context, model inputs, cross-validation folds,
the threshold rule, the metrics and the gate."""

from __future__ import annotations

import numpy as np
import pytest

from arritmias.tracking import registry, runs
from arritmias.data.beats import DS1, beat_inputs
from arritmias.config import TrainConfig
from arritmias.data.beats import for_recording
from arritmias.signal.context import CONTEXT_BEATS, CONTEXT_STRIDE, Context, record_context
from arritmias.training.crossval import assign_folds
from arritmias.errors import ConfigError, DataError
from arritmias.training.evaluation import average_precision, binary_metrics, choose_threshold, pick_operating_point
from arritmias.model.preprocess import POPULATION_RR_S, SCALE_FLOOR_MV, model_inputs
from arritmias.model.contract import parse_request
from tests.conftest import synthetic_ecg


# --- record context -------------------------------------------------------------------------------------------

def test_context_is_the_causal_median_of_recent_beats():
    rng = np.random.default_rng(0)
    n, win = 203, 16  # not a multiple of the stride: the last anchor has a partial block after it
    windows = rng.normal(size=(n, win)).astype(np.float32)
    windows[:, :4] = np.round(windows[:, :4])  # ties, which a sorting network must count like np.median
    rr = np.c_[rng.uniform(0.6, 1.2, n), rng.uniform(0.6, 1.2, n), np.ones(n)].astype(np.float32)
    ctx = record_context(windows, rr)
    centred = windows - np.median(windows, axis=1, keepdims=True)
    for i in range(n):  # every beat, bit for bit: the fast medians are np.median's values
        anchor = i - i % CONTEXT_STRIDE
        rows = slice(max(0, anchor - CONTEXT_BEATS + 1), anchor + 1)
        np.testing.assert_array_equal(ctx.template[i], np.median(centred[rows], axis=0), err_msg=str(i))
        assert ctx.rr_usual[i] == np.median(rr[rows, 0]), i
    # Causal: changing later beats never changes an earlier beat's context.
    later = windows.copy()
    later[150:] += 5.0
    np.testing.assert_array_equal(record_context(later, rr).template[:150], ctx.template[:150])


def test_context_template_is_the_normal_beat_despite_pvcs():
    fs = 360.0
    sig, r, symbols = synthetic_ecg(120, fs, pvc_every=4, seed=1)
    inputs = beat_inputs(sig, r, fs, 360)
    is_v = np.array(symbols)[inputs.kept] == "V"
    normal = np.median(inputs.windows[~is_v] - np.median(inputs.windows[~is_v], axis=1, keepdims=True), axis=0)
    late = np.arange(len(is_v)) >= CONTEXT_BEATS
    # A quarter of the beats are wide PVCs, yet the usual beat is the normal one (R height ~1 mV, not ~1.6).
    assert np.max(np.abs(inputs.context.template[late] - normal), axis=1).max() < 0.1
    assert np.allclose(inputs.context.rr_usual[late], 60 / 72, atol=0.05)


def test_for_recording_builds_requests_with_context():
    fs = 360.0
    sig, r, _ = synthetic_ecg(30, fs, pvc_every=5)
    rows = for_recording(sig, r, fs)
    assert len(rows) >= len(r) - 2
    assert set(rows[0]) == {"sig", "rr", "ctx_sig", "ctx_rr"}
    assert len(rows[5]["ctx_sig"]) == 360 and rows[5]["ctx_rr"] > 0
    req = parse_request(rows, 360)
    assert req.context is not None and req.use_context.all()


# --- model inputs ---------------------------------------------------------------------------------------------

def test_context_keeps_a_large_beat_large():
    win = 360
    template = np.zeros((1, win), np.float32)
    template[0, 175:185] = 1.0  # the usual beat: 1 mV
    beat = 2.0 * template  # twice as large: ectopic-looking
    ctx = Context(template, np.array([0.8], np.float32))
    with_ctx = model_inputs(beat, np.array([[0.8, 0.8, 1.0]]), ctx)
    alone = model_inputs(beat, np.array([[0.8, 0.8, 1.0]]))
    scale = template.std() + SCALE_FLOOR_MV
    np.testing.assert_allclose(with_ctx["beat"][0, :, 0], beat[0] / scale, rtol=1e-5)
    np.testing.assert_allclose(with_ctx["beat"][0, :, 1], (beat[0] - template[0]) / scale, rtol=1e-5)
    np.testing.assert_allclose(with_ctx["beat"][0, :, 2], template[0] / scale, rtol=1e-5)
    # Alone, the beat is scaled by its own spread and its size is gone; the context channels are empty.
    assert alone["beat"][0, :, 0].max() < with_ctx["beat"][0, :, 0].max() / 1.5
    assert not alone["beat"][0, :, 1:].any()
    assert with_ctx["rr"][0, -1] == 1.0 and alone["rr"][0, -1] == 0.0


def test_rr_is_relative_to_the_usual_rr():
    rr = np.array([[0.5, 0.75, 1.5]], np.float32)  # previous RR 0.5 s: on time or premature, by the usual RR
    fast = model_inputs(np.zeros((1, 360)), rr, Context(np.zeros((1, 360)), np.array([0.5], np.float32)))
    slow = model_inputs(np.zeros((1, 360)), rr, Context(np.zeros((1, 360)), np.array([1.0], np.float32)))
    alone = model_inputs(np.zeros((1, 360)), rr)
    assert fast["rr"][0, 0] == pytest.approx(0.0)  # on time for a fast heart
    assert slow["rr"][0, 0] == pytest.approx(np.log(0.5))  # premature for a slow one
    assert alone["rr"][0, 0] == pytest.approx(np.log(0.5 / POPULATION_RR_S))
    mixed = model_inputs(np.zeros((2, 360)), np.r_[rr, rr], Context(np.zeros((2, 360)), np.array([1.0, 1.0])),
                         use_context=np.array([True, False]))
    np.testing.assert_allclose(mixed["rr"][1], alone["rr"][0])
    np.testing.assert_allclose(mixed["rr"][0], slow["rr"][0])


# --- cross-validation folds -----------------------------------------------------------------------------------

def test_folds_hold_every_patient_out_exactly_once():
    v_counts = {r: (i * 37) % 500 for i, r in enumerate(DS1)}
    for k in (2, 3, 5, 22):
        folds = assign_folds(DS1, v_counts, k)
        flat = [r for f in folds for r in f]
        assert len(folds) == k and sorted(flat) == sorted(DS1) and len(flat) == len(set(flat))
        assert all(folds)
    folds = assign_folds(DS1, v_counts, 5)
    totals = [sum(v_counts[r] for r in f) for f in folds]
    assert max(totals) - min(totals) <= max(v_counts.values())  # the snake deal keeps V counts comparable
    assert assign_folds(DS1, v_counts, 5) == folds  # deterministic
    with pytest.raises(ValueError):
        assign_folds(("101", "106"), {}, 3)


def test_config_refuses_impossible_folds():
    with pytest.raises(ConfigError, match="cv_folds=3"):
        TrainConfig(train_records=("208", "119"), cv_folds=3)
    with pytest.raises(ConfigError, match="twice"):
        TrainConfig(train_records=("208", "208", "119"), cv_folds=2)


# --- threshold rule and metrics -------------------------------------------------------------------------------

def test_threshold_meets_both_targets_when_it_can():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    c = choose_threshold(y, p, target_prec=0.9, target_rec=0.9)
    assert c.rule == "both_targets" and c.threshold == pytest.approx(0.6)
    assert (c.val_precision, c.val_recall) == (1.0, 1.0)


def test_best_f1_when_both_targets_cannot_be_met():
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0], bool)
    p = np.array([0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.3, 0.2])
    c = choose_threshold(y, p, target_prec=0.98, target_rec=1.0)
    # F1 per threshold: 0.9 -> 0.4, 0.8 -> 0.57, 0.7 -> 0.67, 0.3 -> 0.73 (4 of 4 V, precision 4/7): the best.
    assert c.rule == "max_f1" and c.threshold == pytest.approx(0.3) and c.val_recall == 1.0
    precision, recall = np.array([0.5, 0.8, 0.95]), np.array([1.0, 0.9, 0.6])
    c = pick_operating_point(precision, recall, np.array([0.2, 0.5, 0.8]), 0.98, 0.96)
    assert c.rule == "max_f1" and c.threshold == pytest.approx(0.5)  # F1 0.85, not the most sensitive 0.2


def test_metrics_on_a_hand_counted_case():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    pred = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)
    m = binary_metrics(y, pred)
    assert (m["TP"], m["FN"], m["FP"], m["TN"]) == (2, 1, 1, 4)
    assert m["precision_V"] == pytest.approx(2 / 3) and m["recall_V"] == pytest.approx(2 / 3)
    assert m["recall_N"] == pytest.approx(4 / 5) and m["accuracy"] == pytest.approx(6 / 8)
    assert binary_metrics(y, np.zeros(8, bool))["precision_V"] == 0.0  # nothing called V: 0, not NaN
    # Average precision of a perfect ranking is 1, and of this one (V at ranks 1, 3) (1 + 2/3) / 2.
    assert average_precision(np.array([1, 1, 0], bool), np.array([0.9, 0.8, 0.1])) == pytest.approx(1.0)
    assert average_precision(np.array([1, 0, 1, 0], bool), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(5 / 6)
    assert average_precision(np.array([0, 0], bool), np.array([0.5, 0.4])) == 0.0


def test_gate_names_each_failing_metric():
    se, ppv = "test_ec57_detected_veb_se", "test_ec57_detected_veb_ppv"  # the defaults: detected mode
    result = registry.gate({se: 0.9, ppv: 0.5})
    assert not result.passed and result.failures == [f"{ppv}=0.5000 < {registry.GATE_DEFAULTS[ppv]}"]
    assert registry.gate({se: 0.9, ppv: 0.9}).passed
    assert f"{ppv} missing" in registry.gate({se: 1}).failures[0]
    assert registry.gate({"test_recall_V": 0.5}, {"test_recall_V": 0.75}).failures == ["test_recall_V=0.5000 < 0.75"]

    # NaN compares false: as a minimum it would pass every run, so a non-finite threshold is refused by name.
    from arritmias.errors import ConfigError

    for minimum in (float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="test_recall_V="):
            registry.gate({"test_accuracy": 1, "test_precision_V": 1, "test_recall_V": 1},
                          {"test_accuracy": 0.8, "test_recall_V": minimum})


# --- served context -------------------------------------------------------------------------------------------

BEAT = {"sig": [0.1] * 360, "rr": [0.8, 0.8, 1.0]}


@pytest.mark.parametrize("extra, needle", [
    ({"ctx_sig": [0.1] * 100, "ctx_rr": 0.8}, "ctx_sig of beat 0: expected 360 numbers"),
    ({"ctx_sig": [float("nan")] * 360, "ctx_rr": 0.8}, "ctx_sig of beat 0: NaN"),
    ({"ctx_sig": [0.1] * 360, "ctx_rr": -0.8}, "ctx_rr of beat 0: the usual RR must be positive"),
    ({"ctx_sig": [0.1] * 360, "ctx_rr": 0}, "ctx_rr of beat 0: the usual RR must be positive"),
    ({"ctx_sig": [0.1] * 360}, "beat 0 has 'ctx_sig' but no 'ctx_rr'"),
    ({"ctx_rr": 0.8}, "beat 0 has 'ctx_rr' but no 'ctx_sig'"),
    ({"ctx_sig": [0.1] * 360, "ctx_rr": "fast"}, "ctx_rr of beat 0"),
])
def test_bad_context_is_refused_naming_the_field(extra, needle):
    with pytest.raises(DataError, match=needle.replace("(", r"\(")):
        parse_request([{**BEAT, **extra}], 360)


def test_context_may_come_with_some_beats_only():
    req = parse_request([BEAT, {**BEAT, "ctx_sig": [0.2] * 360, "ctx_rr": [0.9]}], 360)
    assert req.use_context.tolist() == [False, True]
    assert req.context.rr_usual[1] == pytest.approx(0.9)
    assert parse_request([BEAT], 360).context is None


def test_experiment_artifacts_go_beside_the_sqlite_store(tmp_path, monkeypatch):
    """Not into the folder a command runs from (issue 14: a drift check made mlruns/ in the project folder)."""
    import mlflow

    # mlflow.set_tracking_uri/set_registry_uri also write these variables, which later tests' subprocesses
    # inherit: restore them (and MLflow's own globals) afterwards.
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store = tmp_path / "store" / "mlflow.db"
    store.parent.mkdir()
    try:
        runs.use_tracking(f"sqlite:///{store}")
        experiment = runs.use_experiment("monitoring_ecg")
        assert experiment.artifact_location == (store.parent / "mlruns").as_uri()
        with mlflow.start_run():
            mlflow.log_text("x", "x.txt")
        assert not (elsewhere / "mlruns").exists() and (store.parent / "mlruns").is_dir()
        assert runs.artifact_location("http://127.0.0.1:5000") is None
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def test_recording_s_threshold_is_chosen_on_ec57_sveb_counts():
    """Step 4 of the decision rule on hand-built records: the P(S) threshold is the first that separates the S
    beats from the others (EC57 SVEB Se and +P both 1), a beat already called V is never S (its S reference beat
    counts as missed), and a detection judged not a beat is dropped before counting."""
    from arritmias.data import matching as ec57
    from arritmias.training.decision import _supra_point

    fs, rng = 360.0, np.random.default_rng(0)
    matched, rows, p_s, keep, is_v, start = [], [], [], [], [], 0
    for _ in range(2):
        ref = np.arange(400, 400 + 600 * 300, 300)  # 600 beats, 0.83 s apart
        classes = np.where(rng.random(len(ref)) < 0.1, "S", "N")
        matched.append(ec57.match_detections(ref, classes, ref, fs))
        rows.append(np.arange(start, start + len(ref)))
        start += len(ref)
        p_s.append(np.where(classes == "S", rng.uniform(0.7, 0.95, len(ref)), rng.uniform(0.0, 0.6, len(ref))))
        keep.append(np.ones(len(ref), bool))
        is_v.append(np.zeros(len(ref), bool))
    p_s, keep, is_v = np.concatenate(p_s), np.concatenate(keep), np.concatenate(is_v)
    cfg = TrainConfig(target_prec_s=0.8, target_rec_s=0.8)
    point = _supra_point(cfg, matched, rows, p_s, keep, is_v)
    assert point["sveb_se"] == point["sveb_ppv"] == 1.0
    assert max(p_s[p_s < 0.65]) < point["threshold_s_recording"] <= min(p_s[p_s > 0.65])
    s_rows = np.flatnonzero(p_s > 0.65)
    scored = np.concatenate([m.scored for m in matched])  # EC57 scores from the fifth minute on
    is_v[s_rows[-1]] = True  # an S beat the V rule took: EC57 counts it Sv, a missed SVEB
    n_s = int(np.sum(scored[s_rows]))
    assert _supra_point(cfg, matched, rows, p_s, keep, is_v)["sveb_se"] == pytest.approx((n_s - 1) / n_s)
    n_rows = np.flatnonzero(p_s < 0.65)[-5:]
    p_s[n_rows], keep[n_rows] = 0.99, False  # confident S, but judged not beats: dropped, no false SVEB
    assert _supra_point(cfg, matched, rows, p_s, keep, is_v)["sveb_ppv"] == 1.0
