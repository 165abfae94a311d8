"""Beat-level metrics, the validation threshold rule, and the plots logged with every run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """TN, FP, FN, TP for V as the positive class (bool arrays of shape (n,))."""
    y_true, y_pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    return {"TN": int(np.sum(~y_true & ~y_pred)), "FP": int(np.sum(~y_true & y_pred)),
            "FN": int(np.sum(y_true & ~y_pred)), "TP": int(np.sum(y_true & y_pred))}


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and per-class precision/recall/F1 (V positive, N negative) plus the four counts."""
    c = confusion(y_true, y_pred)
    out: dict[str, float] = {"accuracy": _ratio(c["TP"] + c["TN"], sum(c.values()))}
    for cls, tp, fp, fn in (("V", c["TP"], c["FP"], c["FN"]), ("N", c["TN"], c["FN"], c["FP"])):
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        out[f"precision_{cls}"], out[f"recall_{cls}"] = p, r
        out[f"f1_{cls}"] = _ratio(2 * p * r, p + r) if p + r else 0.0
    out.update({k: float(v) for k, v in c.items()})
    return out


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
    """(precision, recall, thresholds): one point per distinct score, thresholds descending."""
    y = np.asarray(y_true, bool)
    order = np.argsort(-prob, kind="stable")
    p_sorted, y_sorted = prob[order], y[order]
    last = np.r_[np.nonzero(np.diff(p_sorted))[0], len(p_sorted) - 1]
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(int(y.sum()), 1)
    return precision, recall, p_sorted[last]


def average_precision(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Area under the precision-recall curve (step-wise, as scikit-learn's average_precision_score)."""
    if not np.any(y_true):
        return 0.0
    precision, recall, _ = pr_curve(y_true, prob)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    rule: str  # "both_targets", "recall_wins" or "max_f1"
    val_precision: float
    val_recall: float


def choose_threshold(y_true: np.ndarray, prob: np.ndarray, target_prec: float, target_rec: float) -> ThresholdChoice:
    """Pick the P(V) threshold on validation beats.

    Among thresholds meeting both targets, the one with the best F1 ("both_targets"). If none does, recall wins:
    the highest-precision threshold that still reaches ``target_rec`` ("recall_wins"), because a missed PVC is
    worse than one flagged for review. If even recall cannot be reached, the best-F1 threshold ("max_f1").
    """
    precision, recall, thresholds = pr_curve(y_true, prob)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    both = (precision >= target_prec) & (recall >= target_rec)
    if both.any():
        i, rule = int(np.argmax(np.where(both, f1, -1))), "both_targets"
    elif (recall >= target_rec).any():
        i, rule = int(np.argmax(np.where(recall >= target_rec, precision, -1))), "recall_wins"
    else:
        i, rule = int(np.argmax(f1)), "max_f1"
    return ThresholdChoice(float(thresholds[i]), rule, float(precision[i]), float(recall[i]))


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
    ax.set_ylabel("reference")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_pr(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, marks: dict[str, tuple[float, float]]) -> Path:
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
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_history(history: list[dict], path: Path) -> Path:
    """Loss, accuracy and PR-AUC per epoch, train vs validation."""
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, metric in zip(axes, ("loss", "accuracy", "pr_auc")):
        ax.plot(epochs, [h[f"train_{metric}"] for h in history], label="train (augmented)")
        ax.plot(epochs, [h[f"val_{metric}"] for h in history], label="validation")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
