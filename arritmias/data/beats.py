"""Beats from annotated records: AAMI classes, fixed windows around each R peak, RR features, the splits.

Windows are kept raw (mV, as wfdb reads them). The one per-window preprocessing lives in
:mod:`arritmias.model.preprocess`, because a served request carries only a raw window and its RR features.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arritmias.data import cache
from arritmias.data import decoys
from arritmias.signal import qrs
from arritmias.signal.context import Context, centre, record_context
from arritmias.signal.mains import remove_mains
from arritmias.util.progress import progress as progress_bar
from arritmias.data.records import Recording, read_recording, require_records

# AAMI EC57 beat classes from MIT-BIH symbols. Symbols not listed are non-beat annotations and are ignored.
AAMI_CLASSES: dict[str, str] = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}

# de Chazal, O'Dwyer & Reilly 2004, IEEE TBME 51(7): inter-patient split; the four paced records are excluded.
DS1 = ("101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124",
       "201", "203", "205", "207", "208", "209", "215", "220", "223", "230")
DS2 = ("100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212",
       "213", "214", "219", "221", "222", "228", "231", "232", "233", "234")
PACED = ("102", "104", "107", "217")
NAMED_SETS = {"DS1": DS1, "DS2": DS2}

# The class of a detection that is no beat: no reference beat within EC57's 150 ms, or the reference says Q
# (unclassifiable). The network's third answer; its examples' symbol is '|' (WFDB's isolated artifact) for the
# detector's own false detections and one of decoys.KINDS for decoys.
NOT_A_BEAT = "X"
# Where training cuts its beats: at the cardiologists' annotations, or where the QRS detector finds them (what a
# user's recording gives; windows then carry the detector's own jitter, and its false detections are examples).
POSITIONS = ("reference", "detected")

# RR features carried by every beat and by every served request, in this order.
RR_FEATURES = ("rr_prev_s", "rr_next_s", "rr_ratio")
# Bump when the arrays built here change for the same inputs: it is part of every cache key.
# 4: leads without mains (50/60 Hz); 3: detected positions, "not a beat" and decoys; 2: record context
DATASET_VERSION = 4
ARRAY_FIELDS = ("windows", "rr", "aami", "symbol", "record", "sample", "template", "rr_usual")


def parse_records(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Record names from ``"DS1"``, ``"DS2"``, ``"DS1+DS2"`` or a comma/space-separated list (``"100,119"``)."""
    if not isinstance(spec, str):
        return tuple(spec)
    names: list[str] = []
    for part in spec.replace(",", " ").replace("+", " ").split():
        names.extend(NAMED_SETS.get(part.upper(), (part,)))
    return tuple(names)


@dataclass(frozen=True)
class BeatSet:
    """Beats of one or more records, row-aligned.

    Attributes
    ----------
    windows : ndarray, shape (n, win), float32
        Raw lead signal in mV, R peak at index ``win // 2``.
    rr : ndarray, shape (n, 3), float32
        ``RR_FEATURES``: previous RR (s), next RR (s), next/previous.
    aami : ndarray, shape (n,), '<U1'
        AAMI class: N, S, V, F or Q; at detected positions also ``NOT_A_BEAT`` (X).
    symbol : ndarray, shape (n,), '<U1'
        The reference MIT-BIH symbol ('|' for a detection that matched none, a decoy's kind for a decoy).
    record : ndarray, shape (n,), '<U8'
        Record name of each beat.
    sample : ndarray, shape (n,), int64
        R-peak position in samples at the dataset's ``fs``.
    template, rr_usual : ndarray, shapes (n, win) and (n,), float32
        The record context of each beat (:mod:`arritmias.signal.context`), computed over all beats of its record.
    dropped_edge : dict
        Record name -> {AAMI class: count} of beats dropped because their window runs past the start or end of
        the signal (only records and classes that lost beats).
    """

    windows: np.ndarray
    rr: np.ndarray
    aami: np.ndarray
    symbol: np.ndarray
    record: np.ndarray
    sample: np.ndarray
    template: np.ndarray
    rr_usual: np.ndarray
    dropped_edge: dict[str, dict[str, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.aami)

    @property
    def context(self) -> Context:
        return Context(self.template, self.rr_usual)

    def by_record(self) -> list[tuple[str, np.ndarray]]:
        """(record, its rows) for each record, in the order the records first appear (rows keep their order)."""
        names, first = np.unique(self.record, return_index=True)
        return [(n, np.flatnonzero(self.record == n)) for n in names[np.argsort(first)]]

    def select(self, mask: np.ndarray) -> BeatSet:
        """Rows where ``mask`` (bool (n,) or indices) holds; ``dropped_edge`` is kept as is."""
        return BeatSet(*(getattr(self, f)[mask] for f in ARRAY_FIELDS), dict(self.dropped_edge))

    def counts(self) -> dict[str, int]:
        """Beats per AAMI class, all five keys present (and X when there are detections that are not beats)."""
        out = {c: int(np.sum(self.aami == c)) for c in "NSVFQ"}
        if np.any(self.aami == NOT_A_BEAT):
            out[NOT_A_BEAT] = int(np.sum(self.aami == NOT_A_BEAT))
        return out

    def is_decoy(self) -> np.ndarray:
        """(n,) bool: the rows that are decoys (windows cut on T waves, P waves, between beats), not detections."""
        return np.isin(self.symbol, list(decoys.KINDS))

    def dropped_counts(self) -> dict[str, int]:
        """Beats per AAMI class dropped at record edges, all five keys present."""
        return {c: sum(d.get(c, 0) for d in self.dropped_edge.values()) for c in "NSVFQ"}

    @staticmethod
    def concat(parts: list[BeatSet]) -> BeatSet:
        """Join beat sets row-wise (``parts`` non-empty)."""
        dropped: dict[str, dict[str, int]] = {}
        for p in parts:
            dropped.update(p.dropped_edge)
        return BeatSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in ARRAY_FIELDS), dropped)


def rr_features(r_samples: np.ndarray, fs: float) -> np.ndarray:
    """RR features of consecutive beats.

    Parameters
    ----------
    r_samples : ndarray, shape (n,), int
        R-peak positions in samples, increasing, of *all* beats of a record (every class: an S beat still ends
        an RR interval).
    fs : float
        Sampling rate in Hz.

    Returns
    -------
    ndarray, shape (n, 3), float32
        Previous RR (s), next RR (s), next/previous. The first beat has no previous interval and the last none
        next; each borrows its one neighbour interval (ratio 1), so no beat is lost for RR reasons.
    """
    n = len(r_samples)
    out = np.ones((n, 3), np.float32)
    if n < 2:
        out[:, :2] = np.nan
        return out
    rr = np.diff(r_samples).astype(np.float64) / fs
    prev = np.concatenate([rr[:1], rr])
    nxt = np.concatenate([rr, rr[-1:]])
    out[:, 0], out[:, 1] = prev, nxt
    out[:, 2] = nxt / np.maximum(prev, 1e-6)
    return out


def window_at(signal: np.ndarray, centres: np.ndarray, win: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``win``-sample windows of ``signal`` with each centre at index ``win // 2``.

    Returns ``(windows, kept)``: windows of shape (k, win) and the bool mask (shape (n,)) of centres whose whole
    window lies inside the signal.
    """
    half = win // 2
    kept = (centres - half >= 0) & (centres - half + win <= len(signal))
    # Rows of a strided view of the signal: one copy of the windows, no (k, win) index array (320 MB a day).
    return np.lib.stride_tricks.sliding_window_view(signal, win)[centres[kept] - half], kept


@dataclass(frozen=True)
class BeatInputs:
    """What the Detector needs for the beats of one recording: raw ``windows`` (k, win) float32 mV, ``rr``
    (k, 3) float32, their record ``context``, ``kept`` (n,) bool: which of the n R peaks had a whole window, and
    ``centred`` (k, win): the windows minus their medians (:func:`arritmias.signal.context.centre`), computed once for the
    context and the shape check."""

    windows: np.ndarray
    rr: np.ndarray
    context: Context
    kept: np.ndarray
    centred: np.ndarray


def beat_inputs(signal: np.ndarray, r_samples: np.ndarray, fs: float, win: int) -> BeatInputs:
    """Windows, RR features and record context of the beats at ``r_samples`` — the one way training, analysis,
    batch scoring, evaluation and the drift features turn R peaks into model inputs.

    ``signal`` (m,) in mV at ``fs`` Hz; ``r_samples`` (n,) increasing sample indices of every beat of the
    recording. RR features use every peak; the context uses every beat whose whole window lies inside ``signal``.
    """
    rr = rr_features(r_samples, fs)
    windows, kept = window_at(signal, r_samples, win)
    windows, rr = windows.astype(np.float32, copy=False), rr[kept]
    centred = centre(windows)
    return BeatInputs(windows, rr, record_context(windows, rr, centred=centred), kept, centred)


def n_v(beats: BeatSet) -> BeatSet:
    """Only the N and V beats: the rows of beat-level test figures, and what two models are compared on."""
    return beats.select(np.isin(beats.aami, ("N", "V")))


def n_v_beats(data_dir: Path, records: tuple[str, ...], cache_dir: Path | None = None) -> BeatSet:
    """The N and V reference beats of annotated ``records`` with their context (cached in ``cache_dir``, default
    :func:`arritmias.data.cache.default_cache_dir`): what promotion and the A/B report score two models on."""
    return n_v(build_beats(data_dir, records, cache_dir=cache_dir or cache.default_cache_dir(), progress=False))


def for_recording(signal: np.ndarray, r_samples: np.ndarray, fs: float = 360.0, win: int = 360) -> list[dict]:
    """Request instances with context for every beat of a recording, ready for ``{"instances": ...}``.

    Parameters
    ----------
    signal : ndarray, shape (m,)
        One lead in mV at ``fs`` Hz (the model's rate: 360 Hz for the models trained here), as recorded: its
        mains interference is removed here, as for every lead the model reads.
    r_samples : ndarray, shape (n,), int
        R-peak positions in samples, increasing (from annotations or a QRS detector).

    Returns
    -------
    One dict per beat whose window lies inside the signal: ``sig`` (win numbers, mV), ``rr`` (3 numbers),
    ``ctx_sig`` (the usual beat, win numbers, mV) and ``ctx_rr`` (the usual RR, s).
    """
    inputs = beat_inputs(remove_mains(signal, fs), np.asarray(r_samples, np.int64), fs, win)
    return [{"sig": w.tolist(), "rr": r.tolist(), "ctx_sig": t.tolist(), "ctx_rr": float(u)}
            for w, r, t, u in zip(inputs.windows, inputs.rr, inputs.context.template, inputs.context.rr_usual)]


@dataclass(frozen=True)
class ReferenceBeats:
    """The beat annotations of a record: R-peak ``samples`` (k,) at the record's rate, MIT-BIH ``symbols`` (k,)
    and their AAMI classes ``aami`` (k,) 'N', 'S', 'V', 'F' or 'Q'. Non-beat annotations are left out, except
    ``unscored`` (m, 2) int64: the [start, end) samples of ventricular flutter or fibrillation (between MIT-BIH's
    ``[`` and ``]`` annotations), where there are no beats to find and EC57 scores no beat."""

    samples: np.ndarray
    symbols: np.ndarray
    aami: np.ndarray
    unscored: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))


def aami_classes(symbols) -> tuple[np.ndarray, np.ndarray]:
    """``(is_beat, aami)``: which MIT-BIH annotation ``symbols`` are beats, and the AAMI class of each of those;
    the one place symbols become classes."""
    symbols = np.asarray(symbols)
    is_beat = np.isin(symbols, list(AAMI_CLASSES))
    return is_beat, np.array([AAMI_CLASSES[s] for s in symbols[is_beat]], dtype="<U1")


def flutter_episodes(symbols: np.ndarray, samples: np.ndarray, end: int) -> np.ndarray:
    """(m, 2) [start, end) samples of the ventricular flutter/fibrillation episodes that MIT-BIH's ``[`` and ``]``
    annotations bracket (an episode still open at the end of the record runs to ``end``)."""
    out, start = [], None
    for sym, at in zip(np.asarray(symbols).tolist(), np.asarray(samples).tolist()):
        if sym == "[" and start is None:
            start = at
        elif sym == "]" and start is not None:
            out.append((start, at + 1))
            start = None
    if start is not None:
        out.append((start, end))
    return np.asarray(out, np.int64).reshape(-1, 2)


def reference_beats(rec: Recording) -> ReferenceBeats:
    """The annotated beats of ``rec`` with their AAMI classes, and its flutter episodes."""
    is_beat, aami = aami_classes(rec.ann_symbols)
    return ReferenceBeats(rec.ann_samples[is_beat], rec.ann_symbols[is_beat], aami,
                          flutter_episodes(rec.ann_symbols, rec.ann_samples, len(rec.signal)))


def beats_from_recording(rec: Recording, win: int) -> BeatSet:
    """All annotated beats of ``rec`` (every AAMI class) with raw windows, RR features and record context."""
    ref = reference_beats(rec)
    samples, symbols, aami_all = ref.samples, ref.symbols, ref.aami
    inputs = beat_inputs(rec.signal, samples, rec.fs, win)
    kept = inputs.kept
    lost = dict(zip(*np.unique(aami_all[~kept], return_counts=True)))
    return BeatSet(
        windows=inputs.windows,
        rr=inputs.rr,
        aami=aami_all[kept],
        symbol=symbols[kept].astype("<U1"),
        record=np.full(int(kept.sum()), rec.name, dtype="<U8"),
        sample=samples[kept],
        template=inputs.context.template,
        rr_usual=inputs.context.rr_usual,
        dropped_edge={rec.name: {str(c): int(n) for c, n in lost.items()}} if lost else {},
    )


def detected_beats_from_recording(rec: Recording, win: int, n_decoys: int = 0, seed: int = 0) -> BeatSet:
    """The beats of ``rec`` where :func:`arritmias.signal.qrs.detect_qrs` finds them, labelled by EC57 matching to the
    reference (a detection without a reference beat within 150 ms, or on a Q beat, is ``NOT_A_BEAT``), with
    raw windows, RR features and the record context of the detected sequence — what a user's recording gives.
    Detections inside ventricular flutter episodes are left out (no beat there to be right or wrong about).

    With ``n_decoys`` > 0, decoys (:mod:`arritmias.data.decoys`) follow the detections: up to ``n_decoys`` randomly
    chosen pairs of consecutive real beats (``seed`` and the record's name fix the draw) give up to 3 each.
    """
    from arritmias.data.matching import match_beats, outside

    ref = reference_beats(rec)
    found = qrs.detect_qrs(rec.signal, rec.fs)
    found = found[outside(found, ref.unscored)]
    inputs = beat_inputs(rec.signal, found, rec.fs, win)
    samples = found[inputs.kept]
    match = match_beats(ref.samples, samples, rec.fs)
    aami = np.full(len(samples), NOT_A_BEAT, "<U1")
    symbol = np.full(len(samples), "|", "<U1")
    aami[match[match >= 0]] = ref.aami[match >= 0]
    symbol[match[match >= 0]] = ref.symbols[match >= 0]
    aami[aami == "Q"] = NOT_A_BEAT
    parts = [BeatSet(inputs.windows, inputs.rr, aami, symbol, np.full(len(samples), rec.name, "<U8"), samples,
                     inputs.context.template, inputs.context.rr_usual)]
    if n_decoys > 0:
        real = aami != NOT_A_BEAT
        pairs = np.flatnonzero(real[:-1] & real[1:])
        rng = np.random.default_rng([seed, int.from_bytes(rec.name.encode(), "little")])
        pairs = np.sort(rng.choice(pairs, min(len(pairs), n_decoys), replace=False))
        pos, kinds, before = decoys.decoy_positions(rec.signal, samples, pairs, rec.fs, win, rng)
        windows, _ = window_at(rec.signal, pos, win)
        parts.append(BeatSet(windows.astype(np.float32), decoys.decoy_rr(pos, samples, before, rec.fs),
                             np.full(len(pos), NOT_A_BEAT, "<U1"), kinds, np.full(len(pos), rec.name, "<U8"), pos,
                             inputs.context.template[before], inputs.context.rr_usual[before]))
    return BeatSet.concat(parts)


def build_beats(
    data_dir: Path,
    records: str | tuple[str, ...] | list[str],
    deriv_idx: int = 0,
    win: int = 360,
    fs: float = 360.0,
    cache_dir: Path | None = None,
    progress: bool = True,
    positions: str = "reference",
    n_decoys: int = 0,
    seed: int = 0,
) -> BeatSet:
    """Beats of ``records`` (names or ``"DS1"``-style spec) from ``data_dir``, lead ``deriv_idx``, cut at the
    reference annotations or, with ``positions="detected"``, where the QRS detector finds them (with
    ``n_decoys`` pairs of decoys per record drawn with ``seed``: :func:`detected_beats_from_recording`).

    With ``cache_dir`` the arrays are cached under a key of everything that shapes them (the records' files,
    lead, window, rate, positions, detector and code versions) and written atomically. Records are read on two
    threads: wfdb's decoding runs in numpy, which releases the GIL.
    """
    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {POSITIONS}, not {positions!r}")
    names = parse_records(records)
    require_records(data_dir, names)
    detected = positions == "detected"
    key = cache.make_key(files=cache.file_stamps(data_dir, names), records=names, deriv_idx=deriv_idx,
                         win=win, fs=fs, version=DATASET_VERSION, positions=positions,
                         **({"qrs": qrs.VERSION, "decoys": n_decoys, "seed": seed} if detected else {}))
    if cache_dir is not None and (hit := cache.load(cache_dir, key)) is not None:
        arrays, meta = hit
        return BeatSet(**arrays, dropped_edge=meta["dropped_edge"])
    bar = progress_bar(total=len(names), enabled=progress, desc="reading records", unit="rec")
    with ThreadPoolExecutor(max_workers=2) as pool:
        def cut(name: str) -> BeatSet:
            rec = read_recording(data_dir, name, deriv_idx, fs)
            return detected_beats_from_recording(rec, win, n_decoys, seed) if detected else \
                beats_from_recording(rec, win)

        futures = [pool.submit(cut, n) for n in names]
        parts = []
        for fut in futures:
            parts.append(fut.result())
            bar.update()
    bar.close()
    beats = BeatSet.concat(parts)
    if cache_dir is not None:
        cache.save(cache_dir, key, {f: getattr(beats, f) for f in ARRAY_FIELDS}, {"dropped_edge": beats.dropped_edge})
    return beats
