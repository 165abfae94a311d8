"""Detector: the complete beat classifier — preprocessing, network, threshold, RuleGuard — as one object.

Training evaluates a Detector, the MLflow pyfunc model wraps the same Detector, and analysis and evaluation
load it: the served model is the evaluated model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arritmias import ruleguard
from arritmias.errors import DataError
from arritmias.preprocess import model_inputs

MODEL_FILE = "model.keras"
SPEC_FILE = "detector.json"


@dataclass(frozen=True)
class Decisions:
    """Per-beat output, each of shape (n,): P(V), final V decision, and whether RuleGuard changed it."""

    prob: np.ndarray
    is_v: np.ndarray
    ruleguard_changed: np.ndarray

    def labels(self) -> np.ndarray:
        """``"V"`` / ``"N"`` per beat."""
        return np.where(self.is_v, "V", "N")


class Detector:
    """A trained network plus the decision rule chosen on validation patients.

    Parameters
    ----------
    model : keras.Model
        Inputs ``beat`` (n, win, 1) and ``rr`` (n, 3) as made by :mod:`arritmias.preprocess`; output P(V).
    threshold : float
        P(V) at or above which a beat is V.
    guard : RuleGuard or None
        Post-filter rules, or None when training found they do not help.
    win, fs : int, float
        Window length (samples) and sampling rate (Hz) the model expects.
    """

    def __init__(self, model, threshold: float, guard: ruleguard.RuleGuard | None, win: int, fs: float):
        self.model, self.threshold, self.guard, self.win, self.fs = model, float(threshold), guard, win, fs
        self._infer = None

    def _compiled(self):
        """The network as one traced TensorFlow graph: a single beat in ~2 ms instead of ~30 ms eagerly, and about
        twice the batch throughput on CPU (measured on the 2-core machine)."""
        if self._infer is None:
            import tensorflow as tf

            model = self.model
            spec = (tf.TensorSpec([None, self.win, 1], tf.float32), tf.TensorSpec([None, 3], tf.float32))

            def infer(beat, rr):
                return model({"beat": beat, "rr": rr}, training=False)

            self._infer = tf.function(infer, input_signature=spec, autograph=False)
        return self._infer

    def predict_proba(self, windows: np.ndarray, rr: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """P(V) of raw windows (n, win) in mV with RR features (n, 3); shape (n,), float32."""
        windows = np.asarray(windows, np.float32)
        if windows.ndim != 2 or windows.shape[1] != self.win:
            raise DataError(f"windows must have shape (n, {self.win}), got {windows.shape}")
        if len(windows) == 0:
            return np.zeros(0, np.float32)
        inputs = model_inputs(windows, rr)
        infer = self._compiled()
        out = np.empty(len(windows), np.float32)
        for start in range(0, len(windows), batch_size):
            stop = start + batch_size
            out[start:stop] = infer(inputs["beat"][start:stop], inputs["rr"][start:stop]).numpy()[:, 0]
        return out

    def decide(self, windows: np.ndarray, rr: np.ndarray, prob: np.ndarray | None = None) -> Decisions:
        """Thresholded and rule-filtered decisions (``prob`` reused when already computed)."""
        prob = self.predict_proba(windows, rr) if prob is None else prob
        is_v = prob >= self.threshold
        changed = np.zeros_like(is_v)
        if self.guard is not None and len(prob):
            is_v, changed = ruleguard.apply(self.guard, windows, rr, prob, is_v)
        return Decisions(prob, is_v, changed)

    def spec(self) -> dict:
        return {"threshold": self.threshold, "ruleguard": self.guard.to_dict() if self.guard else None,
                "win": self.win, "fs": self.fs}

    def save(self, folder: Path) -> Path:
        """Write ``model.keras`` and ``detector.json`` into ``folder``; returns ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / MODEL_FILE)
        (folder / SPEC_FILE).write_text(json.dumps(self.spec(), indent=2))
        return folder

    @classmethod
    def from_model_uri(cls, uri: str) -> Detector:
        """The Detector inside a logged pyfunc model (``runs:/ID/model``, ``models:/NAME@alias``, a path)."""
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            return mlflow.pyfunc.load_model(uri).unwrap_python_model().detector
        except (MlflowException, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"cannot load model '{uri}': {first}") from None
        except AttributeError:
            raise DataError(f"'{uri}' is not an arritmias model") from None

    @classmethod
    def load(cls, folder: Path) -> Detector:
        import keras

        from arritmias import model as _model  # noqa: F401  registers the focal loss for deserialisation

        spec = json.loads((folder / SPEC_FILE).read_text())
        net = keras.models.load_model(folder / MODEL_FILE, compile=False)
        guard = ruleguard.RuleGuard(**spec["ruleguard"]) if spec["ruleguard"] else None
        return cls(net, spec["threshold"], guard, int(spec["win"]), float(spec["fs"]))
