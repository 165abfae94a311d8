"""The ``arritmias`` command: one parser, its subcommands grouped by stage, each a thin handler over one plain function.

Groups: :mod:`~arritmias.cli.data` (``data fetch``, ``data verify``), :mod:`~arritmias.cli.train` (``train``,
``tune``, ``gate``, ``ci-summary``, ``promote``, ``compare``), :mod:`~arritmias.cli.serve` (``serve``,
``ab-report``), :mod:`~arritmias.cli.analyze` (``analyze``, ``batch-score``, ``evaluate``) and
:mod:`~arritmias.cli.drift` (``features``, ``drift``); the options they share are :mod:`~arritmias.cli.options`.
Errors the project raises on purpose (:class:`~arritmias.errors.ArritmiasError`) become one line on stderr and an
exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from arritmias import __version__
from arritmias.cli import analyze, data, drift, serve, train
from arritmias.cli.options import EPILOG_DATA
from arritmias.errors import ArritmiasError, Terminated, os_error_line

GROUPS = (data, train, serve, analyze, drift)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arritmias",
        description="Detect premature ventricular contractions (PVC, AAMI class V) in ECG recordings, "
                    "and run the MLflow lifecycle around the detector.",
        epilog=EPILOG_DATA,
    )
    parser.add_argument("--version", action="version", version=f"arritmias {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Entry point of the ``arritmias`` command; returns the exit code."""
    parser = build_parser()
    if prog:
        parser.prog = prog
    args = parser.parse_args(argv)
    previous = _stop_on_sigterm()
    try:
        return args.func(args)
    except ArritmiasError as exc:
        print(f"arritmias: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"arritmias: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("arritmias: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("arritmias: stopped (SIGTERM); nothing half-written was left", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm():
    """SIGTERM (what schedulers and `kill` send) unwinds like Ctrl-C instead of ending the process on the spot, so
    staging folders are removed and servers stopped; a command may install its own handler (``serve``). Returns
    the handler it replaced (None off the main thread, where none can be set)."""
    import signal
    import threading

    def stop(_signum, _frame):
        raise Terminated()

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, stop)


if __name__ == "__main__":
    sys.exit(main())
