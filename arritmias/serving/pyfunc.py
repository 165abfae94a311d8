"""The served model: the MLflow pyfunc around a :class:`~arritmias.model.detector.Detector`, and how
``arritmias serve`` starts MLflow's server for it.

What a request carries and how it is checked is :mod:`arritmias.model.contract`. Each beat is judged alone (with
its context when sent); a whole recording's morphology families are ``analyze``'s and ``batch-score``'s.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

from arritmias.errors import DataError
from arritmias.model.contract import REQUEST_DOC, parse_request
from arritmias.model.detector import DETECTOR_ARTIFACT

LIVE_DRIFT_ENV = "ARRITMIAS_LIVE_DRIFT_WINDOW"  # beats in the live drift window; set by serve_env
LIVE_DRIFT_WINDOW = 2000


def serve_command(model_uri: str, host: str, port: int, workers: int = 1) -> list[str]:
    """The server command line: uvicorn running MLflow's scoring app (``mlflow models serve``'s) behind
    :mod:`arritmias.serving.guard`; raises DataError if the port is taken. The model is the one
    :func:`serve_env` downloads."""
    import socket
    import sys

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            raise DataError(f"port {port} on {host} is already in use: choose another with --port") from None
    # uvicorn's start-up lines (per worker) repeat what `arritmias serve` already said; warnings and errors stay.
    return [sys.executable, "-m", "uvicorn", "--host", host, "--port", str(port), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning", "arritmias.serving.guard:app"]


def serve_env(tracking_uri: str, model_uri: str, dst: Path, max_bytes: int | None = None) -> dict[str, str]:
    """Environment for the server: ``model_uri`` downloaded into ``dst`` and named in MLflow's model-path variable
    (what ``mlflow models serve`` does), the tracking store, the request limit, and which model it is (registered
    version, run id: every answer names them in its headers). A model that cannot be loaded
    is a DataError here, before any server starts."""
    import os
    import shutil

    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server
    from mlflow.utils.file_utils import path_to_local_file_uri

    from arritmias.serving.guard import DEFAULT_MAX_BYTES, MAX_BYTES_ENV

    from arritmias.serving import metrics
    from arritmias.tracking import registry
    from arritmias.serving.guard import MODEL_URI_ENV, RUN_ID_ENV, TRAINING_V_RATE_ENV, VERSION_ENV

    # An alias is resolved once, here: the version downloaded is the version every answer names, even if the alias
    # moves while the download runs.
    made = registry.model_provenance(model_uri)
    source = f"models:/{made['name']}/{made['version']}" if made["version"] is not None else model_uri
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst))
    except (MlflowException, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot load model '{model_uri}': {first}") from None
    if not (Path(local) / "MLmodel").is_file():
        raise DataError(f"'{model_uri}' is not an MLflow model (no MLmodel file)")
    # The workers' Prometheus metrics meet in a fresh folder (the client library's multiprocess mode).
    metrics_dir = Path(dst) / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    rate = metrics.training_v_rate(made["run_id"])
    return {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
            scoring_server._SERVER_MODEL_PATH: path_to_local_file_uri(local),
            MAX_BYTES_ENV: str(max_bytes or DEFAULT_MAX_BYTES), metrics.MULTIPROC_ENV: str(metrics_dir),
            VERSION_ENV: str(made["version"] or ""), MODEL_URI_ENV: model_uri, RUN_ID_ENV: made["run_id"] or "",
            TRAINING_V_RATE_ENV: "" if rate is None else f"{rate:.6f}",
            LIVE_DRIFT_ENV: str(LIVE_DRIFT_WINDOW)}


def decision_columns(decisions) -> dict[str, np.ndarray]:
    """The answer's columns, one entry per beat: what both servers (MLflow's app, the Ray arms) return."""
    n = len(decisions.prob)
    return {"prob_v": decisions.prob.astype(float), "label": decisions.labels(),
            "prob_not_beat": decisions.prob_not_beat.astype(float),
            # Added with the S answer, after the columns clients already read: null from a model without it.
            "prob_s": np.full(n, None, object) if decisions.prob_s is None else decisions.prob_s.astype(float),
            "class": decisions.classes(),
            "ruleguard_changed": decisions.ruleguard_changed.astype(bool),
            "context_used": decisions.context_used.astype(bool)}


def decisions_frame(decisions) -> pd.DataFrame:
    """The response table: one row per beat (:func:`decision_columns`)."""
    return pd.DataFrame(decision_columns(decisions))


class _Scoring:
    """What the pyfunc does: validate the request, then the Detector's preprocessing, network, threshold, rules.

    A mixin rather than methods of :class:`ArritmiasPyfunc` itself: MLflow 3 inspects a ``predict`` defined on a
    PythonModel subclass and, finding no type hints, prints a coloured warning on every model load asking for
    them. Its schemas cannot say "360 finite numbers, RR within 0.1-6 s, optional context", and its enforcement
    answers bad requests differently from the one-line 400s of :func:`parse_request`, so the project validates
    requests itself and keeps ``predict`` where that inspection does not look.
    """

    live_drift = None  # set by load_context inside a server

    def load_context(self, context):
        import os

        from arritmias.model.detector import Detector
        from arritmias.serving.metrics import live_drift_for
        from arritmias.serving.guard import VERSION_ENV

        self.detector = Detector.load(Path(context.artifacts[DETECTOR_ARTIFACT]))
        # Inside `arritmias serve` (serve_env sets the window), the beats scored feed the live drift gauge.
        self.live_drift = live_drift_for(self.detector.drift_reference, self.detector.fs, os.environ.get(VERSION_ENV),
                                         int(os.environ.get(LIVE_DRIFT_ENV) or 0))

    def predict(self, context, model_input, params=None):
        try:
            req = parse_request(model_input, self.detector.win)
        except DataError as exc:
            # INVALID_PARAMETER_VALUE is answered as HTTP 400 by `mlflow models serve`.
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        except Exception as exc:  # noqa: BLE001  a shape MLflow's conversion made that the parser did not foresee
            _log_unexpected()
            raise MlflowException(f"could not read the request ({type(exc).__name__}): send beats as "
                                  f"{REQUEST_DOC}", error_code=INVALID_PARAMETER_VALUE) from None
        if self.live_drift is not None:
            self.live_drift.add(req.windows, req.rr)  # queued only: the features are computed off this path
        try:
            return decisions_frame(self.detector.decide(req.windows, req.rr, req.context, req.use_context))
        except Exception:  # noqa: BLE001  the traceback goes to the server's log, never into a response
            _log_unexpected()
            raise MlflowException("internal error while scoring; the server log has the details",
                                  error_code=INTERNAL_ERROR) from None


class ArritmiasPyfunc(_Scoring, mlflow.pyfunc.PythonModel):
    """The MLflow pyfunc model (see :class:`_Scoring`)."""


def _log_unexpected() -> None:
    import logging

    logging.getLogger("arritmias.serving.pyfunc").exception("unexpected error while answering a request")
