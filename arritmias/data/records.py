"""WFDB record I/O: where the records live, reading one lead by name, resampling to the model's rate.

Every function that touches a record on disk goes through here, so the data-location rule and the lead choice
are implemented once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import wfdb

from arritmias.errors import DataError
from arritmias.signal.mains import remove_mains

DEFAULT_DATA_DIR = Path("mit-bih")
DATA_DIR_ENV = "ARRITMIAS_DATA_DIR"
# MLII is the lead every MIT-BIH analysis (and this model) is built on; it is index 0 of the stable order.
PRIMARY_LEAD = "MLII"
# Without MLII, standard limb lead II comes first: MLII is lead II with the electrodes moved to the torso, so the
# two share the axis (and the shapes of P, QRS and T) the model learnt. A 12-lead recorder (St Petersburg INCART,
# PTB-XL) stores lead I first; read there by default, PVCs and P waves would point another way.
NEAREST_LEADS = (PRIMARY_LEAD, "II")


def resolve_data_dir(cli_value: str | os.PathLike | None = None) -> Path:
    """The one data-location rule: ``--data-dir``, else ``$ARRITMIAS_DATA_DIR``, else ``./mit-bih``."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(env) if env else DEFAULT_DATA_DIR


def list_records(data_dir: Path) -> list[str]:
    """Record names in ``data_dir``: its ``RECORDS`` file when present, else every ``*.hea`` (sorted)."""
    if not data_dir.is_dir():
        return []
    listing = data_dir / "RECORDS"
    if listing.is_file():
        return [r for r in listing.read_text().split() if r]
    return sorted(p.stem for p in data_dir.glob("*.hea"))


def no_records_message(data_dir: Path) -> str:
    """The one line shown when a data folder holds no records: how to download or point at a copy."""
    return (
        f"no MIT-BIH records in '{data_dir}': download them with `arritmias data fetch --data-dir {data_dir}`, "
        f"or point at a local copy with --data-dir DIR or {DATA_DIR_ENV}=DIR"
    )


def require_records(data_dir: Path, records: list[str] | tuple[str, ...]) -> None:
    """Raise :class:`DataError` naming the first record of ``records`` whose header is missing."""
    if not list_records(data_dir):
        raise DataError(no_records_message(data_dir))
    for name in records:
        if not (data_dir / f"{name}.hea").is_file():
            raise DataError(f"record {name}: '{data_dir / (name + '.hea')}' not found in the data folder")


def nearest_lead(name: str | None) -> bool:
    """Whether lead ``name`` is one of :data:`NEAREST_LEADS` (MLII or lead II), written any way."""
    return _lead_key(name) in NEAREST_LEADS


def _lead_key(name: str | None) -> str:
    """A lead name compared without case or spaces: "ECG II" and "ii" are lead II."""
    return str(name or "").replace(" ", "").upper()


def lead_order(sig_names: list[str]) -> list[int]:
    """Channel indices in the stable lead order: MLII first, else lead II (:data:`NEAREST_LEADS`; names compared
    without case or spaces), then the others in file order.

    ``deriv_idx`` indexes this order, so ``deriv_idx=0`` is MLII even in record 114, whose file stores V5 first, and
    lead II in a 12-lead record. Records with neither (MIT-BIH's paced 102 and 104) keep their file order.
    """
    idx = list(range(len(sig_names)))
    names = [_lead_key(n) for n in sig_names]
    for lead in NEAREST_LEADS:
        if lead in names:
            first = names.index(lead)
            idx.remove(first)
            idx.insert(0, first)
            break
    return idx


def record_leads(data_dir: Path, name: str) -> tuple[str, ...]:
    """The lead names of record ``name`` in ``deriv_idx`` order (MLII first)."""
    names = list(_header(data_dir, name).sig_name or [])
    return tuple(names[i] for i in lead_order(names))


def lead_name(data_dir: Path, name: str, deriv_idx: int = 0) -> str:
    """The name of lead ``deriv_idx`` (stable order) of record ``name``; DataError when the record lacks it."""
    names = list(_header(data_dir, name).sig_name or [])
    return names[_channel(names, name, deriv_idx)]


def _header(data_dir: Path, name: str):
    """The wfdb header of record ``name``; DataError naming the file when it is missing or unreadable."""
    try:
        return wfdb.rdheader(str(data_dir / name))
    except Exception as exc:  # wfdb raises bare ValueError/FileNotFoundError for many header faults
        raise DataError(f"record {name}: header '{data_dir / name}.hea' unreadable ({exc})") from exc


def _channel(sig_names: list[str], name: str, deriv_idx: int) -> int:
    """The file channel of lead ``deriv_idx`` (stable order) of record ``name``; DataError when it lacks it."""
    order = lead_order(sig_names)
    if not 0 <= deriv_idx < len(order):
        raise DataError(f"record {name}: deriv_idx={deriv_idx} but the record has {len(order)} lead(s)")
    return order[deriv_idx]


@dataclass(frozen=True)
class Recording:
    """One lead of a record, at the model's sampling rate or as stored.

    Attributes
    ----------
    name : str
        Record name, e.g. ``"100"``.
    signal : ndarray, shape (n_samples,), float32
        The lead in millivolts at ``fs`` Hz: without mains interference when read at the model's rate, as wfdb
        reads it when read as stored (:func:`read_recording`).
    fs : float
        Sampling rate in Hz (the model's, or the record's own when read as stored).
    lead : str
        Lead name from the header (``"MLII"``, ``"V1"``, ...).
    ann_samples : ndarray, shape (n_ann,), int64
        Reference annotation positions in samples at ``fs`` (empty when the record has no annotations).
    ann_symbols : ndarray, shape (n_ann,), str
        Reference annotation symbols, beat and non-beat alike.
    """

    name: str
    signal: np.ndarray
    fs: float
    lead: str
    ann_samples: np.ndarray
    ann_symbols: np.ndarray


def resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling of ``signal`` (1D, any units) from ``fs_in`` to ``fs_out`` Hz.

    scipy's ``resample_poly`` applies a Kaiser-windowed anti-aliasing FIR, so a 500 Hz record does not fold
    content above 180 Hz into the 360 Hz band. Rates are rounded to whole Hz to form the integer ratio.
    """
    up, down = int(round(fs_out)), int(round(fs_in))
    if up == down:
        return signal
    from scipy.signal import resample_poly  # ~1 s to import: only for a recording at another rate

    g = gcd(up, down)
    return resample_poly(signal, up // g, down // g).astype(signal.dtype, copy=False)


# Millivolts per unit of the amplitude units a header or --units may name. The model works in mV (what wfdb gives
# for MIT-BIH); a header in uV or V is converted, not trusted to be mV. A header without units is mV (WFDB's
# default).
MV_PER_UNIT = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


def to_millivolts(values: np.ndarray, unit: str | None, source: str) -> np.ndarray:
    """``values`` in ``unit`` (``mV``, ``uV``/``µV`` or ``V``; None or empty: mV) as float32 mV, or a DataError
    naming ``source`` and the unit it cannot convert."""
    key = (unit or "mV").strip().lower()
    if key not in MV_PER_UNIT:
        raise DataError(f"{source}: amplitude unit '{unit}' is not one of mV, uV, V; fix the header or --units")
    scale = MV_PER_UNIT[key]
    return np.asarray(values, np.float32) if scale == 1.0 else (np.asarray(values, np.float64) * scale).astype(
        np.float32)


# Sampling rates we accept (Hz): below ~100 Hz the QRS (content up to ~40 Hz) is barely sampled and its width
# unmeasurable; above 10 kHz a header is almost surely wrong (ECG amplifiers sample at 125-2000 Hz).
FS_RANGE_HZ = (100.0, 10_000.0)


def check_fs(fs, source: str) -> float:
    """``fs`` as a float if it is a plausible ECG sampling rate (``FS_RANGE_HZ``), else a DataError naming
    ``source`` (a record, a file or an option)."""
    try:
        value = float(fs)
    except (TypeError, ValueError):
        raise DataError(f"{source}: sampling rate {fs!r} is not a number (Hz)") from None
    if not FS_RANGE_HZ[0] <= value <= FS_RANGE_HZ[1]:  # also false for NaN
        raise DataError(f"{source}: sampling rate {value:g} Hz is outside {FS_RANGE_HZ[0]:g}-{FS_RANGE_HZ[1]:g} Hz; "
                        "check the header or --fs")
    return value


def header_fs_field(path: str) -> str | None:
    """The sampling-frequency field of a WFDB header's record line, as written (``None`` when absent).

    wfdb reads a field it cannot parse (e.g. a negative rate) as the format's default 250 Hz without a word, so
    the field is checked as text before trusting ``header.fs``.
    """
    for line in Path(f"{path}.hea").read_text(errors="replace").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            fields = line.split()
            return fields[2].split("/")[0].split("(")[0] if len(fields) > 2 else None
    return None


# Bytes per sample of the common WFDB formats: a signal file shorter than the header's length is caught here, by
# name, instead of as a numpy broadcasting error inside wfdb.
BYTES_PER_SAMPLE = {"8": 1, "16": 2, "61": 2, "80": 1, "160": 2, "212": 1.5, "24": 3, "32": 4}


def _check_signal_file(data_dir: Path, name: str, header, channel: int) -> None:
    """DataError for a signal file that is missing, empty or shorter than the header says (formats in
    ``BYTES_PER_SAMPLE``; other formats are left to wfdb)."""
    file_name = (header.file_name or [None])[channel]
    if not file_name:
        return
    path = data_dir / file_name
    if not path.is_file():
        raise DataError(f"record {name}: signal file '{path}' not found")
    size, samples = path.stat().st_size, header.sig_len or 0
    if size == 0:
        raise DataError(f"record {name}: signal file '{path}' is empty (the header says {samples} samples)")
    fmt = str((header.fmt or [""])[channel])
    in_file = sum(1 for f in header.file_name if f == file_name)  # signals interleaved in that file
    if fmt in BYTES_PER_SAMPLE and samples:
        offset = int((header.byte_offset or [0])[channel] or 0)
        needed = offset + int(samples * in_file * BYTES_PER_SAMPLE[fmt])
        if size < needed:
            raise DataError(f"record {name}: signal file '{path}' is truncated ({size} bytes; the header's "
                            f"{samples} samples of {in_file} signal(s) in format {fmt} need {needed})")


def read_recording(
    data_dir: Path, name: str, deriv_idx: int = 0, fs: float | None = 360.0, annotator: str | None = "atr"
) -> Recording:
    """Read lead ``deriv_idx`` (stable order, 0 = MLII) of record ``name`` and its annotations as the model reads
    it: mains interference removed (:func:`arritmias.signal.mains.remove_mains`) and resampled to ``fs`` Hz; with
    ``fs=None``, as stored (the record's own rate, nothing removed: what an analysis starts from).

    Raises :class:`DataError` with the record's name for a missing or unreadable header, signal file or
    annotation file, or a ``deriv_idx`` the record does not have.
    """
    path = str(data_dir / name)
    header = _header(data_dir, name)
    written = header_fs_field(path)
    check_fs(written if written is not None else header.fs, f"record {name} ({path}.hea)")
    channel = _channel(list(header.sig_name or []), name, deriv_idx)
    _check_signal_file(data_dir, name, header, channel)
    try:
        rec = wfdb.rdrecord(path, channels=[channel], physical=True, return_res=32)
    except Exception as exc:
        raise DataError(f"record {name}: signal file unreadable ({exc})") from exc
    unit = header.units[channel] if header.units else None
    signal = to_millivolts(rec.p_signal[:, 0], unit, f"record {name} ({path}.hea)")
    if annotator is None:
        samples, symbols = np.zeros(0, np.int64), np.zeros(0, "<U1")
    else:
        try:
            ann = wfdb.rdann(path, annotator)
        except Exception as exc:
            raise DataError(f"record {name}: annotation file '{path}.{annotator}' unreadable ({exc})") from exc
        samples, symbols = np.asarray(ann.sample, np.int64), np.asarray(ann.symbol)
    fs_in = float(header.fs)
    if fs is None:  # the lead as stored
        fs = fs_in
    else:  # the lead as the model reads it: without mains, at its rate
        signal = remove_mains(signal, fs_in)
    if round(fs_in) != round(fs):
        signal = resample(signal, fs_in, fs)
        samples = np.round(samples * (fs / fs_in)).astype(np.int64)
    return Recording(name, signal, float(fs), header.sig_name[channel], samples, symbols)


def record_paths(names, data_dir: Path) -> list[Path]:
    """A name like ``100`` is a record in ``data_dir``; a lead CSV or anything with a folder is a path as given."""
    return [Path(n) if Path(n).suffix.lower() == ".csv" or "/" in n or os.sep in n else data_dir / n
            for n in names]
