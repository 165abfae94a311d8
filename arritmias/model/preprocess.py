"""The one per-beat preprocessing, shared by training, evaluation, serving and analysis.

Everything the network sees is computed here from what a served request carries: the raw window and its three
RR features, plus, when the request has it, the record context (:mod:`arritmias.signal.context`): the patient's usual
beat and usual RR. With context a beat is measured against the patient's own beats and rhythm; without it, on
its own (the seed contract), and the network is told which through a flag.
"""

from __future__ import annotations

import numpy as np

from arritmias.signal.context import Context, centre

# Added to the spread before dividing (mV). A flat or near-flat window (lead off, pure noise of a few tens of uV)
# is then scaled down instead of being blown up to unit variance.
SCALE_FLOOR_MV = 0.05
# Plausible RR range in seconds (30-300 bpm); values outside are artefacts of missed or extra detections.
RR_RANGE_S = (0.2, 2.0)
# The reference RR of a beat sent without context: a typical adult resting RR (75 bpm). The network also gets
# the flag, so this only sets the scale of the absolute-RR features.
POPULATION_RR_S = 0.8
BEAT_CHANNELS = 3  # the beat, its difference from the usual beat, and the usual beat itself
RR_INPUTS = 4  # log prev/usual, log next/usual, log next/prev, context flag
# The network's three answers, in the order of its softmax output: a beat that is not ventricular (AAMI N and S),
# a ventricular beat, and "not a beat" (a detection on a P or T wave, on noise or between beats, or a beat too
# distorted to read: the reference's Q). EC57 charges a false V to VEB +P; a "not a beat" costs nothing there.
OUTPUTS = ("N", "V", "X")
V_INDEX, NOT_BEAT_INDEX = OUTPUTS.index("V"), OUTPUTS.index("X")


def model_inputs(windows: np.ndarray, rr: np.ndarray, context: Context | None = None,
                 use_context: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The network's two inputs from raw windows, RR features and (optionally) record context.

    Parameters
    ----------
    windows : ndarray, shape (n, win)
        Raw lead signal in mV, R peak at index ``win // 2``.
    rr : ndarray, shape (n, 3)
        Previous RR (s), next RR (s), next/previous, as carried by a request.
    context : Context or None
        The record context of each beat (template (n, win) mV, rr_usual (n,) s).
    use_context : ndarray, shape (n,), bool, optional
        Which beats use their context (default: all when ``context`` is given, none otherwise). Training withholds
        it from a share of beats so that the same network answers requests without context.

    Returns
    -------
    dict with ``beat`` (n, win, 3) float32 and ``rr`` (n, 4) float32.

    ``beat`` channel 0 is the window minus its median (its isoelectric level; baseline wander below 0.5 Hz is
    close to a constant over 1 s), channel 1 that minus the usual beat and channel 2 the usual beat itself (both
    zero without context): the difference says how the beat departs from the patient's beat, the usual beat
    what that beat is (a wide bundle-branch-block beat, a narrow one), which the difference alone cannot tell
    (measured on DS1, 5-fold cross-validation at the detector's beats, seed 42: out-of-fold PR-AUC 0.849 with
    two channels, 0.877 with three). All are divided
    by the usual beat's spread with context, so a PVC's larger deflection stays larger than the patient's normal
    beats, and by the beat's own spread without it (the between-patient gain differences removed the only way a
    lone beat allows). No band-pass filter: the first convolution learns its own band, and a fixed filter on a
    1 s window adds edge effects.

    ``rr``: previous and next RR clipped to ``RR_RANGE_S`` and taken relative to the usual RR (with context) or
    to ``POPULATION_RR_S`` (without), as logs, so that a premature beat followed by a pause (ratio ~0.7 and ~1.3)
    and its mirror are symmetric around 0; the log of next/previous; and the context flag (1 or 0).
    """
    x = centre(windows)
    r = np.asarray(rr, np.float32)
    n = len(x)
    flag = np.zeros(n, bool) if context is None else (
        np.ones(n, bool) if use_context is None else np.asarray(use_context, bool))
    beat = np.zeros(x.shape + (BEAT_CHANNELS,), np.float32)
    usual = np.full(n, POPULATION_RR_S, np.float32)
    own = x.std(axis=1) + SCALE_FLOOR_MV
    scale = own
    if flag.any():
        template = np.asarray(context.template, np.float32)
        scale = np.where(flag, template.std(axis=1) + SCALE_FLOOR_MV, own)
        beat[flag, :, 1] = (x[flag] - template[flag]) / scale[flag, None]
        beat[flag, :, 2] = template[flag] / scale[flag, None]
        usual = np.where(flag, np.clip(np.asarray(context.rr_usual, np.float32), *RR_RANGE_S), usual)
    beat[..., 0] = x / scale[:, None]
    prev = np.clip(r[:, 0], *RR_RANGE_S)
    nxt = np.clip(r[:, 1], *RR_RANGE_S)
    feats = np.stack([np.log(prev / usual), np.log(nxt / usual), np.log(nxt / prev), flag.astype(np.float32)],
                     axis=1)
    return {"beat": beat, "rr": feats.astype(np.float32)}
