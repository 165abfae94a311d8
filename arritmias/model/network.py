"""The Keras model: a 1D CNN over the beat window and a dense branch over the RR features; a softmax over the
three answers of :data:`arritmias.model.preprocess.OUTPUTS` (not ventricular, ventricular, not a beat)."""

from __future__ import annotations

from arritmias import import_tensorflow

import_tensorflow()
import keras  # noqa: E402
from keras import layers, ops  # noqa: E402

from arritmias.config import TrainConfig
from arritmias.model.preprocess import BEAT_CHANNELS, OUTPUTS, RR_INPUTS


@keras.saving.register_keras_serializable(package="arritmias")
class FocalLoss(keras.losses.Loss):
    """Categorical focal loss (Lin et al. 2017): ``-(1 - p_t)^gamma log(p_t)`` of the true class's probability.

    ``gamma`` > 0 shrinks the loss of well-classified beats, so the few hard look-alikes (a PVC that resembles
    the patient's beat, a T wave that resembles a QRS) drive training. Labels are class indices (n,).
    """

    def __init__(self, gamma: float = 2.0, name: str = "focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        y = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(y_pred)[-1])
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        return ops.sum(-y * ops.power(1 - p, self.gamma) * ops.log(p), axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="arritmias")
class BinaryFocalLoss(keras.losses.Loss):
    """The binary focal loss of the two-class networks before the "not a beat" answer; kept only so that
    their saved files still deserialise (:meth:`arritmias.model.detector.Detector.load` then refuses them by name)."""

    def __init__(self, gamma: float = 2.0, alpha: float = 0.5, name: str = "focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma, self.alpha = float(gamma), float(alpha)

    def call(self, y_true, y_pred):
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), y_pred.dtype)
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        p_t = y_true * p + (1 - y_true) * (1 - p)
        alpha_t = y_true * self.alpha + (1 - y_true) * (1 - self.alpha)
        return ops.mean(-alpha_t * ops.power(1 - p_t, self.gamma) * ops.log(p_t), axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


def build_model(cfg: TrainConfig) -> keras.Model:
    """Inputs ``beat`` (batch, win, 3) and ``rr`` (batch, 4) as :func:`arritmias.model.preprocess.model_inputs` makes
    them; output (batch, 3): the probabilities of :data:`~arritmias.model.preprocess.OUTPUTS`."""
    beat = keras.Input((cfg.win, BEAT_CHANNELS), name="beat")
    rr = keras.Input((RR_INPUTS,), name="rr")
    x = beat
    for i, (n_filters, k) in enumerate(zip(cfg.filters, cfg.kernel_sizes)):
        # The first block is strided: QRS content sits below ~40 Hz, so 180 Hz (stride 2) or 90 Hz (stride 4) keeps
        # it and divides the work of every later layer by the stride.
        if i == 0 or not cfg.separable:
            conv = layers.Conv1D(n_filters, k, strides=cfg.first_stride if i == 0 else 1, padding="same",
                                 use_bias=False)
        else:
            conv = layers.SeparableConv1D(n_filters, k, padding="same", use_bias=False)
        x = conv(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        if i < len(cfg.filters) - 1:
            x = layers.MaxPooling1D(2)(x)
    # Max pooling keeps "is there a wide/odd deflection anywhere", average pooling keeps overall shape.
    x = layers.Concatenate()([layers.GlobalMaxPooling1D()(x), layers.GlobalAveragePooling1D()(x)])
    r = layers.Dense(cfg.rr_units, activation="relu")(rr)
    h = layers.Concatenate()([x, r])
    h = layers.Dense(cfg.dense_units, activation="relu")(h)
    h = layers.Dropout(cfg.dropout)(h)
    out = layers.Dense(len(OUTPUTS), activation="softmax", name="p")(h)
    model = keras.Model({"beat": beat, "rr": rr}, out, name="cnn_rr")
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=FocalLoss(cfg.focal_gamma))
    return model


def macs_per_beat(model: keras.Model) -> int:
    """Multiply-adds the network spends on one beat: convolutions (plain and depthwise-separable) and dense
    layers; normalisation, pooling and activations (a few per output value) are left out."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.SeparableConv1D):
            (_, _, c_in), (_, n_out, c_out) = layer.input.shape, layer.output.shape
            total += n_out * (layer.kernel_size[0] * c_in + c_in * c_out)
        elif isinstance(layer, layers.Conv1D):
            (_, _, c_in), (_, n_out, c_out) = layer.input.shape, layer.output.shape
            total += n_out * layer.kernel_size[0] * c_in * c_out
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)
