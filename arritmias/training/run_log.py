"""What a training writes into its MLflow run: the nested fold runs, the datasets it read, the served model as a
LoggedModel with its params and figures, and the files and plots users open.

MLflow owns the models and their artifacts; DVC (``dvc.yaml``) owns the data and the pipeline's small metrics and
plots files, so neither caches what the other keeps.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

from arritmias.model.preprocess import V_INDEX
from arritmias.data.beats import DS1, DS2
from arritmias.tracking import runs
from arritmias.training.evaluation import plot_confusion, plot_history, plot_pr

ARTIFACT_TAG = "v7"  # artifact names users know: models/model_v7.keras, metadata/meta_v7.json, ...
PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "mlflow", "numpy", "scipy", "pandas", "wfdb", "evidently")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def data_checksums(data_dir: Path, records: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of every file of ``records``: the exact bytes this model was trained and tested on."""
    out = {}
    for name in records:
        for path in sorted(data_dir.glob(f"{name}.*")):
            out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def data_digest(data_dir: Path, records: tuple[str, ...]) -> str:
    """One SHA-256 over the files of ``records`` (name and bytes, in order): the dataset's identity in MLflow."""
    h = hashlib.sha256()
    for name, digest in sorted(data_checksums(data_dir, records).items()):
        h.update(f"{name}:{digest}\n".encode())
    return h.hexdigest()


def log_datasets(data_dir: Path, cfg) -> None:
    """DS1 (training and cross-validation) and DS2 (test) as MLflow datasets of the active run, each named by its
    records and identified by a digest of their files, in the ``training`` / ``test`` contexts: the run page and
    ``search_runs`` show which bytes trained and tested the model."""
    import mlflow
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    source = HTTPDatasetSource("https://physionet.org/content/mitdb/1.0.0/")
    for context, records in (("training", cfg.train_records), ("test", cfg.test_records)):
        name = {DS1: "mitdb-DS1", DS2: "mitdb-DS2"}.get(tuple(records), "mitdb-" + "-".join(records))
        dataset = MetaDataset(source, name=name, digest=data_digest(data_dir, tuple(records))[:20])
        mlflow.log_input(dataset, context=context, tags={"records": ",".join(records)})


def request_example(test_set) -> dict:
    """The first test PVC with its context: a request worth sending, shown on the model's page."""
    i = int(np.argmax(test_set.aami == "V"))
    return {"sig": test_set.windows[i].astype(float).tolist(), "rr": test_set.rr[i].astype(float).tolist(),
            "ctx_sig": test_set.template[i].astype(float).tolist(), "ctx_rr": float(test_set.rr_usual[i])}


def log_model(detector, example: dict, params: dict, source: str) -> str:
    """The Detector as MLflow 3 LoggedModel ``model`` of the active run (a pyfunc from code, the package in
    code_paths), with the training's ``params`` and its ``source`` (the command the user ran, the model page's
    "Logged from"); returns its model id, to which the run's figures are linked (``mlflow.log_metrics(...,
    model_id=...)``), so the experiment's Models tab compares models by them. ``runs:/<run id>/model`` still
    loads it."""
    import mlflow

    from arritmias.model.contract import REQUEST_DOC, RESPONSE_DOC
    from arritmias.model.detector import DETECTOR_ARTIFACT
    from arritmias.tracking.requirements import served_requirements

    package = Path(__file__).resolve().parents[1]  # the whole arritmias package travels with the model
    with tempfile.TemporaryDirectory() as tmp:  # MLflow copies it into the model's artifacts
        det_dir = detector.save(Path(tmp) / "detector")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(package / "serving" / "pyfunc_model.py"),
            artifacts={DETECTOR_ARTIFACT: str(det_dir)},
            code_paths=[str(package)],
            # No signature: MLflow's schema enforcement answers bad requests with a dump of the data instead of
            # a message naming the field; arritmias.model.contract.parse_request validates every request instead.
            signature=False,
            metadata={"request": REQUEST_DOC, "response": RESPONSE_DOC},
            pip_requirements=served_requirements(),  # no TensorFlow: the network runs in ONNX Runtime
            # Shown on the model's page in the MLflow UI and written as serving_input_example.json, a request
            # ready for `curl -d @serving_input_example.json .../invocations` (MLflow does not score it: no
            # signature is inferred).
            input_example=[example],
            params={k: str(v) for k, v in params.items()},
            tags={"mlflow.source.name": source, "mlflow.source.type": "LOCAL"},
        )
    return info.model_id


def log_epoch(record: dict, prefix: str = "", keys: tuple[str, ...] | None = None) -> None:
    """An epoch record of :func:`fit` (all its figures, or ``keys``) as MLflow metrics of the active run at step
    ``record["epoch"]``, each name behind ``prefix``."""
    import mlflow

    names = keys if keys is not None else [k for k in record if k != "epoch"]
    mlflow.log_metrics({f"{prefix}{k}": record[k] for k in names}, step=record["epoch"])


def fold_run(run_ids: list[str]):
    """Each fold as a nested MLflow run, named and tagged with the patients it holds out; appends its id."""
    import mlflow

    @contextmanager
    def scope(i: int, records: tuple[str, ...]):
        with mlflow.start_run(run_name=f"fold_{i + 1}", nested=True,
                              tags={"fold": str(i + 1), **runs.owner_tags()}) as fold:
            run_ids.append(fold.info.run_id)
            mlflow.log_params({"fold": i + 1, "held_out_records": ",".join(records)})
            yield

    return scope


def summarize_folds(run_ids: list[str], cv) -> None:
    """Each fold run's summary value is its held-out PR-AUC at the epoch cross-validation chose (the per-epoch
    ``val_pr_auc`` history stays; its last value is the last epoch's, not the kept one's)."""
    import mlflow

    client = mlflow.MlflowClient()
    for run_id, value in zip(run_ids, cv.fold_pr_auc):
        client.log_metric(run_id, "val_pr_auc_chosen_epoch", value)
        runs.tag_run(run_id, {"chosen_epoch": str(cv.best_epoch)})


def fold_epoch_logger(parent_id: str):
    """The per-epoch logger of the folds: metrics on the fold's run, a heartbeat on the fold and the training."""
    import mlflow

    def log(i: int, rec: dict) -> None:
        log_epoch(rec)
        runs.heartbeat(mlflow.active_run().info.run_id)
        runs.heartbeat(parent_id)

    return log


def log_artifacts(cfg, detector, model, cv, history, test_set, test, decisions, rule, meta_extra) -> None:
    """The run's files under the names the guide gives (``models/model_v7.keras``, ``metadata/meta_v7.json``,
    ``metrics/history_v7.csv``) and its plots, in one call. The served model is a LoggedModel of its own
    (:func:`log_model`)."""
    import mlflow

    y_test = test_set.aami == "V"
    real = np.isin(cv.detected.aami, ("N", "S", "V"))
    y_cv = cv.detected.aami[real] == "V"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "models").mkdir()
        model.save(out / "models" / f"model_{ARTIFACT_TAG}.keras")
        (out / "metadata").mkdir()
        meta = {"config": cfg.to_params(), **meta_extra,
                "records": {"train": cfg.train_records, "test": cfg.test_records, "cv_folds": cv.folds},
                "detector": detector.spec(), "threshold_rule": rule.threshold_rule,
                "packages": package_versions(), "python": sys.version.split()[0]}
        (out / "metadata" / f"meta_{ARTIFACT_TAG}.json").write_text(json.dumps(meta, indent=2))
        (out / "metrics").mkdir()
        rows = epoch_table(cv, history)
        write_history_csv(rows, out / "metrics" / f"history_{ARTIFACT_TAG}.csv")
        plot_history(rows, cv.best_epoch, out / "training_curves.png")
        plot_confusion({k.removeprefix("test_"): v for k, v in test.items()}, out / "confusion_matrix.png",
                       f"DS2 N vs V, with record context (threshold {detector.rule.threshold:.3f})")
        plot_pr({"cross-validated (DS1 detected beats, out of fold)": (y_cv, cv.probs[real, V_INDEX]),
                 "test (DS2)": (y_test, decisions["context"].prob),
                 "test (DS2), no context": (y_test, decisions["no_context"].prob)}, out / "pr_curve.png",
                {"cross-validated operating point": (rule.metrics["cv_recall_V"], rule.metrics["cv_precision_V"]),
                 "test operating point": (test["test_recall_V"], test["test_precision_V"])})
        mlflow.log_artifacts(str(out))


def epoch_table(cv, history: list[dict]) -> list[dict]:
    """One row per cross-validated epoch: the pooled out-of-fold ``val_*`` figures, each fold's PR-AUC, and the
    final fit's ``train_*`` figures (blank after the chosen epoch, where the final fit stopped)."""
    rows = []
    for e, figures in enumerate(cv.epoch_figures):
        row = {"epoch": e + 1, **figures}
        row.update({f"fold_{i + 1}_val_pr_auc": h[e]["val_pr_auc"] for i, h in enumerate(cv.fold_histories)})
        row["fold_mean_train_loss"] = float(np.mean([h[e]["train_loss"] for h in cv.fold_histories]))
        row.update({k: history[e][k] if e < len(history) else float("nan")
                    for k in ("train_loss", "train_accuracy", "train_pr_auc")})
        rows.append(row)
    return rows


def write_history_csv(history: list[dict], path: Path) -> None:
    cols = list(history[0])
    lines = [",".join(cols)] + [",".join(f"{h[c]:.6g}" if isinstance(h[c], float) else str(h[c]) for c in cols)
                                for h in history]
    path.write_text("\n".join(lines) + "\n")
