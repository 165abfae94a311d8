"""Detections against reference beats, beat by beat, in the manner of ANSI/AAMI EC57 as the WFDB toolkit's ``bxb``
counts them: the one matching rule of training (detected-mode labels), cross-validation and evaluation.

A test beat matches a reference beat when they lie within 150 ms (closest pairs first, each beat used once).
By default the first 5 minutes of each record are excluded (bxb's default start, the detector's learning
period), and so are episodes of ventricular flutter or fibrillation (EC57 scores no beats there: it judges VF
detection separately; of MIT-BIH, only record 207 has them). Reference beats of every AAMI class take part, so
an N or S beat called V is a false positive. Following EC57, a fusion (F) or unclassifiable (Q) beat called V is
not counted against VEB +P, and an unclassifiable beat called S not against SVEB +P.

Test labels are ``N``, ``S`` or ``V`` (a bool array reads as V / N: a detector without the S answer). Counts per
record, rows = reference class, columns = test label: ``Nn Ns Nv Sn Ss Sv Vn Vs Vv Fn Fs Fv Qn Qs Qv``, plus
``Vo`` and ``So`` (a reference V / S beat no test beat matched), ``No`` (any other missed reference beat),
``On``/``Os``/``Ov`` (test beats matching no reference beat). Then

* VEB Se = Vv / (Vv + Vn + Vs + Vo),  VEB +P = Vv / (Vv + Nv + Sv + Ov);
* SVEB Se = Ss / (Ss + Sn + Sv + So),  SVEB +P = Ss / (Ss + Ns + Vs + Fs + Os);
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
TEST_LABELS = "nsv"


def test_labels(labels: np.ndarray) -> np.ndarray:
    """``labels`` (n,) as the test labels "N" / "S" / "V": a bool array (a detector without the S answer) reads
    as V where True, N elsewhere."""
    labels = np.asarray(labels)
    return np.where(labels, "V", "N") if labels.dtype == bool else labels.astype("<U1")


def _empty_counts() -> dict[str, int]:
    counts = {f"{c}{t}": 0 for c in CLASSES for t in TEST_LABELS}
    counts.update({"Vo": 0, "So": 0, "No": 0, "On": 0, "Os": 0, "Ov": 0})
    return counts


def _add_counts(counts: dict[str, int], ref_class: np.ndarray, labels: np.ndarray, extra: np.ndarray) -> None:
    """Add the matched detections (``ref_class`` their reference's class, ``labels`` their test label) and the
    ``extra`` (bool, same length) detections matching no reference beat, to ``counts``."""
    for t in TEST_LABELS:
        is_t = labels == t.upper()
        for c in CLASSES:
            counts[f"{c}{t}"] += int(np.sum(is_t & (ref_class == c)))
        counts[f"O{t}"] += int(np.sum(is_t & extra))


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
                  test_labels_: np.ndarray, fs: float, start_s: float = EXCLUDE_FIRST_S,
                  exclude: np.ndarray | None = None) -> dict[str, int]:
    """bxb-style counts of one record (see module docstring) given each test beat's label ``test_labels_`` (n,)
    ("N" / "S" / "V", or bool V); beats before ``start_s`` and inside the [start, end) sample spans ``exclude``
    (m, 2) (flutter episodes: :attr:`arritmias.data.beats.ReferenceBeats.unscored`) are left out."""
    r_keep = (ref_samples >= start_s * fs) & outside(ref_samples, exclude)
    t_keep = (test_samples >= start_s * fs) & outside(test_samples, exclude)
    ref_samples, ref_classes = ref_samples[r_keep], ref_classes[r_keep]
    test_samples, labels = test_samples[t_keep], test_labels(test_labels_)[t_keep]
    match = match_beats(ref_samples, test_samples, fs)
    matched = match >= 0
    ref_class = np.full(len(test_samples), "", "<U1")
    ref_class[match[matched]] = ref_classes[matched]
    counts = _empty_counts()
    _add_counts(counts, ref_class, labels, ref_class == "")
    counts["Vo"] = int(np.sum((ref_classes == "V") & ~matched))
    counts["So"] = int(np.sum((ref_classes == "S") & ~matched))
    counts["No"] = int(np.sum(~np.isin(ref_classes, ("V", "S")) & ~matched))
    return counts


@dataclass(frozen=True)
class MatchedDetections:
    """One recording's detections matched to its reference once, so that many labellings can be counted fast
    (choosing thresholds): ``ref_class`` (n,) the AAMI class of each detection's reference beat ('' for none),
    ``scored`` (n,) whether EC57 scores it (after ``start_s``, outside flutter), and the scored reference beats
    no detection matched, ``missed_v``, ``missed_s`` and ``missed_other``. A detection dropped as "not a beat"
    leaves its reference beat missed; :func:`record_counts`, which matches again without it, is the exact figure."""

    ref_class: np.ndarray
    scored: np.ndarray
    missed_v: int
    missed_s: int
    missed_other: int


def match_detections(ref_samples: np.ndarray, ref_classes: np.ndarray, test_samples: np.ndarray, fs: float,
                     start_s: float = EXCLUDE_FIRST_S, exclude: np.ndarray | None = None) -> MatchedDetections:
    r_keep = (ref_samples >= start_s * fs) & outside(ref_samples, exclude)
    scored = (test_samples >= start_s * fs) & outside(test_samples, exclude)
    ref_samples, ref_classes = ref_samples[r_keep], ref_classes[r_keep]
    match = match_beats(ref_samples, test_samples[scored], fs)
    ref_class = np.full(len(test_samples), "", "<U1")
    ref_class[np.flatnonzero(scored)[match[match >= 0]]] = ref_classes[match >= 0]
    missed = match < 0
    return MatchedDetections(ref_class, scored, int(np.sum((ref_classes == "V") & missed)),
                             int(np.sum((ref_classes == "S") & missed)),
                             int(np.sum(~np.isin(ref_classes, ("V", "S")) & missed)))


def counts_of(matched: MatchedDetections, keep: np.ndarray, labels: np.ndarray) -> dict[str, int]:
    """bxb-style counts (see :func:`record_counts`) of one recording's detections with test ``labels`` (n,) ("N" /
    "S" / "V", or bool V), those where ``keep`` (n,) is False dropped as not beats."""
    on = matched.scored & np.asarray(keep, bool)
    c = _empty_counts()
    _add_counts(c, np.where(on, matched.ref_class, "-"), test_labels(labels), on & (matched.ref_class == ""))
    dropped = matched.scored & ~on
    c["Vo"] = matched.missed_v + int(np.sum(dropped & (matched.ref_class == "V")))
    c["So"] = matched.missed_s + int(np.sum(dropped & (matched.ref_class == "S")))
    c["No"] = matched.missed_other + int(np.sum(dropped & ~np.isin(matched.ref_class, ("V", "S", ""))))
    return c


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


FIGURES = ("veb_se", "veb_ppv", "sveb_se", "sveb_ppv", "qrs_se", "qrs_ppv")


def figures(counts: dict[str, int]) -> dict[str, float | None]:
    """VEB, SVEB and QRS sensitivity / positive predictivity from counts (None where undefined; a count missing
    from ``counts``, as in counts from before the S label, is 0)."""
    c = _empty_counts() | counts
    matched = sum(c[f"{k}{t}"] for k in CLASSES for t in TEST_LABELS)
    ref_total = matched + c["Vo"] + c["So"] + c["No"]
    test_total = matched + c["On"] + c["Os"] + c["Ov"]
    return {
        "veb_se": _ratio(c["Vv"], c["Vv"] + c["Vn"] + c["Vs"] + c["Vo"]),
        "veb_ppv": _ratio(c["Vv"], c["Vv"] + c["Nv"] + c["Sv"] + c["Ov"]),
        "sveb_se": _ratio(c["Ss"], c["Ss"] + c["Sn"] + c["Sv"] + c["So"]),
        "sveb_ppv": _ratio(c["Ss"], c["Ss"] + c["Ns"] + c["Vs"] + c["Fs"] + c["Os"]),
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
    for k in FIGURES:
        vals = [f[k] for f in per_record.values() if f[k] is not None]
        average[k] = float(np.mean(vals)) if vals else None
    return Ec57Result(mode, per_record, gross, average, totals)
