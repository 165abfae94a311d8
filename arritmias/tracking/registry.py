"""The model registry: the metric gate, registration, aliases and promotions, comparison of runs, provenance.

Where runs go is :mod:`arritmias.tracking.runs`.

MLflow 3 deprecates registry *stages*; older guides load ``models:/ECG_Arritmias_NvsV/Production``. Here the
``production`` *alias* replaces the stage, and the model loads as ``models:/ECG_Arritmias_NvsV@production``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; promotions still re-read what they set
    fcntl = None

from arritmias.errors import ArritmiasError, CheckFailed, ConfigError, DataError
from arritmias.tracking.runs import EXPERIMENT, client, figure, run_metrics, search_runs, top_level, tracking_uri

MODEL_NAME = "ECG_Arritmias_NvsV"
PRODUCTION_ALIAS = "production"  # the version serving and analysis load by default
PREVIOUS_ALIAS = "previous"  # the champion a promotion replaced: `promote --rollback` restores it
# The release gate of the workflow: a model below any of these is not registered.
# The release gate judges what users get: EC57 gross VEB figures on the test records in detected mode (the
# project's own QRS detection). The model before "not a beat" and families had +P 0.62 there: it would fail.
GATE_DEFAULTS = {"test_ec57_detected_veb_se": 0.85, "test_ec57_detected_veb_ppv": 0.85}


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


def model_uri(ref: str | int = PRODUCTION_ALIAS) -> str:
    """How the registered model is loaded: ``models:/ECG_Arritmias_NvsV@<alias>`` for an alias (a str),
    ``models:/ECG_Arritmias_NvsV/<version>`` for a version number (an int)."""
    return f"models:/{MODEL_NAME}/{ref}" if isinstance(ref, int) else f"models:/{MODEL_NAME}@{ref}"


def gate_run(run_id: str, thresholds: dict[str, float] | None = None) -> GateResult:
    return gate(run_metrics(run_id), thresholds)


def registered_version(run_id: str) -> int | None:
    """The version of ``MODEL_NAME`` registered from run ``run_id`` (the first, if several), or None."""
    versions = client().search_model_versions(f"name='{MODEL_NAME}' and run_id='{run_id}'")
    return min(int(v.version) for v in versions) if versions else None


def logged_model_uri(run) -> str:
    """The URI of the served model a training ``run`` logged: ``models:/<model id>`` of its LoggedModel (the
    version page then links to it and shows its figures), or ``runs:/<run id>/model`` for a run from before
    MLflow 3's logged models, which kept the model among its artifacts."""
    outputs = getattr(run, "outputs", None)
    ids = [o.model_id for o in (outputs.model_outputs if outputs else [])]
    return f"models:/{ids[0]}" if ids else f"runs:/{run.info.run_id}/model"


def register(run_id: str, result: GateResult) -> int:
    """Register the run's served model as a new version of ``MODEL_NAME``; only for a passed gate. A run
    registered before keeps its version (registering it again would make versions that differ in nothing)."""
    import mlflow

    if not result.passed:
        raise CheckFailed(f"run {run_id} not registered: {result.summary()}")
    existing = registered_version(run_id)
    if existing is not None:
        return existing
    run = client().get_run(run_id)
    tags = {**{f"gate.{k}": f"{v:.4f}" for k, v in result.metrics.items()}, "gate": "passed",
            "run_name": run.info.run_name or "", "code_version": run.data.params.get("code_version", "")}
    mv = mlflow.register_model(logged_model_uri(run), MODEL_NAME, tags=tags)
    client().update_model_version(MODEL_NAME, mv.version, description=version_description(run))
    return int(mv.version)


def version_description(run) -> str:
    """What a person browsing the registry needs: data and split, the figures, the thresholds, the request."""
    from arritmias.model.contract import REQUEST_DOC

    m, p = run.data.metrics, run.data.params

    def fig(key):
        return figure(m, key, 3)

    supra = p.get("use_supra") == "True"  # trained with the S answer
    what = "and supraventricular (S) beat detector" if supra else "vs normal beat detector"
    sveb = (f" Supraventricular (SVEB): Se {fig('test_ec57_detected_sveb_se')}, +P {fig('test_ec57_detected_sveb_ppv')} "
            f"detected; Se {fig('test_ec57_reference_sveb_se')}, +P {fig('test_ec57_reference_sveb_ppv')} at the "
            "reference beats.") if supra else ""
    threshold_s = f"; P(S) {fig('threshold_s')} in a recording (the S stage reads the rhythm)" if supra else ""
    return (f"PVC (AAMI V) {what}, run {run.info.run_name}. Trained on MIT-BIH records "
            f"{p.get('train_records', '?')} ({p.get('cv_folds', '?')}-fold patient-wise cross-validation chose "
            f"epochs, thresholds, family weight and RuleGuard in detected mode); tested once on "
            f"{p.get('test_records', '?')}.\n"
            f"Test, EC57 gross, own QRS detection (what users get): VEB Se {fig('test_ec57_detected_veb_se')}, "
            f"+P {fig('test_ec57_detected_veb_ppv')}, QRS Se {fig('test_ec57_detected_qrs_se')}, "
            f"+P {fig('test_ec57_detected_qrs_ppv')}; at the reference beats: VEB Se "
            f"{fig('test_ec57_reference_veb_se')}, +P {fig('test_ec57_reference_veb_ppv')}.{sveb}\n"
            f"Test, single beats with record context: V precision {fig('test_precision_V')}, recall "
            f"{fig('test_recall_V')}, F1 {fig('test_f1_V')}, PR-AUC {fig('test_pr_auc')}; beat alone: F1 "
            f"{fig('test_nocontext_f1_V')}.\n"
            f"Thresholds: {fig('threshold')} with context, {fig('threshold_no_context')} without, "
            f"{fig('threshold_recording')} in a recording (family weight {fig('family_weight')}){threshold_s}; "
            f"not a beat at "
            f"{fig('not_beat_threshold')}.\n"
            f"Request: {REQUEST_DOC}")


def latest_version() -> int:
    """The newest registered version of ``MODEL_NAME``."""
    versions = client().search_model_versions(f"name='{MODEL_NAME}'")
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
        return int(client().get_model_version_by_alias(MODEL_NAME, alias).version)
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

    mlflow_client = client()
    try:
        mlflow_client.get_model_version(MODEL_NAME, str(version))
    except MlflowException:
        raise DataError(f"{MODEL_NAME} has no version {version} in {tracking_uri()}") from None
    with registry_lock():
        old = alias_version(alias)
        if alias == PRODUCTION_ALIAS and old is not None and old != int(version):
            mlflow_client.set_registered_model_alias(MODEL_NAME, PREVIOUS_ALIAS, str(old))  # for `promote --rollback`
        mlflow_client.set_registered_model_alias(MODEL_NAME, alias, str(version))
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


def compare_models(top: int = 10, filter_string: str = "", experiment: str = EXPERIMENT):
    """The ``top`` logged models (MLflow 3 LoggedModels) of ``experiment`` by their linked test V F1, as a
    DataFrame: model id, the training run, the key figures (what the experiment's Models tab compares)."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame()
    try:
        models = mlflow.search_logged_models(experiment_ids=[found.experiment_id], filter_string=filter_string or None,
                                             order_by=[{"field_name": "metrics.test_f1_V", "ascending": False}],
                                             max_results=top, output_format="list")
    except MlflowException as exc:
        raise ArritmiasError(f"bad --filter '{filter_string}': {exc.message.splitlines()[0]}") from None
    wanted = [c.removeprefix("metrics.") for c in COMPARE_COLUMNS if c.startswith("metrics.")]
    rows = []
    for m in models:
        figures = {x.key: x.value for x in m.metrics or []}
        rows.append({"model_id": m.model_id, "run_id": m.source_run_id,
                     **{k: figures.get(k) for k in wanted}})
    return pd.DataFrame(rows)


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
            mv = client().get_model_version_by_alias(name, ref)
        else:
            name, _, ref = uri[len("models:/"):].rpartition("/")
            mv = client().get_model_version(name, ref)
        out.update(name=name, version=int(mv.version), run_id=mv.run_id)
    except (MlflowException, ValueError, OSError):
        pass  # the model loaded already; a footer without a version number is no reason to fail the analysis
    return out
