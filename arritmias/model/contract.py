"""The served contract: what a request to the model carries, how it is validated, what the answer holds.

A request is a batch of beats, each ``{"sig": [win numbers], "rr": [prev_s, next_s, next/prev]}`` — ``sig`` the
raw window of the lead in mV as wfdb reads it, R peak at index ``win // 2``. A beat may also carry its record
context (:mod:`arritmias.signal.context`): ``ctx_sig``, the patient's usual beat (``win`` numbers, mV,
baseline-centred) and ``ctx_rr``, the patient's usual RR (s); :func:`arritmias.data.beats.for_recording` computes
both from a recording. With them the beat is judged against the patient's own beats and rhythm (the more accurate
path); without them, on its own. MLflow's server accepts ``{"instances": [...]}``, ``{"dataframe_records": [...]}``
or ``{"inputs": ...}`` and hands the model a DataFrame. The answer has one row per beat: ``prob_v``, ``label``
(N, V, or Q: not a beat or unclassifiable), ``prob_not_beat``, ``prob_s`` and ``class`` (N, S, V or Q: the label
with supraventricular ectopic beats told apart; both added with the S answer, so older clients read what they
always did), ``ruleguard_changed`` and ``context_used``. Beats sent here are judged one by one, and the S answer
needs the rhythm around a beat (:mod:`arritmias.signal.rhythm`), so a served beat's ``prob_s`` is null and its
``class`` is its ``label``: a recording's S beats come from ``analyze``, ``batch-score`` and ``evaluate``.

Requests are validated here (:func:`parse_request`), so bad input is answered with a 400 naming the field, never
with a made-up label. The registry shows :data:`REQUEST_DOC` on each version's page and training writes both
documents into the logged model's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from arritmias.errors import DataError
from arritmias.signal.context import Context

MAX_BATCH = 100_000  # beats per call of the model (in process); the server also limits bodies (server_guard)
REQUEST_DOC = ('{"instances": [{"sig": [360 numbers: raw lead window in mV, R peak at index 180], '
               '"rr": [previous RR s, next RR s, next/previous], optional together: "ctx_sig": [360 numbers: '
               'the patient\'s usual beat, mV], "ctx_rr": the patient\'s usual RR s}]}; dataframe_records and '
               'inputs work too')
RESPONSE_DOC = ('{"predictions": [{"prob_v": P(V), "label": "N", "V" or "Q" (not a beat / unclassifiable), '
                '"prob_not_beat": P(not a beat), "prob_s": null (the S answer reads the rhythm '
                'around a beat: a whole recording, not single beats), "class": the label here, "N", "S", "V" or "Q" '
                'in a recording\'s files, '
                '"ruleguard_changed": bool, "context_used": bool}]}')
CONTEXT_FIELDS = ("ctx_sig", "ctx_rr")
# RR intervals a request may carry (s): under 0.1 s two detections are one beat (the ventricle is refractory), over
# 6 s is asystole or a lost lead, not a rhythm to classify a beat in.
RR_LIMITS_S = (0.1, 6.0)
RATIO_TOLERANCE = 0.05  # the ratio must agree with next/previous within 5 % (clients round their numbers)


@dataclass(frozen=True)
class Request:
    """A validated request: ``windows`` (n, win) and ``rr`` (n, 3) float32; ``context`` (None when no beat sent
    one) and ``use_context`` (n,) bool: the beats that did."""

    windows: np.ndarray
    rr: np.ndarray
    context: Context | None
    use_context: np.ndarray


def parse_request(model_input, win: int) -> Request:
    """The beats, and the record context of those that carry it, from what MLflow hands the model.

    ``dataframe_records`` arrives as a DataFrame with list cells, ``instances`` / ``inputs`` as a dict of arrays
    (or lists when rows differ in length); a list of beat dicts works too. Raises :class:`DataError` naming the
    field and beat for anything that is not a finite number where one is expected, a window of the wrong
    length, an empty or oversized batch, a non-positive RR, or only one of the two context fields.
    """
    if isinstance(model_input, pd.DataFrame):
        columns = {c: list(model_input[c]) for c in model_input.columns}
    elif isinstance(model_input, dict):
        columns = dict(model_input)
    elif isinstance(model_input, list) and not model_input:
        raise DataError("empty batch: send at least one beat")
    elif isinstance(model_input, list) and all(isinstance(r, dict) for r in model_input):
        columns = {k: [r.get(k) for r in model_input] for k in ("sig", "rr", *CONTEXT_FIELDS)
                   if any(k in r for r in model_input)}
    else:
        raise DataError(f"input must be beats with fields 'sig' and 'rr', got {type(model_input).__name__}")
    missing = [c for c in ("sig", "rr") if c not in columns]
    if missing:
        raise DataError(f"missing field(s) {missing}: each beat needs 'sig' ({win} numbers, mV) and 'rr' "
                        "(3 numbers: previous RR s, next RR s, next/previous)")
    windows = _numeric_rows(columns["sig"], "sig", win)
    rr = _numeric_rows(columns["rr"], "rr", 3)
    if len(windows) != len(rr):
        raise DataError(f"'sig' has {len(windows)} beats but 'rr' has {len(rr)}")
    _check_rr(rr)
    n = len(windows)
    template, has_sig = _optional_rows(columns.get("ctx_sig"), "ctx_sig", win, n)
    usual, has_rr = _optional_rows(columns.get("ctx_rr"), "ctx_rr", 1, n)
    if np.any(has_sig != has_rr):
        row = int(np.flatnonzero(has_sig != has_rr)[0])
        given, lacking = ("ctx_sig", "ctx_rr") if has_sig[row] else ("ctx_rr", "ctx_sig")
        raise DataError(f"beat {row} has '{given}' but no '{lacking}': the record context needs both "
                        "(see arritmias.data.beats.for_recording)")
    bad_usual = has_rr & ((usual[:, 0] < RR_LIMITS_S[0]) | (usual[:, 0] > RR_LIMITS_S[1]))
    if bad_usual.any():
        row = int(np.flatnonzero(bad_usual)[0])
        raise DataError(f"ctx_rr of beat {row}: the usual RR must be positive seconds within "
                        f"{RR_LIMITS_S[0]}-{RR_LIMITS_S[1]} s, got {usual[row, 0]:g}")
    context = Context(template, usual[:, 0]) if has_sig.any() else None
    return Request(windows, rr, context, has_sig)


def _check_rr(rr: np.ndarray) -> None:
    """RR intervals within ``RR_LIMITS_S`` and a ratio that agrees with them, or a DataError naming the beat."""
    lo, hi = RR_LIMITS_S
    out = np.any((rr[:, :2] < lo) | (rr[:, :2] > hi), axis=1)
    if out.any():
        row = int(np.flatnonzero(out)[0])
        raise DataError(f"rr of beat {row}: RR intervals must be positive seconds within {lo}-{hi} s, got "
                        f"{rr[row, 0]:g} and {rr[row, 1]:g}")
    expected = rr[:, 1] / rr[:, 0]
    off = np.abs(rr[:, 2] - expected) > RATIO_TOLERANCE * expected
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(f"rr of beat {row}: the ratio {rr[row, 2]:g} disagrees with next/previous "
                        f"{expected[row]:.4g}: send [previous s, next s, next/previous]")


def _missing(value) -> bool:
    """An absent optional cell: None, or the NaN pandas puts where a record lacked the key."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def _optional_rows(values, name: str, length: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """An optional per-beat field: ``(rows (n, length) float32, present (n,) bool)``. A scalar is accepted where
    ``length`` is 1 (``"ctx_rr": 0.8``); each present value is checked as :func:`_numeric_rows` checks."""
    out, present = np.zeros((n, length), np.float32), np.zeros(n, bool)
    if values is None:
        return out, present
    if isinstance(values, np.ndarray) and values.dtype != object:
        values = values.reshape(n, -1) if values.size == n * length else list(values)
    # A beat dict's scalar arrives as a 0-d array when MLflow parses {"inputs": [{...}, ...]} (the form of the
    # serving_input_example.json it writes beside the model): a number all the same.
    values = [v.item() if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iuf" else v for v in values]
    if len(values) != n:
        raise DataError(f"'{name}' has {len(values)} beats but 'sig' has {n}")
    given = [i for i, value in enumerate(values) if not _missing(value)]
    rows = [values[i] for i in given]
    if length == 1 and all(isinstance(v, (int, float, np.integer, np.floating))
                           and not isinstance(v, (bool, np.bool_)) for v in rows):
        try:
            rows = [[v] for v in np.asarray(rows, dtype=np.float64).tolist()]
        except OverflowError:  # an integer beyond float64: the per-beat path names it
            pass
    fast = _fast_rows(rows, length) if rows else None
    if fast is not None:
        out[given], present[given] = fast, True
        return out, present
    for i, value in enumerate(values):
        if _missing(value):
            continue
        if length == 1 and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            value = [value]
        out[i] = _check_row(value, name, i, length)
        present[i] = True
    return out, present


def _numeric_rows(values, name: str, length: int) -> np.ndarray:
    """(n, length) float32 from a 2D array, a list of rows, or one row; errors name the field and beat."""
    arr = values if isinstance(values, np.ndarray) else None
    if arr is not None and arr.dtype != object and arr.ndim == 1:
        arr = arr[None, :]  # a single beat sent without the batch dimension
    if arr is not None and arr.dtype != object and arr.ndim == 2:
        rows = arr
    elif isinstance(values, (list, tuple, np.ndarray)):
        rows = list(values)
    else:
        raise DataError(f"{name}: expected a list of {length} numbers per beat, got {type(values).__name__}")
    n = len(rows)
    if n == 0:
        raise DataError("empty batch: send at least one beat")
    if n > MAX_BATCH:
        raise DataError(f"batch of {n} beats exceeds the limit of {MAX_BATCH}; split it into smaller requests")
    if isinstance(rows, list):
        fast = _fast_rows(rows, length)
    else:  # already a 2-D numeric array
        fast = rows.astype(np.float32) if rows.shape[1] == length and _finite_numeric(rows) else None
    if fast is not None:
        return fast
    out = np.empty((n, length), np.float32)
    for i, value in enumerate(rows):
        out[i] = _check_row(value, name, i, length)
    return out


_PLAIN_NUMBERS = frozenset((float, int))  # what JSON numbers become; bool is a subclass of int but not int


def _fast_rows(rows: list, length: int) -> np.ndarray | None:
    """``rows`` as (n, length) float32 in one pass when every row is a list of ``length`` plain Python numbers (what
    JSON bodies and DataFrame cells give) or a 1-D numeric array, all finite in float32: one C-level conversion for
    the batch instead of a check per beat. None otherwise: the per-beat path then finds the offending beat and
    names it.

    numpy's own type discovery refuses what is not a number (a string makes the array one of text, a None or a
    nested list one of objects); it would take a boolean as 0 or 1, so the rows holding an exact 0 or 1 (and only
    those: ~2 % of a recording's windows) have their elements' types looked at.
    """
    try:
        if all(type(r) is list and len(r) == length for r in rows):
            arr = np.array(rows)
            if arr.shape != (len(rows), length) or arr.dtype.kind not in "iuf":
                return None
            suspect = np.flatnonzero(((arr == 0) | (arr == 1)).any(axis=1))
            if not all(set(map(type, rows[i])) <= _PLAIN_NUMBERS for i in suspect.tolist()):
                return None
        elif all(type(r) is np.ndarray and r.shape == (length,) and r.dtype.kind in "iuf" for r in rows):
            arr = np.stack(rows)
        else:
            return None
    except (OverflowError, ValueError, TypeError):  # an integer beyond float64, or anything odd: per beat
        return None
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    return out if np.isfinite(out).all() else None


def _finite_numeric(arr: np.ndarray) -> bool:
    """A numeric array whose every value is finite once in float32 (the network's type)."""
    if arr.dtype.kind not in "iuf":
        return False
    with np.errstate(over="ignore"):
        return bool(np.isfinite(arr.astype(np.float32)).all())


def _check_row(value, name: str, i: int, length: int) -> np.ndarray:
    """One beat's ``length`` numbers, finite once in float32 (the network's type), or a DataError naming the
    field and the beat. Strings ("0.5") and booleans are refused: a client that sends them has a bug that a
    silent conversion would hide."""
    if (value is None or isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__")
            or (isinstance(value, np.ndarray) and value.ndim != 1)):
        shown = "null" if value is None or (isinstance(value, np.ndarray) and value.ndim == 0) else type(value).__name__
        raise DataError(f"{name} of beat {i}: expected a list of {length} numbers, got {shown}")
    if len(value) != length:
        raise DataError(f"{name} of beat {i}: expected {length} numbers, got {len(value)}")
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        row = value.astype(np.float64)
    elif all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
             for v in value):
        try:
            row = np.asarray(value, dtype=np.float64)
        except OverflowError:  # an integer beyond float64 (JSON allows any number of digits)
            raise DataError(f"{name} of beat {i}: NaN, infinite or beyond float32's range (|x| > 3.4e38)") from None
    else:
        raise DataError(f"{name} of beat {i}: values must be numbers (not strings, booleans or lists)")
    if not _finite_numeric(row):
        raise DataError(f"{name} of beat {i}: NaN, infinite or beyond float32's range (|x| > 3.4e38)")
    return row
