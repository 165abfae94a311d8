r"""Rhythm features of each beat: what a cardiologist reads on the RR tachogram to call a beat supraventricular
ectopic (a premature atrial or junctional beat, AAMI S), from the beat times alone.

A premature atrial beat has the patient's usual QRS (so its shape says little; the V network already looks at
shapes), but it comes *early against the patient's own rhythm*, abruptly (the RR before it is shorter than the
RR before that: sinus arrhythmia shortens RR gradually), and in a regular rhythm (in atrial fibrillation every
beat is "early" or "late" and none is called an atrial premature beat). What follows it, a pause that resets the
sinus node (usually less than fully compensatory), is the last clue. How early is early depends on the patient: a
young patient's sinus arrhythmia swings the RR by 15 % with each breath, while in a steady rhythm a beat 10 % early
already stands out, so the prematurity is also read in units of the patient's own spread. Seven numbers per beat
say exactly that:

==================  ======================================================================================
``prematurity``     log(RR before / usual RR): the usual RR is the median of the ``USUAL_BEATS`` RRs before
``next_vs_usual``   log(RR after / usual RR): the pause after the beat
``next_vs_prev``    log(RR after / RR before)
``irregularity``    median of \|log(RR after / RR before)\| over ``IRREGULAR_HALF`` beats on each side: high in
                    atrial fibrillation, near 0 in sinus rhythm with occasional premature beats
``abruptness``      log(RR before / the RR before that)
``vs_recent``       log(RR before / median of the ``RECENT_BEATS`` RRs before)
``prematurity_z``   the prematurity less its median over the recording, over its median absolute deviation
                    there (plus ``SPREAD_FLOOR``): how unusual this earliness is for this patient
==================  ======================================================================================

One more reading is not a feature but a gate, :func:`irregular_rhythm`: in atrial fibrillation or flutter with
variable conduction no beat is called an atrial premature beat (there is no regular atrial rhythm for it to come
early in), so the S answer is not given there. DS1 has AF in two patients only: learned from them, the
irregularity feature did not carry to other patients, while a plain rule on it, chosen on DS1's rhythm annotations,
does what a cardiologist does.

The times must be those of *beats*: a detection judged not a beat (a T wave, a noise spike) would otherwise make
the next beat look premature, so the Detector drops them first. The features look ``IRREGULAR_HALF`` beats
ahead (the rhythm around a beat): a stream gets a beat's S answer that many beats later.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Same span as the record context's usual RR (~1 minute of beats): long enough to outvote runs of premature beats.
USUAL_BEATS = 64
RECENT_BEATS = 8  # the last few seconds: the rhythm the beat interrupts
IRREGULAR_HALF = 16  # ~25 s of beats around the beat: one episode of atrial fibrillation, not the whole day
RR_CLIP_S = (0.2, 3.0)  # 20-300 bpm; outside is a missed or extra detection, clipped so one error cannot dominate
# The gate of irregular_rhythm, on DS1's rhythm annotations (AFIB/AFL, records 201 and 203) with its reference
# beats: above 0.15 it holds 93 % of the beats in AF and 1.0 % of the others (0.12: 99 / 1.2 %, 0.2: 69 / 0.9 %).
# Learning the stage outside the gate, DS1 patient-wise out-of-fold SVEB F1 0.61 -> 0.65, false S in AF 61 -> 8.
AF_IRREGULARITY = 0.15
# The spread of prematurity is that of the whole recording: on DS1 (patient-wise out of fold, reference beats), the
# stage's PR-AUC went 0.583 -> 0.652 and its best F1 0.659 -> 0.726 with it, and less with the spread of a window
# around the beat (257 beats 0.665, 513 beats 0.694): a few minutes hold too few breaths and too few premature beats.
# A floor of 1 % of RR keeps a paced or perfectly steady rhythm (spread ~0) from making every jitter look premature.
SPREAD_FLOOR = 0.01
FEATURES = ("prematurity", "next_vs_usual", "next_vs_prev", "irregularity", "abruptness", "vs_recent",
            "prematurity_z")


def _median_before(values: np.ndarray, k: int) -> np.ndarray:
    """(n,) the median of the ``k`` values before each one (the first values use the first value as history)."""
    padded = np.concatenate([np.full(k, values[0]), values])
    return np.median(sliding_window_view(padded, k)[:-1], axis=1)


def _rr_around(times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The RR before and after each of ``times_s`` (n >= 2,) s, clipped to ``RR_CLIP_S``; the first and last beats
    borrow their one neighbouring RR."""
    rr = np.clip(np.diff(times_s), *RR_CLIP_S)
    return np.concatenate([rr[:1], rr]), np.concatenate([rr, rr[-1:]])


def rhythm_features(times_s: np.ndarray) -> np.ndarray:
    """The :data:`FEATURES` (n, 7) float32 of beats at ``times_s`` (n,) seconds, increasing, every beat of one
    recording in time order (``prematurity_z`` reads the whole recording: pass all of it). The first beat borrows
    its one neighbouring RR as both (as the RR features do)."""
    times_s = np.asarray(times_s, np.float64)
    n = len(times_s)
    out = np.zeros((n, len(FEATURES)), np.float32)
    if n < 2:
        return out
    prev, nxt = _rr_around(times_s)
    usual = _median_before(prev, USUAL_BEATS)
    step = np.log(nxt / prev)
    padded = np.pad(np.abs(step), IRREGULAR_HALF, mode="edge")
    out[:, 0] = np.log(prev / usual)
    out[:, 1] = np.log(nxt / usual)
    out[:, 2] = step
    out[:, 3] = np.median(sliding_window_view(padded, 2 * IRREGULAR_HALF + 1), axis=1)
    out[:, 4] = np.log(prev / np.concatenate([prev[:1], prev[:-1]]))
    out[:, 5] = np.log(prev / _median_before(prev, RECENT_BEATS))
    centred = out[:, 0] - np.median(out[:, 0])
    out[:, 6] = centred / (np.median(np.abs(centred)) + SPREAD_FLOOR)
    return out


def irregular_rhythm(times_s: np.ndarray, ventricular: np.ndarray,
                     threshold: float = AF_IRREGULARITY) -> np.ndarray:
    r"""(n,) bool: the beats at ``times_s`` (n,) seconds, in time order, that lie in an irregular rhythm (atrial
    fibrillation or flutter with variable conduction) given which are ``ventricular`` (n,) bool.

    The irregularity of a beat is the median of \|log(RR after / RR before)\| over the ``IRREGULAR_HALF`` beats on
    each side, counting only the steps that neither are nor neighbour a ventricular beat: PVC bigeminy alternates
    short and long RRs without being AF, and the sinus rhythm between the PVCs is what tells. A window with no such
    step (a run of bigeminy) is not called irregular. Above ``threshold`` (0 turns the gate off) the beat is in an
    irregular rhythm. The same window as the ``irregularity`` feature, so a stream decides it as late."""
    times_s = np.asarray(times_s, np.float64)
    ventricular = np.asarray(ventricular, bool)
    n = len(times_s)
    if n < 3 or threshold <= 0:
        return np.zeros(n, bool)
    prev, nxt = _rr_around(times_s)
    step = np.abs(np.log(nxt / prev))
    near_v = ventricular | np.r_[False, ventricular[:-1]] | np.r_[ventricular[1:], False]
    step = np.pad(np.where(near_v, np.nan, step), IRREGULAR_HALF, constant_values=np.nan)
    windows = sliding_window_view(step, 2 * IRREGULAR_HALF + 1)
    counted = (~np.isnan(windows)).sum(axis=1)
    # nanmedian of the windows that have a step; the others are regular by definition (no warning for all-NaN rows)
    irregularity = np.zeros(n)
    has = counted > 0
    irregularity[has] = np.nanmedian(windows[has], axis=1)
    return irregularity > threshold


def beat_times(rr: np.ndarray) -> np.ndarray:
    """Times (n,) in seconds, from the first, of consecutive detections given their RR features (n, 3) (previous
    RR in column 0, as :func:`arritmias.data.beats.rr_features` makes them)."""
    rr = np.asarray(rr, np.float64)
    if len(rr) == 0:
        return np.zeros(0)
    return np.concatenate([[0.0], np.cumsum(rr[1:, 0])])
