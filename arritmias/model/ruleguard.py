"""RuleGuard: physiological rules applied after the network's threshold, on one beat's window and RR.

The rules use only what a served request carries (the raw window and its RR features), so they run
identically in training, evaluation and serving. Their cut-offs are textbook values, not fitted: a ventricular
beat has a wide QRS (>= 120 ms; the AHA/ACCF/HRS 2009 criterion for intraventricular conduction delay) and is
premature, usually with a compensatory pause; a supraventricular beat conducted normally has a QRS < 100 ms.
Training decides only which rules are kept: each rule stays when, applied alone, it raises V F1 on the
validation patients. (A wide QRS alone does not make a beat ventricular: bundle-branch-block beats are wide too,
which is why the rescue rule asks for a pause as well and must prove itself on validation.)

Rules
-----
1. **Veto** a V call whose evidence is weak (P(V) < ``veto_below``) when the beat is narrow (QRS < 100 ms) and
   not premature (next/previous RR within 0.9-1.1): such a beat looks like the patient's normal rhythm.
2. **Rescue** an N call with some evidence (P(V) >= ``rescue_above``) when the beat is wide (QRS >= 120 ms),
   premature and followed by a pause (next/previous RR >= 1.3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from arritmias.signal.measures import qrs_width_ms

NARROW_QRS_MS = 100.0
WIDE_QRS_MS = 120.0
REGULAR_RR_RATIO = (0.9, 1.1)
PAUSE_RR_RATIO = 1.3


@dataclass(frozen=True)
class RuleGuard:
    """Which rules are on, and their evidence limits; the QRS and RR cut-offs are the module constants above."""

    veto: bool = True
    rescue: bool = True
    veto_below: float = 0.9  # above this the network is sure enough to overrule the rules
    rescue_above: float = 0.2  # below this no rule may turn a beat into V
    fs: float = 360.0

    def active(self) -> bool:
        return self.veto or self.rescue

    def to_dict(self) -> dict:
        return asdict(self)


def apply(guard: RuleGuard, windows: np.ndarray, rr: np.ndarray, prob: np.ndarray,
          labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply the rules to thresholded decisions.

    Parameters
    ----------
    windows : ndarray (n, win), raw mV; rr : ndarray (n, 3) as in requests; prob : ndarray (n,) P(V);
    labels : ndarray (n,) bool, True = V after the threshold.

    Returns
    -------
    (labels, changed) : two bool arrays of shape (n,): the final V decisions and where a rule changed one.
    """
    width = qrs_width_ms(np.asarray(windows, np.float32), guard.fs)
    ratio = np.asarray(rr, np.float32)[:, 1] / np.maximum(np.asarray(rr, np.float32)[:, 0], 1e-6)
    regular = (ratio >= REGULAR_RR_RATIO[0]) & (ratio <= REGULAR_RR_RATIO[1])
    veto = guard.veto & labels & (prob < guard.veto_below) & (width < NARROW_QRS_MS) & regular
    rescue = guard.rescue & ~labels & (prob >= guard.rescue_above) & (width >= WIDE_QRS_MS) & (ratio >= PAUSE_RR_RATIO)
    out = (labels & ~veto) | rescue
    return out, veto | rescue
