"""A/B serving's plain parts: routing, configuration checks, the prediction log, the report on a real log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from arritmias.serving.ab import ABConfig, choose_arm
from arritmias.errors import DataError
from arritmias.serving.prediction_log import COLUMNS, PredictionLog, read_log


def test_routing_shares_and_subject_stickiness():
    rng = np.random.default_rng(0)
    assert choose_arm(None, 0.0, 0.0) == "champion" and choose_arm("p1", 0.0, 0.0) == "champion"
    assert choose_arm(None, 1.0, 0.999) == "challenger" and choose_arm("p1", 1.0, 0.0) == "challenger"
    draws = [choose_arm(None, 0.1, u) for u in rng.random(20_000)]
    assert abs(draws.count("challenger") / 20_000 - 0.1) < 0.01
    # A subject's arm does not depend on the draw; across subjects the share holds.
    subjects = [f"patient-{i}" for i in range(20_000)]
    arms = [choose_arm(s, 0.1, 0.0) for s in subjects]
    assert all(choose_arm(s, 0.1, u) == a for s, a, u in zip(subjects[:500], arms, rng.random(500)))
    assert abs(arms.count("challenger") / 20_000 - 0.1) < 0.01
    # Raising the split only moves subjects towards the challenger, never back.
    assert all(choose_arm(s, 0.3, 0.0) == "challenger" for s, a in zip(subjects, arms) if a == "challenger")


def test_shadow_batches_join_requests_with_and_without_context():
    from arritmias.serving.ab import concat
    from arritmias.model.contract import parse_request

    rng = np.random.default_rng(1)
    beat = {"sig": rng.normal(0, 0.2, 360).tolist(), "rr": [0.8, 0.82, 1.025]}
    with_ctx = {**beat, "ctx_sig": rng.normal(0, 0.2, 360).tolist(), "ctx_rr": 0.8}
    a, b = parse_request([beat, beat], 360), parse_request([with_ctx], 360)
    joined = concat([a, b])
    assert joined.windows.shape == (3, 360) and joined.use_context.tolist() == [False, False, True]
    np.testing.assert_array_equal(joined.context.template[2], b.context.template[0])
    assert concat([a, a]).context is None and concat([a]) is a


@pytest.mark.parametrize("kwargs, needle", [
    ({"split": 1.5, "challenger": "c"}, "between 0 and 1"),
    ({"split": -0.1, "challenger": "c"}, "between 0 and 1"),
    ({"split": 0.1}, "needs --challenger"),
    ({"min_replicas": 3, "max_replicas": 2}, "--min-replicas"),
    ({"challenger": "production"}, "must differ"),
])
def test_bad_configurations_are_refused_in_one_line(kwargs, needle):
    with pytest.raises(DataError, match=needle):
        ABConfig(**kwargs).check()


def _rows(request_id: str, arm: str, labels: str, version: int, subject: str = "", samples=None) -> dict:
    n = len(labels)
    return {"request_id": [request_id] * n, "beat": np.arange(n), "time_utc": [pd.Timestamp.now(tz="UTC")] * n,
            "subject": [subject] * n, "arm": [arm] * n, "model_version": [version] * n,
            "prob_v": np.array([0.9 if c == "V" else 0.1 for c in labels], np.float32), "label": list(labels),
            "ruleguard_changed": [False] * n, "context_used": [True] * n, "latency_ms": [2.5] * n,
            "sample": samples if samples is not None else [None] * n}


def test_prediction_log_writes_whole_files_and_loses_nothing_on_close(tmp_path):
    log = PredictionLog(tmp_path / "log", flush_every_s=3600)  # only close() writes here
    for i in range(50):
        log.append(_rows(f"r{i}", "champion", "NNV", 1))
    assert read_log(tmp_path / "log").empty  # nothing written yet: rows wait in memory
    assert log.close() == 150
    table = read_log(tmp_path / "log")
    assert len(table) == 150 and list(table.columns) == list(COLUMNS)
    assert table["request_id"].nunique() == 50 and (table["label"] == "V").sum() == 50
    files = list((tmp_path / "log").rglob("*"))
    assert not [f for f in files if f.name.endswith(".tmp")]  # no half-written file left behind
    assert all(f.parent.name.startswith("hour=") for f in files if f.is_file())


def test_prediction_log_flushes_in_the_background(tmp_path):
    import time

    log = PredictionLog(tmp_path / "log", flush_every_s=0.1)
    log.append(_rows("r0", "champion", "NV", 1))
    deadline = time.time() + 10
    while read_log(tmp_path / "log").empty and time.time() < deadline:
        time.sleep(0.05)
    assert len(read_log(tmp_path / "log")) == 2
    log.close()


def test_report_compares_arms_shadow_and_annotations(tmp_path, mitdb, cache_dir, store):
    """A log written as the server writes it, for real beats of record 233 with their samples: per-arm figures,
    shadow disagreements, and Se/+P against the reference labels."""
    from arritmias.tracking import runs
    from arritmias.serving.ab_report import report
    from arritmias.data.beats import build_beats

    beats = build_beats(mitdb, ("233",), 0, 360, 360.0, cache_dir, progress=False)
    keep = np.flatnonzero(np.isin(beats.aami, ["N", "V"]))[:200]
    truth = "".join(beats.aami[keep])
    wrong_once = truth[:10].replace("V", "N", 1) if "V" in truth[:10] else "V" + truth[1:10]
    log = PredictionLog(tmp_path / "log", flush_every_s=3600)
    for k in range(20):  # 20 requests of 10 beats: the champion is right, the shadow errs on one beat of the first
        rows = slice(10 * k, 10 * k + 10)
        samples = beats.sample[keep[rows]].astype(np.int64)
        log.append(_rows(f"r{k}", "champion", truth[rows], 1, "233", samples))
        log.append(_rows(f"r{k}", "shadow", wrong_once if k == 0 else truth[rows], 2, "233", samples))
    log.close()
    runs.use_tracking(store)
    out = report(tmp_path / "log", ("233",), mitdb)
    arms = out.arms.set_index("arm")
    assert arms.loc["champion", "beats"] == 200 and arms.loc["shadow", "requests"] == 20
    assert arms.loc["champion", "v_rate"] == pytest.approx(truth.count("V") / 200, abs=1e-4)
    assert out.disagreement_rate == pytest.approx(1 / 200) and len(out.disagreements) == 1
    accuracy = out.accuracy.set_index("arm")
    assert accuracy.loc["champion", "f1_V"] == 1.0 and accuracy.loc["shadow", "f1_V"] < 1.0
    assert out.decision["candidate_version"] == 2 and not out.decision["accepted"]
    assert out.run_id is not None


def test_report_on_an_empty_log_says_so(tmp_path):
    from arritmias.serving.ab_report import report

    with pytest.raises(DataError, match="no decisions logged"):
        report(tmp_path / "nothing", log_to_mlflow=False)
