"""Writing a file so that a reader sees the whole of it or nothing: the one place this is done for single files.

The content is written to a hidden temporary file beside the target (same folder, so the same file system) and
renamed over it; a failed write leaves no temporary file behind and the old file (if any) untouched. Groups of
files that must appear together (an analysis's outputs, a drift run's reports) are staged in a temporary folder
and moved in one by one, the summary last: :func:`arritmias.report.write_outputs`,
``monitoring/drift_detector.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """``text`` to ``path`` (UTF-8, newlines as given), atomically."""
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            fh.write(text)

    return write_atomic(path, write)
