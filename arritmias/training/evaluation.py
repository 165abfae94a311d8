"""Beat-level metrics, the validation threshold rule, and the plots logged with every run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """TN, FP, FN, TP for V as the positive class (bool arrays of shape (n,))."""
    from sklearn.metrics import confusion_matrix

    (tn, fp), (fn, tp) = confusion_matrix(np.asarray(y_true, bool), np.asarray(y_pred, bool), labels=[False, True])
    return {"TN": int(tn), "FP": int(fp), "FN": int(fn), "TP": int(tp)}


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and per-class precision/recall/F1 (V positive, N negative) plus the four counts.

    scikit-learn's definitions; an undefined ratio (no beat predicted or present in a class) is 0.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=[True, False], zero_division=0)
    out: dict[str, float] = {"accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0}
    for i, cls in enumerate("VN"):
        out[f"precision_{cls}"], out[f"recall_{cls}"], out[f"f1_{cls}"] = float(p[i]), float(r[i]), float(f[i])
    out.update({k: float(v) for k, v in confusion(y_true, y_pred).items()})
    return out


def class_metrics(y_true: np.ndarray, y_pred: np.ndarray, cls: str) -> dict[str, float]:
    """``precision_{cls}``, ``recall_{cls}`` and ``f1_{cls}`` of bool (n,) decisions for one class against the
    rest (:func:`binary_metrics`' definitions)."""
    m = binary_metrics(y_true, y_pred)
    return {f"{k}_{cls}": m[f"{k}_V"] for k in ("precision", "recall", "f1")}


def mcnemar_greater(y_true: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """One-sided exact McNemar test that decisions ``a`` are right more often than decisions ``b``.

    Only the beats where exactly one of them is right count: ``a_only`` and ``b_only``. Returns
    ``(p, a_only, b_only)`` with p = P(Binomial(a_only + b_only, 0.5) >= a_only), 1.0 when they never disagree.
    """
    from scipy.stats import binomtest

    y = np.asarray(y_true, bool)
    a_right, b_right = np.asarray(a, bool) == y, np.asarray(b, bool) == y
    a_only, b_only = int(np.sum(a_right & ~b_right)), int(np.sum(b_right & ~a_right))
    p = binomtest(a_only, a_only + b_only, 0.5, alternative="greater").pvalue if a_only + b_only else 1.0
    return float(p), a_only, b_only


def pr_curve(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds): one point per distinct score, thresholds ascending (scikit-learn's
    ``precision_recall_curve`` without its closing (1, 0) point, which has no threshold)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(np.asarray(y_true, bool), np.asarray(prob, np.float64))
    return precision[:-1], recall[:-1], thresholds


def average_precision(y_true: np.ndarray, prob: np.ndarray) -> float:
    """The project's one PR-AUC: scikit-learn's average precision (step-wise area under the PR curve), used for
    epoch selection, tuning and reports alike; 0 when there is no V beat."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(y_true, bool)
    return float(average_precision_score(y, np.asarray(prob, np.float64))) if y.any() else 0.0


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    rule: str  # "both_targets" or "max_f1"
    val_precision: float
    val_recall: float


def choose_threshold(y_true: np.ndarray, prob: np.ndarray, target_prec: float, target_rec: float) -> ThresholdChoice:
    """Pick the P(V) threshold on held-out beats (the pooled out-of-fold predictions): :func:`pick_operating_point`
    on their precision-recall curve."""
    precision, recall, thresholds = pr_curve(y_true, prob)
    return pick_operating_point(precision, recall, thresholds, target_prec, target_rec)


def pick_operating_point(precision: np.ndarray, recall: np.ndarray, thresholds: np.ndarray, target_prec: float,
                         target_rec: float) -> ThresholdChoice:
    """One of the candidate ``thresholds`` (k,) given the ``precision`` and ``recall`` (k,) each gives.

    Among thresholds meeting both targets, the one with the best F1 ("both_targets"); if none does, the best-F1
    threshold ("max_f1"). Not the most sensitive threshold that reaches ``target_rec`` (the rule before the
    detected mode): on DS1's out-of-fold predictions it bought recall 0.96 at precision 0.44 (F1 0.60, against
    0.84 at the best F1), a report listing more false PVCs than real ones. Ties go to the first candidate.
    """
    precision, recall = np.asarray(precision, np.float64), np.asarray(recall, np.float64)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    both = (precision >= target_prec) & (recall >= target_rec)
    if both.any():
        i, rule = int(np.argmax(np.where(both, f1, -1))), "both_targets"
    else:
        i, rule = int(np.argmax(f1)), "max_f1"
    return ThresholdChoice(float(thresholds[i]), rule, float(precision[i]), float(recall[i]))


def score(detector, beats, prefix: str = "test") -> tuple[dict[str, float], dict]:
    """Figures of ``detector`` on annotated N and V beats for both paths: ``{prefix}_*`` with record context and
    ``{prefix}_nocontext_*`` without; also returns each path's Decisions (keys "context", "no_context")."""
    y = beats.aami == "V"
    out, decisions = {}, {}
    for name, key, ctx in (("", "context", beats.context), ("_nocontext", "no_context", None)):
        d = detector.decide(beats.windows, beats.rr, ctx)
        decisions[key] = d
        out.update({f"{prefix}{name}_{k}": v for k, v in binary_metrics(y, d.is_v).items()})
        out[f"{prefix}{name}_pr_auc"] = average_precision(y, d.prob)
        out[f"ruleguard_changed_{prefix}{name}"] = float(d.ruleguard_changed.sum())
    return out, decisions


def score_supra(detector, beats, prefix: str = "test") -> dict[str, float]:
    """S figures of ``detector`` on annotated beats (every beat of each record, in time order: the S answer reads
    the rhythm) through the recording path, over the N, S and V beats, named as :func:`score`'s V ones:
    ``{prefix}_precision_S``, ``{prefix}_recall_S``, ``{prefix}_f1_S``, ``{prefix}_pr_auc_S``; empty for a model
    without the S answer."""
    if detector.supra is None:
        return {}
    is_s, p_s = np.zeros(len(beats), bool), np.zeros(len(beats), np.float32)
    for _, rows in beats.by_record():
        d = detector.decide_recording(beats.windows[rows], beats.rr[rows], beats.context.select(rows))
        is_s[rows], p_s[rows] = d.supra(), np.nan_to_num(d.prob_s)
    scored = np.isin(beats.aami, ("N", "S", "V"))
    y = beats.aami[scored] == "S"
    out = {f"{prefix}_{k}": v for k, v in class_metrics(y, is_s[scored], "S").items()}
    out[f"{prefix}_pr_auc_S"] = average_precision(y, p_s[scored])
    return out


def plot_confusion(counts: dict[str, float], path: Path, title: str) -> Path:
    """Confusion matrix (N/V) with counts and row percentages, saved as PNG."""
    import matplotlib.pyplot as plt

    m = np.array([[counts["TN"], counts["FP"]], [counts["FN"], counts["TP"]]], dtype=float)
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(m / np.maximum(m.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            share = m[i, j] / max(m[i].sum(), 1)
            ax.text(j, i, f"{int(m[i, j])}\n{share:.1%}", ha="center", va="center",
                    color="white" if share > 0.5 else "black")
    ax.set_xticks([0, 1], ["N", "V"])
    ax.set_yticks([0, 1], ["N", "V"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference (percentages per row)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_pr(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path,
            marks: dict[str, tuple[float, float]]) -> Path:
    """Precision-recall curves (name -> (y_true, prob)) with operating points (name -> (recall, precision))."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (y, p) in curves.items():
        precision, recall, _ = pr_curve(y, p)
        ax.plot(recall, precision, label=f"{name} (AP {average_precision(y, p):.3f})")
    for name, (r, p) in marks.items():
        ax.plot([r], [p], "o", label=name)
    ax.set_xlabel("recall (V)")
    ax.set_ylabel("precision (V)")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.set_title("Precision-recall, V beats")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_history(rows: list[dict], best_epoch: int, path: Path) -> Path:
    """Two panels over the cross-validated epochs: out-of-fold PR-AUC (pooled, per fold, without context) with
    the chosen epoch marked, and the focal loss of the fold fits and of the final fit (rows from
    :func:`arritmias.training.epoch_table`)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig, (ax_ap, ax_loss) = plt.subplots(1, 2, figsize=(11, 3.8))
    for key in sorted(k for k in rows[0] if k.startswith("fold_") and k.endswith("_val_pr_auc")):
        ax_ap.plot(epochs, [r[key] for r in rows], color="0.75", lw=1)
    ax_ap.plot([], [], color="0.75", lw=1, label="each fold's held-out patients")
    ax_ap.plot(epochs, [r["val_pr_auc"] for r in rows], "o-", label="pooled out of fold, with context")
    ax_ap.plot(epochs, [r["val_pr_auc_no_context"] for r in rows], "s--", label="pooled out of fold, no context")
    ax_ap.axvline(best_epoch, color="C3", ls=":", label=f"chosen epoch ({best_epoch})")
    ax_ap.set_ylabel("PR-AUC (average precision, V)")
    ax_ap.set_title("Cross-validation on DS1 patients")
    ax_loss.plot(epochs, [r["fold_mean_train_loss"] for r in rows], label="fold fits (mean)")
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", label="final fit on all DS1")
    ax_loss.set_ylabel("focal loss (training, augmented)")
    ax_loss.set_title("Training loss")
    for ax in (ax_ap, ax_loss):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
