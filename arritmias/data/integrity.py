"""Getting the MIT-BIH records and proving they are intact: ``arritmias data fetch`` and ``data verify``."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import wfdb

from arritmias.util.atomic import staging_folder
from arritmias.data.beats import aami_classes
from arritmias.errors import DataError
from arritmias.util.progress import progress as progress_bar
from arritmias.data.records import list_records, no_records_message

# Bytes per sample frame of each signal-file format used by MIT-BIH and its companions (format 212 packs two
# 12-bit samples in 3 bytes).
_BITS_PER_SAMPLE = {"212": 12, "16": 16, "80": 8, "61": 16, "310": 10, "311": 10}
SUMS_FILE = "SHA256SUMS"
PHYSIONET_URL_ENV = "ARRITMIAS_PHYSIONET_URL"
MITDB = "mitdb"  # PhysioNet's name of the MIT-BIH Arrhythmia Database, the one the model is trained on


def database_label(database: str) -> str:
    """How messages name PhysioNet's ``database``: "MIT-BIH" for ``mitdb``, else its PhysioNet name."""
    return "MIT-BIH" if database == MITDB else database


@dataclass
class RecordCheck:
    """What ``verify`` found for one record: AAMI beat counts and a list of one-line problems."""

    record: str
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def bundled_sums() -> str:
    """The published SHA-256 sums of the 48 MIT-BIH records' files (PhysioNet mitdb 1.0.0)."""
    return resources.files("arritmias.resources").joinpath("mitdb.sha256").read_text()


def parse_sums(text: str) -> dict[str, str]:
    """``{file name: hex digest}`` from ``sha256sum`` output (``HASH  NAME`` or ``HASH *NAME`` lines)."""
    sums = {}
    for line in text.splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2:
            sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _expected_dat_bytes(header: wfdb.Record, dat_name: str) -> int:
    n_sig = sum(1 for f in header.file_name if f == dat_name)
    fmt = header.fmt[header.file_name.index(dat_name)]
    if fmt not in _BITS_PER_SAMPLE:
        raise ValueError(f"signal format {fmt} is not supported")
    return -(-n_sig * header.sig_len * _BITS_PER_SAMPLE[fmt] // 8)


def check_record(data_dir: Path, name: str, sums: dict[str, str]) -> RecordCheck:
    """Every check on one record; problems are collected, never raised.

    Checks: header readable; each signal file present and exactly as long as the header implies; the header's
    per-signal checksums (16-bit sums of the digital samples) match; ``.atr`` readable; SHA-256 of each file
    matches ``sums`` where ``sums`` lists it.
    """
    check = RecordCheck(name)
    path = data_dir / name
    for fname, digest in sums.items():
        if fname.split(".")[0] == name and (data_dir / fname).is_file() and _sha256(data_dir / fname) != digest:
            check.problems.append(f"{fname}: SHA-256 differs from {SUMS_FILE}")
    try:
        header = wfdb.rdheader(str(path))
    except Exception as exc:
        check.problems.append(f"{name}.hea: header unreadable ({type(exc).__name__}: {exc})")
        return check
    files_ok = True
    for dat in dict.fromkeys(header.file_name or []):
        dat_path = data_dir / dat
        if not dat_path.is_file():
            check.problems.append(f"{dat}: signal file missing")
            files_ok = False
            continue
        try:
            expected = _expected_dat_bytes(header, dat)
        except ValueError as exc:
            check.problems.append(f"{dat}: {exc}")
            files_ok = False
            continue
        if dat_path.stat().st_size != expected:
            check.problems.append(f"{dat}: {dat_path.stat().st_size} bytes, header implies {expected} (truncated?)")
            files_ok = False
    if files_ok and header.checksum is not None:
        rec = wfdb.rdrecord(str(path), physical=False)
        sums16 = (rec.d_signal.astype(np.int64).sum(axis=0) + 32768) % 65536 - 32768
        for sig, got, want in zip(header.sig_name, sums16, header.checksum):
            # The sum is 16 bits; headers write it signed (PhysioNet's) or unsigned (wfdb-python's wrsamp): both.
            if (int(got) - int(want)) % 65536:
                check.problems.append(f"{name}.dat: checksum of signal {sig} is {got}, header says {want}")
    try:
        ann = wfdb.rdann(str(path), "atr")
    except Exception as exc:
        check.problems.append(f"{name}.atr: annotations unreadable ({type(exc).__name__}: {exc})")
        return check
    classes = Counter(aami_classes(ann.symbol)[1])
    check.counts = {c: classes.get(c, 0) for c in "NSVFQ"}
    return check


def verify(data_dir: Path, progress: bool = True) -> list[RecordCheck]:
    """Check every record listed in ``data_dir`` (see :func:`check_record`); raises DataError if none."""
    names = list_records(data_dir)
    if not names:
        raise DataError(no_records_message(data_dir))
    sums_path = data_dir / SUMS_FILE
    sums = parse_sums(sums_path.read_text()) if sums_path.is_file() else {}
    return [check_record(data_dir, n, sums) for n in progress_bar(names, enabled=progress, desc="verifying",
                                                                  unit="rec")]


def _download(dest: Path, records: list[str] | None, database: str = MITDB) -> None:
    """Every file of ``database``'s ``records`` (default: all) into ``dest`` (header, signal file, ``atr``), each once.

    Not ``wfdb.dl_database``: it lists a record's signal file once per signal (``100.dat`` twice for record 100's
    two leads) and downloads its list with two threads; when both fetch the same file, one finds the other's
    partial file and appends the remainder to it, leaving a ``.dat`` twice its size (seen in CI; verify caught it).
    """
    names = list(records) if records else wfdb.get_record_list(database)
    wfdb.dl_files(database, str(dest), [f"{n}.hea" for n in names], keep_subdirs=False)
    files = set()
    for name in names:
        files.update(wfdb.rdheader(str(dest / name)).file_name or [])
        files.add(f"{name}.atr")
    wfdb.dl_files(database, str(dest), sorted(files), keep_subdirs=False)


def fetch(data_dir: Path, records: list[str] | None = None, progress: bool = True,
          database: str = MITDB) -> list[RecordCheck]:
    """Download ``database`` (PhysioNet's name; default MIT-BIH) ``records`` (default all) into ``data_dir`` with
    wfdb, then verify. Another annotated ECG database (``incartdb``, ``svdb``) is how the detector is judged on a
    recorder it never saw (``arritmias evaluate --records all``).

    Files are downloaded into a temporary folder beside ``data_dir`` and moved in only once every download
    succeeded, so an interrupted fetch leaves ``data_dir`` as it was. MIT-BIH's files are checked against the
    SHA-256 sums PhysioNet published (bundled); another database's sums are those of the files received, so a
    later ``data verify`` proves they did not change. ``$ARRITMIAS_PHYSIONET_URL`` replaces PhysioNet's address
    (a mirror, or a local server in tests). Raises DataError on any network failure.
    """
    base = os.environ.get(PHYSIONET_URL_ENV, "").rstrip("/")
    if base:
        wfdb.io.download.PN_CONTENT_URL = f"{base}/content/"
        wfdb.set_db_index_url(f"{base}/files/")
    label = database_label(database)
    data_dir.mkdir(parents=True, exist_ok=True)
    with staging_folder(data_dir.parent, f"{data_dir.name}.fetch") as tmp:
        try:
            # wfdb prints a line per file; the CLI shows its own progress instead.
            with contextlib.redirect_stdout(io.StringIO()):
                _download(tmp, records, database)
        except Exception as exc:
            where = base or "https://physionet.org"
            raise DataError(
                f"could not download {label} from {where} ({type(exc).__name__}); if you have a local copy, "
                f"point at it with --data-dir DIR or ARRITMIAS_DATA_DIR=DIR"
            ) from exc
        names = records or sorted(p.stem for p in tmp.glob("*.hea"))
        (tmp / "RECORDS").write_text("".join(f"{n}\n" for n in names))
        if database == MITDB:
            wanted = {f: d for f, d in parse_sums(bundled_sums()).items() if f.split(".")[0] in names}
        else:
            wanted = {p.name: _sha256(p) for p in tmp.iterdir() if p.name != "RECORDS"}
        (tmp / SUMS_FILE).write_text("".join(f"{d}  {f}\n" for f, d in sorted(wanted.items())))
        for item in tmp.iterdir():  # whole files only: a failed download above leaves data_dir as it was
            os.replace(item, data_dir / item.name)
    return verify(data_dir, progress=progress)
