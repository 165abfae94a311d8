"""What the Detector answers for each beat (:class:`Decisions`) and what turns the network's probabilities into those
answers (:class:`Rule`), every number of which cross-validation chooses on DS1 (:mod:`arritmias.training.decision`).

A beat is one of: ``N`` (neither ventricular nor supraventricular ectopic), ``V`` (ventricular ectopic, a PVC),
``S`` (supraventricular ectopic: a premature atrial or junctional beat) or ``Q`` (judged not a beat, or in an
unreadable stretch: never counted as either ectopy). S is decided among the beats of a whole recording by the
second stage of :mod:`arritmias.model.supra`; a beat judged alone, or a model from before the S answer, never says S.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from arritmias.model import ruleguard
from arritmias.signal.context import Context


@dataclass(frozen=True)
class Decisions:
    """Per-beat output, each of shape (n,): P(V) the decision used (after family evidence for a recording),
    P(not a beat), the V decision, whether the detection is judged not a beat, whether RuleGuard changed the V
    decision, whether the beat was judged with its record context, whether it lies in an unreadable stretch
    (None: none does), and P(S) (NaN where the S stage is not asked: not a beat, V, or in an irregular rhythm), the
    S decision and whether the beat lies in an irregular rhythm (atrial fibrillation: no S answer there) (all three
    None: beats judged one by one, or a model without the S answer)."""

    prob: np.ndarray
    is_v: np.ndarray
    ruleguard_changed: np.ndarray
    context_used: np.ndarray
    unreadable: np.ndarray | None = None
    prob_not_beat: np.ndarray | None = None
    not_beat: np.ndarray | None = None
    prob_s: np.ndarray | None = None
    is_s: np.ndarray | None = None
    irregular: np.ndarray | None = None

    def supra(self) -> np.ndarray:
        """(n,) bool: the beats called supraventricular ectopic (never also V, never unclassified)."""
        return np.zeros(len(self.is_v), bool) if self.is_s is None else self.is_s & ~self.is_v & ~self.unclassified()

    def unclassified(self) -> np.ndarray:
        """(n,) bool: judged not a beat, or in an unreadable stretch: never V, never in a PVC burden."""
        out = np.zeros(len(self.is_v), bool)
        for mask in (self.not_beat, self.unreadable):
            if mask is not None:
                out |= mask
        return out

    def labels(self) -> np.ndarray:
        """``"V"`` / ``"N"`` per beat, ``"Q"`` (unclassifiable, as in EC57) for a detection judged not a beat or a
        beat in an unreadable stretch: the served ``label``, unchanged since before the S answer (an S beat reads
        N), so clients that count V are unaffected. :meth:`classes` tells S apart."""
        return np.where(self.unclassified(), "Q", np.where(self.is_v, "V", "N"))

    def classes(self) -> np.ndarray:
        """:meth:`labels` with the supraventricular ectopic beats as ``"S"``: the served ``class``."""
        return np.where(self.supra(), "S", self.labels())

    def ec57_labels(self) -> np.ndarray:
        """``"V"`` / ``"S"`` / ``"N"`` per beat, the test labels EC57 counts (a detection judged not a beat reads N:
        detected mode drops it before counting, reference mode keeps every reference beat a beat)."""
        return np.where(self.is_v, "V", np.where(self.supra(), "S", "N"))

    def annotation_symbols(self) -> np.ndarray:
        """WFDB symbols for an annotation file: ``N``, ``V``, ``A`` (atrial premature beat, the S class to bxb),
        ``Q`` for an unreadable beat, and ``|`` (isolated artifact, not a beat to bxb) for a detection judged not a
        beat."""
        symbols = np.where(self.is_v, "V", np.where(self.supra(), "A", "N"))
        if self.unreadable is not None:
            symbols = np.where(self.unreadable, "Q", symbols)
        return symbols if self.not_beat is None else np.where(self.not_beat, "|", symbols)

    def excluding(self, unreadable: np.ndarray) -> Decisions:
        """The same decisions with the beats of ``unreadable`` (n,) bool never called V (and labelled Q).

        An unreadable stretch wins over "not a beat": where the lead cannot be read, the network's judgement that
        a detection is no beat is no better than its V call, so such a detection counts as an unreadable beat.
        """
        unreadable = np.asarray(unreadable, bool)
        not_beat = None if self.not_beat is None else self.not_beat & ~unreadable
        is_s = None if self.is_s is None else self.is_s & ~unreadable
        return replace(self, is_v=self.is_v & ~unreadable, unreadable=unreadable, not_beat=not_beat, is_s=is_s)


@dataclass(frozen=True)
class Rule:
    """What turns the network's probabilities into answers; every number chosen on cross-validated DS1.

    threshold, threshold_no_context : P(V) at or above which a beat judged alone is V, with / without context.
    threshold_recording : the same for a beat of a whole recording, after its family's evidence.
    not_beat_threshold : P(not a beat) at or above which a detection is not a beat (never V).
    family_weight, family_corr : the family evidence's weight and the QRS correlation that makes a family.
    guard : RuleGuard's kept rules, or None.
    """

    threshold: float
    threshold_no_context: float
    threshold_recording: float
    not_beat_threshold: float
    family_weight: float = 0.0
    family_corr: float = 0.9
    guard: ruleguard.RuleGuard | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["guard"] = self.guard.to_dict() if self.guard else None
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Rule:
        guard = ruleguard.RuleGuard(**d["guard"]) if d.get("guard") else None
        return cls(**{**d, "guard": guard})


def context_mask(n: int, context: Context | None, use_context: np.ndarray | None) -> np.ndarray:
    """Which of ``n`` beats use their context: all with a context, none without, or ``use_context`` (n,) bool."""
    if context is None:
        return np.zeros(n, bool)
    return np.ones(n, bool) if use_context is None else np.asarray(use_context, bool)
