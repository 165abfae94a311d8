"""The seed's drift entry point, kept for its users: ``python monitoring/drift_detector.py [options]`` is
``arritmias drift [options]``, and ``from monitoring.drift_detector import ECGDriftDetector`` still works.

The detector itself lives in :mod:`arritmias.drift` (and its pages in :mod:`arritmias.drift.report`).
"""

from __future__ import annotations

import sys

try:
    from arritmias.cli import main as _arritmias_main
    from arritmias.drift.check import (DEFAULT_DRIFT_SHARE, DEFAULT_METHOD, DEFAULT_THRESHOLD, MIN_BEATS,  # noqa: F401
                                 QUALITY_FEATURES, ECGDriftDetector, check, log_to_mlflow)
except ModuleNotFoundError as exc:  # run from a checkout that was never installed
    if exc.name != "arritmias":
        raise
    sys.exit("drift_detector: error: the arritmias package is not installed; run `make install` (or "
             "`pip install -e .`) in the project folder first")


def main(argv: list[str] | None = None) -> int:
    """``arritmias drift`` with ``argv`` (default: this process's arguments); returns its exit code."""
    return _arritmias_main(["drift", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
