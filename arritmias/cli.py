"""The ``arritmias`` command: thin subcommands over the package's plain functions.

Every handler parses options, calls one function and prints its result. Errors the project raises on purpose
(:class:`~arritmias.errors.ArritmiasError`) become one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from arritmias import __version__
from arritmias.errors import ArritmiasError, CheckFailed
from arritmias.records import DATA_DIR_ENV, resolve_data_dir

EPILOG_DATA = f"Data folder: --data-dir, else ${DATA_DIR_ENV}, else ./mit-bih."


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", help=f"folder of WFDB records (default: ${DATA_DIR_ENV} or ./mit-bih)")


def format_verify_table(checks) -> str:
    """Fixed-width table: one row per record with its AAMI beat counts and status, then totals."""
    lines = [f"{'record':<8}{'N':>7}{'S':>6}{'V':>6}{'F':>5}{'Q':>5}  status"]
    totals = dict.fromkeys("NSVFQ", 0)
    for c in checks:
        for k in totals:
            totals[k] += c.counts.get(k, 0)
        cells = "".join(f"{c.counts.get(k, 0) if c.counts else '-':>{w}}" for k, w in zip("NSVFQ", (7, 6, 6, 5, 5)))
        lines.append(f"{c.record:<8}{cells}  {'ok' if c.ok else 'BAD'}")
    lines.append(f"{'total':<8}" + "".join(f"{totals[k]:>{w}}" for k, w in zip("NSVFQ", (7, 6, 6, 5, 5)))
                 + f"  {sum(c.ok for c in checks)}/{len(checks)} ok")
    return "\n".join(lines)


def cmd_data_verify(args: argparse.Namespace) -> int:
    from arritmias.integrity import verify

    data_dir = resolve_data_dir(args.data_dir)
    checks = verify(data_dir, progress=not args.json)
    bad = [c for c in checks if not c.ok]
    if args.json:
        print(json.dumps({"data_dir": str(data_dir), "ok": not bad,
                          "records": [{"record": c.record, "counts": c.counts, "problems": c.problems}
                                      for c in checks]}, indent=2))
    else:
        print(format_verify_table(checks))
    for c in bad:
        for problem in c.problems:
            print(f"record {c.record}: {problem}", file=sys.stderr)
    if bad:
        raise CheckFailed(f"{len(bad)} of {len(checks)} records in '{data_dir}' failed verification: "
                          + ", ".join(c.record for c in bad))
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from arritmias.beats import parse_records
    from arritmias.integrity import fetch

    data_dir = resolve_data_dir(args.data_dir)
    records = list(parse_records(args.records)) if args.records else None
    print(f"downloading MIT-BIH {'records ' + ' '.join(records) if records else '(48 records, ~100 MB)'} "
          f"from PhysioNet into {data_dir} ...", file=sys.stderr)
    checks = fetch(data_dir, records)
    print(format_verify_table(checks))
    bad = [c.record for c in checks if not c.ok]
    if bad:
        raise CheckFailed(f"downloaded records failed verification: {', '.join(bad)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arritmias",
        description="Detect premature ventricular contractions (PVC, AAMI class V) in ECG recordings, "
                    "and run the MLflow lifecycle around the detector.",
        epilog=EPILOG_DATA,
    )
    parser.add_argument("--version", action="version", version=f"arritmias {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="get and check the MIT-BIH records", description="Get and check the "
                          "MIT-BIH Arrhythmia records the model is trained and evaluated on.", epilog=EPILOG_DATA)
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    fetch = data_sub.add_parser(
        "fetch", help="download MIT-BIH from PhysioNet and verify it",
        description="Download the MIT-BIH Arrhythmia Database (PhysioNet mitdb 1.0.0) with wfdb into the data "
                    "folder, write RECORDS and SHA256SUMS, then verify every record. Files land only when every "
                    "download succeeded. $ARRITMIAS_PHYSIONET_URL points at a mirror.", epilog=EPILOG_DATA)
    _add_data_dir(fetch)
    fetch.add_argument("--records", metavar="LIST", help="records to fetch: DS1, DS2, or names like 100,119 "
                       "(default: all 48)")
    fetch.set_defaults(func=cmd_data_fetch)

    verify = data_sub.add_parser(
        "verify", help="check every record's files and print beats per AAMI class",
        description="Check every record: header readable, signal file length, the header's per-signal "
                    "checksums, annotations readable, and SHA256SUMS where present. Exits 1 naming each bad "
                    "record, 0 when all are intact.", epilog=EPILOG_DATA)
    _add_data_dir(verify)
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=cmd_data_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``arritmias`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ArritmiasError as exc:
        print(f"arritmias: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("arritmias: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
