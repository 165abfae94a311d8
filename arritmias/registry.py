"""MLflow tracking store and model registry: where runs go, the metric gate, registration, aliases, comparison.

MLflow 3 deprecates registry *stages*; older guides load ``models:/ECG_Arritmias_NvsV/Production``. Here the
``production`` *alias* replaces the stage, and the model loads as ``models:/ECG_Arritmias_NvsV@production``.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

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


def use_tracking(cli_value: str | None = None) -> str:
    """Point MLflow at the tracking store (see :func:`tracking_uri`); returns the URI."""
    import mlflow

    uri = tracking_uri(cli_value)
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


def register(run_id: str, result: GateResult) -> int:
    """Register the run's ``model/`` artifact as a new version of ``MODEL_NAME``; only for a passed gate."""
    import mlflow

    if not result.passed:
        raise CheckFailed(f"run {run_id} not registered: {result.summary()}")
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


def promote(version: int, alias: str = PRODUCTION_ALIAS) -> str:
    """Point ``alias`` at ``version``; returns the model URI that now loads it."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        client.get_model_version(MODEL_NAME, str(version))
    except MlflowException:
        raise DataError(f"{MODEL_NAME} has no version {version} in {tracking_uri()}") from None
    if alias == PRODUCTION_ALIAS:  # keep the outgoing champion reachable for `promote --rollback`
        try:
            old = client.get_model_version_by_alias(MODEL_NAME, alias).version
            if str(old) != str(version):
                client.set_registered_model_alias(MODEL_NAME, PREVIOUS_ALIAS, str(old))
        except MlflowException:
            pass
    client.set_registered_model_alias(MODEL_NAME, alias, str(version))
    return model_uri(alias)


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
    from mlflow.exceptions import MlflowException

    out = {"uri": uri, "name": None, "version": None, "run_id": None}
    try:
        if uri.startswith("models:/"):
            name, _, ref = uri[len("models:/"):].partition("@")
            if ref:
                mv = _client().get_model_version_by_alias(name, ref)
            else:
                name, _, ref = uri[len("models:/"):].rpartition("/")
                mv = _client().get_model_version(name, ref)
            out.update(name=name, version=int(mv.version), run_id=mv.run_id)
        elif uri.startswith("runs:/"):
            out["run_id"] = uri[len("runs:/"):].split("/", 1)[0]
    except (MlflowException, ValueError, OSError):
        pass  # the model loaded already; a footer without a version number is no reason to fail the analysis
    return out
