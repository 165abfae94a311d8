"""A model logged before the package's stage layout still loads and answers as it did: in process, as a pyfunc,
and as a registered version behind ``models:/``. The fixture is a pyfunc model saved by arritmias at commit 7a87a31
(a shrunk training: its answers, not its quality, are the point), with the answers that code gave."""

from __future__ import annotations

import json

import numpy as np
import pytest

from arritmias.data.beats import beats_from_recording
from arritmias.data.records import read_recording
from tests.conftest import ROOT, run_cli

OLD_MODEL = ROOT / "tests" / "fixtures" / "model_before_layout"


@pytest.fixture(scope="module")
def expected():
    return json.loads((OLD_MODEL / "expected_answers.json").read_text())


@pytest.fixture(scope="module")
def beats(mitdb, expected):
    """The beats the expected answers were given for, cut as that code cut them: from the lead as stored (the
    code since removes mains first, which moves P(V) by ~1e-3; the point here is the same inputs, same answers)."""
    rec = read_recording(mitdb, expected["record"], fs=None)
    return beats_from_recording(rec, 360).select(np.arange(*expected["beats"]))


def _check(labels, prob_v, expected):
    assert list(labels) == expected["label"]
    np.testing.assert_allclose(np.asarray(prob_v, float), expected["prob_v"], atol=1e-5)


def test_old_model_loads_as_a_detector_and_as_a_pyfunc(beats, expected):
    import mlflow

    from arritmias.model import Detector

    d = Detector.from_model_uri(str(OLD_MODEL)).decide(beats.windows, beats.rr, beats.context)
    _check(d.labels(), d.prob, expected)
    model = mlflow.pyfunc.load_model(str(OLD_MODEL))  # its python_model imports arritmias.serving.ArritmiasPyfunc
    out = model.predict({"sig": beats.windows, "rr": beats.rr, "ctx_sig": beats.template, "ctx_rr": beats.rr_usual})
    _check(out["label"], out["prob_v"], expected)
    # The answers grew with the S class; a model without it says so rather than inventing a P(S).
    assert out["class"].tolist() == expected["label"] and out["prob_s"].isna().all()
    assert not d.supra().any() and d.prob_s is None


@pytest.mark.slow
def test_old_model_registered_loads_through_models_uri(beats, expected, mitdb, tmp_path):
    """Registered in a store as a version and promoted, the old model is what `models:/...@production` loads,
    in process and for `arritmias analyze`."""
    import mlflow

    from arritmias.model import Detector
    from arritmias.tracking import MODEL_NAME, model_uri, promote, use_tracking

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    use_tracking(store)
    client = mlflow.MlflowClient()
    client.create_registered_model(MODEL_NAME)
    version = client.create_model_version(MODEL_NAME, source=str(OLD_MODEL)).version
    promote(int(version))
    d = Detector.from_model_uri(model_uri()).decide(beats.windows, beats.rr, beats.context)
    _check(d.labels(), d.prob, expected)
    proc = run_cli("analyze", str(mitdb / "233"), "--out", str(tmp_path / "out"), "--tracking-uri", store)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "233_summary.json").read_text())
    assert summary["model"]["version"] == int(version)
    assert summary["beats"] + summary["detections_not_beats"] > 3000  # 233 has 3,079 annotated beats
