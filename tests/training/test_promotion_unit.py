"""The champion/challenger rule as a pure function of labels and two prediction arrays (promote --challenger and
ab-report both use it)."""

from __future__ import annotations

import numpy as np

from arritmias.training.promotion import decide

Y = np.array([True] * 50 + [False] * 450)


def _flip(pred: np.ndarray, rows) -> np.ndarray:
    out = pred.copy()
    out[list(rows)] = ~out[list(rows)]
    return out


def test_an_equal_or_better_challenger_is_accepted():
    champion = _flip(Y, range(0, 5))  # misses 5 PVCs
    d = decide(Y, _flip(Y, range(0, 3)), champion)  # misses 3
    assert d.accepted and d.challenger_metrics["f1_V"] > d.champion_metrics["f1_V"]
    assert d.challenger_only_right == 2 and d.champion_only_right == 0 and d.p_value > 0.05
    assert decide(Y, champion, champion).accepted  # a tie is not a reason to refuse


def test_a_lower_f1_is_refused():
    d = decide(Y, _flip(Y, range(0, 6)), _flip(Y, range(0, 5)))
    assert not d.accepted and d.reason.startswith("V F1") and "<" in d.reason


def test_a_challenger_significantly_worse_on_the_beats_is_refused_even_with_a_higher_f1():
    # The champion misses 30 of the 50 PVCs (F1 0.571); the challenger finds them all but raises 70 false
    # alarms (F1 0.588): a higher V F1, yet it is wrong on 70 beats the champion gets right and right on only
    # 30 the champion gets wrong, which McNemar's test calls significantly worse.
    champion = _flip(Y, range(0, 30))
    challenger = _flip(Y, range(50, 120))
    d = decide(Y, challenger, champion)
    assert d.challenger_metrics["f1_V"] > d.champion_metrics["f1_V"]
    assert (d.challenger_only_right, d.champion_only_right) == (30, 70)
    assert not d.accepted and d.reason.startswith("McNemar") and d.p_value < 0.05
