"""The network's cost in multiply-adds per beat, counted from its layers, against the count by hand."""

from __future__ import annotations

from arritmias.config import TrainConfig
from arritmias.model import build_model, macs_per_beat


def test_macs_per_beat_counts_convolutions_and_dense_layers():
    cfg = TrainConfig(first_stride=4)  # 360 samples -> 90, pooled to 45, then 22
    by_hand = (90 * 7 * 2 * 32 + 45 * 5 * 32 * 64 + 22 * 5 * 64 * 64  # the three convolutions
               + 4 * 16 + (2 * 64 + 16) * 32 + 32)  # RR branch, head, output
    assert macs_per_beat(build_model(cfg)) == by_hand == 956_384
    # Depthwise k*c_in plus pointwise c_in*c_out per output sample.
    separable = TrainConfig(first_stride=4, separable=True)
    by_hand_sep = (90 * 7 * 2 * 32 + 45 * (5 * 32 + 32 * 64) + 22 * (5 * 64 + 64 * 64)
                   + 4 * 16 + (2 * 64 + 16) * 32 + 32)
    assert macs_per_beat(build_model(separable)) == by_hand_sep
    assert macs_per_beat(build_model(TrainConfig())) == 1_928_544  # the default, stride 2: the issue's ~1.9 M


def test_a_loaded_model_without_its_export_saves_one_that_matches(tmp_path):
    """A model logged before the ONNX export existed is re-saved for batch-score's actors: its Keras network,
    just loaded and never called, is exported and runs in ONNX Runtime with the same P(V)."""
    import numpy as np

    from arritmias.detector import MODEL_FILE, ONNX_FILE, Detector

    cfg = TrainConfig()
    build_model(cfg).save(tmp_path / MODEL_FILE)
    old = Detector(tmp_path / MODEL_FILE, 0.5, 0.5, None, cfg.win, cfg.fs)  # no onnx_path: TensorFlow
    saved = Detector.load(old.save(tmp_path / "resaved"))
    assert (tmp_path / "resaved" / ONNX_FILE).is_file() and saved.onnx_path is not None
    rng = np.random.default_rng(0)
    windows, rr = rng.standard_normal((64, cfg.win)).astype(np.float32), np.tile([0.8, 0.82, 1.025], (64, 1))
    p_onnx, p_keras = saved.predict_proba(windows, rr), old.predict_proba(windows, rr)
    assert saved.runtime == "onnxruntime" and old.runtime == "tensorflow"
    assert np.max(np.abs(p_onnx - p_keras)) <= 1e-5
