"""Live drift: PSI of the last beats' features against the training beats', on real MIT-BIH beats (DS1)."""

from __future__ import annotations

import numpy as np

from arritmias.model.drift_reference import load_reference, psi, reference, save_reference
from arritmias.serving.live_drift import LiveDrift


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift():
    even = np.full(10, 0.1)
    assert psi(np.full(10, 50), even) == 0.0
    assert 0 < psi(np.r_[np.full(5, 60), np.full(5, 40)], even) < psi(np.r_[np.full(5, 90), np.full(5, 10)], even)


def test_same_beats_stay_quiet_a_gain_change_or_noise_is_seen(mitdb, cache_dir, tmp_path):
    from arritmias.data.beats import build_beats

    beats = build_beats(mitdb, ("101", "106", "203", "208"), 0, 360, 360.0, cache_dir, progress=False)
    ref = load_reference(save_reference(reference(beats.windows, beats.rr, 360.0), tmp_path).parent)
    assert "corr_median_beat" not in ref and abs(sum(ref["ptp_mv"]["shares"]) - 1) < 1e-5
    rng = np.random.default_rng(0)
    rows = rng.choice(len(beats.windows), 2000, replace=False)
    seen = []
    for change in (lambda w: w, lambda w: 2 * w, lambda w: w + rng.normal(0, 0.05, w.shape).astype(np.float32)):
        live = LiveDrift(ref, 360.0, window=2000, every_s=3600, on_scores=seen.append)
        for k in range(0, 2000, 100):  # requests of 100 beats
            live.add(change(beats.windows[rows[k:k + 100]]), beats.rr[rows[k:k + 100]])
        scores = live.update()
        live.close()
        assert seen[-1] == scores and set(scores) == set(ref)
        if len(seen) == 1:
            assert max(scores.values()) < 0.1, scores  # the training beats themselves
        elif len(seen) == 2:
            assert scores["ptp_mv"] > 2 and scores["r_amplitude_mv"] > 2 and scores["rr_ratio"] < 0.1
        else:
            assert scores["noise_mv2"] > 2


def test_the_window_forgets_old_beats(mitdb, cache_dir):
    from arritmias.data.beats import build_beats

    beats = build_beats(mitdb, ("101", "106"), 0, 360, 360.0, cache_dir, progress=False)
    ref = reference(beats.windows, beats.rr, 360.0)
    live = LiveDrift(ref, 360.0, window=500, every_s=3600)
    first, then = np.split(np.random.default_rng(1).permutation(len(beats.windows))[:1000], 2)
    for rows in np.split(first, 4):  # four updates of a quarter window each (what a second of traffic gives)
        live.add(2 * beats.windows[rows], beats.rr[rows])
        scores = live.update()
    assert scores["ptp_mv"] > 2
    live.add(beats.windows[then], beats.rr[then])  # a burst: only its latest quarter window is featurised
    assert live.update()["ptp_mv"] > 0.5
    for rows in np.split(then, 4):  # a full window of normal beats again
        live.add(beats.windows[rows], beats.rr[rows])
        scores = live.update()
    assert scores["ptp_mv"] < 0.5
    live.close()
