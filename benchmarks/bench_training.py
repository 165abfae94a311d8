"""Benchmark: default training, 3 seeds — DS2 N-vs-V quality (threshold from DS1 validation) and wall time.

Targets (issue 3): V recall >= 0.96 and V precision >= 0.98 (F1 >= 0.97), mean of 3 seeds; the default training
with a warm data cache in <= 10 minutes on the 2-core CPU machine.

    python benchmarks/bench_training.py [--seeds 42 43 44] [--data-dir DIR]

Runs go to a temporary MLflow store; nothing is registered.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.beats import build_beats  # noqa: E402
from arritmias.cache import default_cache_dir  # noqa: E402
from arritmias.config import TrainConfig  # noqa: E402
from arritmias.records import resolve_data_dir  # noqa: E402
from arritmias.training import train  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

TARGETS = {"test_recall_V": 0.96, "test_precision_V": 0.98, "test_f1_V": 0.97}
TIME_TARGET_S = 600
KEYS = ("test_accuracy", "test_precision_V", "test_recall_V", "test_f1_V", "test_pr_auc", "threshold",
        "val_precision_V_at_threshold", "val_recall_V_at_threshold", "ruleguard_kept", "ruleguard_changed_test",
        "epochs_run", "best_epoch", "train_time_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    cfg = TrainConfig()
    cache = default_cache_dir()
    for records in (cfg.fit_records, cfg.val_records, cfg.test_records):  # warm the cache: the target says so
        build_beats(data_dir, records, cfg.deriv_idx, cfg.win, cfg.fs, cache, progress=False)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            t0 = time.perf_counter()
            result = train(cfg.replace(seed=seed), data_dir=data_dir, cache_dir=cache,
                           tracking=f"sqlite:///{tmp}/mlflow.db", experiment="benchmark", register=False,
                           progress=False)
            wall = time.perf_counter() - t0
            runs.append({"seed": seed, "wall_s": round(wall, 1),
                         **{k: round(float(result.metrics[k]), 4) for k in KEYS}})
            print(f"seed {seed}: " + "  ".join(f"{k.removeprefix('test_')} {runs[-1][k]:.4f}" for k in KEYS[:5])
                  + f"  wall {wall:.0f} s", flush=True)
    mean = {k: round(statistics.mean(r[k] for r in runs), 4) for k in KEYS + ("wall_s",)}
    std = {k: round(statistics.pstdev(r[k] for r in runs), 4) for k in KEYS[:5]}
    met = {k: mean[k] >= v for k, v in TARGETS.items()}
    figures = {"config": cfg.to_params(), "seeds": args.seeds, "runs": runs, "mean": mean, "std": std,
               "targets": TARGETS, "targets_met": met, "time_target_s": TIME_TARGET_S,
               "time_met": max(r["wall_s"] for r in runs) <= TIME_TARGET_S}
    path = write_results("training", figures)
    print(f"mean of {len(runs)} seeds on DS2 (N and V beats): accuracy {mean['test_accuracy']:.4f}, "
          f"V precision {mean['test_precision_V']:.4f} (target {TARGETS['test_precision_V']}), "
          f"V recall {mean['test_recall_V']:.4f} (target {TARGETS['test_recall_V']}), "
          f"V F1 {mean['test_f1_V']:.4f} (target {TARGETS['test_f1_V']}), PR-AUC {mean['test_pr_auc']:.4f}")
    print(f"wall time per training: mean {mean['wall_s']:.0f} s, max {max(r['wall_s'] for r in runs):.0f} s "
          f"(target <= {TIME_TARGET_S} s)")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
