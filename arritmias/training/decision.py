"""The decision rule on top of the network, chosen on the pooled out-of-fold predictions of every training
patient (:mod:`arritmias.training.crossval`), in detected mode where it matters: what a user's recording gives.

1. the single-beat thresholds (a served beat with and without its record context): the P(V) threshold rule of
   :func:`arritmias.training.evaluation.pick_operating_point` (both targets if possible, else the best F1) on the
   detected real beats;
2. for each candidate family weight: the not-a-beat threshold that best separates the detector's real beats from
   its false detections (QRS F1, EC57 counting), then the recording threshold on P(V) by the same rule as 1, on
   EC57's gross VEB Se and +P; the weight whose operating point has the best VEB F1 (the weight-0 line is the
   ablation without families, logged beside it);
3. which RuleGuard rules stay, on the recording path's decisions;
4. the S answer's second stage (:mod:`arritmias.model.supra`), on the beats steps 1-3 leave neither V nor not a
   beat, outside irregular rhythms (``supra_af_gate``): its P(S) out of fold over DS1 patients
   (:mod:`arritmias.training.supra`), the threshold on EC57's gross SVEB Se and +P (targets ``target_prec_s`` /
   ``target_rec_s``, else the best F1), then the stage fitted on them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arritmias.data import matching as ec57
from arritmias.signal import families
from arritmias.model import ruleguard
from arritmias.data.beats import BeatSet, ReferenceBeats
from arritmias.config import TrainConfig
from arritmias.training.crossval import CVResult
from arritmias.model.detector import Detector, Rule
from arritmias.training.evaluation import (average_precision, binary_metrics, choose_threshold,
                                           mcnemar_greater, pick_operating_point)
from arritmias.model.preprocess import NOT_BEAT_INDEX, V_INDEX
from arritmias.model.ruleguard import RuleGuard
from arritmias.model.supra import SupraStage, stage_inputs
from arritmias.signal.rhythm import FEATURES
from arritmias.training import supra as supra_fit

RULE_KEEP_P = 0.05  # a rule's fixes must outnumber its breakages beyond chance (one-sided sign test)
NOT_BEAT_GRID = np.round(np.arange(0.3, 0.951, 0.05), 2)
V_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
S_GRID = V_GRID


def choose_rules(cfg: TrainConfig, windows: np.ndarray, rr: np.ndarray, y: np.ndarray, prob: np.ndarray,
                 plain: np.ndarray) -> tuple[RuleGuard | None, dict[str, float]]:
    """Keep each RuleGuard rule whose changes on held-out beats are significantly more often right.

    ``windows`` (n, win), ``rr`` (n, 3), ``y`` (n,) bool V, ``prob`` (n,) the P(V) the decisions used and
    ``plain`` (n,) bool the decisions without rules. Applied alone, a rule changes some decisions: ``fixed`` turn
    a wrong decision right, ``broken`` a right one wrong. The rule stays when fixed > broken with a one-sided sign
    (McNemar exact) test p < ``RULE_KEEP_P``: a rule that flips decisions at random would otherwise survive about
    half the time on a noisy F1 difference. Returns the guard (None when no rule stays) and what was measured.
    """
    info = {"cv_f1_V_without_ruleguard": binary_metrics(y, plain)["f1_V"], "ruleguard_kept": 0.0}
    if not cfg.use_ruleguard:
        return None, info
    keep = {}
    for rule in ("veto", "rescue"):
        alone = RuleGuard(veto=rule == "veto", rescue=rule == "rescue", fs=cfg.fs)
        ruled, _ = ruleguard.apply(alone, windows, rr, prob, plain)
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
    """What the pooled out-of-fold predictions chose: the Detector's :class:`~arritmias.model.detector.Rule`, how the
    single-beat threshold was chosen, and the cross-validated figures behind it all."""

    rule: Rule
    threshold_rule: str
    metrics: dict[str, float]
    supra: SupraStage | None = None


def record_matches(beats: BeatSet, refs: dict[str, ReferenceBeats], fs: float) -> tuple[list[np.ndarray], list]:
    """Each record's rows of ``beats`` (detections in time order) and their EC57 matching to ``refs`` (what steps 2
    and 4 count on)."""
    per_record = beats.by_record()
    return [r for _, r in per_record], [ec57.match_detections(refs[n].samples, refs[n].aami, beats.sample[r], fs,
                                                              exclude=refs[n].unscored) for n, r in per_record]


def _gross(counts: list[dict[str, int]]) -> dict[str, float | None]:
    return ec57.figures({k: sum(c[k] for c in counts) for k in counts[0]})


def _f1(a: float | None, b: float | None) -> float:
    return 0.0 if not a or not b else 2 * a * b / (a + b)


def _operating_point(cfg: TrainConfig, matched: list, rows: list[np.ndarray], probs: np.ndarray) -> dict:
    """Step 2 of the module docstring for one family weight: ``probs`` (n, k) already smoothed."""
    p_v, p_x = probs[:, V_INDEX], probs[:, NOT_BEAT_INDEX]
    qrs_f1 = []
    for t in NOT_BEAT_GRID:
        g = _gross([ec57.counts_of(m, p_x[r] < t, np.zeros(len(r), bool)) for m, r in zip(matched, rows)])
        qrs_f1.append(_f1(g["qrs_se"], g["qrs_ppv"]))
    t_x = float(NOT_BEAT_GRID[int(np.argmax(qrs_f1))])
    se, ppv = [], []
    for t in V_GRID:
        g = _gross([ec57.counts_of(m, p_x[r] < t_x, (p_v[r] >= t) & (p_x[r] < t_x)) for m, r in zip(matched, rows)])
        se.append(g["veb_se"] or 0.0)
        ppv.append(g["veb_ppv"] or 0.0)
    choice = pick_operating_point(np.array(ppv), np.array(se), V_GRID, cfg.target_prec, cfg.target_rec)
    return {"not_beat_threshold": t_x, "threshold_recording": choice.threshold, "veb_se": choice.val_recall,
            "veb_ppv": choice.val_precision, "f1": _f1(choice.val_recall, choice.val_precision)}


def _supra_point(cfg: TrainConfig, matched: list, rows: list[np.ndarray], p_s: np.ndarray, keep: np.ndarray,
                 is_v: np.ndarray) -> dict:
    """Step 4's threshold: ``p_s`` (n,) out-of-fold P(S) (NaN where there is none); ``keep`` (n,) the detections
    judged beats and ``is_v`` (n,) the V decisions, both already made."""
    se, ppv = [], []
    for t in S_GRID:
        labels = np.where(is_v, "V", np.where((p_s >= t) & keep, "S", "N"))
        g = _gross([ec57.counts_of(m, keep[r], labels[r]) for m, r in zip(matched, rows)])
        se.append(g["sveb_se"] or 0.0)
        ppv.append(g["sveb_ppv"] or 0.0)
    choice = pick_operating_point(np.array(ppv), np.array(se), S_GRID, cfg.target_prec_s, cfg.target_rec_s)
    return {"threshold_s_recording": choice.threshold, "sveb_se": choice.val_recall, "sveb_ppv": choice.val_precision,
            "f1": _f1(choice.val_recall, choice.val_precision)}


def ec57_figures(detector: Detector, beats: BeatSet, probs: np.ndarray, refs: dict[str, ReferenceBeats],
                 drop_not_beats: bool) -> ec57.Ec57Result:
    """EC57 result of ``detector``'s recording path on ``beats`` (record by record, time order) given their
    ``probs`` (n, k), matched exactly against ``refs``; detections judged not beats are dropped when
    ``drop_not_beats`` (detected mode), kept as non-V beats otherwise (reference mode: every reference beat is a
    beat)."""
    counts = {}
    for name, rows in beats.by_record():
        d = detector.decide_recording(beats.windows[rows], beats.rr[rows], beats.context.select(rows), probs[rows])
        keep = ~d.not_beat if drop_not_beats else np.ones(len(rows), bool)
        ref = refs[name]
        counts[name] = ec57.record_counts(ref.samples, ref.aami, beats.sample[rows][keep], d.ec57_labels()[keep],
                                          detector.fs, exclude=ref.unscored)
    return ec57.summarize("detected" if drop_not_beats else "reference", counts)


def choose_decision_rule(cfg: TrainConfig, cv: CVResult, refs: dict[str, ReferenceBeats]) -> DecisionRule:
    """Steps 1-4 of the module docstring on ``cv``'s out-of-fold predictions; ``refs`` are the training records'
    reference beats, for EC57 counting."""
    det = cv.detected
    beats = det.aami != "X"
    real = beats & (det.aami != "F")
    y = det.aami == "V"
    choice = choose_threshold(y[real], cv.probs[real, V_INDEX], cfg.target_prec, cfg.target_rec)
    choice_nc = choose_threshold(y[real], cv.probs_no_context[real, V_INDEX], cfg.target_prec, cfg.target_rec)
    rows, matched = record_matches(det, refs, cfg.fs)
    # Family numbers restart in each record: the record's position in the high bits keeps them apart in the pool.
    family = np.zeros(len(det), np.int64)
    for i, r in enumerate(rows):
        family[r] = families.assign(det.windows[r], cfg.fs, cfg.family_corr) + (i << 32)
    metrics: dict[str, float] = {}
    best = None
    for w in cfg.family_weights:
        point = _operating_point(cfg, matched, rows, families.smooth(cv.probs, family, w))
        metrics.update({f"cv_ec57_detected_veb_se_w{w:g}": point["veb_se"],
                        f"cv_ec57_detected_veb_ppv_w{w:g}": point["veb_ppv"]})
        if best is None or point["f1"] > best[1]["f1"] + 1e-9:
            best = (w, point)
    w, point = best
    smoothed = families.smooth(cv.probs, family, w)
    plain = (smoothed[:, V_INDEX] >= point["threshold_recording"]) & (smoothed[:, NOT_BEAT_INDEX] <
                                                                        point["not_beat_threshold"])
    guard, info = choose_rules(cfg, det.windows[real], det.rr[real], y[real], smoothed[real, V_INDEX], plain[real])
    metrics.update(info)
    rule = Rule(choice.threshold, choice_nc.threshold, point["threshold_recording"], point["not_beat_threshold"],
                w, cfg.family_corr, guard)
    probe = Detector(None, rule, cfg.win, cfg.fs, cfg.use_context)  # decides from the probabilities it is given
    for prefix, ctx, probs in (("cv", det.context, cv.probs), ("cv_nocontext", None, cv.probs_no_context)):
        d = probe.decide(det.windows[real], det.rr[real], None if ctx is None else ctx.select(real), probs=probs[real])
        metrics.update({f"{prefix}_{k}": v for k, v in binary_metrics(y[real], d.is_v).items()
                        if k in ("precision_V", "recall_V", "f1_V", "accuracy")})
        metrics[f"{prefix}_pr_auc"] = average_precision(y[real], probs[real, V_INDEX])
    for mode, beats_, probs, drop in (("detected", det, cv.probs, True),
                                      ("reference", cv.reference, cv.probs_reference, False)):
        g = ec57_figures(probe, beats_, probs, refs, drop).gross
        metrics.update({f"cv_ec57_{mode}_{k}": v for k, v in g.items() if v is not None and "sveb" not in k})
    stage, info = choose_supra(cfg, probe, det, cv.probs, matched, rows) if cfg.use_supra else (None, {})
    metrics.update(info)
    metrics.update({"threshold": rule.threshold, "threshold_no_context": rule.threshold_no_context,
                    "threshold_recording": rule.threshold_recording, "not_beat_threshold": rule.not_beat_threshold,
                    "family_weight": w, "best_epoch": float(cv.best_epoch)})
    return DecisionRule(rule, choice.rule, metrics, stage)


def choose_supra(cfg: TrainConfig, probe: Detector, det: BeatSet, probs: np.ndarray, matched: list,
                 rows: list[np.ndarray]) -> tuple[SupraStage | None, dict[str, float]]:
    """Step 4 of the module docstring: ``probe`` (the chosen rule, no S stage) decides V and not a beat on ``det``
    from its out-of-fold ``probs`` (n, 3), recording by recording; ``matched`` / ``rows`` per record as in step 2.
    Returns the stage (None when DS1 gives no S beat to learn from) and its cross-validated figures
    ``cv_ec57_detected_sveb_se`` / ``_ppv``, ``cv_pr_auc_S``, ``cv_irregular_rhythm_fraction`` (of the non-V beats,
    in an irregular rhythm, so never S) and ``threshold_s``."""
    n = len(det)
    is_v, keep, asked = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    x = np.zeros((n, len(FEATURES)), np.float32)
    for r in rows:
        d = probe.decide_recording(det.windows[r], det.rr[r], det.context.select(r), probs[r])
        is_v[r], keep[r] = d.is_v, ~d.not_beat
        x[r], asked[r], _ = stage_inputs(det.rr[r], d.not_beat, d.is_v, cfg.supra_af_gate)
    learn = asked & (det.aami != "X")  # the stage learns where it is asked and the reference has a beat
    y = det.aami == "S"
    if y[learn].sum() == 0 or y[learn].all():
        return None, {}
    p_s = np.full(n, np.nan, np.float32)
    p_s[asked] = supra_fit.out_of_fold(cfg, x[asked], y[asked], det.record[asked], learn[asked])
    point = _supra_point(cfg, matched, rows, p_s, keep, is_v)
    stage = supra_fit.fit_stage(cfg, x[learn], y[learn], point["threshold_s_recording"])
    # PR-AUC over every real beat left non-V, the gated ones included (P(S) 0): S beats the gate hides count as missed
    scored = keep & ~is_v & (det.aami != "X")
    return stage, {"cv_ec57_detected_sveb_se": point["sveb_se"], "cv_ec57_detected_sveb_ppv": point["sveb_ppv"],
                   "cv_pr_auc_S": average_precision(y[scored], np.nan_to_num(p_s[scored])),
                   "cv_irregular_rhythm_fraction": float(np.mean(~asked[scored])), "threshold_s": stage.threshold}
