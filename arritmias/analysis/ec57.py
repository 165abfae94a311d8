"""EC57 evaluation of a Detector on annotated records (``arritmias evaluate``), both modes, and the noise stress test.

The counting itself, beat by beat as ``bxb`` does it, is :mod:`arritmias.data.matching`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from arritmias.data.matching import EXCLUDE_FIRST_S, Ec57Result, record_counts, summarize

# EC57's noise stress test: MIT-BIH 118 and 119 with NSTDB's electrode-motion noise added by nst at these SNRs
# (records 118e24 ... 118e_6), clean for 5 minutes, then noisy in alternating 2-minute segments.
NST_RECORDS = ("118", "119")
NST_SNR_DB = (24, 18, 12, 6, 0, -6)


def nst_record(record: str, snr_db: int) -> str:
    """The NSTDB name of ``record`` at ``snr_db``: 118e24, 118e00, 118e_6."""
    return f"{record}e{snr_db:02d}" if snr_db >= 0 else f"{record}e_{-snr_db}"


def evaluate(detector, data_dir: Path, records: tuple[str, ...], mode: str = "reference",
             include_start: bool = False, ann_dir: Path | None = None, progress: bool = True,
             deriv_idx: int = 0) -> Ec57Result:
    """Score ``detector`` on ``records`` in ``mode`` ("reference" or "detected") on lead ``deriv_idx`` of each (stable
    order: MLII, else lead II, first; see :func:`arritmias.data.records.lead_order`), read at the model's rate
    whatever the database's; optionally write annotations.

    ``reference`` classifies the beats at the reference positions (classification alone: a beat judged not a
    beat stays a non-V beat); ``detected`` runs the whole analysis (QRS detection, windowing, classification)
    and matches its beats to the reference, leaving out the detections judged not beats. Both classify each
    record as a recording (:meth:`arritmias.model.detector.Detector.decide_recording`, families included).
    """
    from arritmias.analysis.recording import Analysis, Signal, analyze_signal
    from arritmias.data.beats import beat_inputs, reference_beats
    from arritmias.errors import DataError
    from arritmias.util.progress import progress as progress_bar
    from arritmias.data.records import read_recording
    from arritmias.analysis.report import write_annotations

    if mode not in ("reference", "detected"):
        raise ValueError(f"mode must be 'reference' or 'detected', not {mode!r}")
    start = 0.0 if include_start else EXCLUDE_FIRST_S
    counts = {}
    for name in progress_bar(records, enabled=progress, desc=f"EC57 ({mode})", unit="rec"):
        rec = read_recording(data_dir, name, deriv_idx, fs=detector.fs)
        ref = reference_beats(rec)
        if mode == "reference":
            inputs = beat_inputs(rec.signal, ref.samples, rec.fs, detector.win)
            decisions = detector.decide_recording(inputs.windows, inputs.rr, inputs.context)
            analysis = Analysis(name, rec.fs, rec.fs, ref.samples[inputs.kept], decisions, rec.signal, {})
            scored = np.ones(len(decisions.is_v), bool)
        else:
            raw = read_recording(data_dir, name, deriv_idx, fs=None, annotator=None)  # as `analyze` reads it
            try:
                analysis = analyze_signal(Signal(name, raw.signal, raw.fs, raw.lead, str(data_dir / name),
                                                 owned=True), detector)
            except DataError:  # analysis refuses the recording (e.g. all noise): no beat reported, every one missed
                none = np.zeros(0, np.int64)
                counts[name] = record_counts(ref.samples, ref.aami, none, none.astype("<U1"), rec.fs, start,
                                             ref.unscored)
                continue
            scored = ~analysis.decisions.not_beat
        counts[name] = record_counts(ref.samples, ref.aami, analysis.samples[scored],
                                     analysis.decisions.ec57_labels()[scored], rec.fs, start, ref.unscored)
        if ann_dir is not None:
            ann_dir.mkdir(parents=True, exist_ok=True)
            write_annotations(analysis, ann_dir)
    return summarize(mode, counts)


def noise_stress(detector, nstdb_dir: Path, mode: str = "detected", progress: bool = True) -> dict[int, Ec57Result]:
    """EC57's noise stress test: :func:`evaluate` on ``NST_RECORDS`` at each of ``NST_SNR_DB`` (the NSTDB records
    in ``nstdb_dir``); SNR -> the result over both records."""
    return {snr: evaluate(detector, nstdb_dir, tuple(nst_record(r, snr) for r in NST_RECORDS), mode,
                          progress=progress) for snr in NST_SNR_DB}


def format_noise_table(results: dict[int, Ec57Result]) -> str:
    """One line per SNR: gross QRS and VEB Se / +P over the noise stress records (percent)."""
    def pct(v):
        return "    -" if v is None else f"{100 * v:5.1f}"

    lines = ["EC57 noise stress test (" + " + ".join(NST_RECORDS) + ", electrode motion), mode="
             + next(iter(results.values())).mode, f"{'SNR dB':>7}  QRS Se    +P   VEB Se    +P    Vv   Nv+Sv   Ov"]
    for snr, r in results.items():
        g, t = r.gross, r.totals
        lines.append(f"{snr:>7}  {pct(g['qrs_se'])} {pct(g['qrs_ppv'])}   {pct(g['veb_se'])} {pct(g['veb_ppv'])} "
                     f"{t['Vv']:>5} {t['Nv'] + t['Sv']:>7} {t['Ov']:>4}")
    return "\n".join(lines)


def format_table(result: Ec57Result) -> str:
    """Per-record counts and figures, then gross and average lines, as bxb prints them (percent): the VEB counts,
    the SVEB counts (Ss: S called S; Sn+Sv: S beats missed as N or V; Ns+Vs: N or V beats called S) and both
    classes' Se / +P, then QRS."""
    def pct(v):
        return "    -" if v is None else f"{100 * v:5.1f}"

    cols = (("Nn", 6), ("Nv", 5), ("Sv", 5), ("Vn", 5), ("Vv", 6), ("Vo", 4), ("Ov", 4), ("Ss", 6), ("Sn+Sv", 6),
            ("Ns+Vs", 6))

    def counts(c):
        return "".join(f"{sum(c.get(k, 0) for k in key.split('+')):>{w}}" for key, w in cols)

    head = (f"{'record':<7}" + "".join(f"{k:>{w}}" for k, w in cols)
            + "  VEB Se  +P  SVEB Se  +P   QRS Se  +P")
    lines = [f"EC57 beat-by-beat, mode={result.mode}", head]
    for r, f in result.per_record.items():
        lines.append(f"{r:<7}{counts(f)}  {pct(f['veb_se'])} {pct(f['veb_ppv'])}   {pct(f['sveb_se'])} "
                     f"{pct(f['sveb_ppv'])}  {pct(f['qrs_se'])} {pct(f['qrs_ppv'])}")
    lines.append(f"{'sum':<7}{counts(result.totals)}")
    for label, figs in (("gross", result.gross), ("average", result.average)):
        lines.append(f"{label:<7} VEB Se {pct(figs['veb_se'])} %  +P {pct(figs['veb_ppv'])} %   "
                     f"SVEB Se {pct(figs['sveb_se'])} %  +P {pct(figs['sveb_ppv'])} %   "
                     f"QRS Se {pct(figs['qrs_se'])} %  +P {pct(figs['qrs_ppv'])} %")
    return "\n".join(lines)
