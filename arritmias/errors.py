"""Errors the project raises on purpose.

Each carries one line that names the record, field or file and says what to do; the CLI edge prints that line
and exits with ``exit_code`` instead of showing a traceback.
"""


class ArritmiasError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    exit_code = 2


class DataError(ArritmiasError):
    """Missing, unreadable or inconsistent input data (records, CSVs, requests)."""


class ConfigError(ArritmiasError):
    """A configuration value outside its valid range."""


def os_error_line(exc: OSError) -> str:
    """One line for a file-system error met at the command-line edge (an --out that names a file, a folder
    without write permission, a full disk): what failed, on which path, and for a full disk (or a file-size
    limit) how much room is left there."""
    import errno
    import shutil
    from pathlib import Path

    filename = getattr(exc, "filename", None)
    line = f"{exc.strerror or str(exc) or type(exc).__name__}" + (f": {filename}" if filename else "")
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) and filename:
        folder = Path(filename)
        while not folder.is_dir() and folder != folder.parent:
            folder = folder.parent
        try:
            free = shutil.disk_usage(folder).free
            line += f" ({free / 2**20:,.0f} MiB free on that disk; nothing was half-written: free space and rerun)"
        except OSError:
            pass
    return line


class Terminated(BaseException):
    """SIGTERM reached the CLI: unwinds like Ctrl-C, so every ``finally`` (staging folders, servers) runs."""


class CheckFailed(ArritmiasError):
    """A check that ran to completion and found problems (verify, gate, drift): exit 1, not a usage error."""

    exit_code = 1
