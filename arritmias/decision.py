"""The decision rule on top of the network, chosen on the pooled out-of-fold predictions of every DS1 patient:
one P(V) threshold per path (with and without record context), then which RuleGuard rules stay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arritmias import ruleguard
from arritmias.beats import BeatSet
from arritmias.config import TrainConfig
from arritmias.detector import Detector
from arritmias.evaluation import average_precision, binary_metrics, choose_threshold, mcnemar_greater
from arritmias.ruleguard import RuleGuard

RULE_KEEP_P = 0.05  # a rule's fixes must outnumber its breakages beyond chance (one-sided sign test)


def choose_rules(cfg: TrainConfig, held_out: BeatSet, prob: np.ndarray,
                 plain: np.ndarray) -> tuple[RuleGuard | None, dict[str, float]]:
    """Keep each RuleGuard rule whose changes on the held-out beats are significantly more often right.

    ``prob`` (n,) is the out-of-fold P(V) of ``held_out``'s beats and ``plain`` (n,) bool their thresholded
    decisions. Applied alone, a rule changes some decisions: ``fixed`` turn a wrong decision right, ``broken`` a
    right one wrong. The rule stays when fixed > broken with a one-sided sign (McNemar exact) test
    p < ``RULE_KEEP_P``: a rule that flips decisions at random would otherwise survive about half the time on a
    noisy F1 difference. Returns the guard (None when no rule stays) and what was measured.
    """
    y = held_out.aami == "V"
    info = {"cv_f1_V_without_ruleguard": binary_metrics(y, plain)["f1_V"], "ruleguard_kept": 0.0}
    if not cfg.use_ruleguard:
        return None, info
    keep = {}
    for rule in ("veto", "rescue"):
        alone = RuleGuard(veto=rule == "veto", rescue=rule == "rescue", fs=cfg.fs)
        ruled, _ = ruleguard.apply(alone, held_out.windows, held_out.rr, prob, plain)
        p, fixed, broken = mcnemar_greater(y, ruled, plain)
        keep[rule] = bool(fixed > broken and p < RULE_KEEP_P)
        info.update({f"ruleguard_{rule}_fixed_cv": fixed, f"ruleguard_{rule}_broken_cv": broken,
                     f"ruleguard_{rule}_p_cv": p, f"ruleguard_{rule}_kept": float(keep[rule]),
                     f"cv_f1_V_with_{rule}": binary_metrics(y, ruled)["f1_V"]})
    guard = RuleGuard(**keep, fs=cfg.fs)
    if not guard.active():
        return None, info
    info["ruleguard_kept"] = 1.0
    return guard, info


@dataclass(frozen=True)
class DecisionRule:
    """What the pooled out-of-fold predictions chose: the two thresholds, RuleGuard, and the figures behind them."""

    threshold: float
    threshold_no_context: float
    threshold_rule: str
    guard: RuleGuard | None
    metrics: dict[str, float]


def choose_decision_rule(cfg: TrainConfig, cv) -> DecisionRule:
    """Thresholds for both paths (:func:`choose_threshold` on the pooled out-of-fold P(V)), then RuleGuard's rules;
    the cross-validated figures of the resulting rule (``cv_*``: context path, ``cv_nocontext_*``)."""
    held = cv.held_out
    y = held.aami == "V"
    choice = choose_threshold(y, cv.prob, cfg.target_prec, cfg.target_rec)
    choice_nc = choose_threshold(y, cv.prob_no_context, cfg.target_prec, cfg.target_rec)
    guard, metrics = choose_rules(cfg, held, cv.prob, cv.prob >= choice.threshold)
    # The chosen rule as a Detector without a network: it decides from the out-of-fold probabilities given to it.
    probe = Detector(None, choice.threshold, choice_nc.threshold, guard, cfg.win, cfg.fs, cfg.use_context)
    for prefix, ctx, prob in (("cv", held.context, cv.prob), ("cv_nocontext", None, cv.prob_no_context)):
        d = probe.decide(held.windows, held.rr, ctx, prob=prob)
        metrics.update({f"{prefix}_{k}": v for k, v in binary_metrics(y, d.is_v).items()
                        if k in ("precision_V", "recall_V", "f1_V", "accuracy")})
        metrics[f"{prefix}_pr_auc"] = average_precision(y, prob)
    metrics.update({"threshold": choice.threshold, "threshold_no_context": choice_nc.threshold,
                    "best_epoch": float(cv.best_epoch)})
    return DecisionRule(choice.threshold, choice_nc.threshold, choice.rule, guard, metrics)
