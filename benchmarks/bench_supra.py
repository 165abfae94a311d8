"""Benchmark: the S answer (issue 29) end to end — EC57 SVEB (and VEB) on DS2 in detected and reference modes.

By default it runs the default training with the S answer on (``use_supra``), one run per seed (~35 min each on
2 cores): the S stage is chosen inside the training (:func:`arritmias.training.decision.choose_supra`: the V
network's out-of-fold answers gate DS1, patient-wise out-of-fold P(S), the threshold on EC57 SVEB counts, then the
stage on all of DS1), and DS2 is read once, after every choice. The S stage never changes a V or a not-a-beat
answer; the script checks it by scoring each model's network again without its stage.

``--model-uri`` puts the S stage on a model trained before (without one): DS1 is then gated by that model's own
final answers (it saw DS1, so a little better than out of fold): stated in the results as ``ds1_gating``.

Targets (issue 29): DS2 detected mode, gross SVEB Se >= 80 % and +P >= 80 %; VEB not lower than without it.

    python benchmarks/bench_supra.py [--seeds 42 43 44] [--data-dir DIR]
    python benchmarks/bench_supra.py --model-uri runs:/ID/model --tracking URI [--seeds 42]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.analysis import ec57  # noqa: E402
from arritmias.config import TrainConfig  # noqa: E402
from arritmias.data.beats import build_beats, reference_beats  # noqa: E402
from arritmias.data.cache import default_cache_dir  # noqa: E402
from arritmias.data.records import read_recording, resolve_data_dir  # noqa: E402
from arritmias.model.detector import Detector  # noqa: E402
from arritmias.training.decision import choose_supra, record_matches  # noqa: E402
from arritmias.training.evaluation import score_supra  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

TARGETS = {"test_ec57_detected_sveb_se": 0.80, "test_ec57_detected_sveb_ppv": 0.80}


def _attach(detector: Detector, cfg: TrainConfig, data_dir: Path) -> dict:
    """Fit the S stage on DS1 gated by ``detector``'s own answers and put it on ``detector``; its DS1 figures."""
    det = build_beats(data_dir, cfg.train_records, cfg.deriv_idx, cfg.win, cfg.fs, default_cache_dir(), False,
                      positions="detected", n_decoys=cfg.decoys_per_record, seed=cfg.seed)
    det = det.select(~det.is_decoy())
    refs = {n: reference_beats(read_recording(data_dir, n, cfg.deriv_idx, cfg.fs)) for n, _ in det.by_record()}
    rows, matched = record_matches(det, refs, cfg.fs)
    detector.supra = None
    stage, cv = choose_supra(cfg, detector, det, detector.predict(det.windows, det.rr, det.context), matched, rows)
    detector.supra = stage
    return cv


def _ds2(detector: Detector, cfg: TrainConfig, data_dir: Path) -> dict:
    """DS2 figures of ``detector`` with its S stage, and VEB of the same network without it."""
    out = {}
    stage = detector.supra
    for supra in (None, stage):
        detector.supra = supra
        tag = "test" if supra is not None else "test_without_s"
        for mode in ("detected", "reference"):
            result = ec57.evaluate(detector, data_dir, cfg.test_records, mode, progress=False)
            out.update({f"{tag}_ec57_{mode}_{k}": v for k, v in result.gross.items() if v is not None})
            out.update({f"{tag}_ec57_{mode}_avg_{k}": v for k, v in result.average.items() if v is not None})
            if supra is not None and mode == "detected":  # per record: 232 alone holds ~3/4 of DS2's S beats
                out.update({f"test_{n}_{k}": c[k] for n, c in result.per_record.items()
                            for k in ("sveb_se", "sveb_ppv") if c.get(k) is not None})
    ref_beats = build_beats(data_dir, cfg.test_records, cfg.deriv_idx, cfg.win, cfg.fs, default_cache_dir(), False)
    out.update(score_supra(detector, ref_beats))
    return out


def _write(seeds: list[int], runs_out: list[dict]) -> tuple[dict, Path]:
    """The results file of the runs so far (written after each seed: a long benchmark keeps what it measured)."""
    numeric = sorted({k for r in runs_out for k, v in r.items() if isinstance(v, float) and k != "seed"})
    mean = {k: round(statistics.mean(r[k] for r in runs_out if k in r), 4) for k in numeric}
    figures = {"seeds": [r["seed"] for r in runs_out], "planned_seeds": seeds, "runs": runs_out, "mean": mean, "targets": TARGETS,
               "targets_met": {k: mean.get(k, 0) >= v for k, v in TARGETS.items()},
               "veb_unchanged": all(r[f"test_ec57_{m}_veb_{f}"] == r[f"test_without_s_ec57_{m}_veb_{f}"]
                                    for r in runs_out for m in ("detected", "reference") for f in ("se", "ppv"))}
    return figures, write_results("supra", figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-uri", help="a logged arritmias model to put the S stage on (default: train)")
    parser.add_argument("--tracking", help="the MLflow store the model URI lives in")
    parser.add_argument("--data-dir")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    runs_out = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            cfg = TrainConfig(seed=seed, use_supra=True)
            t0 = time.perf_counter()
            if args.model_uri:
                from arritmias.tracking import runs

                if args.tracking:
                    runs.use_tracking(args.tracking)
                detector = Detector.from_model_uri(args.model_uri)
                row = {"seed": seed, "model_uri": args.model_uri,
                       "ds1_gating": "the model's own final answers on DS1", **_attach(detector, cfg, data_dir)}
            else:
                from arritmias.training.train import train

                result = train(cfg, data_dir=data_dir, tracking=f"sqlite:///{tmp}/mlflow.db",
                               experiment="benchmark", register=False, progress=False)
                detector = Detector.from_model_uri(f"runs:/{result.run_id}/model")
                row = {"seed": seed, "ds1_gating": "out of fold (the training's own step 4)",
                       **{k: result.metrics[k] for k in ("cv_ec57_detected_sveb_se", "cv_ec57_detected_sveb_ppv",
                                                         "cv_pr_auc_S", "cv_irregular_rhythm_fraction", "threshold_s")
                          if k in result.metrics}}
            row.update(_ds2(detector, cfg, data_dir))
            row = {k: round(float(v), 4) if isinstance(v, (int, float)) and k != "seed" else v for k, v in row.items()}
            row["wall_s"] = round(time.perf_counter() - t0)
            runs_out.append(row)
            _write(args.seeds, runs_out)
            print(f"seed {seed}: " + " | ".join(
                f"{mode}: SVEB Se {row.get(f'test_ec57_{mode}_sveb_se', 0):.4f} +P "
                f"{row.get(f'test_ec57_{mode}_sveb_ppv', 0):.4f}, VEB Se {row[f'test_ec57_{mode}_veb_se']:.4f} +P "
                f"{row[f'test_ec57_{mode}_veb_ppv']:.4f} (without S {row[f'test_without_s_ec57_{mode}_veb_se']:.4f}"
                f" / {row[f'test_without_s_ec57_{mode}_veb_ppv']:.4f})" for mode in ("detected", "reference")),
                flush=True)
    figures, path = _write(args.seeds, runs_out)
    mean = figures["mean"]
    print(f"mean of {len(runs_out)}: DS2 detected SVEB Se {mean.get('test_ec57_detected_sveb_se', 0):.4f} +P "
          f"{mean.get('test_ec57_detected_sveb_ppv', 0):.4f}; VEB unchanged by the S stage: {figures['veb_unchanged']};"
          f" targets met: {figures['targets_met']}; results written to {path}")


if __name__ == "__main__":
    main()
