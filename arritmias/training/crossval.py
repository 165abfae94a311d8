"""Patient-wise cross-validation on the training records: folds of whole patients, each held out once.

Every choice a training run makes — the epoch count, the thresholds, the family weight, RuleGuard's rules — is
made on the out-of-fold predictions of all training patients pooled, never on the test patients. The folds are
predicted where users' recordings give beats (the QRS detector's, with its false detections: *detected mode*)
and at the cardiologists' annotations (*reference mode*), with and without record context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arritmias.data.beats import BeatSet
from arritmias.training.fit import class_index, fit, held_out_figures


def assign_folds(records: tuple[str, ...], v_counts: dict[str, int], k: int) -> list[tuple[str, ...]]:
    """Split ``records`` into ``k`` folds of whole patients with similar numbers of V beats.

    Patients are sorted by their V count (most first, then by name) and dealt to the folds in a snake order
    (0, 1, ..., k-1, k-1, ..., 0, ...), so each fold gets a share of the PVC-rich patients and of the PVC-free
    ones. Deterministic: the folds depend only on the records and their labels, never on a seed or on DS2.
    """
    if not 2 <= k <= len(records):
        raise ValueError(f"k={k} folds need 2 <= k <= {len(records)} records")
    order = sorted(records, key=lambda r: (-v_counts.get(r, 0), r))
    folds: list[list[str]] = [[] for _ in range(k)]
    for i, rec in enumerate(order):
        lap, pos = divmod(i, k)
        folds[pos if lap % 2 == 0 else k - 1 - pos].append(rec)
    return [tuple(sorted(f)) for f in folds]


@dataclass(frozen=True)
class CVResult:
    """Out-of-fold predictions and what they chose.

    Attributes
    ----------
    folds : the records held out by each fold.
    epoch_figures : per epoch (index 0 = epoch 1), the pooled out-of-fold ``val_loss``, ``val_accuracy``,
        ``val_pr_auc`` (detected beats, with context: the path the epochs are chosen on) and
        ``val_pr_auc_no_context``.
    best_epoch : the epoch with the highest pooled ``val_pr_auc`` (the earliest on a tie).
    detected, reference : every training record's detections (decoys left out) and reference beats, ordered
        fold by fold and in time order inside each record; row-aligned with the probabilities below.
    probs, probs_no_context : (n, 3) out-of-fold probabilities of ``detected`` at ``best_epoch``, with and
        without context; ``probs_reference`` the same for ``reference``, with context.
    fold_pr_auc : each fold's own ``val_pr_auc`` at ``best_epoch`` (a spread, not an estimate of its own).
    fold_histories : each fold's per-epoch records.
    """

    folds: list[tuple[str, ...]]
    epoch_figures: list[dict[str, float]]
    best_epoch: int
    detected: BeatSet
    reference: BeatSet
    probs: np.ndarray
    probs_no_context: np.ndarray
    probs_reference: np.ndarray
    fold_pr_auc: list[float]
    fold_histories: list[list[dict]]


class _HeldOutScores:
    """One fold's ``after_epoch``: the held-out patients' probabilities after every epoch (detected beats with and
    without context) and the fold's ``val_*`` figures; its reference beats are predicted at the chosen epoch only
    (:meth:`reference_probs`), from the weights kept after every epoch."""

    def __init__(self, cfg, detected: BeatSet, reference: BeatSet):
        self.cfg, self.detected, self.reference = cfg, detected, reference
        self.y = class_index(detected.aami)
        self.detector = None
        self.probs: list[np.ndarray] = []
        self.probs_no_context: list[np.ndarray] = []
        # Nothing reads the reference beats' probabilities but at the epoch chosen after every fold has run, so
        # each epoch keeps its weights (~150 kB) rather than predicting them (a third of the held-out predictions).
        self.weights: list[list[np.ndarray]] = []

    def __call__(self, model, epoch: int) -> dict[str, float]:
        from arritmias.model.detector import Detector, Rule

        if self.detector is None:  # one Detector per fold: its traced graph reads the weights as they train
            self.detector = Detector(model, Rule(0.5, 0.5, 0.5, 0.5), self.cfg.win, self.cfg.fs, self.cfg.use_context)
        d = self.detected
        p_nc = self.detector.predict(d.windows, d.rr)
        p = self.detector.predict(d.windows, d.rr, d.context) if self.cfg.use_context else p_nc
        self.probs.append(p)
        self.probs_no_context.append(p_nc)
        self.weights.append(model.get_weights())
        figures = held_out_figures(self.y, p, self.cfg.focal_gamma)
        return {f"val_{k}": v for k, v in figures.items()} | {
            "val_pr_auc_no_context": held_out_figures(self.y, p_nc, self.cfg.focal_gamma)["pr_auc"]}

    def reference_probs(self, epoch: int) -> np.ndarray:
        """(n, 3) probabilities of the fold's reference beats, with context, as the network was after ``epoch``
        (1-based); the kept weights are then let go."""
        self.detector.model.set_weights(self.weights[epoch - 1])
        self.weights = []
        r = self.reference
        return self.detector.predict(r.windows, r.rr, r.context if self.cfg.use_context else None)


def cross_validate(cfg, beats: BeatSet, reference: BeatSet, bank, fold_scope=None, on_epoch=None,
                   progress: bool = True) -> CVResult:
    """Fit one network per fold on the other folds' patients (their detections and decoys, ``beats``) for
    ``cfg.epochs_max`` epochs, predicting the held-out patients' detections and ``reference`` beats after every
    epoch.

    ``fold_scope(i, records)`` (optional) returns a context manager wrapped around fold i (training opens a
    nested MLflow run there); ``on_epoch(i, record)`` receives fold i's per-epoch record, with its ``val_*``
    figures.
    """
    from contextlib import nullcontext

    v_counts = {r: int(np.sum((beats.record == r) & (beats.aami == "V"))) for r in cfg.train_records}
    folds = assign_folds(cfg.train_records, v_counts, cfg.cv_folds)
    detections = ~beats.is_decoy()
    scores, histories = [], []
    for i, held in enumerate(folds):
        out = np.isin(beats.record, held)
        fold = _HeldOutScores(cfg, beats.select(out & detections), reference.select(np.isin(reference.record, held)))
        with (fold_scope(i, held) if fold_scope else nullcontext()):
            _, history = fit(cfg, beats.select(~out), bank, cfg.epochs_max, fold,
                             None if on_epoch is None else (lambda rec, i=i: on_epoch(i, rec)),
                             progress, desc=f"fold {i + 1}/{len(folds)}")
        scores.append(fold)
        histories.append(history)
    detected = BeatSet.concat([s.detected for s in scores])
    y = class_index(detected.aami)
    by_epoch = np.concatenate([np.stack(s.probs) for s in scores], axis=1)  # (epochs, n, 3)
    by_epoch_nc = np.concatenate([np.stack(s.probs_no_context) for s in scores], axis=1)
    epoch_figures = [{f"val_{k}": v for k, v in held_out_figures(y, p, cfg.focal_gamma).items()}
                     | {"val_pr_auc_no_context": held_out_figures(y, p_nc, cfg.focal_gamma)["pr_auc"]}
                     for p, p_nc in zip(by_epoch, by_epoch_nc)]
    best = int(np.argmax([f["val_pr_auc"] for f in epoch_figures]))
    return CVResult(folds, epoch_figures, best + 1, detected, BeatSet.concat([s.reference for s in scores]),
                    by_epoch[best], by_epoch_nc[best],
                    np.concatenate([s.reference_probs(best + 1) for s in scores]),
                    [h[best]["val_pr_auc"] for h in histories], histories)
