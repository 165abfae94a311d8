"""Benchmark: an Optuna search's best validation PR-AUC against the defaults', and the tuned model on DS2.

Target (issue 7): with a 30-trial budget on this machine, report the tuned model's validation PR-AUC versus the
default configuration's, and the tuned model's DS2 figures (DS2 is not used by the search).

    python benchmarks/bench_tuning.py [--trials 30] [--timeout SECONDS] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import mlflow

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.config import TrainConfig  # noqa: E402
from arritmias.records import resolve_data_dir  # noqa: E402
from arritmias.training import train  # noqa: E402
from arritmias.tuning import tune  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

KEYS = ("test_accuracy", "test_precision_V", "test_recall_V", "test_f1_V", "test_pr_auc")


def best_val_pr_auc(run_id: str) -> float:
    return max(m.value for m in mlflow.MlflowClient().get_metric_history(run_id, "val_pr_auc"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        search = tune(TrainConfig(), args.trials, args.timeout, f"sqlite:///{tmp}/optuna.db", "bench",
                      data_dir=data_dir, tracking=store, progress=False)
        default = train(TrainConfig(), data_dir=data_dir, tracking=store, register=False, progress=False)
        tuned = train(TrainConfig(**search.best_params), data_dir=data_dir, tracking=store, register=False,
                      progress=False)
        figures = {
            "trials": search.n_trials, "best_params": search.best_params,
            "wall_s_search_and_two_trainings": round(time.perf_counter() - t0),
            "val_pr_auc_default": round(best_val_pr_auc(default.run_id), 4),
            "val_pr_auc_tuned": round(best_val_pr_auc(tuned.run_id), 4),
            "ds2_default": {k: round(default.metrics[k], 4) for k in KEYS},
            "ds2_tuned_not_tuned_on": {k: round(tuned.metrics[k], 4) for k in KEYS},
        }
    path = write_results("tuning", figures)
    print(f"{search.n_trials} trials: validation PR-AUC default {figures['val_pr_auc_default']}, tuned "
          f"{figures['val_pr_auc_tuned']}")
    print(f"DS2 (reported, not tuned on): default {figures['ds2_default']}; tuned {figures['ds2_tuned_not_tuned_on']}")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
