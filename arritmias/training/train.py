"""train(cfg): cross-validate on DS1's patients, fit on all of DS1, fix the decision rule, report on DS2, log it.

Read top to bottom, one MLflow run, one call per step in :func:`train`:
1. the DS1 beats where the QRS detector finds them (its false detections labelled "not a beat"), plus decoys
   cut on T waves, P waves and between beats, each with its record context; and DS1's reference beats;
2. patient-wise k-fold cross-validation (:mod:`arritmias.training.crossval`, folds as nested runs): out-of-fold
   probabilities of every DS1 patient after every epoch, at detected and at reference beats;
3. the final network on all of DS1 for the epoch count cross-validation chose (:mod:`arritmias.training.fit`); each
   epoch draws all V beats,
   ``balance_ratio`` non-V beats and ``not_beat_ratio`` not-a-beat examples per V, augmented, a
   ``context_dropout`` share of them shown without context;
4. the decision rule from the pooled out-of-fold predictions in detected mode (:mod:`arritmias.training.decision`);
5. DS2 read and scored once, both EC57 modes, after every choice is fixed; the Detector logged as the pyfunc
   model;
6. the metric gate (detected mode: what users get), and registration when it passes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from arritmias import __version__
from arritmias.analysis import ec57
from arritmias.model import drift_reference
from arritmias.tracking import registry, runs
from arritmias.training.augment import find_noise_dir, load_noise
from arritmias.data.beats import BeatSet, ReferenceBeats, build_beats, n_v, reference_beats
from arritmias.data.cache import default_cache_dir
from arritmias.config import TrainConfig
from arritmias.training.crossval import cross_validate
from arritmias.training import run_log
from arritmias.training.run_log import ARTIFACT_TAG, log_epoch
from arritmias.training.fit import TRAIN_EPOCH_KEYS, class_index, fit
from arritmias.training.decision import choose_decision_rule
from arritmias.model.detector import Detector
from arritmias.errors import DataError
from arritmias.training.evaluation import score, score_supra
from arritmias.model.preprocess import NOT_BEAT_INDEX, V_INDEX
from arritmias.data.records import read_recording, resolve_data_dir



@dataclass(frozen=True)
class TrainResult:
    run_id: str
    run_name: str
    metrics: dict[str, float]
    gate: registry.GateResult
    registered_version: int | None


def code_version() -> str:
    """Git commit of the source tree (``-dirty`` if modified), else the package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        return f"arritmias-{__version__}"


def entry_point() -> str:
    """What the user ran, for the run page's "Source": ``deteccionarritmias.py``, ``arritmias train`` (MLflow
    would show ``__main__.py`` or ``arritmias``), else the script's name."""
    path = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    if path.name == "arritmias" or (path.name == "__main__.py" and path.parent.name == "cli"):
        return "arritmias train"
    return f"python -m {path.parent.name}" if path.name == "__main__.py" else path.name


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


@dataclass(frozen=True)
class Setup:
    """Where a training-like job (``train``, ``tune``) reads from, once resolved; MLflow already points at its
    store and experiment."""

    data_dir: Path
    cache_dir: Path
    progress: bool

    def beats(self, cfg: TrainConfig, records: tuple[str, ...]) -> BeatSet:
        """Every reference beat of ``records`` as ``cfg`` cuts them (cached)."""
        return build_beats(self.data_dir, records, cfg.deriv_idx, cfg.win, cfg.fs, self.cache_dir, self.progress)

    def training_beats(self, cfg: TrainConfig) -> BeatSet:
        """The detections and decoys of ``cfg.train_records`` (cached), which must hold V beats to learn from."""
        beats = build_beats(self.data_dir, cfg.train_records, cfg.deriv_idx, cfg.win, cfg.fs, self.cache_dir,
                            self.progress, positions="detected", n_decoys=cfg.decoys_per_record, seed=cfg.seed)
        require_v(beats, cfg.train_records)
        return beats

    def references(self, cfg: TrainConfig, records: tuple[str, ...]) -> dict[str, ReferenceBeats]:
        """The reference beats (and flutter episodes) of ``records``, for EC57 counting."""
        return {name: reference_beats(read_recording(self.data_dir, name, cfg.deriv_idx, cfg.fs))
                for name in records}


def setup(data_dir: Path | str | None, cache_dir: Path | None, tracking: str | None, experiment: str,
          progress: bool) -> Setup:
    """Resolve the data and cache folders and point MLflow at the store and experiment: how train and tune start."""
    runs.use_tracking(tracking)
    runs.use_experiment(experiment)
    return Setup(resolve_data_dir(data_dir), cache_dir if cache_dir is not None else default_cache_dir(), progress)


def train(cfg: TrainConfig, data_dir: Path | str | None = None, cache_dir: Path | None = None,
          noise_dir: str | None = None, tracking: str | None = None, experiment: str = runs.EXPERIMENT,
          tags: dict[str, str] | None = None, register: bool = True, gate_thresholds: dict | None = None,
          progress: bool = True) -> TrainResult:
    """Run one full training as an MLflow run; returns its id, metrics, gate result and registered version.

    Any error or interruption ends the run as FAILED with the error in the tag ``error``; registration happens
    only at the very end, after every artifact is logged, so no version points at a half-logged run.
    """
    import mlflow

    from arritmias.model.network import macs_per_beat

    os.environ.setdefault("MPLBACKEND", "Agg")
    where = setup(data_dir, cache_dir, tracking, experiment, progress)
    data_dir = where.data_dir
    run_name = f"CNN_{ARTIFACT_TAG}_{datetime.now():%Y%m%d_%H%M%S}"

    with _sigterm_as_interrupt(), mlflow.start_run(run_name=run_name, tags={
            **runs.owner_tags(), "mlflow.source.name": entry_point(), "mlflow.source.type": "LOCAL",
            **(tags or {})}) as run:
        try:
            t0 = time.perf_counter()
            noise = find_noise_dir(data_dir, noise_dir)
            version_of_code = code_version()
            mlflow.log_params({**cfg.to_params(), "split": "inter_patient", "code_version": version_of_code,
                               "noise_source": "nstdb" if noise else "synthetic",
                               "selection": f"patient-wise {cfg.cv_folds}-fold cross-validation on train_records"})
            run_log.log_datasets(data_dir, cfg)
            train_set = where.training_beats(cfg)
            train_reference = where.beats(cfg, cfg.train_records)
            bank = load_noise(noise, cfg.fs, cfg.seed)
            fold_runs: list[str] = []
            cv = cross_validate(cfg, train_set, train_reference, bank, run_log.fold_run(fold_runs),
                                run_log.fold_epoch_logger(run.info.run_id), progress)
            mlflow.log_params({f"cv_fold_{i + 1}_records": ",".join(f) for i, f in enumerate(cv.folds)})
            run_log.summarize_folds(fold_runs, cv)
            for e, figures in enumerate(cv.epoch_figures, start=1):
                mlflow.log_metrics(figures, step=e)  # val_*: the pooled out-of-fold figures of each epoch
            model, history = fit(cfg, train_set, bank, cv.best_epoch,
                                 on_epoch=lambda rec: (log_epoch(rec, keys=TRAIN_EPOCH_KEYS),
                                                       runs.heartbeat(run.info.run_id)),
                                 progress=progress, desc="final fit on all train_records")
            train_time = time.perf_counter() - t0
            mlflow.log_param("macs_per_beat", macs_per_beat(model))  # what inference costs (issue 15)
            rule = choose_decision_rule(cfg, cv, where.references(cfg, cfg.train_records))
            real = ~train_set.is_decoy() & (train_set.aami != "X")
            detector = Detector(model, rule.rule, cfg.win, cfg.fs, cfg.use_context,
                                drift_reference=drift_reference.reference(train_set.windows[real], train_set.rr[real],
                                                                     cfg.fs), supra=rule.supra)

            # DS2 is read here for the first and only time, after every choice is fixed.
            test_beats = where.beats(cfg, cfg.test_records)
            test_set = n_v(test_beats)
            test, decisions = score(detector, test_set)
            test.update(score_supra(detector, test_beats))
            for mode in ("detected", "reference"):
                result = ec57.evaluate(detector, data_dir, cfg.test_records, mode, progress=progress)
                test.update(ec57_metrics(result, f"test_ec57_{mode}"))
            y = class_index(train_set.aami)
            v_rows = int(np.sum(y == V_INDEX))
            metrics = {**test, **rule.metrics, "train_time_s": train_time, "epochs_run": float(cv.best_epoch),
                       "train_samples_total": len(train_set), "test_samples_total": len(test_set),
                       "train_V_total": v_rows, "train_N_total": int(np.sum(y == 0)),
                       "train_X_total": int(np.sum(y == NOT_BEAT_INDEX)),
                       "train_S_total": int(np.sum(train_set.aami == "S")),
                       "train_decoys_total": int(train_set.is_decoy().sum()),
                       # rows of each class every epoch draws (epoch_rows): what the network sees balanced
                       "train_V_balanced": v_rows,
                       "train_N_balanced": min(int(np.sum(y == 0)), round(cfg.balance_ratio * v_rows)),
                       "train_X_balanced": min(int(np.sum(y == NOT_BEAT_INDEX)), round(cfg.not_beat_ratio * v_rows)),
                       "balance_ratio": cfg.balance_ratio}
            model_id = run_log.log_model(detector, run_log.request_example(test_set), {
                **cfg.to_params(), "macs_per_beat": macs_per_beat(model), "code_version": version_of_code},
                entry_point())
            mlflow.log_metrics(metrics, model_id=model_id)  # the run's figures, and the model's (Models tab)
            guard = detector.rule.guard
            rules_kept = [r for r in ("veto", "rescue") if guard and getattr(guard, r)]
            mlflow.set_tags({"threshold_rule": rule.threshold_rule, "ruleguard": "+".join(rules_kept) or "dropped"})
            run_log.log_artifacts(cfg, detector, model, cv, history, test_set, test, decisions, rule, {
                "run_name": run_name, "code_version": version_of_code, "noise_source": bank.source,
                "dropped_at_edges": {**train_reference.dropped_edge, **test_set.dropped_edge},
                "data_sha256": run_log.data_checksums(data_dir, cfg.train_records + cfg.test_records)})

            result = registry.gate(metrics, gate_thresholds)
            mlflow.set_tag("gate", "passed" if result.passed else "failed")
            # The run page's "Description": what was trained on what, the figures, the request.
            mlflow.set_tag("mlflow.note.content", registry.version_description(mlflow.get_run(run.info.run_id)))
            version = registry.register(run.info.run_id, result) if register and result.passed else None
            if version is not None:
                mlflow.set_tag("registered_version", str(version))
        except BaseException as exc:
            mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:5000])
            mlflow.end_run(status="FAILED")
            raise
    return TrainResult(run.info.run_id, run_name, metrics, result, version)


def ec57_metrics(result, prefix: str) -> dict[str, float]:
    """An EC57 result's gross and average VEB, SVEB and QRS figures as metrics ``{prefix}_veb_se``,
    ``{prefix}_avg_veb_se``, ``{prefix}_sveb_ppv``, ... (undefined figures left out)."""
    out = {f"{prefix}_{k}": v for k, v in result.gross.items() if v is not None}
    out.update({f"{prefix}_avg_{k}": v for k, v in result.average.items() if v is not None})
    return out


def require_v(beats: BeatSet, records: tuple[str, ...]) -> None:
    """Cross-validation needs V beats to learn from and to choose thresholds on."""
    if not np.any(beats.aami == "V"):
        raise DataError(f"the training records {','.join(records)} have no V beats; choose records with PVCs "
                        "(e.g. 106, 119, 208 of DS1)")


def write_outputs(result: TrainResult, folder: Path) -> dict[str, Path]:
    """A finished run's figures as ``metrics.json`` (every metric, flat), its per-epoch history as
    ``history.csv`` and its model as ``model_uri.txt`` (``runs:/<id>/model``) in ``folder``: the small files a DVC
    pipeline tracks as metrics, plots and the next stage's input, written atomically. The model itself stays in
    MLflow."""
    import json

    import mlflow

    from arritmias.util.atomic import write_text_atomic

    folder.mkdir(parents=True, exist_ok=True)
    history = mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/metrics/history_{ARTIFACT_TAG}.csv")
    paths = {"metrics": folder / "metrics.json", "history": folder / "history.csv",
             "model_uri": folder / "model_uri.txt"}
    figures = {k: round(float(v), 6) for k, v in sorted(result.metrics.items())}
    write_text_atomic(paths["metrics"], json.dumps(figures, indent=1) + "\n")
    write_text_atomic(paths["history"], Path(history).read_text())
    write_text_atomic(paths["model_uri"], f"runs:/{result.run_id}/model\n")
    return paths
