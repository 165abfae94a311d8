"""On-disk cache of built arrays, keyed by everything that shapes them, written atomically.

A cache entry is a folder of plain ``.npy`` files plus ``meta.json``: ``np.load`` reads each array straight into
its buffer (one copy, no zip layer), which keeps a warm load of all DS1+DS2 beats well under a second. The
folder is written under a temporary name and renamed into place, so a build killed mid-write never leaves an
entry that loads. Each array's CRC-32 is written with it and checked on every load: an entry whose bytes changed
afterwards (disk fault, a stray write, truncation) is a miss, removed so that the rebuild replaces it — never used.
CRC-32 catches damage, not tampering, at ~4 GB/s (SHA-256 would double a warm load of all beats).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zlib
from pathlib import Path

import numpy as np

from arritmias.util.atomic import staging_folder

CACHE_DIR_ENV = "ARRITMIAS_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$ARRITMIAS_CACHE_DIR``, else ``./.cache/arritmias`` (the data folder may be read-only)."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    return Path(env) if env else Path(".cache") / "arritmias"


def file_stamps(data_dir: Path, records: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """(name, size in bytes, mtime in ns) of every file of ``records``: cheap, and any rewrite changes it."""
    stamps = []
    for record in records:
        for path in sorted(data_dir.glob(f"{record}.*")):
            st = path.stat()
            stamps.append((path.name, st.st_size, st.st_mtime_ns))
    return stamps


def make_key(**parts) -> str:
    """Hex digest of the JSON of ``parts`` (any JSON-able values)."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def save(cache_dir: Path, key: str, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``arrays`` and JSON-able ``meta`` as entry ``key``; atomic (temp folder, then rename)."""
    final = cache_dir / key
    with staging_folder(cache_dir, key) as tmp:
        sums = {}
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            data = buf.getvalue()
            (tmp / f"{name}.npy").write_bytes(data)
            sums[name] = zlib.crc32(data)
        (tmp / "meta.json").write_text(json.dumps({"arrays": sorted(arrays), "crc32": sums, **meta}))
        if not final.exists():  # else a concurrent build of the same key won the race: its entry is equally valid
            os.rename(tmp, final)  # the whole folder at once; staging_folder then finds nothing to remove
    return final


def load(cache_dir: Path, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """``(arrays, meta)`` stored as entry ``key``, or None when absent, unreadable or not the bytes written (a
    damaged entry is removed, so the caller's rebuild takes its place)."""
    entry = cache_dir / key
    if not entry.is_dir():
        return None
    try:
        meta = json.loads((entry / "meta.json").read_text())
        sums = meta.pop("crc32")
        arrays = {name: _read_checked(entry / f"{name}.npy", sums[name]) for name in meta.pop("arrays")}
    except (OSError, ValueError, KeyError, TypeError):
        _discard(entry)
        return None
    return arrays, meta


def _read_checked(path: Path, crc: int) -> np.ndarray:
    """The array in ``path`` if its bytes have CRC-32 ``crc``; read once into a writable buffer the array then
    uses without another copy."""
    size = path.stat().st_size
    buf = bytearray(size)
    with path.open("rb") as fh:
        if fh.readinto(buf) != size:
            raise ValueError(f"{path.name}: short read")
    if zlib.crc32(buf) != crc:
        raise ValueError(f"{path.name} changed since it was written")
    head = io.BytesIO(bytes(buf[:4096]))  # the .npy header: magic, version, dict (at most a few hundred bytes)
    version = np.lib.format.read_magic(head)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"{path.name}: .npy format {version} not written by this cache")
    shape, fortran, dtype = readers[version](head)
    count = int(np.prod(shape)) if shape else 1
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=head.tell())
    return arr.reshape(shape, order="F" if fortran else "C")


def _discard(entry: Path) -> None:
    """Remove a damaged entry: renamed away first, so no reader finds it half-deleted."""
    gone = entry.with_name(f".{entry.name}.{os.getpid()}.bad")
    try:
        os.rename(entry, gone)
    except OSError:
        return
    shutil.rmtree(gone, ignore_errors=True)
