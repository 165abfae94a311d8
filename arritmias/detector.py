"""Detector: the complete beat classifier — preprocessing, network, thresholds, RuleGuard — as one object.

Training evaluates a Detector, the MLflow pyfunc model wraps the same Detector, and analysis and evaluation
load it: the served model is the evaluated model. One network answers beats with record context and beats
without it; each path has its own threshold, both chosen on cross-validated DS1 predictions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from arritmias import ruleguard
from arritmias.context import Context
from arritmias.errors import DataError
from arritmias.export import compiled_network, export_onnx
from arritmias.live_drift import load_reference, save_reference
from arritmias.preprocess import BEAT_CHANNELS, RR_INPUTS, model_inputs

MODEL_FILE = "model.keras"
ONNX_FILE = "model.onnx"  # the same network as an ONNX graph (arritmias.export): what a loaded Detector runs
SPEC_FILE = "detector.json"


@dataclass(frozen=True)
class Decisions:
    """Per-beat output, each of shape (n,): P(V), final V decision, whether RuleGuard changed it, whether the
    beat was judged with its record context, and whether it lies in an unreadable stretch (None: none does)."""

    prob: np.ndarray
    is_v: np.ndarray
    ruleguard_changed: np.ndarray
    context_used: np.ndarray
    unreadable: np.ndarray | None = None

    def labels(self) -> np.ndarray:
        """``"V"`` / ``"N"`` per beat, ``"Q"`` (unclassifiable, as in EC57) for a beat in an unreadable stretch."""
        labels = np.where(self.is_v, "V", "N")
        return labels if self.unreadable is None else np.where(self.unreadable, "Q", labels)

    def excluding(self, unreadable: np.ndarray) -> Decisions:
        """The same decisions with the beats of ``unreadable`` (n,) bool never called V (and labelled Q)."""
        unreadable = np.asarray(unreadable, bool)
        return replace(self, is_v=self.is_v & ~unreadable, unreadable=unreadable)


def context_mask(n: int, context: Context | None, use_context: np.ndarray | None) -> np.ndarray:
    """Which of ``n`` beats use their context: all with a context, none without, or ``use_context`` (n,) bool."""
    if context is None:
        return np.zeros(n, bool)
    return np.ones(n, bool) if use_context is None else np.asarray(use_context, bool)


class Detector:
    """A trained network plus the decision rule chosen on cross-validated DS1 patients.

    Parameters
    ----------
    model : keras.Model
        Inputs ``beat`` (n, win, 2) and ``rr`` (n, 4) as made by :mod:`arritmias.preprocess`; output P(V).
    threshold : float
        P(V) at or above which a beat judged with its record context is V.
    threshold_no_context : float
        The same for a beat sent without context.
    guard : RuleGuard or None
        Post-filter rules, or None when cross-validation found they do not help.
    win, fs : int, float
        Window length (samples) and sampling rate (Hz) the model expects.
    uses_context : bool
        False for a network trained without record context (the ablation): context sent to it is ignored.
    onnx_path : Path or None
        The network's ONNX export: when given and OpenVINO is installed, the network runs there and the Keras
        model (``model`` may then be a path to ``model.keras``) is loaded only if something asks for it.
    threads : int or None
        OpenVINO's inference threads (None: the machine's cores, at most 4; batch actors use 1 each).
    drift_reference : dict or None
        The training beats' feature deciles for live drift (:mod:`arritmias.live_drift`), saved with the model.
    """

    def __init__(self, model, threshold: float, threshold_no_context: float, guard: ruleguard.RuleGuard | None,
                 win: int, fs: float, uses_context: bool = True, onnx_path: Path | None = None,
                 threads: int | None = None, drift_reference: dict | None = None):
        self._model, self.guard, self.win, self.fs, self.uses_context = model, guard, win, fs, bool(uses_context)
        self.threshold, self.threshold_no_context = float(threshold), float(threshold_no_context)
        self.onnx_path, self.threads, self.drift_reference = onnx_path, threads, drift_reference
        self._infer = None
        self.runtime = None  # "openvino" or "tensorflow", once the network first ran

    @property
    def model(self):
        """The Keras network (loaded on first use when the Detector came from a folder)."""
        if isinstance(self._model, Path):
            from arritmias import import_tensorflow

            import_tensorflow()
            import keras

            from arritmias import model as _model  # noqa: F401  registers the focal loss for deserialisation

            self._model = keras.models.load_model(self._model, compile=False)
        return self._model

    def _compiled(self):
        """The network as a function ``(beat (n, win, 2), rr (n, 4)) -> P(V) (n,)``: OpenVINO on the ONNX export
        when there is one, else one traced TensorFlow graph (a single beat in ~2 ms instead of ~30 ms eagerly)."""
        if self._infer is None and self.onnx_path is not None:
            self._infer = compiled_network(self.onnx_path, self.threads)
            self.runtime = "openvino" if self._infer else None
        if self._infer is None:
            from arritmias import import_tensorflow

            tf = import_tensorflow()

            model = self.model
            spec = (tf.TensorSpec([None, self.win, BEAT_CHANNELS], tf.float32),
                    tf.TensorSpec([None, RR_INPUTS], tf.float32))

            def infer(beat, rr):
                return model({"beat": beat, "rr": rr}, training=False)

            traced = tf.function(infer, input_signature=spec, autograph=False)
            self._infer = lambda beat, rr: traced(beat, rr).numpy()[:, 0]
            self.runtime = "tensorflow"
        return self._infer

    def predict_proba(self, windows: np.ndarray, rr: np.ndarray, context: Context | None = None,
                      use_context: np.ndarray | None = None, batch_size: int = 1024) -> np.ndarray:
        """P(V), shape (n,) float32, of raw windows (n, win) in mV with RR features (n, 3) and, when given, their
        record context (see :func:`arritmias.preprocess.model_inputs`)."""
        windows = np.asarray(windows, np.float32)
        if not self.uses_context:
            context = None
        if windows.ndim != 2 or windows.shape[1] != self.win:
            raise DataError(f"windows must have shape (n, {self.win}), got {windows.shape}")
        if len(windows) == 0:
            return np.zeros(0, np.float32)
        infer = self._compiled()
        out = np.empty(len(windows), np.float32)
        for start in range(0, len(windows), batch_size):
            rows = slice(start, start + batch_size)
            inputs = model_inputs(windows[rows], rr[rows], None if context is None else context.select(rows),
                                  None if use_context is None else use_context[rows])
            out[rows] = infer(inputs["beat"], inputs["rr"])
        return out

    def thresholds(self, used: np.ndarray) -> np.ndarray:
        """The threshold of each beat, (n,) float, from whether it used its context (n,) bool."""
        return np.where(used, self.threshold, self.threshold_no_context)

    def decide(self, windows: np.ndarray, rr: np.ndarray, context: Context | None = None,
               use_context: np.ndarray | None = None, prob: np.ndarray | None = None) -> Decisions:
        """Thresholded and rule-filtered decisions (``prob`` reused when already computed)."""
        used = context_mask(len(windows), context if self.uses_context else None, use_context)
        prob = self.predict_proba(windows, rr, context, use_context) if prob is None else prob
        is_v = prob >= self.thresholds(used)
        changed = np.zeros_like(is_v)
        if self.guard is not None and len(prob):
            is_v, changed = ruleguard.apply(self.guard, windows, rr, prob, is_v)
        return Decisions(prob, is_v, changed, used)

    def spec(self) -> dict:
        return {"threshold": self.threshold, "threshold_no_context": self.threshold_no_context,
                "ruleguard": self.guard.to_dict() if self.guard else None, "win": self.win, "fs": self.fs,
                "uses_context": self.uses_context}

    def save(self, folder: Path) -> Path:
        """Write ``model.keras``, its ONNX export ``model.onnx``, ``detector.json`` and, when there is one, the
        live-drift reference ``drift_reference.json`` into ``folder``."""
        import shutil

        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / MODEL_FILE)
        if self.onnx_path is not None and Path(self.onnx_path).is_file():
            shutil.copyfile(self.onnx_path, folder / ONNX_FILE)
        else:
            export_onnx(self.model, folder / ONNX_FILE, self.win)
        (folder / SPEC_FILE).write_text(json.dumps(self.spec(), indent=2))
        if self.drift_reference is not None:
            save_reference(self.drift_reference, folder)
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
    def load(cls, folder: Path, threads: int | None = None) -> Detector:
        """The Detector saved in ``folder``; its network runs in OpenVINO when ``model.onnx`` is there."""
        spec = json.loads((folder / SPEC_FILE).read_text())
        if "threshold_no_context" not in spec:
            raise DataError(f"{folder}: a model from before record context (arritmias < 0.2); retrain it")
        guard = ruleguard.RuleGuard(**spec["ruleguard"]) if spec["ruleguard"] else None
        onnx_path = folder / ONNX_FILE
        return cls(folder / MODEL_FILE, spec["threshold"], spec["threshold_no_context"], guard, int(spec["win"]),
                   float(spec["fs"]), bool(spec.get("uses_context", True)),
                   onnx_path if onnx_path.is_file() else None, threads, load_reference(folder))
