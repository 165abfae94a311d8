"""MLflow tracking store and model registry: where runs go, the metric gate, registration, aliases, comparison.

MLflow 3 deprecates registry *stages*; older guides load ``models:/ECG_Arritmias_NvsV/Production``. Here the
``production`` *alias* replaces the stage, and the model loads as ``models:/ECG_Arritmias_NvsV@production``.
"""

from __future__ import annotations

import logging
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; promotions still re-read what they set
    fcntl = None

from arritmias.errors import ArritmiasError, CheckFailed, ConfigError, DataError

EXPERIMENT = "deteccion_arritmias_ecg"
MODEL_NAME = "ECG_Arritmias_NvsV"
PRODUCTION_ALIAS = "production"  # the version serving and analysis load by default
PREVIOUS_ALIAS = "previous"  # the champion a promotion replaced: `promote --rollback` restores it
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
# The release gate of the workflow: a model below any of these is not registered.
# The release gate judges what users get: EC57 gross VEB figures on the test records in detected mode (the
# project's own QRS detection). The model before "not a beat" and families had +P 0.62 there: it would fail.
GATE_DEFAULTS = {"test_ec57_detected_veb_se": 0.85, "test_ec57_detected_veb_ppv": 0.85}


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
    without making it active, and the runs then land in 'Default' (found by tests/test_team_server.py). Setting
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


@dataclass(frozen=True)
class GateResult:
    passed: bool
    failures: list[str]
    metrics: dict[str, float]

    def summary(self) -> str:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in self.metrics.items())
        return f"gate passed ({shown})" if self.passed else "gate FAILED: " + "; ".join(self.failures)


def gate(metrics: dict[str, float], thresholds: dict[str, float] | None = None) -> GateResult:
    """Compare ``metrics`` to minimum ``thresholds`` (default ``GATE_DEFAULTS``); a missing metric fails. A
    threshold that is not a finite number is refused (ConfigError): NaN compares false, so it would pass anything."""
    thresholds = thresholds or GATE_DEFAULTS
    bad = [f"{name}={minimum}" for name, minimum in thresholds.items() if not math.isfinite(minimum)]
    if bad:
        raise ConfigError(f"gate threshold {', '.join(bad)}: each minimum must be a finite number")
    failures, seen = [], {}
    for name, minimum in thresholds.items():
        value = metrics.get(name)
        if value is None:
            failures.append(f"{name} missing from the run")
            continue
        seen[name] = float(value)
        if value < minimum:
            failures.append(f"{name}={value:.4f} < {minimum}")
    return GateResult(not failures, failures, seen)


def _client():
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
            _client().set_tag(row["run_id"], "error", f"reaped: {reason}")
            _client().set_terminated(row["run_id"], status="FAILED")
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


def model_uri(ref: str | int = PRODUCTION_ALIAS) -> str:
    """How the registered model is loaded: ``models:/ECG_Arritmias_NvsV@<alias>`` for an alias (a str),
    ``models:/ECG_Arritmias_NvsV/<version>`` for a version number (an int)."""
    return f"models:/{MODEL_NAME}/{ref}" if isinstance(ref, int) else f"models:/{MODEL_NAME}@{ref}"


def get_run(run_id: str):
    """The MLflow run ``run_id``; a DataError naming the store when it is not there."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_run(run_id)
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
    experiment_id = _client().get_run(run_id).info.experiment_id
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def tag_run(run_id: str, tags: dict[str, str]) -> None:
    client = _client()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def gate_run(run_id: str, thresholds: dict[str, float] | None = None) -> GateResult:
    return gate(run_metrics(run_id), thresholds)


def registered_version(run_id: str) -> int | None:
    """The version of ``MODEL_NAME`` registered from run ``run_id`` (the first, if several), or None."""
    versions = _client().search_model_versions(f"name='{MODEL_NAME}' and run_id='{run_id}'")
    return min(int(v.version) for v in versions) if versions else None


def register(run_id: str, result: GateResult) -> int:
    """Register the run's ``model/`` artifact as a new version of ``MODEL_NAME``; only for a passed gate. A run
    registered before keeps its version (registering it again would make versions that differ in nothing)."""
    import mlflow

    if not result.passed:
        raise CheckFailed(f"run {run_id} not registered: {result.summary()}")
    existing = registered_version(run_id)
    if existing is not None:
        return existing
    run = _client().get_run(run_id)
    tags = {**{f"gate.{k}": f"{v:.4f}" for k, v in result.metrics.items()}, "gate": "passed",
            "run_name": run.info.run_name or "", "code_version": run.data.params.get("code_version", "")}
    mv = mlflow.register_model(f"runs:/{run_id}/model", MODEL_NAME, tags=tags)
    _client().update_model_version(MODEL_NAME, mv.version, description=version_description(run))
    return int(mv.version)


def version_description(run) -> str:
    """What a person browsing the registry needs: data and split, the figures, the thresholds, the request."""
    from arritmias.serving import REQUEST_DOC

    m, p = run.data.metrics, run.data.params

    def fig(key):
        return f"{m[key]:.3f}" if key in m else "n/a"

    return (f"PVC (AAMI V) vs normal beat detector, run {run.info.run_name}. Trained on MIT-BIH records "
            f"{p.get('train_records', '?')} ({p.get('cv_folds', '?')}-fold patient-wise cross-validation chose "
            f"epochs, thresholds, family weight and RuleGuard in detected mode); tested once on "
            f"{p.get('test_records', '?')}.\n"
            f"Test, EC57 gross, own QRS detection (what users get): VEB Se {fig('test_ec57_detected_veb_se')}, "
            f"+P {fig('test_ec57_detected_veb_ppv')}, QRS Se {fig('test_ec57_detected_qrs_se')}, "
            f"+P {fig('test_ec57_detected_qrs_ppv')}; at the reference beats: VEB Se "
            f"{fig('test_ec57_reference_veb_se')}, +P {fig('test_ec57_reference_veb_ppv')}.\n"
            f"Test, single beats with record context: V precision {fig('test_precision_V')}, recall "
            f"{fig('test_recall_V')}, F1 {fig('test_f1_V')}, PR-AUC {fig('test_pr_auc')}; beat alone: F1 "
            f"{fig('test_nocontext_f1_V')}.\n"
            f"Thresholds: {fig('threshold')} with context, {fig('threshold_no_context')} without, "
            f"{fig('threshold_recording')} in a recording (family weight {fig('family_weight')}); not a beat at "
            f"{fig('not_beat_threshold')}.\n"
            f"Request: {REQUEST_DOC}")


def latest_version() -> int:
    """The newest registered version of ``MODEL_NAME``."""
    versions = _client().search_model_versions(f"name='{MODEL_NAME}'")
    if not versions:
        raise DataError(f"{MODEL_NAME} has no registered version in {tracking_uri()}: train one that passes the "
                        "gate (`make train`) or register a run with `arritmias gate --register`")
    return max(int(v.version) for v in versions)


@dataclass(frozen=True)
class Promotion:
    """What a promotion did: ``alias`` now on ``version``, which it moved from ``was`` (None: a new alias)."""

    alias: str
    version: int
    was: int | None
    uri: str


def alias_version(alias: str) -> int | None:
    """The version ``alias`` points at now, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return int(_client().get_model_version_by_alias(MODEL_NAME, alias).version)
    except MlflowException:
        return None


@contextmanager
def registry_lock():
    """Promotions of one local SQLite store one at a time (an advisory lock on a file beside the database): the
    registry has no compare-and-set, so two `promote` at once would both read the same outgoing champion. Other
    stores (a server) get no lock; :func:`promote` still re-reads what it set and reports the truth."""
    from pathlib import Path

    uri = tracking_uri()
    if not uri.startswith("sqlite:///") or fcntl is None:
        yield
        return
    db = Path(uri[len("sqlite:///"):].split("?", 1)[0]).expanduser()
    with open(db.with_name(f".{db.name}.promote.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def promote(version: int, alias: str = PRODUCTION_ALIAS) -> Promotion:
    """Point ``alias`` at ``version`` (the outgoing @production becomes @previous); returns what was done, read
    back from the registry. A DataError when another promotion moved the alias at the same moment: never a
    success that is not the final state."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        client.get_model_version(MODEL_NAME, str(version))
    except MlflowException:
        raise DataError(f"{MODEL_NAME} has no version {version} in {tracking_uri()}") from None
    with registry_lock():
        old = alias_version(alias)
        if alias == PRODUCTION_ALIAS and old is not None and old != int(version):
            client.set_registered_model_alias(MODEL_NAME, PREVIOUS_ALIAS, str(old))  # for `promote --rollback`
        client.set_registered_model_alias(MODEL_NAME, alias, str(version))
        now = alias_version(alias)
    if now != int(version):
        raise DataError(f"another promotion moved @{alias} at the same moment: it is on version {now}, not "
                        f"{version}; check with `arritmias compare` and promote again if needed")
    return Promotion(alias, int(version), old, model_uri(alias))


COMPARE_COLUMNS = ("metrics.test_f1_V", "metrics.test_ec57_detected_veb_se", "metrics.test_ec57_detected_veb_ppv",
                   "metrics.test_precision_V", "metrics.test_recall_V",
                   "metrics.test_accuracy", "metrics.test_pr_auc", "metrics.threshold",
                   "params.use_augment", "params.use_ruleguard", "metrics.train_time_s")


def compare(top: int = 10, filter_string: str = "", experiment: str = EXPERIMENT):
    """The ``top`` finished runs by test V F1 as a DataFrame (run_id, run name, the key metrics and params)."""
    from mlflow.exceptions import MlflowException

    query = "attributes.status = 'FINISHED'" + (f" and {filter_string}" if filter_string else "")
    try:
        runs = search_runs(experiment, filter_string=query, order_by=["metrics.test_f1_V DESC"],
                           max_results=top * 10)
    except MlflowException as exc:
        raise ArritmiasError(f"bad --filter '{filter_string}': {exc.message.splitlines()[0]}") from None
    runs = top_level(runs).head(top)
    if runs.empty:
        return runs
    cols = ["run_id", "tags.mlflow.runName"] + [c for c in COMPARE_COLUMNS if c in runs.columns]
    out = runs[cols].rename(columns=lambda c: c.split(".", 1)[-1].replace("mlflow.runName", "run_name"))
    return out


def model_provenance(uri: str) -> dict:
    """Which model ``uri`` is, for a report's footer: ``{"uri", "name", "version", "run_id"}`` (version and run id
    None where the URI names none: a run, a folder, a store that cannot be reached)."""
    out = {"uri": uri, "name": None, "version": None, "run_id": None}
    if uri.startswith("runs:/"):
        out["run_id"] = uri[len("runs:/"):].split("/", 1)[0]
    if not uri.startswith("models:/"):
        return out  # a run or a folder: nothing to look up (and no MLflow to import)
    from mlflow.exceptions import MlflowException

    try:
        name, _, ref = uri[len("models:/"):].partition("@")
        if ref:
            mv = _client().get_model_version_by_alias(name, ref)
        else:
            name, _, ref = uri[len("models:/"):].rpartition("/")
            mv = _client().get_model_version(name, ref)
        out.update(name=name, version=int(mv.version), run_id=mv.run_id)
    except (MlflowException, ValueError, OSError):
        pass  # the model loaded already; a footer without a version number is no reason to fail the analysis
    return out
