"""The served network runs in ONNX Runtime: parity with Keras on every DS2 beat, both paths, same labels."""

from __future__ import annotations

import numpy as np
import pytest

from arritmias.beats import DS2, build_beats
from arritmias.detector import Detector

pytestmark = pytest.mark.slow


def test_onnx_runtime_matches_keras_on_every_ds2_beat(trained, store, mitdb, cache_dir):
    import mlflow

    mlflow.set_tracking_uri(store)
    served = Detector.from_model_uri(f"runs:/{trained.run_id}/model")  # what serving and analysis load
    assert served.onnx_path is not None and served.onnx_path.is_file()
    keras_only = Detector(served.model, served.threshold, served.threshold_no_context, served.guard, served.win,
                          served.fs, served.uses_context)
    ds2 = build_beats(mitdb, DS2, 0, served.win, served.fs, cache_dir, progress=False)
    ds2 = ds2.select(np.isin(ds2.aami, ["N", "V"]))
    context = ds2.context
    assert len(ds2) > 40_000
    for ctx in (context, None):  # the record-context path and the beat-alone path
        onnx = served.decide(ds2.windows, ds2.rr, ctx)
        reference = keras_only.decide(ds2.windows, ds2.rr, ctx)
        assert served.runtime == "onnxruntime" and keras_only.runtime == "tensorflow"
        assert np.max(np.abs(onnx.prob - reference.prob)) <= 1e-5
        assert np.array_equal(onnx.labels(), reference.labels())
        assert np.array_equal(onnx.ruleguard_changed, reference.ruleguard_changed)
