"""What a Holter report counts, from one recording's decisions: ventricular ectopy (PVC count and burden, overall
and per hour, couplets, bigeminy and trigeminy, runs of >= 3 PVCs) and, for a model with the S answer,
supraventricular ectopy (SVE count and burden, overall and per hour, couplets, SVT runs of >= 3 SVEs).

Times are seconds from the start of the recording; a run is a stretch of consecutive classified beats (detections
judged not beats are left out before counting, so they never break a run).
"""

from __future__ import annotations

import numpy as np

from arritmias.model.rule import Decisions


def summarize_decisions(decisions: Decisions, samples: np.ndarray, fs: float, duration_s: float) -> dict:
    """:func:`summarize` of a recording's beats: the detections judged not beats are left out (and counted)."""
    beat = ~decisions.not_beat if decisions.not_beat is not None else np.ones(len(samples), bool)
    unreadable = None if decisions.unreadable is None else decisions.unreadable[beat]
    is_s = None if decisions.is_s is None else decisions.supra()[beat]
    irregular = None if decisions.irregular is None else decisions.irregular[beat]
    return summarize(decisions.is_v[beat], samples[beat], fs, duration_s, unreadable, is_s, irregular) | {
        "detections_not_beats": int((~beat).sum())}


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each maximal run of consecutive True beats."""
    edges = np.diff(np.r_[0, flags.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(s), int(e - s)) for s, e in zip(starts, ends)]


def _pattern_episodes(is_v: np.ndarray, period: int, min_cycles: int = 3) -> list[tuple[int, int]]:
    """(start, beats) of episodes where every ``period``-th beat is V and the others N, >= ``min_cycles`` cycles.

    period 2 = bigeminy (V N V N V N ...), period 3 = trigeminy (V N N V N N V N N ...); an episode starts at
    its first V and spans whole cycles.
    """
    episodes, n = [], len(is_v)
    v_idx = np.flatnonzero(is_v)
    used_until = -1
    for start_v in v_idx:
        if start_v <= used_until:
            continue
        cycles, k = 0, start_v
        while k < n and is_v[k] and not is_v[k + 1: k + period].any() and k + period <= n:
            cycles += 1
            k += period
        if cycles >= min_cycles:
            episodes.append((int(start_v), int(min(cycles * period, n - start_v))))
            used_until = k - 1
    return episodes


def summarize(is_v: np.ndarray, samples: np.ndarray, fs: float, duration_s: float,
              unreadable: np.ndarray | None = None, is_s: np.ndarray | None = None,
              irregular: np.ndarray | None = None) -> dict:
    """Beats, PVC count and burden (overall and per hour), couplets, bigeminy/trigeminy episodes, runs of >= 3 PVCs
    with times (s from the start of the recording); with ``is_s`` (n,) bool, the same for supraventricular
    ectopic beats (``sve_count``, ``sve_burden_percent``, ``sve_couplets``, ``svt_runs``, and per hour), and with
    ``irregular`` (n,) bool the readable beats in an irregular rhythm, where no SVE is counted
    (``irregular_rhythm_beats``, ``irregular_rhythm_percent``: a report must not read "0 SVEs" there as "none").

    Beats in ``unreadable`` (n,) bool stretches are counted in ``beats`` but are never ectopic and do not count in
    the burdens' denominator (the share of ectopic beats among the beats that could be read).
    """
    t = samples / fs
    runs = _runs(is_v)
    n = len(is_v)
    readable = n - (int(np.sum(unreadable)) if unreadable is not None else 0)

    def span(start, length):
        return {"start_s": round(float(t[start]), 2), "end_s": round(float(t[start + length - 1]), 2),
                "beats": length}

    out = {
        "duration_s": round(duration_s, 1),
        "beats": n,
        "mean_heart_rate_bpm": round(60.0 * (n - 1) / max(t[-1] - t[0], 1e-6), 1) if n > 1 else None,
        "pvc_count": int(is_v.sum()),
        "pvc_burden_percent": round(100.0 * is_v.sum() / max(readable, 1), 2),
        "couplets": sum(1 for _, length in runs if length == 2),
        "couplet_episodes": [span(s, length) for s, length in runs if length == 2],
        "runs_of_3_or_more": [span(s, length) for s, length in runs if length >= 3],
        "bigeminy_episodes": [span(s, length) for s, length in _pattern_episodes(is_v, 2)],
        "trigeminy_episodes": [span(s, length) for s, length in _pattern_episodes(is_v, 3)],
    }
    if is_s is not None:
        is_s = np.asarray(is_s, bool)
        runs_s = _runs(is_s)
        out.update({
            "sve_count": int(is_s.sum()),
            "sve_burden_percent": round(100.0 * is_s.sum() / max(readable, 1), 2),
            "sve_couplets": sum(1 for _, length in runs_s if length == 2),
            "sve_couplet_episodes": [span(s, length) for s, length in runs_s if length == 2],
            "svt_runs": [span(s, length) for s, length in runs_s if length >= 3],
        })
        if irregular is not None:
            legible = np.ones(n, bool) if unreadable is None else ~np.asarray(unreadable, bool)
            gated = int(np.sum(np.asarray(irregular, bool) & legible))
            out.update({"irregular_rhythm_beats": gated,
                        "irregular_rhythm_percent": round(100.0 * gated / max(readable, 1), 2)})
    out["per_hour"] = _per_hour(is_v, t, duration_s, unreadable, is_s)
    return out


def _per_hour(is_v: np.ndarray, t: np.ndarray, duration_s: float, unreadable: np.ndarray | None,
              is_s: np.ndarray | None = None) -> list[dict]:
    """Beats, PVCs and their burden (and SVEs and theirs, with ``is_s``) of each hour from the start (the last
    hour may be partial)."""
    hour = (t // 3600).astype(np.int64)
    readable = np.ones(len(t), bool) if unreadable is None else ~np.asarray(unreadable, bool)
    rows = []
    for h in range(int(np.ceil(max(duration_s, 1e-9) / 3600))):
        sel = hour == h
        pvcs, read = int(is_v[sel].sum()), int((sel & readable).sum())
        row = {"hour": h, "start_s": 3600 * h, "end_s": round(min(3600 * (h + 1), duration_s), 1),
               "beats": int(sel.sum()), "pvc_count": pvcs, "pvc_burden_percent": round(100.0 * pvcs / max(read, 1), 2)}
        if is_s is not None:
            sves = int(is_s[sel].sum())
            row.update({"sve_count": sves, "sve_burden_percent": round(100.0 * sves / max(read, 1), 2)})
        rows.append(row)
    return rows
