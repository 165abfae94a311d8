"""Detections against reference beats, beat by beat, in the manner of ANSI/AAMI EC57 as the WFDB toolkit's ``bxb``
counts them: the one matching rule of training (detected-mode labels), cross-validation and evaluation.

A test beat matches a reference beat when they lie within 150 ms (closest pairs first, each beat used once).
By default the first 5 minutes of each record are excluded (bxb's default start, the detector's learning
period), and so are episodes of ventricular flutter or fibrillation (EC57 scores no beats there: it judges VF
detection separately; of MIT-BIH, only record 207 has them). Reference beats of every AAMI class take part, so an N or S beat called V is a false positive.
Following EC57, a fusion (F) or unclassifiable (Q) beat called V is not counted against VEB +P.

Counts per record, rows = reference, columns = test label: ``Nn Nv Sn Sv Vn Vv Fn Fv Qn Qv``, plus ``Vo`` (a
reference V beat no test beat matched), ``No`` (any other missed reference beat), ``On``/``Ov`` (test beats
matching no reference beat). Then

* VEB Se = Vv / (Vv + Vn + Vo),  VEB +P = Vv / (Vv + Nv + Sv + Ov);
* QRS Se = matched reference beats / reference beats, QRS +P = matched test beats / test beats;
* gross figures pool the counts of all records; average figures are the mean of the per-record figures over
  records where they are defined (denominator > 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MATCH_WINDOW_S = 0.15
EXCLUDE_FIRST_S = 300.0
CLASSES = "NSVFQ"


def match_beats(ref: np.ndarray, test: np.ndarray, fs: float, window_s: float = MATCH_WINDOW_S) -> np.ndarray:
    """For each reference beat, the index of its matched test beat or -1; shape (len(ref),).

    Candidate pairs within ``window_s`` are accepted closest first, so each beat is matched at most once.
    """
    out = np.full(len(ref), -1, np.int64)
    if len(ref) == 0 or len(test) == 0:
        return out
    w = int(round(window_s * fs))
    pos = np.searchsorted(test, ref)
    pairs = []
    for offset in (-2, -1, 0, 1):
        j = np.clip(pos + offset, 0, len(test) - 1)
        d = np.abs(test[j] - ref)
        ok = d <= w
        pairs.extend(zip(d[ok], np.flatnonzero(ok), j[ok]))
    used = np.zeros(len(test), bool)
    for _, i, j in sorted(pairs):
        if out[i] < 0 and not used[j]:
            out[i], used[j] = j, True
    return out


def outside(samples: np.ndarray, spans: np.ndarray | None) -> np.ndarray:
    """Bool (n,): which ``samples`` lie in none of the [start, end) ``spans`` (m, 2)."""
    samples = np.asarray(samples)
    if spans is None or len(spans) == 0:
        return np.ones(len(samples), bool)
    spans = np.asarray(spans)
    return ~np.any((samples[:, None] >= spans[None, :, 0]) & (samples[:, None] < spans[None, :, 1]), axis=1)


def record_counts(ref_samples: np.ndarray, ref_classes: np.ndarray, test_samples: np.ndarray,
                  test_is_v: np.ndarray, fs: float, start_s: float = EXCLUDE_FIRST_S,
                  exclude: np.ndarray | None = None) -> dict[str, int]:
    """bxb-style counts of one record (see module docstring); beats before ``start_s`` and inside the [start,
    end) sample spans ``exclude`` (m, 2) (flutter episodes: :attr:`arritmias.data.beats.ReferenceBeats.unscored`) are
    left out."""
    r_keep = (ref_samples >= start_s * fs) & outside(ref_samples, exclude)
    t_keep = (test_samples >= start_s * fs) & outside(test_samples, exclude)
    ref_samples, ref_classes = ref_samples[r_keep], ref_classes[r_keep]
    test_samples, test_is_v = test_samples[t_keep], test_is_v[t_keep]
    match = match_beats(ref_samples, test_samples, fs)
    counts = {f"{c}{t}": 0 for c in CLASSES for t in "nv"}
    counts.update({"Vo": 0, "No": 0, "On": 0, "Ov": 0})
    matched = match >= 0
    for c in CLASSES:
        rows = (ref_classes == c) & matched
        v = test_is_v[match[rows]]
        counts[f"{c}v"] += int(v.sum())
        counts[f"{c}n"] += int((~v).sum())
    counts["Vo"] = int(np.sum((ref_classes == "V") & ~matched))
    counts["No"] = int(np.sum((ref_classes != "V") & ~matched))
    extra = np.ones(len(test_samples), bool)
    extra[match[matched]] = False
    counts["Ov"] = int(np.sum(extra & test_is_v))
    counts["On"] = int(np.sum(extra & ~test_is_v))
    return counts


@dataclass(frozen=True)
class MatchedDetections:
    """One recording's detections matched to its reference once, so that many labellings can be counted fast
    (choosing thresholds): ``ref_class`` (n,) the AAMI class of each detection's reference beat ('' for none),
    ``scored`` (n,) whether EC57 scores it (after ``start_s``, outside flutter), and the scored reference beats
    no detection matched, ``missed_v`` and ``missed_other``. A detection dropped as "not a beat" leaves its
    reference beat missed; :func:`record_counts`, which matches again without it, is the exact figure."""

    ref_class: np.ndarray
    scored: np.ndarray
    missed_v: int
    missed_other: int


def match_detections(ref_samples: np.ndarray, ref_classes: np.ndarray, test_samples: np.ndarray, fs: float,
                     start_s: float = EXCLUDE_FIRST_S, exclude: np.ndarray | None = None) -> MatchedDetections:
    r_keep = (ref_samples >= start_s * fs) & outside(ref_samples, exclude)
    scored = (test_samples >= start_s * fs) & outside(test_samples, exclude)
    ref_samples, ref_classes = ref_samples[r_keep], ref_classes[r_keep]
    match = match_beats(ref_samples, test_samples[scored], fs)
    ref_class = np.full(len(test_samples), "", "<U1")
    ref_class[np.flatnonzero(scored)[match[match >= 0]]] = ref_classes[match >= 0]
    return MatchedDetections(ref_class, scored, int(np.sum((ref_classes == "V") & (match < 0))),
                             int(np.sum((ref_classes != "V") & (match < 0))))


def counts_of(matched: MatchedDetections, keep: np.ndarray, is_v: np.ndarray) -> dict[str, int]:
    """bxb-style counts (see :func:`record_counts`) of one recording's detections labelled ``is_v`` (n,) bool,
    those where ``keep`` (n,) is False dropped as not beats."""
    on = matched.scored & np.asarray(keep, bool)
    v = np.asarray(is_v, bool)
    c = {f"{k}{t}": int(np.sum(on & (matched.ref_class == k) & (v if t == "v" else ~v)))
         for k in CLASSES for t in "nv"}
    dropped = matched.scored & ~on
    c["Vo"] = matched.missed_v + int(np.sum(dropped & (matched.ref_class == "V")))
    c["No"] = matched.missed_other + int(np.sum(dropped & (matched.ref_class != "V") & (matched.ref_class != "")))
    c["Ov"] = int(np.sum(on & (matched.ref_class == "") & v))
    c["On"] = int(np.sum(on & (matched.ref_class == "") & ~v))
    return c


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def figures(c: dict[str, int]) -> dict[str, float | None]:
    """VEB and QRS sensitivity / positive predictivity from counts (None where undefined)."""
    ref_total = sum(c[f"{k}{t}"] for k in CLASSES for t in "nv") + c["Vo"] + c["No"]
    matched = ref_total - c["Vo"] - c["No"]
    test_total = matched + c["On"] + c["Ov"]
    return {
        "veb_se": _ratio(c["Vv"], c["Vv"] + c["Vn"] + c["Vo"]),
        "veb_ppv": _ratio(c["Vv"], c["Vv"] + c["Nv"] + c["Sv"] + c["Ov"]),
        "qrs_se": _ratio(matched, ref_total),
        "qrs_ppv": _ratio(matched, test_total),
    }


@dataclass(frozen=True)
class Ec57Result:
    mode: str  # "reference" (classified at reference beats) or "detected" (own QRS detection)
    per_record: dict[str, dict]  # record -> counts and figures
    gross: dict[str, float | None]
    average: dict[str, float | None]
    totals: dict[str, int]

    def to_dict(self) -> dict:
        return {"mode": self.mode, "gross": self.gross, "average": self.average, "totals": self.totals,
                "per_record": self.per_record}


def summarize(mode: str, per_record_counts: dict[str, dict[str, int]]) -> Ec57Result:
    per_record = {r: {**c, **figures(c)} for r, c in per_record_counts.items()}
    keys = next(iter(per_record_counts.values())).keys() if per_record_counts else []
    totals = {k: int(sum(c[k] for c in per_record_counts.values())) for k in keys}
    gross = figures(totals) if totals else {}
    average = {}
    for k in ("veb_se", "veb_ppv", "qrs_se", "qrs_ppv"):
        vals = [f[k] for f in per_record.values() if f[k] is not None]
        average[k] = float(np.mean(vals)) if vals else None
    return Ec57Result(mode, per_record, gross, average, totals)
