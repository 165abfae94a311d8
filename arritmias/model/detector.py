"""Detector: the complete beat classifier — preprocessing, network, thresholds, families, RuleGuard — as one object.

Training evaluates a Detector, the MLflow pyfunc model wraps the same Detector, and analysis and evaluation
load it: the served model is the evaluated model. One network answers beats with record context and beats
without it, and says for each detection whether it is a beat at all. Two ways of deciding, each with its own
thresholds, all chosen on cross-validated DS1 predictions:

* :meth:`Detector.decide` — beats judged one by one (a served request): the network's answer alone;
* :meth:`Detector.decide_recording` — every beat of one recording in time order (``analyze``, ``batch-score``,
  ``evaluate``): each beat's answer joined with its morphology family's (:mod:`arritmias.signal.families`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from arritmias.signal import families
from arritmias.model import ruleguard
from arritmias.model.rule import Decisions, Rule, context_mask
from arritmias.model.supra import SupraStage, supra_probability
from arritmias.signal.context import Context
from arritmias.errors import DataError
from arritmias.model.export import compiled_network, export_onnx
from arritmias.model.drift_reference import load_reference, save_reference
from arritmias.model.preprocess import BEAT_CHANNELS, NOT_BEAT_INDEX, OUTPUTS, RR_INPUTS, V_INDEX, model_inputs

MODEL_FILE = "model.keras"
ONNX_FILE = "model.onnx"  # the same network as an ONNX graph (arritmias.model.export): what a loaded Detector runs
SPEC_FILE = "detector.json"
DETECTOR_ARTIFACT = "detector"  # the Detector's folder among a logged pyfunc model's artifacts
# 4: the S answer's second stage ("supra"); 3: three answers (not ventricular, ventricular, not a beat) and
# morphology families; 2: record context. Formats 3 and up load; a format-3 model never says S.
SPEC_FORMAT = 4


def local_detector(uri: str) -> Path | None:
    """The Detector folder inside a pyfunc model saved on disk (``uri`` a path or ``file://`` URI of the folder
    holding ``MLmodel``), or None when ``uri`` is not such a folder (a ``models:/`` or ``runs:/`` URI, a store's
    artifact address)."""
    from urllib.parse import unquote, urlparse

    if "://" in uri or uri.startswith(("models:/", "runs:/")):
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            return None
        uri = unquote(parsed.path)
    model = Path(uri).expanduser()
    folder = model / "artifacts" / DETECTOR_ARTIFACT
    return folder if (model / "MLmodel").is_file() and (folder / SPEC_FILE).is_file() else None


class Detector:
    """A trained network plus the decision rule chosen on cross-validated DS1 patients.

    Parameters
    ----------
    model : keras.Model
        Inputs ``beat`` (n, win, 3) and ``rr`` (n, 4) as made by :mod:`arritmias.model.preprocess`; output the
        probabilities (n, k) of :data:`~arritmias.model.preprocess.OUTPUTS`.
    rule : Rule
        Thresholds, family weight and RuleGuard.
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
        The training beats' feature deciles for live drift (:mod:`arritmias.serving.live_drift`), saved with the model.
    supra : SupraStage or None
        The S answer's second stage (:mod:`arritmias.model.supra`); None: a model from before it, never says S.
    """

    def __init__(self, model, rule: Rule, win: int, fs: float, uses_context: bool = True,
                 onnx_path: Path | None = None, threads: int | None = None, drift_reference: dict | None = None,
                 supra: SupraStage | None = None):
        self._model, self.rule, self.win, self.fs, self.uses_context = model, rule, win, fs, bool(uses_context)
        self.onnx_path, self.threads, self.drift_reference = onnx_path, threads, drift_reference
        self.supra = supra
        self._infer = None
        self.runtime = None  # "openvino" or "tensorflow", once the network first ran

    @property
    def model(self):
        """The Keras network (loaded on first use when the Detector came from a folder)."""
        if isinstance(self._model, Path):
            from arritmias import import_tensorflow

            import_tensorflow()
            import keras

            from arritmias.model import network as _model  # noqa: F401  registers the focal loss for deserialisation

            self._model = keras.models.load_model(self._model, compile=False)
        return self._model

    def _compiled(self):
        """The network as a function ``(beat (n, win, 3), rr (n, 4)) -> probabilities (n, k)``: OpenVINO on the
        ONNX export when there is one, else one traced TensorFlow graph (a single beat in ~2 ms instead of ~30 ms
        eagerly)."""
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
            self._infer = lambda beat, rr: traced(beat, rr).numpy()
            self.runtime = "tensorflow"
        return self._infer

    def predict(self, windows: np.ndarray, rr: np.ndarray, context: Context | None = None,
                use_context: np.ndarray | None = None, batch_size: int = 256) -> np.ndarray:
        """The probabilities (n, k) float32 (k answers) of :data:`~arritmias.model.preprocess.OUTPUTS` for raw windows (n, win) in
        mV with RR features (n, 3) and, when given, their record context (see
        :func:`arritmias.model.preprocess.model_inputs`). Batches of 256: one OpenVINO thread runs ~24,000 beats/s at
        128-256 and ~21,900 at 1,024-2,048 (measured on this network; a batch's activations stay in cache)."""
        windows = np.asarray(windows, np.float32)
        if not self.uses_context:
            context = None
        if windows.ndim != 2 or windows.shape[1] != self.win:
            raise DataError(f"windows must have shape (n, {self.win}), got {windows.shape}")
        out = np.empty((len(windows), len(OUTPUTS)), np.float32)
        if len(windows) == 0:
            return out
        infer = self._compiled()
        for start in range(0, len(windows), batch_size):
            rows = slice(start, start + batch_size)
            inputs = model_inputs(windows[rows], rr[rows], None if context is None else context.select(rows),
                                  None if use_context is None else use_context[rows])
            out[rows] = infer(inputs["beat"], inputs["rr"])
        return out

    def predict_proba(self, windows: np.ndarray, rr: np.ndarray, context: Context | None = None,
                      use_context: np.ndarray | None = None) -> np.ndarray:
        """P(V), shape (n,) float32: the V column of :meth:`predict`."""
        return self.predict(windows, rr, context, use_context)[:, V_INDEX]

    def _decisions(self, windows: np.ndarray, rr: np.ndarray, probs: np.ndarray, thresholds: np.ndarray,
                   used: np.ndarray) -> Decisions:
        """Thresholds (n,) on P(V), the not-a-beat threshold on P(not a beat), then RuleGuard."""
        p_v, p_x = probs[:, V_INDEX], probs[:, NOT_BEAT_INDEX]
        not_beat = p_x >= self.rule.not_beat_threshold
        is_v = (p_v >= thresholds) & ~not_beat
        changed = np.zeros_like(is_v)
        if self.rule.guard is not None and len(p_v):
            is_v, changed = ruleguard.apply(self.rule.guard, windows, rr, p_v, is_v)
            is_v &= ~not_beat
        return Decisions(p_v, is_v, changed, used, None, p_x, not_beat)

    def decide(self, windows: np.ndarray, rr: np.ndarray, context: Context | None = None,
               use_context: np.ndarray | None = None, probs: np.ndarray | None = None) -> Decisions:
        """Beats judged one by one: thresholded and rule-filtered decisions (``probs`` (n, 3) reused when already
        computed). Never S: the S answer needs the rhythm around the beat (:meth:`decide_recording`)."""
        used = context_mask(len(windows), context if self.uses_context else None, use_context)
        probs = self.predict(windows, rr, context, use_context) if probs is None else probs
        thresholds = np.where(used, self.rule.threshold, self.rule.threshold_no_context)
        return self._decisions(windows, rr, probs, thresholds, used)

    def families(self, windows: np.ndarray) -> np.ndarray:
        """The morphology family (n,) of each beat of one recording (windows in time order)."""
        return families.assign(windows, self.fs, self.rule.family_corr)

    def decide_recording(self, windows: np.ndarray, rr: np.ndarray, context: Context,
                         probs: np.ndarray | None = None, family: np.ndarray | None = None) -> Decisions:
        """Every beat of one recording, in time order, with its record ``context``: each beat's probabilities
        joined with its family's so far (causal: the same for a stream fed beat by beat), then thresholds and
        RuleGuard; then, with a record context and an S stage, the S answer among the beats neither V nor not a beat
        (:meth:`supra_answer`). ``probs`` (n, 3) and ``family`` (n,) are reused when already computed."""
        context = context if self.uses_context else None
        used = context_mask(len(windows), context, None)
        probs = self.predict(windows, rr, context) if probs is None else probs
        if self.rule.family_weight > 0:
            family = self.families(windows) if family is None else family
            probs = families.smooth(probs, family, self.rule.family_weight)
        thresholds = np.full(len(windows), self.rule.threshold_recording if context is not None
                             else self.rule.threshold_no_context, np.float32)
        decisions = self._decisions(windows, rr, probs, thresholds, used)
        if self.supra is None or context is None:
            return decisions
        return self.supra_answer(decisions, rr)

    def supra_answer(self, decisions: Decisions, rr: np.ndarray, stage: SupraStage | None = None) -> Decisions:
        """``decisions`` of one recording's detections with P(S) and the S answer of ``stage`` (default: this
        Detector's) added: P(S) of the beats neither V nor in an irregular rhythm, from their rhythm
        (:func:`arritmias.model.supra.supra_probability`; NaN for the others), S where it reaches the stage's
        threshold, and which beats lie in an irregular rhythm. ``rr`` (n, 3) the detections' RR features."""
        from dataclasses import replace

        stage = self.supra if stage is None else stage
        p_s, irregular = supra_probability(stage, rr, decisions.not_beat, decisions.is_v)
        is_s = ~decisions.is_v & (np.nan_to_num(p_s) >= stage.threshold)
        return replace(decisions, prob_s=p_s, is_s=is_s, irregular=irregular)

    def spec(self) -> dict:
        return {"format": SPEC_FORMAT, "rule": self.rule.to_dict(), "win": self.win, "fs": self.fs,
                "uses_context": self.uses_context, "supra": None if self.supra is None else self.supra.to_dict()}

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
        folder = local_detector(uri)
        if folder is not None:  # a model on disk: read directly, without importing MLflow (~1 s of start-up)
            return cls.load(folder)
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            # suppress_warnings: else MLflow compares the model's pip requirements with every installed package on
            # each load, ~1 s of a command's start-up, to print warnings; a model this code cannot read is refused by
            # Detector.load's format check instead.
            return mlflow.pyfunc.load_model(uri, suppress_warnings=True).unwrap_python_model().detector
        except (MlflowException, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"cannot load model '{uri}': {first}") from None
        except AttributeError:
            raise DataError(f"'{uri}' is not an arritmias model") from None

    @classmethod
    def load(cls, folder: Path, threads: int | None = None) -> Detector:
        """The Detector saved in ``folder``; its network runs in OpenVINO when ``model.onnx`` is there."""
        spec = json.loads((folder / SPEC_FILE).read_text())
        if spec.get("format", 2) < 3:
            raise DataError(f"{folder}: a model from before the not-a-beat answer and morphology families "
                            "(arritmias < 0.3, two-class network); retrain it with this version")
        onnx_path = folder / ONNX_FILE
        return cls(folder / MODEL_FILE, Rule.from_dict(spec["rule"]), int(spec["win"]), float(spec["fs"]),
                   bool(spec.get("uses_context", True)), onnx_path if onnx_path.is_file() else None, threads,
                   load_reference(folder), SupraStage.from_dict(spec["supra"]) if spec.get("supra") else None)
