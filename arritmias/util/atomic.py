"""Writing files so that a reader sees the whole of them or nothing: the one place this is done.

A single file is written to a hidden temporary file beside the target (same folder, so the same file system) and
renamed over it (:func:`write_atomic`). Files that must appear together (an analysis's outputs, a drift run's
reports, a downloaded database, a cache entry) are written into a hidden staging folder beside their targets
(:func:`staging_folder`) and renamed in one by one, the file whose presence means "finished" last
(:func:`staged_files`). Either way a failed write leaves no temporary behind and older files untouched.

A write that fails without saying where (a full disk raises ``OSError`` with no file name from deep inside a
writer) is re-raised naming the target, so the CLI's one line says which path and disk. A staging folder carries
its process id: one left by a killed process (SIGKILL skips every cleanup) is swept by the next write beside it.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

K = TypeVar("K")


def named(exc: OSError, path: Path) -> OSError:
    """``exc`` if it names a file, else the same error naming ``path``."""
    if getattr(exc, "filename", None):
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc) or type(exc).__name__, str(path))


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise named(exc, path) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """``text`` to ``path`` (UTF-8, newlines as given), atomically."""
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            fh.write(text)

    return write_atomic(path, write)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def sweep_orphans(parent: Path, prefix: str) -> None:
    """Remove ``parent/.<prefix>.<pid>.*`` staging folders whose process is gone."""
    for folder in Path(parent).glob(f".{glob.escape(prefix)}.*.*"):
        pid = folder.name[len(prefix) + 2:].split(".", 1)[0]
        if folder.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def staging_folder(parent: Path, prefix: str) -> Iterator[Path]:
    """A new hidden folder ``parent/.<prefix>.<pid>.XXXX`` (created with ``parent``), removed with whatever is
    still in it when the block ends, however it ends. Renames out of it are atomic: it is on the targets' file
    system. Folders of the same prefix left by dead processes are removed first."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    sweep_orphans(parent, prefix)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{prefix}.{os.getpid()}."))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def staged_files(targets: Mapping[K, Path]) -> Iterator[dict[K, Path]]:
    """Temporary paths (same keys) for ``targets`` to be written inside the block; when it ends without an error
    each is renamed onto its target in the order given, so put the file that says "finished" last. On an error
    no target is touched. Targets may lie in sub-folders of the last target's folder (created here)."""
    targets = {k: Path(p) for k, p in targets.items()}
    if not targets:
        raise ValueError("staged_files needs at least one target")
    for path in targets.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    if len({p.name for p in targets.values()}) < len(targets):
        raise ValueError(f"staged_files needs distinct file names, got {sorted(p.name for p in targets.values())}")
    last = list(targets.values())[-1]
    with staging_folder(last.parent, last.stem) as tmp:
        staged = {k: tmp / p.name for k, p in targets.items()}  # same names: writers that name files keep them
        try:
            yield staged
            for k, path in targets.items():
                os.replace(staged[k], path)
        except OSError as exc:
            raise named(exc, last.parent) from exc
