"""On-disk cache of built arrays, keyed by everything that shapes them, written atomically.

A cache entry is a folder of plain ``.npy`` files plus ``meta.json``: ``np.load`` reads each array straight into
its buffer (one copy, no zip layer), which keeps a warm load of all DS1+DS2 beats well under a second. The
folder is written under a temporary name and renamed into place, so a build killed mid-write never leaves an
entry that loads; an entry that fails to load anyway (disk full, foreign files) counts as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

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
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / key
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{key}.", suffix=".tmp"))
    try:
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps({"arrays": sorted(arrays), **meta}))
        if final.exists():  # a concurrent build of the same key won the race: its entry is equally valid
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load(cache_dir: Path, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """``(arrays, meta)`` stored as entry ``key``, or None when absent or unreadable."""
    entry = cache_dir / key
    try:
        meta = json.loads((entry / "meta.json").read_text())
        arrays = {name: np.load(entry / f"{name}.npy", allow_pickle=False) for name in meta.pop("arrays")}
    except (OSError, ValueError, KeyError):
        return None
    return arrays, meta
