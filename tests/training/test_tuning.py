"""Optuna search with nested MLflow runs, a two-worker study, and champion/challenger promotion."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import numpy as np
import optuna
import pytest

from arritmias.training import promotion
from arritmias.tracking import registry, runs
from arritmias.training.tuning import best_params, open_storage, tune
from tests.conftest import LENIENT_GATE, ROOT, SHRUNK, SHRUNK_ARGS, run_cli

pytestmark = pytest.mark.slow


def test_three_trial_search_logs_nested_runs_and_plots(mitdb, cache_dir, tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = tune(SHRUNK.replace(epochs_max=2), n_trials=3, storage=f"sqlite:///{tmp_path / 'optuna.db'}",
                  study_name="t3", data_dir=mitdb, cache_dir=cache_dir, tracking=store, progress=False)
    assert result.n_trials == 3 and 0 < result.best_value <= 1
    runs.use_tracking(store)
    client = mlflow.MlflowClient()
    found = mlflow.search_runs(experiment_names=["tuning_arritmias_ecg"])
    children = found[found["tags.mlflow.parentRunId"] == result.parent_run_id]
    assert len(children) == 3
    assert set(children["params.learning_rate"]) and "metrics.cv_pr_auc" in children
    parent = client.get_run(result.parent_run_id)
    assert parent.data.metrics["best_cv_pr_auc"] == pytest.approx(result.best_value)
    assert all(f"best_{k}" in parent.data.params for k in result.best_params)
    arts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"optimization_history.png", "param_importances.png"} <= arts
    # DS2 never enters a search: no trial logged test metrics.
    assert not [c for c in children.columns if c.startswith("metrics.test_")]


def test_two_workers_share_one_journal_study(mitdb, cache_dir, tmp_path):
    journal = f"journal://{tmp_path / 'shared' / 'study.log'}"
    env_args = ["tune", "--trials", "1", "--storage", journal, "--study", "shared", "--data-dir", str(mitdb),
                "--cache-dir", str(cache_dir), *SHRUNK_ARGS]
    procs = [subprocess.Popen([sys.executable, "-m", "arritmias.cli", *env_args,
                               "--tracking-uri", f"sqlite:///{tmp_path / f'w{i}.db'}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for i in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="shared", storage=open_storage(journal))
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 2
    assert set(best_params("shared", journal)) >= {"learning_rate", "filters"}


def test_train_with_params_from_study(mitdb, cache_dir, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="fixed", storage=storage, direction="maximize")
    study.enqueue_trial({"learning_rate": 0.002, "dropout": 0.3})
    study.optimize(lambda t: t.suggest_float("learning_rate", 1e-4, 1e-2) + t.suggest_float("dropout", 0, .5),
                   n_trials=1)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli("train", "--params-from-study", "fixed", "--study-storage", storage, "--data-dir", str(mitdb),
                   "--cache-dir", str(cache_dir), "--tracking-uri", store, "--no-register", *SHRUNK_ARGS,
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs.use_tracking(store)
    run = runs.top_level(mlflow.search_runs(experiment_names=["deteccion_arritmias_ecg"])).iloc[0]
    assert float(run["params.learning_rate"]) == 0.002 and float(run["params.dropout"]) == 0.3
    assert run["tags.params_from_study"] == "fixed"


def test_mcnemar_counts_discordant_beats():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    champion = y.copy()
    challenger = y.copy()
    challenger[:4] = False  # the challenger misses 4 PVCs the champion found
    p, b, c = promotion.mcnemar_worse_p(y, challenger, champion)
    assert (b, c) == (0, 4) and p == pytest.approx(0.5 ** 4)


def test_challenger_accepted_refused_and_rolled_back(mitdb, cache_dir, tmp_path):
    from arritmias.training.train import train

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for seed in (1, 2):
        train(SHRUNK.replace(seed=seed), data_dir=mitdb, cache_dir=cache_dir, tracking=store,
              gate_thresholds=LENIENT_GATE, progress=False)
    runs.use_tracking(store)
    registry.promote(1)
    client = mlflow.MlflowClient()

    def alias(name):
        return int(client.get_model_version_by_alias("ECG_Arritmias_NvsV", name).version)

    # What the rule must decide, worked out here from each version's own P(V) on the record: the test then
    # asserts that decision and its effects on the aliases, whichever version trained better.
    from arritmias.data.beats import build_beats
    from arritmias.model.detector import Detector
    from arritmias.data.beats import n_v

    beats = n_v(build_beats(mitdb, ("233",), cache_dir=cache_dir, progress=False))
    y = beats.aami == "V"
    is_v = {v: Detector.from_model_uri(registry.model_uri(v)).decide(beats.windows, beats.rr, beats.context).is_v
            for v in (1, 2)}
    expected_first = promotion.decide(y, is_v[2], is_v[1])
    first = promotion.challenge(2, records=("233",), data_dir=mitdb)
    assert first.accepted == expected_first.accepted and first.reason == expected_first.reason
    assert first.challenger_metrics == expected_first.challenger_metrics
    assert alias("production") == (2 if expected_first.accepted else 1)
    if not expected_first.accepted:
        registry.promote(2)
    assert alias("production") == 2 and alias("previous") == 1
    # Now the other way round: version 1 challenges version 2.
    expected_second = promotion.decide(y, is_v[1], is_v[2])
    second = promotion.challenge(1, records=("233",), data_dir=mitdb)
    assert second.accepted == expected_second.accepted and second.p_value == expected_second.p_value
    assert alias("production") == (1 if expected_second.accepted else 2)
    # Two different models cannot both beat each other on F1; equal F1 is accepted both ways (ties favour change).
    assert not (expected_first.accepted and expected_second.accepted) or \
        expected_first.challenger_metrics["f1_V"] == expected_first.champion_metrics["f1_V"]
    better = alias("production")
    worse = 3 - better
    found = mlflow.search_runs(experiment_names=["promotion_ecg"])
    assert len(found) == 2 and {"metrics.mcnemar_p_worse", "metrics.challenger_f1_V"} <= set(found.columns)

    # production now holds the better model: through the CLI, the worse one challenges it and is refused (exit 1,
    # nothing changed) unless the two tie on F1.
    assert alias("production") == better
    expected_cli = expected_first if worse == 2 else expected_second
    refused = run_cli("promote", "--challenger", str(worse), "--records", "233", "--data-dir", str(mitdb),
                      "--tracking-uri", store)
    assert refused.returncode == (0 if expected_cli.accepted else 1), refused.stderr[-2000:]
    assert expected_cli.accepted or ("refused" in refused.stderr and alias("production") == better)
    previous, current = alias("previous"), alias("production")
    proc = run_cli("promote", "--rollback", "--tracking-uri", store)
    assert proc.returncode == 0, proc.stderr
    assert alias("production") == previous and alias("previous") == current
