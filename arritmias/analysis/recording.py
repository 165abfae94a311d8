"""Whole-recording analysis without reference annotations: QRS detection, beat classification, PVC summary.

QRS complexes are found by :func:`arritmias.signal.qrs.detect_qrs` (chosen on DS1 among NeuroKit2's, WFDB's and
sleepecg's detectors: ``benchmarks/bench_qrs.py``). Each beat then goes through exactly the windowing, RR
features and Detector that training evaluates, at the same detector's beats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arritmias.data.beats import beat_inputs
from arritmias.signal.context import Context, template_correlation
from arritmias.analysis.ectopy import summarize_decisions
from arritmias.model.detector import Decisions, Detector
from arritmias.errors import DataError
from arritmias.util.jit import njit
from arritmias.signal.qrs import detect_qrs
from arritmias.signal.mains import remove_mains
from arritmias.data.lead_csv import read_lead_csv
from arritmias.data.records import (PRIMARY_LEAD, check_fs, nearest_lead, read_recording, record_leads, resample,
                                    to_millivolts)

MIN_SECONDS = 10.0  # fewer than ~10 beats give no RR context and no meaningful burden
FLAT_MV = 0.02  # a lead whose spread is below 20 uV carries no ECG (lead off, disconnected)
CLIPPED_SHARE = 0.05  # more than 5 % of samples on the ADC rails: QRS shapes are cut off
# A surface ECG's QRS is a few mV (0.5-5 typically; 10 in a large ventricular beat); with baseline wander, the
# largest deflection from the median stays well below 100 mV. Above that the values are not mV: microvolts (or an
# ADC count) read as mV, which would also make every strip of the report a thousand times too tall.
MAX_AMPLITUDE_MV = 100.0
# A recording whose detected beats share no shape is noise, not an ECG to classify. Median correlation of each
# beat's QRS with the patient's usual beat, measured with arritmias.signal.qrs's detections: every DS1 record >= 0.87
# (108, whose large P waves are detected too: 0.88), NSTDB's pure-noise records bw -0.01, ma 0.05, em 0.57,
# Gaussian noise 0.0.
MIN_MEDIAN_TEMPLATE_CORR = 0.7
# Stretches whose samples are not ECG: a lead off (a second whose spread is under LEAD_OFF_MV: a digital
# flatline, below one MIT-BIH ADC step; an isoelectric pause still shows amplifier noise above it), the amplifier
# at a rail for RAIL_RUN_S or longer (a QRS cut flat), or samples invented by the NaN repair. Physical faults only:
# a run of wide, odd-looking beats (ventricular tachycardia) must never be mistaken for an unreadable stretch.
LEAD_OFF_MV = 0.005
RAIL_RUN_S = 0.02
QRS_HALF_S = 0.15  # a beat is unreadable when its QRS region (+-150 ms around R) touches such a stretch


@dataclass(frozen=True)
class Signal:
    """One lead to analyse: ``values`` (n,) float mV at ``fs`` Hz, from ``source``; ``leads``: every lead of a
    WFDB record in ``--deriv-idx`` order (empty for a CSV). ``owned``: the values belong to this Signal alone (as
    :func:`read_signal` makes them), so the analysis removes mains from them in place instead of keeping a second
    copy of the lead (125 MB a day); leave it False for an array you keep using."""

    name: str
    values: np.ndarray
    fs: float
    lead: str
    source: str
    leads: tuple[str, ...] = ()
    owned: bool = False


def read_signal(path: str | Path, fs: float | None = None, column: str | None = None, deriv_idx: int = 0,
                units: str = "mV", decimal: str = "auto") -> Signal:
    """A WFDB record (``path`` with or without ``.hea``; amplitudes converted from its header's units) or a CSV of
    one lead (needs ``fs`` in Hz; values in ``units``, decimal mark ``decimal``: see :mod:`arritmias.data.lead_csv`)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        if fs is None:
            raise DataError(f"'{path}': a CSV carries no sampling rate; give it with --fs HZ")
        fs = check_fs(fs, f"'{path}' (--fs)")
        lead = read_lead_csv(path, column, decimal)
        values = to_millivolts(lead.values, units, f"'{path}' (--units)")
        return Signal(path.stem, values, float(fs), lead.name or PRIMARY_LEAD, str(path), owned=True)
    base = path.with_suffix("") if path.suffix in (".hea", ".dat", ".atr") else path
    if not base.with_suffix(".hea").is_file():
        raise DataError(f"'{path}': no WFDB header '{base.with_suffix('.hea')}' and not a .csv file")
    rec = read_recording(base.parent, base.name, deriv_idx, fs=None, annotator=None)
    return Signal(base.name, rec.signal, rec.fs, rec.lead, str(base), record_leads(base.parent, base.name), True)


def lead_choice(summary: dict) -> str | None:
    """A line for a recording analysed on a lead other than MLII (the model's): which lead, what it means for the
    answers, and how to choose another; None when the lead is MLII."""
    lead, leads = summary.get("lead"), summary.get("leads_in_record") or []
    if lead == PRIMARY_LEAD:
        return None
    if leads:
        options = ", ".join(f"{i} = {name}" for i, name in enumerate(leads))
        if nearest_lead(lead):
            return (f"analysed on lead {lead}: the record has no {PRIMARY_LEAD}, the lead the model was trained on; "
                    f"lead II shares its axis; choose another with --deriv-idx ({options})")
        return (f"analysed on lead {lead}: the record has neither {PRIMARY_LEAD}, the lead the model was trained on, "
                "nor lead II; on other leads it misses most PVCs and calls some normal beats PVCs "
                f"(docs/benchmarks.md): do not rely on these counts; choose another with --deriv-idx ({options})")
    return f"analysed on column '{lead}' as the model's {PRIMARY_LEAD} lead; choose another with --column NAME"


# Said with every SVE count while the S answer is off by default (`--supra`): its measured figures on patients the
# model never saw are far from their targets (docs/benchmarks.md). A count a clinician might act on carries it.
SUPRA_CAUTION = ("the SVE count is experimental (a model trained with --supra): on patients it never saw, most SVEs "
                 "it reports are not SVEs and it misses many real ones (docs/benchmarks.md); confirm each on the trace")


def supra_caution(summary: dict) -> str | None:
    """The line said beside a recording's SVE count (:data:`SUPRA_CAUTION`); None for a model without the S
    answer."""
    return SUPRA_CAUTION if "sve_count" in summary else None


def unreadable_samples(x: np.ndarray, fs: float, invented: np.ndarray | None = None) -> np.ndarray:
    """Bool mask (m,) of the samples of lead ``x`` (mV at ``fs`` Hz) that carry no ECG: see ``RAIL_RUN_S`` above.

    ``invented`` (m,) marks samples the NaN repair filled in.
    """
    x = np.asarray(x)
    n = len(x)
    mask = _lead_off(x, max(int(round(fs)), 1), LEAD_OFF_MV**2)
    # Every sample of a run of at least RAIL_RUN_S at a rail (the lead's extreme values).
    at_rail = np.flatnonzero((x <= x.min()) | (x >= x.max()))  # never empty: the extremes themselves
    breaks = np.flatnonzero(np.diff(at_rail) != 1)
    run = max(int(round(RAIL_RUN_S * fs)), 2)
    for first, last in zip(at_rail[np.r_[0, breaks + 1]], at_rail[np.r_[breaks, -1]]):
        if last - first + 1 >= run:
            mask[first:last + 1] = True
    if invented is not None:
        mask |= np.asarray(invented, bool)[:n]
    return mask


@njit
def _lead_off(x, width, limit):
    """(n,) bool: the samples whose ``width``-sample neighbourhood (``i - width//2 .. i + (width-1)//2``, the
    lead's end values repeated past its ends: scipy.ndimage's ``uniform_filter1d`` window) has a variance under
    ``limit``. Running sums in float64, one pass and no temporaries: a spread of 5 uV on a 10 mV baseline is
    lost in float32's x*x, and a day's whole-lead float64 temporaries cost more in page faults than arithmetic."""
    n = len(x)
    out = np.empty(n, np.bool_)
    h = width // 2
    s1 = s2 = 0.0
    for j in range(-h, width - h):
        v = float(x[min(max(j, 0), n - 1)])
        s1 += v
        s2 += v * v
    for i in range(n):
        mean = s1 / width
        out[i] = s2 / width - mean * mean < limit
        leaving, entering = float(x[min(max(i - h, 0), n - 1)]), float(x[min(i - h + width, n - 1)])
        s1 += entering - leaving
        s2 += entering * entering - leaving * leaving
    return out


def check_signal(sig: Signal) -> np.ndarray:
    """The lead ready to analyse, or a DataError that says what is wrong with it.

    Short gaps of NaN (up to 1 % of samples, e.g. dropped packets) are filled by linear interpolation; more,
    an all-NaN, too short, flat or clipped lead are refused.
    """
    # float32, the network's type (a 24-hour lead is 124 MB of it, 250 in float64), and no copy unless repaired.
    x = np.asarray(sig.values, np.float32)
    seconds = len(x) / sig.fs
    if len(x) == 0:
        raise DataError(f"{sig.name}: the signal has no finite samples (all NaN or empty)")
    nonfinite, lo, hi, spread, rails = _lead_stats(x)
    if nonfinite == len(x):
        raise DataError(f"{sig.name}: the signal has no finite samples (all NaN or empty)")
    if seconds < MIN_SECONDS:
        raise DataError(f"{sig.name}: {seconds:.1f} s of signal; at least {MIN_SECONDS:.0f} s are needed")
    if nonfinite > 0.01 * len(x):
        raise DataError(f"{sig.name}: {nonfinite / len(x):.1%} of samples are NaN or infinite (at most 1 % is "
                        "repaired)")
    if nonfinite:
        bad = ~np.isfinite(x)
        x = x.copy()
        x[bad] = np.interp(np.flatnonzero(bad), np.flatnonzero(~bad), x[~bad])
        _, lo, hi, spread, rails = _lead_stats(x)
    if spread < FLAT_MV:
        raise DataError(f"{sig.name}: the signal is flat (spread {spread * 1000:.1f} uV): lead off or no ECG? "
                        "(values in volts: give --units V)")
    # The 99.9th percentile of the deflections from the median, of at most ~1 M evenly spaced samples (every
    # sample of a 48-minute lead at 360 Hz, every 29th of a day's): it sets a refusal a factor of 20 away from an
    # ECG's few mV, which no such sampling moves.
    sample = x[::max(1, len(x) >> 20)]
    deflection = np.abs(sample - np.median(sample))
    amplitude = float(np.percentile(deflection, 99.9, overwrite_input=True))
    if amplitude > MAX_AMPLITUDE_MV:
        raise DataError(f"{sig.name}: amplitude ~{amplitude:,.0f} mV, far above an ECG's few mV: microvolts? give "
                        "--units uV (a CSV) or fix the header's units")
    if rails > CLIPPED_SHARE:
        raise DataError(f"{sig.name}: {rails:.1%} of samples sit at the signal's extremes ({lo:.2f} / {hi:.2f} mV):"
                        " the signal is clipped")
    return x


@njit
def _lead_stats(x):
    """One lead's (number of non-finite samples, minimum, maximum, standard deviation, share of samples at the
    minimum or maximum) over its finite samples, in two passes (float64 sums)."""
    nonfinite, count = 0, 0
    lo, hi = np.inf, -np.inf
    s1 = s2 = 0.0
    for v in x:
        if not np.isfinite(v):
            nonfinite += 1
            continue
        lo, hi = min(lo, v), max(hi, v)
        s1 += v
        s2 += float(v) * v
        count += 1
    if count == 0:
        return nonfinite, 0.0, 0.0, 0.0, 0.0
    at_rails = 0
    for v in x:
        if v <= lo or v >= hi:
            at_rails += 1
    mean = s1 / count
    return nonfinite, lo, hi, np.sqrt(max(s2 / count - mean * mean, 0.0)), at_rails / len(x)


@dataclass(frozen=True)
class Analysis:
    """Classified beats of one recording: R peaks ``samples`` (at ``fs``), the Detector's ``decisions``, and the
    resampled lead ``signal`` (None where it was not kept: batch scoring writes no strips)."""

    name: str
    fs: float
    fs_in: float
    samples: np.ndarray
    decisions: Decisions
    signal: np.ndarray | None
    summary: dict


@dataclass(frozen=True)
class FoundBeats:
    """The beats of one lead ready to classify: ``signal`` (m,) mV resampled to ``fs`` without mains (the lead
    the model's inputs were cut from), R peaks ``samples`` (k,)
    at ``fs``, model inputs ``windows`` (k, win), ``rr`` (k, 3) and their record ``context``, and how many peaks
    sat too near the edges."""

    signal: np.ndarray
    fs: float
    samples: np.ndarray
    windows: np.ndarray
    rr: np.ndarray
    context: Context
    at_edges: int
    unreadable: np.ndarray  # (k,) bool: the beat's QRS touches an unreadable stretch
    seconds_unreadable: float

    @property
    def duration_s(self) -> float:
        return len(self.signal) / self.fs


def find_beats(sig: Signal, fs: float, win: int, require_ecg_shape: bool = True) -> FoundBeats:
    """Check ``sig``, mark its unreadable stretches, remove its mains interference, resample it to ``fs`` Hz,
    detect its QRS complexes, cut ``win``-sample windows and mark the beats that lie in unreadable stretches.
    With ``require_ecg_shape``, a lead whose beats share no consistent shape is refused (classifying it would be a
    confident answer about noise); drift monitoring turns it off, because such a lead is exactly what it must
    measure and report."""
    invented = ~np.isfinite(sig.values)
    checked = check_signal(sig)
    x = resample(checked, sig.fs, fs)
    if len(x) != len(invented):  # the repaired samples' marks follow the lead to the model's rate
        invented = invented[np.minimum((np.arange(len(x)) * sig.fs / fs).astype(np.int64), len(invented) - 1)]
    bad = unreadable_samples(x, fs, invented)  # on the lead as recorded: a lead off is flat there, a rail a rail
    # The lead the model reads, as read_recording reads one: mains removed at the recording's rate, then resampled
    # (a second resampling only for a recording at another rate: at the model's it returns its input).
    own = sig.owned or checked is not sig.values  # a repaired copy is the analysis's own too
    x = resample(remove_mains(checked, sig.fs, in_place=own), sig.fs, fs)
    del checked
    peaks = detect_qrs(x, fs)
    if len(peaks) < 3:
        raise DataError(f"{sig.name}: only {len(peaks)} QRS complexes found in {len(x) / fs:.0f} s; "
                        "is this an ECG lead?")
    inputs = beat_inputs(x, peaks, fs, win)
    consistency = float(np.median(template_correlation(inputs.centred, inputs.context, fs))) \
        if require_ecg_shape else 1.0
    if consistency < MIN_MEDIAN_TEMPLATE_CORR:
        raise DataError(f"{sig.name}: the {len(inputs.windows)} detected beats share no consistent shape (median "
                        f"correlation with the usual beat {consistency:.2f} < {MIN_MEDIAN_TEMPLATE_CORR}): noise, "
                        "or not an ECG lead?")
    samples = peaks[inputs.kept]
    half = int(round(QRS_HALF_S * fs))
    unreadable = touches(bad, samples - half, samples + half + 1)
    return FoundBeats(x, fs, samples, inputs.windows, inputs.rr, inputs.context, int((~inputs.kept).sum()),
                      unreadable, round(float(bad.sum()) / fs, 1))


def touches(mask: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Whether each span ``[lo, hi)`` of samples (clipped to the lead) holds a True of ``mask`` (m,): (k,) bool."""
    marked = np.flatnonzero(mask)
    return np.searchsorted(marked, np.clip(hi, 0, len(mask))) > np.searchsorted(marked, np.clip(lo, 0, len(mask)))


def origin(sig: Signal, found: FoundBeats) -> dict:
    """Where a summary's beats came from and how much could not be read; :func:`arritmias.analysis.ectopy.summarize` plus this is the
    summary ``analyze`` and ``batch-score`` write."""
    return {"record": sig.name, "lead": sig.lead, "source": sig.source, "fs_in_hz": sig.fs,
            **({"leads_in_record": list(sig.leads)} if sig.leads else {}),
            "beats_at_edges_not_classified": found.at_edges,
            "seconds_unreadable": found.seconds_unreadable,
            "beats_unreadable_not_classified": int(found.unreadable.sum())}


def analyze_signal(sig: Signal, detector: Detector, made_by: dict | None = None) -> Analysis:
    """Detect, window and classify every beat of ``sig`` as one recording (families included); summary of PVC
    burden and patterns, joined by ``made_by`` (see :func:`arritmias.analysis.report.provenance`)."""
    found = find_beats(sig, detector.fs, detector.win)
    decisions = detector.decide_recording(found.windows, found.rr, found.context).excluding(found.unreadable)
    summary = summarize_decisions(decisions, found.samples, found.fs, found.duration_s) | origin(sig, found) | (
        made_by or {})
    return Analysis(sig.name, detector.fs, sig.fs, found.samples, decisions, found.signal, summary)
