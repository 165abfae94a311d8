"""train(cfg): fit the CNN on DS1, choose the decision rule on held-out DS1 patients, report on DS2, log it all.

Read top to bottom, one MLflow run:
1. beats of the fit, validation and test records (N and V only: the N-vs-V task);
2. each epoch, all fit V beats plus a fresh random draw of ``balance_ratio`` N beats per V, augmented;
3. early stopping on validation PR-AUC, best weights restored;
4. the threshold, then RuleGuard's keep/drop, chosen on validation;
5. the resulting Detector scored once on DS2, and logged as the pyfunc model that serving loads;
6. the metric gate, and registration when it passes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from arritmias import __version__, registry
from arritmias.augment import NoiseBank, augment_windows, find_noise_dir, load_noise
from arritmias.beats import BeatSet, build_beats
from arritmias.cache import default_cache_dir
from arritmias.config import TrainConfig
from arritmias.detector import Detector
from arritmias.errors import DataError
from arritmias.evaluation import (average_precision, binary_metrics, choose_threshold, mcnemar_greater,
                                  plot_confusion, plot_history, plot_pr)
from arritmias.preprocess import model_inputs
from arritmias.progress import progress as progress_bar
from arritmias.records import resolve_data_dir
from arritmias.ruleguard import RuleGuard

ARTIFACT_TAG = "v7"  # artifact names users know: models/model_v7.keras, metadata/meta_v7.json, ...
PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "mlflow", "numpy", "scipy", "pandas", "wfdb", "evidently")


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    run_name: str
    metrics: dict[str, float]
    gate: registry.GateResult
    registered_version: int | None


def code_version() -> str:
    """Git commit of the source tree (``-dirty`` if modified), else the package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        return f"arritmias-{__version__}"


def _package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _data_checksums(data_dir: Path, records: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of every file of ``records``: the exact bytes this model was trained and tested on."""
    out = {}
    for name in records:
        for path in sorted(data_dir.glob(f"{name}.*")):
            out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def n_v(beats: BeatSet) -> BeatSet:
    """Only the N and V beats (the binary task's rows)."""
    return beats.select(np.isin(beats.aami, ("N", "V")))


def balanced_indices(is_v: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """All V rows plus ``ratio`` x as many N rows drawn without replacement (fewer if N runs out), shuffled."""
    v = np.flatnonzero(is_v)
    n = np.flatnonzero(~is_v)
    take = min(len(n), int(round(ratio * len(v)))) if len(v) else len(n)
    idx = np.concatenate([v, rng.choice(n, take, replace=False)])
    rng.shuffle(idx)
    return idx


def augment_rr(rr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale both intervals of each beat by one factor in [0.8, 1.25]: another heart rate, same rhythm."""
    return (rr * np.c_[np.repeat(rng.uniform(0.8, 1.25, (len(rr), 1)), 2, axis=1), np.ones(len(rr))]).astype(
        np.float32)


def fit(cfg: TrainConfig, fit_set: BeatSet, val_set: BeatSet, bank: NoiseBank, on_epoch=None,
        progress: bool = True):
    """Train the network; returns ``(model, history)`` with the best-validation-PR-AUC weights restored.

    ``on_epoch(record)`` receives each epoch's dict of train_/val_ loss, accuracy and pr_auc.
    """
    import keras

    from arritmias.model import build_model

    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(cfg)
    y_fit = fit_set.aami == "V"
    val_x, val_y = model_inputs(val_set.windows, val_set.rr), (val_set.aami == "V").astype(np.float32)
    best, best_weights, since_best, lr = -1.0, None, 0, cfg.learning_rate
    history = []
    bar = progress_bar(range(1, cfg.epochs_max + 1), enabled=progress, desc="training", unit="epoch")
    for epoch in bar:
        idx = balanced_indices(y_fit, cfg.balance_ratio, rng)
        windows, rr = fit_set.windows[idx], fit_set.rr[idx]
        if cfg.use_augment:
            windows, rr = augment_windows(windows, cfg, bank, rng), augment_rr(rr, rng)
        h = model.fit(model_inputs(windows, rr), y_fit[idx].astype(np.float32), batch_size=cfg.batch_size,
                      epochs=1, shuffle=True, verbose=0)
        v = model.evaluate(val_x, val_y, batch_size=4096, verbose=0, return_dict=True)
        record = {"epoch": epoch, **{f"train_{k}": float(h.history[k][-1]) for k in ("loss", "accuracy", "pr_auc")},
                  **{f"val_{k}": float(v[k]) for k in ("loss", "accuracy", "pr_auc")}, "learning_rate": lr}
        for key in ("train_pr_auc", "val_pr_auc"):
            # Keras sums its PR-AUC in float32: a perfect ranking can come out as 1 + 2**-23 (seen in CI on the
            # shrunk validation record). An area under a curve of values in [0, 1] is at most 1.
            record[key] = min(record[key], 1.0)
        history.append(record)
        if on_epoch:
            on_epoch(record)
        bar.set_postfix(val_pr_auc=f"{record['val_pr_auc']:.4f}", best=f"{max(best, record['val_pr_auc']):.4f}")
        if record["val_pr_auc"] > best:
            best, best_weights, since_best = record["val_pr_auc"], model.get_weights(), 0
        else:
            since_best += 1
            if since_best >= cfg.patience:
                break
            if since_best % 2 == 0:  # plateau: halve the step size
                lr /= 2
                model.optimizer.learning_rate.assign(lr)
    model.set_weights(best_weights)
    return model, history


RULE_KEEP_P = 0.05  # a rule's fixes must outnumber its breakages beyond chance (one-sided sign test)


def choose_rules(cfg: TrainConfig, detector: Detector, val_set: BeatSet, prob: np.ndarray) -> dict[str, float]:
    """Keep each RuleGuard rule whose changes on the validation patients are significantly more often right.

    Applied alone, a rule changes some decisions: ``fixed`` turn a wrong decision right, ``broken`` a right one
    wrong. The rule stays when fixed > broken with a one-sided sign (McNemar exact) test p < ``RULE_KEEP_P``: a
    rule that flips decisions at random would otherwise survive about half the time on a noisy F1 difference.
    Sets ``detector.guard``; returns what was measured, for MLflow.
    """
    y = val_set.aami == "V"
    detector.guard = None
    plain = detector.decide(val_set.windows, val_set.rr, prob).is_v
    info = {"val_f1_V_without_ruleguard": binary_metrics(y, plain)["f1_V"], "ruleguard_kept": 0.0}
    if not cfg.use_ruleguard:
        return info
    keep = {}
    for rule in ("veto", "rescue"):
        detector.guard = RuleGuard(veto=rule == "veto", rescue=rule == "rescue", fs=cfg.fs)
        ruled = detector.decide(val_set.windows, val_set.rr, prob).is_v
        p, fixed, broken = mcnemar_greater(y, ruled, plain)
        keep[rule] = bool(fixed > broken and p < RULE_KEEP_P)
        info.update({f"ruleguard_{rule}_fixed_val": fixed, f"ruleguard_{rule}_broken_val": broken,
                     f"ruleguard_{rule}_p_val": p, f"ruleguard_{rule}_kept": float(keep[rule]),
                     f"val_f1_V_with_{rule}": binary_metrics(y, ruled)["f1_V"]})
    detector.guard = RuleGuard(**keep, fs=cfg.fs)
    if detector.guard.active():
        final = detector.decide(val_set.windows, val_set.rr, prob)
        info.update({"ruleguard_kept": 1.0, "ruleguard_changed_val": float(final.ruleguard_changed.sum()),
                     "val_f1_V_with_ruleguard": binary_metrics(y, final.is_v)["f1_V"]})
    else:
        detector.guard = None
    return info


@contextmanager
def _sigterm_as_interrupt():
    """A SIGTERM (a CI job cancelled, ``kill``) unwinds like Ctrl-C, so the run is closed as FAILED."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
        previous = signal.signal(signal.SIGTERM, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
    else:
        yield


def _log_pyfunc(detector: Detector, folder: Path, example: dict) -> None:
    """Save the Detector as an MLflow pyfunc model in ``folder/model`` (models from code, package in code_paths)."""
    import mlflow

    from arritmias import serving
    from arritmias.requirements import runtime_requirements

    package = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:  # MLflow copies it into model/artifacts/: not logged twice
        det_dir = detector.save(Path(tmp) / "detector")
        mlflow.pyfunc.save_model(
            path=str(folder / "model"),
            python_model=str(package / "pyfunc_model.py"),
            artifacts={serving.DETECTOR_ARTIFACT: str(det_dir)},
            code_paths=[str(package)],
            # No signature: MLflow's schema enforcement answers bad requests with a dump of the data instead of
            # a message naming the field; serving.parse_request validates every request instead.
            signature=False,
            metadata={"request": serving.REQUEST_DOC, "response": serving.RESPONSE_DOC},
            pip_requirements=runtime_requirements(),
        )
    # A ready-to-send request with one real DS2 beat: curl -d @request_example.json .../invocations
    (folder / "model" / "request_example.json").write_text(json.dumps({"instances": [example]}))


def train(cfg: TrainConfig, data_dir: Path | str | None = None, cache_dir: Path | None = None,
          noise_dir: str | None = None, tracking: str | None = None, experiment: str = registry.EXPERIMENT,
          tags: dict[str, str] | None = None, register: bool = True, gate_thresholds: dict | None = None,
          progress: bool = True) -> TrainResult:
    """Run one full training as an MLflow run; returns its id, metrics, gate result and registered version.

    Any error or interruption ends the run as FAILED with the error in the tag ``error``; registration happens
    only at the very end, after every artifact is logged, so no version points at a half-logged run.
    """
    import mlflow

    os.environ.setdefault("MPLBACKEND", "Agg")
    data_dir = resolve_data_dir(data_dir)
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    registry.use_tracking(tracking)
    registry.use_experiment(experiment)
    run_name = f"CNN_{ARTIFACT_TAG}_{datetime.now():%Y%m%d_%H%M%S}"

    def beats(records):
        return n_v(build_beats(data_dir, records, cfg.deriv_idx, cfg.win, cfg.fs, cache_dir, progress))

    with _sigterm_as_interrupt(), mlflow.start_run(run_name=run_name, tags=tags or {}) as run:
        try:
            t0 = time.perf_counter()
            noise = find_noise_dir(data_dir, noise_dir)
            version_of_code = code_version()
            mlflow.log_params({**cfg.to_params(), "split": "inter_patient", "fit_records": ",".join(cfg.fit_records),
                               "code_version": version_of_code, "noise_source": "nstdb" if noise else "synthetic"})
            fit_set, val_set, test_set = beats(cfg.fit_records), beats(cfg.val_records), beats(cfg.test_records)
            for name, part in (("fit", fit_set), ("validation", val_set)):
                if not np.any(part.aami == "V"):
                    raise DataError(f"the {name} records have no V beats; choose records with PVCs "
                                    f"(e.g. 106, 119, 208 of DS1)")
            bank = load_noise(noise, cfg.fs, cfg.seed)
            n_fit_v = int(np.sum(fit_set.aami == "V"))
            n_fit_n = min(int(np.sum(fit_set.aami == "N")), int(round(cfg.balance_ratio * n_fit_v)))
            mlflow.log_metrics({
                "train_samples_total": len(fit_set), "val_samples_total": len(val_set),
                "test_samples_total": len(test_set), "train_V_balanced": n_fit_v, "train_N_balanced": n_fit_n,
                "balance_ratio": n_fit_n / max(n_fit_v, 1),
            })

            def log_epoch(rec):
                mlflow.log_metrics({k: v for k, v in rec.items() if k != "epoch"}, step=rec["epoch"])

            model, history = fit(cfg, fit_set, val_set, bank, log_epoch, progress)
            train_time = time.perf_counter() - t0

            detector = Detector(model, 0.5, None, cfg.win, cfg.fs)
            val_prob = detector.predict_proba(val_set.windows, val_set.rr)
            choice = choose_threshold(val_set.aami == "V", val_prob, cfg.target_prec, cfg.target_rec)
            detector.threshold = choice.threshold
            rules = choose_rules(cfg, detector, val_set, val_prob)

            # DS2 is touched here for the first and only time, after every choice is fixed.
            y_test = test_set.aami == "V"
            decisions = detector.decide(test_set.windows, test_set.rr)
            test = binary_metrics(y_test, decisions.is_v)
            metrics = {f"test_{k}": v for k, v in test.items()}
            metrics.update({
                "test_pr_auc": average_precision(y_test, decisions.prob), "threshold": choice.threshold,
                "val_precision_V_at_threshold": choice.val_precision, "val_recall_V_at_threshold": choice.val_recall,
                "ruleguard_changed_test": float(decisions.ruleguard_changed.sum()), "train_time_s": train_time,
                "epochs_run": float(len(history)),
                "best_epoch": float(max(history, key=lambda h: h["val_pr_auc"])["epoch"]), **rules,
            })
            mlflow.log_metrics(metrics)
            rules_kept = [r for r in ("veto", "rescue") if detector.guard and getattr(detector.guard, r)]
            mlflow.set_tags({"threshold_rule": choice.rule, "ruleguard": "+".join(rules_kept) or "dropped"})

            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                (out / "models").mkdir()
                model.save(out / "models" / f"model_{ARTIFACT_TAG}.keras")
                (out / "metadata").mkdir()
                meta = {"config": cfg.to_params(), "run_name": run_name, "code_version": version_of_code,
                        "records": {"fit": cfg.fit_records, "val": cfg.val_records, "test": cfg.test_records},
                        "detector": detector.spec(), "threshold_rule": choice.rule,
                        "packages": _package_versions(), "python": sys.version.split()[0],
                        "noise_source": bank.source, "dropped_at_edges": {**fit_set.dropped_edge,
                                                                          **val_set.dropped_edge,
                                                                          **test_set.dropped_edge},
                        "data_sha256": _data_checksums(data_dir, cfg.train_records + cfg.test_records)}
                (out / "metadata" / f"meta_{ARTIFACT_TAG}.json").write_text(json.dumps(meta, indent=2))
                (out / "metrics").mkdir()
                _write_history_csv(history, out / "metrics" / f"history_{ARTIFACT_TAG}.csv")
                plot_history(history, out / "training_curves.png")
                plot_confusion(test, out / "confusion_matrix.png", f"DS2 N vs V (threshold {choice.threshold:.3f})")
                plot_pr({"validation (DS1 held out)": (val_set.aami == "V", val_prob),
                         "test (DS2)": (y_test, decisions.prob)}, out / "pr_curve.png",
                        {"validation operating point": (choice.val_recall, choice.val_precision),
                         "test operating point": (test["recall_V"], test["precision_V"])})
                i = int(np.argmax(y_test))  # the first DS2 PVC: a request worth sending
                _log_pyfunc(detector, out, {"sig": test_set.windows[i].astype(float).tolist(),
                                            "rr": test_set.rr[i].astype(float).tolist()})
                mlflow.log_artifacts(str(out))

            result = registry.gate(metrics, gate_thresholds)
            mlflow.set_tag("gate", "passed" if result.passed else "failed")
            version = registry.register(run.info.run_id, result) if register and result.passed else None
            if version is not None:
                mlflow.set_tag("registered_version", str(version))
        except BaseException as exc:
            mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:5000])
            mlflow.end_run(status="FAILED")
            raise
    return TrainResult(run.info.run_id, run_name, metrics, result, version)


def _write_history_csv(history: list[dict], path: Path) -> None:
    cols = list(history[0])
    lines = [",".join(cols)] + [",".join(f"{h[c]:.6g}" if isinstance(h[c], float) else str(h[c]) for c in cols)
                                for h in history]
    path.write_text("\n".join(lines) + "\n")
