"""Benchmark: an Optuna search's best cross-validated PR-AUC against the defaults', and the tuned model on DS2.

Target (issue 7): with a 30-trial budget on this machine, report the tuned configuration's cross-validated PR-AUC
(pooled out of fold on DS1, the objective training and tuning share) versus the default configuration's, and the
tuned model's DS2 figures (DS2 is not used by the search). The search uses 3 folds to fit its budget; both
final trainings use the default 5.

    python benchmarks/bench_tuning.py [--trials 30] [--folds 3] [--timeout SECONDS] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.config import TrainConfig  # noqa: E402
from arritmias.data.records import resolve_data_dir  # noqa: E402
from arritmias.training.train import train  # noqa: E402
from arritmias.training.tuning import tune  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

KEYS = ("test_accuracy", "test_precision_V", "test_recall_V", "test_f1_V", "test_pr_auc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--folds", type=int, default=3, help="cross-validation folds inside the search")
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        search = tune(TrainConfig(cv_folds=args.folds), args.trials, args.timeout, f"sqlite:///{tmp}/optuna.db", "bench",
                      data_dir=data_dir, tracking=store, progress=False)
        default = train(TrainConfig(), data_dir=data_dir, tracking=store, register=False, progress=False)
        tuned = train(TrainConfig(**search.best_params), data_dir=data_dir, tracking=store, register=False,
                      progress=False)
        figures = {
            "trials": search.n_trials, "best_params": search.best_params,
            "wall_s_search_and_two_trainings": round(time.perf_counter() - t0),
            "search_folds": args.folds, "search_best_cv_pr_auc": round(search.best_value, 4),
            "cv_pr_auc_default": round(default.metrics["cv_pr_auc"], 4),
            "cv_pr_auc_tuned": round(tuned.metrics["cv_pr_auc"], 4),
            "ds2_default": {k: round(default.metrics[k], 4) for k in KEYS},
            "ds2_tuned_not_tuned_on": {k: round(tuned.metrics[k], 4) for k in KEYS},
        }
    path = write_results("tuning", figures)
    print(f"{search.n_trials} trials: cross-validated PR-AUC default {figures['cv_pr_auc_default']}, tuned "
          f"{figures['cv_pr_auc_tuned']}")
    print(f"DS2 (reported, not tuned on): default {figures['ds2_default']}; tuned {figures['ds2_tuned_not_tuned_on']}")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
