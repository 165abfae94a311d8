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
    without write permission, a full disk): what failed, and on which path."""
    where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
    return f"{exc.strerror or type(exc).__name__}{where}"


class CheckFailed(ArritmiasError):
    """A check that ran to completion and found problems (verify, gate, drift): exit 1, not a usage error."""

    exit_code = 1
