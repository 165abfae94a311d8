"""The clinician's PVC report on seeded synthetic ECG with known beat labels: Spanish text, hh:mm:ss, the pattern
table, strips chosen from the episodes, the per-hour burden, the footer that says which model made it."""

from __future__ import annotations

import re

import numpy as np

from arritmias.analysis.ectopy import summarize
from arritmias.analysis.recording import SUPRA_CAUTION, Analysis, supra_caution
from arritmias.analysis.clinical_report import RESEARCH_ONLY, SUPRA_CAUTION_ES, choose_strips, hms, render_html
from arritmias.model.detector import Decisions
from tests.conftest import synthetic_ecg

FS = 360.0


def _analysis(is_v: np.ndarray, samples: np.ndarray, signal: np.ndarray, unreadable=None, is_s=None) -> Analysis:
    """An analysis of ``signal`` with these decisions; ``is_s`` (n,) bool: a model with the S answer."""
    n = len(samples)
    s_answer = {} if is_s is None else {"prob_s": np.where(is_s, 0.9, 0.1).astype(np.float32), "is_s": is_s}
    decisions = Decisions(np.where(is_v, 0.9, 0.1).astype(np.float32), is_v, np.zeros(n, bool), np.ones(n, bool),
                          **s_answer)
    if unreadable is not None:
        decisions = decisions.excluding(unreadable)
    summary = summarize(decisions.is_v, samples, FS, len(signal) / FS, unreadable, decisions.is_s) | {
        "record": "sint", "lead": "MLII", "source": "synthetic", "fs_in_hz": FS,
        "beats_at_edges_not_classified": 0, "seconds_unreadable": 0.0,
        "beats_unreadable_not_classified": int(np.sum(unreadable)) if unreadable is not None else 0,
        "model": {"uri": "models:/ECG_Arritmias_NvsV@production", "name": "ECG_Arritmias_NvsV", "version": 7,
                  "run_id": "abc", "threshold": 0.5, "threshold_no_context": 0.3, "threshold_recording": 0.4321,
                  "family_weight": 0.8, "not_beat_threshold": 0.5, "ruleguard": True,
                  "arritmias_version": "0.1.0"},
        "analysed_at_utc": "2026-11-29 10:00"}
    return Analysis("sint", FS, FS, samples, decisions, signal, summary)


def test_hms():
    assert hms(0) == "00:00:00" and hms(59.99) == "00:00:59" and hms(3725.4) == "01:02:05"


def test_per_hour_burden_excludes_unreadable_beats_from_the_denominator():
    t = np.arange(0.5, 2 * 3600 + 600, 1.0)  # one beat a second for 2 h 10 min
    is_v = np.zeros(len(t), bool)
    is_v[::10] = True  # 10 % in every hour
    unreadable = np.zeros(len(t), bool)
    unreadable[(t > 3600) & (t < 3600 + 1800) & ~is_v] = True  # half of the second hour unreadable
    s = summarize(is_v, np.round(t * FS).astype(np.int64), FS, 2 * 3600 + 600, unreadable)
    hours = s["per_hour"]
    assert [h["hour"] for h in hours] == [0, 1, 2] and hours[-1]["end_s"] == 7800
    assert sum(h["pvc_count"] for h in hours) == s["pvc_count"] == is_v.sum()
    assert sum(h["beats"] for h in hours) == s["beats"]
    assert hours[0]["pvc_burden_percent"] == 10.0
    assert hours[1]["pvc_burden_percent"] == round(100 * 360 / (3600 - 1620), 2)  # 1,620 unreadable N beats
    assert s["couplets"] == len(s["couplet_episodes"]) == 0


def test_report_is_spanish_and_shows_the_first_episode_of_each_kind():
    signal, r, _ = synthetic_ecg(300, FS, seed=3)
    n = len(r)
    is_v = np.zeros(n, bool)
    is_v[[40, 41]] = True  # a couplet
    is_v[100:104] = True  # a run of 4
    is_v[200:212:2] = True  # bigeminy, 6 cycles
    a = _analysis(is_v, r, signal)
    strips = choose_strips(a)
    titles = [title for title, _ in strips]
    assert titles[:3] == ["Primera pareja de EV", "Primera racha de ≥ 3 EV", "Primer episodio de bigeminismo"]
    couplet_t = r[40] / FS
    assert strips[0][1] <= couplet_t <= strips[0][1] + 10  # the strip shows the couplet
    page = render_html(a)
    assert '<html lang="es">' in page and RESEARCH_ONLY in page
    assert "00:05:00" in page  # the duration in hh:mm:ss
    assert f"{hms(couplet_t)}" in page  # the first couplet's time in the pattern table
    assert "ECG_Arritmias_NvsV versión 7" in page and "P(V) ≥ 0,432" in page and "2026-11-29 10:00" in page
    pct = f"{100 * is_v.sum() / n:.2f}".replace(".", ",")
    assert f"{pct} % de los latidos legibles" in page
    assert page.count("data:image/png;base64,") == 1 + len(strips)  # per-minute chart + strips
    assert not re.search(r"duration_s|pvc_burden_percent|start_s", page)  # no raw summary keys on the page


def test_a_recording_without_pvcs_gets_one_strip_and_a_dash_per_pattern():
    signal, r, _ = synthetic_ecg(60, FS, seed=5)
    a = _analysis(np.zeros(len(r), bool), r, signal)
    assert [t for t, _ in choose_strips(a)] == ["Inicio del registro (sin EV)"]
    page = render_html(a)
    assert "Todos los episodios" not in page and page.count("<td>—</td>") == 8


def test_supraventricular_ectopy_is_counted_apart_from_ventricular():
    """SVEs, their couplets and SVT runs (>= 3) are counted from the S calls alone: a PVC between two SVEs breaks
    the run, and a model without the S answer adds no SVE keys at all."""
    #                 0    1    2    3    4    5    6    7    8    9   10   11   12   13   14   15
    pattern = list("N" "S" "S" "N" "S" "S" "S" "N" "S" "V" "S" "N" "S" "S" "S" "S")
    is_v = np.array([c == "V" for c in pattern])
    is_s = np.array([c == "S" for c in pattern])
    t = 0.8 * np.arange(len(pattern)) + 0.4
    samples = np.round(t * FS).astype(np.int64)
    s = summarize(is_v, samples, FS, 20.0, None, is_s)
    assert s["sve_count"] == 11 and s["pvc_count"] == 1
    assert s["sve_burden_percent"] == round(100 * 11 / 16, 2)
    assert s["sve_couplets"] == 1 and s["sve_couplet_episodes"][0]["start_s"] == round(float(t[1]), 2)
    assert [r["beats"] for r in s["svt_runs"]] == [3, 4]  # S V S is two isolated SVEs, not a run
    assert s["svt_runs"][1]["end_s"] == round(float(t[15]), 2)
    assert s["per_hour"][0]["sve_count"] == 11
    assert s["couplets"] == 0 and s["runs_of_3_or_more"] == []  # the SVEs are no PVCs
    without = summarize(is_v, samples, FS, 20.0)
    assert "sve_count" not in without and "svt_runs" not in without and "sve_count" not in without["per_hour"][0]


def test_beats_in_an_irregular_rhythm_are_reported_as_not_counted_for_sves():
    """In atrial fibrillation the S answer is not given; the summary and the page say how much of the recording
    that was, so "0 SVEs" is not read as "no SVEs"; a model without the gate (or the S answer) adds nothing."""
    signal, r, _ = synthetic_ecg(120, FS, seed=4)
    n = len(r)
    is_v, is_s = np.zeros(n, bool), np.zeros(n, bool)
    is_s[10] = True
    irregular = np.zeros(n, bool)
    irregular[n // 2:] = True
    unreadable = np.zeros(n, bool)
    unreadable[-4:] = True  # unreadable beats count in neither the gated beats nor the denominator
    s = summarize(is_v, r, FS, len(signal) / FS, unreadable, is_s, irregular)
    gated = n - n // 2 - 4
    assert s["irregular_rhythm_beats"] == gated
    assert s["irregular_rhythm_percent"] == round(100 * gated / (n - 4), 2)
    assert "irregular_rhythm_beats" not in summarize(is_v, r, FS, len(signal) / FS, unreadable, is_s)
    assert "irregular_rhythm_beats" not in summarize(is_v, r, FS, len(signal) / FS, unreadable, None, irregular)
    a = _analysis(is_v, r, signal)
    page = render_html(Analysis(a.name, FS, FS, r, a.decisions, signal, a.summary | s))
    pct = f"{100 * gated / (n - 4):.2f}".replace(".", ",")
    assert f"Ritmo irregular (compatible con fibrilación o flúter auricular)</th><td>{pct} %" in page
    assert "ahí no se cuentan ESV" not in render_html(a)


def test_an_sve_count_comes_with_its_caution_and_a_pvc_count_alone_does_not():
    """The S answer is experimental (off by default, far from its targets on new patients): the page and the
    console say so wherever an SVE count is given, and only there."""
    signal, r, _ = synthetic_ecg(60, FS, seed=6)
    is_v, is_s = np.zeros(len(r), bool), np.zeros(len(r), bool)
    is_s[[20, 35]] = True
    with_s = _analysis(is_v, r, signal, is_s=is_s)
    page = render_html(with_s)
    assert "Extrasístoles supraventriculares (ESV)" in page and SUPRA_CAUTION_ES in page
    assert supra_caution(with_s.summary) == SUPRA_CAUTION
    without = _analysis(is_v, r, signal)
    assert SUPRA_CAUTION_ES not in render_html(without) and supra_caution(without.summary) is None
