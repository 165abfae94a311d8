"""The served contract: the MLflow pyfunc model around a :class:`~arritmias.detector.Detector`.

A request is a batch of beats, each ``{"sig": [win numbers], "rr": [prev_s, next_s, next/prev]}`` — ``sig`` the
raw window of the lead in mV as wfdb reads it, R peak at index ``win // 2``. MLflow's server accepts it as
``{"instances": [...]}``, ``{"dataframe_records": [...]}`` or ``{"inputs": ...}`` and hands this model a
DataFrame with columns ``sig`` and ``rr``. The answer has one row per beat: ``prob_v``, ``label`` (N/V) and
``ruleguard_changed``.

Requests are validated here, so bad input is answered with a 400 naming the field, never with a made-up label.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from arritmias.errors import DataError

MAX_BATCH = 100_000  # beats per request: ~150 MB of JSON; larger archives go through `arritmias analyze`
DETECTOR_ARTIFACT = "detector"


def parse_request(model_input, win: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows (n, win) float32 and RR (n, 3) float32 from a DataFrame / list of dicts / dict of lists.

    Raises :class:`DataError` naming the row and field for anything that is not a finite number where one is
    expected, a window of the wrong length, an empty or oversized batch.
    """
    if isinstance(model_input, pd.DataFrame):
        frame = model_input
    elif isinstance(model_input, dict):
        frame = pd.DataFrame(model_input if all(isinstance(v, (list, tuple, np.ndarray)) for v in model_input.values())
                             else [model_input])
    elif isinstance(model_input, list):
        frame = pd.DataFrame(model_input)
    else:
        raise DataError(f"input must be a table of beats with fields 'sig' and 'rr', got {type(model_input).__name__}")
    missing = [c for c in ("sig", "rr") if c not in frame.columns]
    if missing:
        raise DataError(f"missing field(s) {missing}: each beat needs 'sig' ({win} numbers, mV) and 'rr' "
                        "(3 numbers: previous RR s, next RR s, next/previous)")
    n = len(frame)
    if n == 0:
        raise DataError("empty batch: send at least one beat")
    if n > MAX_BATCH:
        raise DataError(f"batch of {n} beats exceeds the limit of {MAX_BATCH}; split it into smaller requests")
    windows = _numeric_rows(frame["sig"], "sig", win)
    rr = _numeric_rows(frame["rr"], "rr", 3)
    if np.any(rr[:, :2] <= 0):
        row = int(np.nonzero(np.any(rr[:, :2] <= 0, axis=1))[0][0])
        raise DataError(f"rr of beat {row}: RR intervals must be positive seconds")
    return windows, rr


def _numeric_rows(column: pd.Series, name: str, length: int) -> np.ndarray:
    out = np.empty((len(column), length), np.float32)
    for i, value in enumerate(column):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise DataError(f"{name} of beat {i}: expected a list of {length} numbers, got {type(value).__name__}")
        if len(value) != length:
            raise DataError(f"{name} of beat {i}: expected {length} numbers, got {len(value)}")
        try:
            row = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{name} of beat {i}: values must be numbers") from None
        if not np.all(np.isfinite(row)):
            raise DataError(f"{name} of beat {i}: NaN or infinite values")
        out[i] = row
    return out


def decisions_frame(decisions) -> pd.DataFrame:
    """The response table: one row per beat."""
    return pd.DataFrame({"prob_v": decisions.prob.astype(float), "label": decisions.labels(),
                         "ruleguard_changed": decisions.ruleguard_changed.astype(bool)})


class ArritmiasPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: validate the request, then the Detector's preprocessing, network, threshold, rules."""

    def load_context(self, context):
        from arritmias.detector import Detector

        self.detector = Detector.load(Path(context.artifacts[DETECTOR_ARTIFACT]))

    def predict(self, context, model_input, params=None):
        try:
            windows, rr = parse_request(model_input, self.detector.win)
        except DataError as exc:
            # INVALID_PARAMETER_VALUE is answered as HTTP 400 by `mlflow models serve`.
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        return decisions_frame(self.detector.decide(windows, rr))
