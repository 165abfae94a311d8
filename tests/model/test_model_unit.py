"""The network's cost in multiply-adds per beat, counted from its layers, against the count by hand."""

from __future__ import annotations

from arritmias.config import TrainConfig
from arritmias.model.network import build_model, macs_per_beat


def test_macs_per_beat_counts_convolutions_and_dense_layers():
    cfg = TrainConfig(first_stride=4)  # 360 samples -> 90, pooled to 45, then 22
    by_hand = (90 * 7 * 3 * 32 + 45 * 5 * 32 * 64 + 22 * 5 * 64 * 64  # the three convolutions
               + 4 * 16 + (2 * 64 + 16) * 32 + 32 * 3)  # RR branch, head, the three outputs
    assert macs_per_beat(build_model(cfg)) == by_hand == 976_608
    # Depthwise k*c_in plus pointwise c_in*c_out per output sample.
    separable = TrainConfig(first_stride=4, separable=True)
    by_hand_sep = (90 * 7 * 3 * 32 + 45 * (5 * 32 + 32 * 64) + 22 * (5 * 64 + 64 * 64)
                   + 4 * 16 + (2 * 64 + 16) * 32 + 32 * 3)
    assert macs_per_beat(build_model(separable)) == by_hand_sep
    assert macs_per_beat(build_model(TrainConfig())) == 1_968_928  # the default, stride 2


def test_a_loaded_model_without_its_export_saves_one_that_matches(tmp_path):
    """A model logged before the ONNX export existed is re-saved for batch-score's actors: its Keras network,
    just loaded and never called, is exported and runs in OpenVINO with the same P(V)."""
    import numpy as np

    from arritmias.model.detector import MODEL_FILE, ONNX_FILE, Detector, Rule

    cfg = TrainConfig()
    build_model(cfg).save(tmp_path / MODEL_FILE)
    old = Detector(tmp_path / MODEL_FILE, Rule(0.5, 0.5, 0.5, 0.5), cfg.win, cfg.fs)  # no onnx_path: TensorFlow
    saved = Detector.load(old.save(tmp_path / "resaved"))
    assert (tmp_path / "resaved" / ONNX_FILE).is_file() and saved.onnx_path is not None
    rng = np.random.default_rng(0)
    windows, rr = rng.standard_normal((64, cfg.win)).astype(np.float32), np.tile([0.8, 0.82, 1.025], (64, 1))
    p_onnx, p_keras = saved.predict(windows, rr), old.predict(windows, rr)
    assert saved.runtime == "openvino" and old.runtime == "tensorflow"
    assert np.max(np.abs(p_onnx - p_keras)) <= 1e-5


def test_onnx_export_matches_keras_for_every_layer_kind_build_model_uses(tmp_path):
    """Plain and depthwise-separable convolutions, both strides, batch normalisation with non-trivial statistics
    (folded by the runtime), pooling, both branches, the softmax: the exported graph in OpenVINO gives Keras's
    probabilities."""
    import numpy as np

    from arritmias.model.export import compiled_network, export_onnx

    rng = np.random.default_rng(1)
    for cfg in (TrainConfig(), TrainConfig(first_stride=4, separable=True), TrainConfig(first_stride=3, win=250)):
        model = build_model(cfg)
        for w in model.weights:  # random weights and running statistics: untrained BN is the identity
            value = rng.normal(0.0, 0.3, w.shape)
            w.assign(np.abs(value) + 0.2 if "variance" in w.path else value)
        path = export_onnx(model, tmp_path / f"net_{cfg.first_stride}_{cfg.separable}.onnx", cfg.win)
        network = compiled_network(path, threads=1)
        beat = rng.standard_normal((33, cfg.win, 3)).astype(np.float32)
        rr = rng.standard_normal((33, 4)).astype(np.float32)
        expected = model({"beat": beat, "rr": rr}).numpy()
        assert expected.shape == (33, 3)
        assert np.max(np.abs(network(beat, rr) - expected)) <= 1e-5
        assert np.max(np.abs(network(beat[:1], rr[:1]) - expected[:1])) <= 1e-5  # any batch size, one graph


def test_onnx_export_refuses_a_layer_it_cannot_write(tmp_path):
    import keras
    import pytest

    from arritmias.model.export import export_onnx

    beat, rr = keras.Input((360, 2), name="beat"), keras.Input((4,), name="rr")
    x = keras.layers.LSTM(4)(beat)
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Concatenate()([x, rr]))
    with pytest.raises(ValueError, match="LSTM"):
        export_onnx(keras.Model({"beat": beat, "rr": rr}, out), tmp_path / "lstm.onnx", 360)
    assert not (tmp_path / "lstm.onnx").exists()  # nothing half-written
