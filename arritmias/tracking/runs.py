"""The MLflow tracking store: where it is, checked before MLflow opens it, the experiment, and the runs in it
(search, the latest training, heartbeats and the reaping of runs whose process died, tags, the UI's address).

No other module sets where MLflow points: :func:`use_tracking` and :func:`use_experiment` are the only places.
"""

from __future__ import annotations

import logging
import os

from arritmias.errors import DataError

EXPERIMENT = "deteccion_arritmias_ecg"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


def tracking_uri(cli_value: str | None = None) -> str:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else MLflow's own sqlite store ``./mlflow.db``."""
    return cli_value or os.environ.get("MLFLOW_TRACKING_URI", "").strip() or DEFAULT_TRACKING_URI


# Schemes MLflow's tracking stores answer (SQLAlchemy databases with an optional "+driver", servers, folders).
STORE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "file")
SQLITE_HEADER = b"SQLite format 3\x00"


def _file_header(path) -> bytes:
    """The first 16 bytes of ``path`` (where SQLite writes its magic string), without reading the rest."""
    with open(path, "rb") as fh:
        return fh.read(16)


def check_store(uri: str, mode: str = "create", model_uri: str | None = None) -> None:
    """A DataError naming the store and the problem, before MLflow meets it (it answers an unknown scheme, a file
    that is not a database or a read-only database with tracebacks of 50 to 260 lines, and opens a misspelled
    ``sqlite:///`` path as a new, empty store).

    ``mode`` is what the command does with the store: ``"create"`` (training may start one), ``"write"`` (it must
    exist and be writable: promote, gate), ``"read"`` (it must exist: a reading command never creates a store;
    unless ``model_uri`` is a local model, which needs no store at all)."""
    from pathlib import Path

    where = f"tracking store '{uri}'"
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if mode == "read" and model_uri is not None and not model_uri.startswith(("models:/", "runs:/")):
        return
    if not scheme:  # a plain path: MLflow reads a folder as a (deprecated) file store
        path = Path(uri).expanduser()
        if path.is_file():
            hint = f"sqlite:///{path.resolve()}" if _file_header(path) == SQLITE_HEADER else "a folder"
            raise DataError(f"{where} is a file, not a store: give a database as {hint}")
        if not path.exists() and mode != "create":
            raise DataError(f"{where} does not exist (a misspelled path?)")
        return
    if scheme not in STORE_SCHEMES:
        raise DataError(f"{where}: unknown scheme '{scheme}://' (use sqlite:///path/to/mlflow.db, postgresql://..., "
                        "or the http(s):// address of an MLflow server)")
    if scheme != "sqlite":
        return
    name = uri.split("://", 1)[1].split("?", 1)[0]
    name = name[1:] if name.startswith("/") else name  # sqlite:///rel.db and sqlite:////abs.db
    if name in ("", ":memory:"):
        return
    db = Path(name).expanduser()
    if not db.parent.resolve().is_dir():
        raise DataError(f"{where}: folder '{db.parent}' does not exist (a misspelled path?)")
    if not db.exists():
        if mode != "create":
            raise DataError(f"{where}: there is no database at '{db}' (a misspelled path? `arritmias train` "
                            "creates one)")
        return
    if db.is_dir():
        raise DataError(f"{where}: '{db}' is a folder, not an SQLite database")
    header = _file_header(db)
    if header and header != SQLITE_HEADER:
        raise DataError(f"{where}: '{db}' is not an SQLite database")
    # SQLite writes a journal beside the database: both the file and its folder must be writable.
    # (os.access also sees a read-only mount, which binds root too.)
    if mode != "read" and not (os.access(db, os.W_OK) and os.access(db.parent, os.W_OK)):
        raise DataError(f"{where} is read-only ('{db}' or its folder): this command writes to the registry")


def use_tracking(cli_value: str | None = None, mode: str = "create", model_uri: str | None = None) -> str:
    """Point MLflow at the tracking store (see :func:`tracking_uri`) once :func:`check_store` accepts it for
    ``mode``; returns the URI. A reading command whose model is a folder on disk needs no store: MLflow is then
    not even imported."""
    uri = tracking_uri(cli_value)
    check_store(uri, mode, model_uri)
    if mode == "read" and model_uri is not None and not model_uri.startswith(("models:/", "runs:/")):
        return uri
    import mlflow

    # A new sqlite store announces its table creation at INFO on every first command: not the user's business.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def search_runs(experiment: str, **kwargs):
    """``mlflow.search_runs`` over experiment ``experiment`` (a pandas DataFrame); an empty one when the experiment
    does not exist yet, where MLflow would log a warning about it before returning the same."""
    import mlflow
    import pandas as pd

    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame()
    return mlflow.search_runs(experiment_ids=[found.experiment_id], **kwargs)


def artifact_location(uri: str) -> str | None:
    """Where a new experiment's artifacts go for a local sqlite store: ``mlruns/`` beside the database file, not in
    whatever folder a command happens to run from (MLflow's default). None for other stores (a server decides)."""
    from pathlib import Path

    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///"):]).expanduser().resolve()
    return (db.parent / "mlruns").as_uri()


def use_experiment(name: str):
    """Make experiment ``name`` the active one, creating it if needed; safe when workers of a team start together.

    MLflow 3.17's ``set_experiment``, when another process creates the experiment at the same moment, returns it
    without making it active, and the runs then land in 'Default' (found by tests/project/test_team_server.py). Setting
    it again by id always activates it.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    location = artifact_location(mlflow.get_tracking_uri())
    if location and mlflow.get_experiment_by_name(name) is None:
        try:
            mlflow.create_experiment(name, artifact_location=location)
        except MlflowException:  # another process created it first: use theirs
            pass
    experiment = mlflow.set_experiment(experiment_id=mlflow.set_experiment(name).experiment_id)
    if EXPERIMENT_KIND_TAG not in (experiment.tags or {}):
        # The experiment's kind for MLflow 3's UI (machine learning, not GenAI): it labels the experiment and
        # picks the runs view where the URL does not name a view (see ui_url for the link that always does).
        try:
            mlflow.set_experiment_tag(EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        except MlflowException:  # a worker starting at the same moment set it first (a unique key on a server)
            pass
    return experiment


def client():
    """An MLflow client of the store :func:`use_tracking` pointed at."""
    import mlflow

    return mlflow.MlflowClient()


STALE_AFTER_S = 1800  # a training logs a heartbeat every epoch (seconds apart): 30 min of silence is a dead run


def owner_tags() -> dict[str, str]:
    """Tags that let a later command tell whether a RUNNING run still has a live process behind it."""
    import socket
    import time

    return {"host": socket.gethostname(), "pid": str(os.getpid()), "heartbeat": str(int(time.time()))}


def heartbeat(run_id: str) -> None:
    import time

    tag_run(run_id, {"heartbeat": str(int(time.time()))})


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def reap_stale_runs(experiment: str = EXPERIMENT, stale_after_s: float = STALE_AFTER_S) -> list[tuple[str, str]]:
    """Mark FAILED the RUNNING runs of ``experiment`` that nothing is running any more: their process on this host
    is gone (a SIGKILL, a power cut), or no heartbeat came for ``stale_after_s`` seconds (another host). Returns
    ``(run_id, reason)`` for each; the reason is also the run's ``error`` tag."""
    import socket
    import time

    try:
        runs = search_runs(experiment, filter_string="attributes.status = 'RUNNING'")
    except Exception:  # noqa: BLE001  a store that cannot be searched has nothing this command could reap
        return []
    host, now, reaped = socket.gethostname(), time.time(), []
    for _, row in runs.iterrows():
        tags = {k[5:]: v for k, v in row.items() if k.startswith("tags.") and isinstance(v, str)}
        reason = None
        if tags.get("host") == host and tags.get("pid", "").isdigit() and not _process_alive(int(tags["pid"])):
            reason = f"its process {tags['pid']} on {host} is gone (killed without a chance to close the run)"
        elif tags.get("heartbeat", "").isdigit() and now - int(tags["heartbeat"]) > stale_after_s:
            reason = f"no heartbeat for {(now - int(tags['heartbeat'])) / 60:.0f} min"
        if reason:
            client().set_tag(row["run_id"], "error", f"reaped: {reason}")
            client().set_terminated(row["run_id"], status="FAILED")
            reaped.append((str(row["run_id"]), reason))
    return reaped


def top_level(runs):
    """The rows of a ``search_runs`` DataFrame that are trainings, not their nested cross-validation folds."""
    if "tags.mlflow.parentRunId" not in runs:
        return runs
    return runs[runs["tags.mlflow.parentRunId"].isna()]


def latest_run_id(experiment: str = EXPERIMENT) -> str:
    """The most recent finished training of ``experiment`` (its fold runs, which finish inside it, excluded)."""
    runs = top_level(search_runs(experiment, filter_string="attributes.status = 'FINISHED'",
                                 order_by=["attributes.start_time DESC"], max_results=200))
    if runs.empty:
        raise DataError(f"no finished run in experiment '{experiment}' at {tracking_uri()}: train one first")
    return str(runs.iloc[0]["run_id"])


def get_run(run_id: str):
    """The MLflow run ``run_id``; a DataError naming the store when it is not there."""
    from mlflow.exceptions import MlflowException

    try:
        return client().get_run(run_id)
    except MlflowException as exc:
        raise DataError(f"run {run_id} not found in {tracking_uri()} ({exc.error_code})") from None


def run_metrics(run_id: str) -> dict[str, float]:
    return dict(get_run(run_id).data.metrics)


def ui_url(run_id: str) -> str:
    """The run's page in the MLflow UI: the tracking server itself for an http(s) store, else the local UI of
    ``start_mlflow.sh`` (port ``$MLFLOW_PORT``, default 5000).

    ``workflowType=machine_learning`` opens it on the model-training view: MLflow 3 otherwise starts a browser on
    its GenAI view, whatever the experiment's kind tag says, until the user switches once.
    """
    uri = tracking_uri()
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else \
        f"http://127.0.0.1:{os.environ.get('MLFLOW_PORT', '5000')}"
    experiment_id = client().get_run(run_id).info.experiment_id
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def tag_run(run_id: str, tags: dict[str, str]) -> None:
    mlflow_client = client()
    for key, value in tags.items():
        mlflow_client.set_tag(run_id, key, value)


def figure(metrics: dict[str, float], key: str, digits: int = 4) -> str:
    """A logged figure for people: ``key``'s value to ``digits`` decimals, or "n/a" where the run has none (an
    SVEB figure of records without S beats, a model older than the figure)."""
    value = metrics.get(key)
    return "n/a" if value is None else f"{value:.{digits}f}"
