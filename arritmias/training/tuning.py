"""Hyperparameter search with Optuna, every trial a nested MLflow run under one parent run.

The objective is the one training optimises: the pooled out-of-fold PR-AUC of patient-wise cross-validation
on the training patients (:mod:`arritmias.training.crossval`), at the best epoch; DS2 is never loaded during a search. A
search may afford fewer folds than a training (``--cv-folds 3`` makes each trial ~40 % cheaper than the default
5); the folds are deterministic, so every trial of a study is scored on the same patients. Unpromising trials
are pruned by Optuna's median pruner from the first fold's per-epoch held-out PR-AUC (the same patients in every
trial): the trial reports it each epoch and raises ``TrialPruned`` when asked.

Storage: ``sqlite:///optuna.db`` by default (a local file). ``postgresql://...`` or ``journal:///shared/path.log``
(Optuna's journal storage, for a shared file system) let several worker processes on several machines join one
study: start ``arritmias tune --storage URL --study NAME`` on each.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from arritmias.config import TrainConfig
from arritmias.errors import ArritmiasError, DataError

DEFAULT_STORAGE = "sqlite:///optuna.db"
TUNING_EXPERIMENT = "tuning_arritmias_ecg"


def open_storage(url: str):
    """An Optuna storage from a URL; ``journal:///path`` is Optuna's journal file storage."""
    import optuna

    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend

        path = url[len("journal://"):]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    return url


def _open_study(study_name: str, storage: str):
    """Create or join the study. Workers started together race to create the storage's tables and the study;
    a loser retries and joins what the winner created."""
    import time

    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(3):
        try:
            return optuna.create_study(study_name=study_name, storage=open_storage(storage), direction="maximize",
                                       load_if_exists=True, pruner=optuna.pruners.MedianPruner(n_warmup_steps=3))
        except (SQLAlchemyError, optuna.exceptions.DuplicatedStudyError):
            if attempt == 2:
                raise
            time.sleep(1.0 + attempt)


def suggest(trial) -> dict:
    """The search space: TrainConfig fields with ranges around the defaults. The window stays 360 samples, the
    length of the served request."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True),
        "filters": trial.suggest_categorical("filters", ["16,32,32", "32,64,64", "32,64,128"]),
        "kernel_sizes": trial.suggest_categorical("kernel_sizes", ["7,5,5", "9,5,5", "5,5,3"]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "focal_gamma": trial.suggest_float("focal_gamma", 0.0, 3.0),
        "not_beat_ratio": trial.suggest_float("not_beat_ratio", 0.5, 2.0),
        "balance_ratio": trial.suggest_float("balance_ratio", 1.0, 6.0),
        "aug_scale": trial.suggest_float("aug_scale", 0.0, 0.4),
        "aug_noise_prob": trial.suggest_float("aug_noise_prob", 0.0, 0.8),
    }


@dataclass(frozen=True)
class TuneResult:
    study_name: str
    parent_run_id: str
    best_value: float
    best_params: dict
    n_trials: int


def tune(base: TrainConfig, n_trials: int, timeout: float | None = None, storage: str = DEFAULT_STORAGE,
         study_name: str = "arritmias", data_dir=None, cache_dir=None, tracking: str | None = None,
         progress: bool = True) -> TuneResult:
    """Run ``n_trials`` trials (or until ``timeout`` s) of the study; returns the study's best so far."""
    import mlflow
    import optuna

    from arritmias.training.augment import find_noise_dir, load_noise
    from arritmias.training.crossval import cross_validate
    from arritmias.training.run_log import log_epoch
    from arritmias.training.train import setup

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    where = setup(data_dir, cache_dir, tracking, TUNING_EXPERIMENT, progress=False)
    train_set = where.training_beats(base)  # every trial's cfg cuts beats as base does (no data field is tuned)
    reference = where.beats(base, base.train_records)
    bank = load_noise(find_noise_dir(where.data_dir), base.fs, base.seed)
    study = _open_study(study_name, storage)

    with mlflow.start_run(run_name=f"optuna_{study_name}") as parent:
        mlflow.log_params({"study": study_name, "storage": storage.split("@")[-1],
                           "objective": "cross-validated pooled out-of-fold PR-AUC at the best epoch",
                           "train_records": ",".join(base.train_records), "cv_folds": base.cv_folds,
                           "n_trials": n_trials, "timeout_s": timeout})

        def objective(trial):
            cfg = base.replace(**suggest(trial))
            with mlflow.start_run(run_name=f"trial_{trial.number}", nested=True):
                mlflow.log_params({**cfg.to_params(), "trial": trial.number})

                def on_epoch(fold, rec):
                    log_epoch(rec, prefix=f"fold_{fold + 1}_")
                    if fold == 0:
                        trial.report(rec["val_pr_auc"], rec["epoch"])
                        if trial.should_prune():
                            mlflow.set_tag("pruned", "true")
                            raise optuna.TrialPruned(f"pruned at epoch {rec['epoch']}")

                cv = cross_validate(cfg, train_set, reference, bank, on_epoch=on_epoch, progress=False)
                best = cv.epoch_figures[cv.best_epoch - 1]["val_pr_auc"]
                mlflow.log_metrics({"cv_pr_auc": best, "best_epoch": cv.best_epoch})
                return best

        study.optimize(objective, n_trials=n_trials, timeout=timeout, show_progress_bar=progress)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not done:
            raise ArritmiasError(f"study '{study_name}' has no completed trial yet (all pruned or failed)")
        mlflow.log_params({f"best_{k}": v for k, v in study.best_params.items()})
        mlflow.log_metric("best_cv_pr_auc", study.best_value)
        _log_plots(study)
    return TuneResult(study_name, parent.info.run_id, study.best_value, dict(study.best_params), len(study.trials))


def _log_plots(study) -> None:
    """Optimisation history and parameter importances (the latter needs two completed trials) as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    import optuna
    from optuna.visualization import matplotlib as ovm

    with tempfile.TemporaryDirectory() as tmp:
        ax = ovm.plot_optimization_history(study)
        ax.figure.savefig(os.path.join(tmp, "optimization_history.png"), dpi=110, bbox_inches="tight")
        plt.close(ax.figure)
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(completed) >= 2:
            ax = ovm.plot_param_importances(study)
            ax.figure.savefig(os.path.join(tmp, "param_importances.png"), dpi=110, bbox_inches="tight")
            plt.close(ax.figure)
        mlflow.log_artifacts(tmp)


def best_params(study_name: str, storage: str = DEFAULT_STORAGE) -> dict:
    """The best trial's parameters of a study, as TrainConfig field values."""
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
        return dict(study.best_params)
    except KeyError:
        raise DataError(f"no study '{study_name}' in {storage}") from None
    except ValueError:
        raise DataError(f"study '{study_name}' has no completed trial yet") from None
