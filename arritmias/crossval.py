"""Patient-wise k-fold cross-validation inside the training patients (DS1): every patient is held out once.

The number of epochs, the two thresholds and the RuleGuard rules are chosen on these out-of-fold predictions,
pooled over all DS1 patients, instead of on a handful of validation patients (six held-out patients did not
represent DS2's 22). DS2 is not read here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arritmias.beats import BeatSet
from arritmias.evaluation import average_precision


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
    epoch_pr_auc : pooled out-of-fold PR-AUC after each epoch (index 0 = epoch 1) on the path the epochs are
        chosen on (with context when the config uses it).
    epoch_pr_auc_no_context : the same for beats judged without context.
    best_epoch : the epoch with the highest ``epoch_pr_auc`` (the earliest on a tie).
    held_out : every training beat, ordered fold by fold; row-aligned with the two probabilities.
    prob, prob_no_context : (n,) out-of-fold P(V) at ``best_epoch`` with and without context.
    fold_pr_auc : each fold's own PR-AUC at ``best_epoch`` (a spread, not an estimate of its own).
    fold_histories : each fold's per-epoch records.
    """

    folds: list[tuple[str, ...]]
    epoch_pr_auc: list[float]
    epoch_pr_auc_no_context: list[float]
    best_epoch: int
    held_out: BeatSet
    prob: np.ndarray
    prob_no_context: np.ndarray
    fold_pr_auc: list[float]
    fold_histories: list[list[dict]]


class _HeldOutScores:
    """One fold's ``after_epoch``: P(V) of the held-out patients after every epoch, with and without context."""

    def __init__(self, cfg, held_out: BeatSet):
        self.cfg, self.held_out, self.y = cfg, held_out, held_out.aami == "V"
        self.detector = None
        self.prob: list[np.ndarray] = []
        self.prob_no_context: list[np.ndarray] = []

    def __call__(self, model, epoch: int) -> dict[str, float]:
        from arritmias.detector import Detector

        if self.detector is None:  # one Detector per fold: its traced graph reads the weights as they train
            self.detector = Detector(model, 0.5, 0.5, None, self.cfg.win, self.cfg.fs, self.cfg.use_context)
        b = self.held_out
        p_nc = self.detector.predict_proba(b.windows, b.rr)
        p = self.detector.predict_proba(b.windows, b.rr, b.context) if self.cfg.use_context else p_nc
        self.prob.append(p)
        self.prob_no_context.append(p_nc)
        return {"val_pr_auc": average_precision(self.y, p), "val_pr_auc_no_context": average_precision(self.y, p_nc)}


def cross_validate(cfg, beats: BeatSet, bank, fold_scope=None, on_epoch=None, progress: bool = True) -> CVResult:
    """Fit one network per fold on the other folds' patients for ``cfg.epochs_max`` epochs, predicting the held-out
    patients after every epoch, with and without their record context.

    ``fold_scope(i, records)`` (optional) returns a context manager wrapped around fold i (training opens a
    nested MLflow run there); ``on_epoch(i, record)`` receives fold i's per-epoch record, with its
    ``val_pr_auc`` (the held-out patients' PR-AUC).
    """
    from contextlib import nullcontext

    from arritmias.training import fit

    v_counts = {r: int(np.sum((beats.record == r) & (beats.aami == "V"))) for r in cfg.train_records}
    folds = assign_folds(cfg.train_records, v_counts, cfg.cv_folds)
    parts, probs, probs_nc, histories = [], [], [], []
    for i, held in enumerate(folds):
        out = np.isin(beats.record, held)
        train_part, test_part = beats.select(~out), beats.select(out)
        scores = _HeldOutScores(cfg, test_part)
        with (fold_scope(i, held) if fold_scope else nullcontext()):
            _, history = fit(cfg, train_part, bank, cfg.epochs_max, scores,
                             None if on_epoch is None else (lambda rec, i=i: on_epoch(i, rec)),
                             progress, desc=f"fold {i + 1}/{len(folds)}")
        parts.append(test_part)
        probs.append(np.stack(scores.prob))
        probs_nc.append(np.stack(scores.prob_no_context))
        histories.append(history)
    held_out = BeatSet.concat(parts)
    y = held_out.aami == "V"
    prob_by_epoch = np.concatenate(probs, axis=1)  # (epochs, n)
    prob_nc_by_epoch = np.concatenate(probs_nc, axis=1)
    epoch_ap = [average_precision(y, p) for p in prob_by_epoch]
    epoch_ap_nc = [average_precision(y, p) for p in prob_nc_by_epoch]
    best = int(np.argmax(epoch_ap))
    return CVResult(folds, epoch_ap, epoch_ap_nc, best + 1, held_out, prob_by_epoch[best], prob_nc_by_epoch[best],
                    [h[best]["val_pr_auc"] for h in histories], histories)
