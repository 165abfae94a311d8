"""``arritmias data fetch`` and ``data verify``: the MIT-BIH records the model is trained and evaluated on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from arritmias.cli.options import EPILOG_DATA, add_data_dir
from arritmias.data.records import resolve_data_dir
from arritmias.errors import ArritmiasError, CheckFailed


def add_parsers(sub) -> None:
    """This group's subcommands, added to the ``arritmias`` parser's ``sub``."""
    data = sub.add_parser("data", help="get and check the MIT-BIH records", description="Get and check the "
                          "MIT-BIH Arrhythmia records the model is trained and evaluated on.", epilog=EPILOG_DATA)
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    fetch = data_sub.add_parser(
        "fetch", help="download MIT-BIH from PhysioNet and verify it",
        description="Download the MIT-BIH Arrhythmia Database (PhysioNet mitdb 1.0.0), or another annotated ECG "
                    "database (--database), with wfdb into the data folder, write RECORDS and SHA256SUMS (MIT-BIH's "
                    "published sums; another database's, of the files received), then verify every record. Files "
                    "land only when every download succeeded. $ARRITMIAS_PHYSIONET_URL points at a mirror.",
        epilog=EPILOG_DATA)
    add_data_dir(fetch)
    fetch.add_argument("--records", metavar="LIST", help="records to fetch: DS1, DS2, or names like 100,119 "
                       "(default: all of the database)")
    fetch.add_argument("--database", default="mitdb", metavar="NAME",
                       help="PhysioNet database (default: mitdb, MIT-BIH Arrhythmia). Another annotated ECG "
                            "database judges the model on a recorder it never saw: incartdb (St Petersburg INCART, "
                            "12 leads at 257 Hz) or svdb (MIT-BIH Supraventricular, 128 Hz); fetch it into its own "
                            "folder, then `arritmias evaluate --data-dir DIR --records all`")
    fetch.set_defaults(func=cmd_data_fetch)

    verify = data_sub.add_parser(
        "verify", help="check every record's files and print beats per AAMI class",
        description="Check every record: header readable, signal file length, the header's per-signal "
                    "checksums, annotations readable, and SHA256SUMS where present. Exits 1 naming each bad "
                    "record, 0 when all are intact.", epilog=EPILOG_DATA)
    add_data_dir(verify)
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=cmd_data_verify)


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
    from arritmias.data.integrity import verify

    data_dir = resolve_data_dir(args.data_dir)
    checks = verify(data_dir, progress=not args.json)
    bad = [c for c in checks if not c.ok]
    if args.json:
        print(json.dumps({"data_dir": str(data_dir), "ok": not bad,
                          "records": [{"record": c.record, "counts": c.counts, "problems": c.problems}
                                      for c in checks]}, indent=2))
    else:
        print(format_verify_table(checks))
    _fail_on_bad(checks, f"{len(bad)} of {len(checks)} records in '{data_dir}' failed verification")
    return 0


def _fail_on_bad(checks, message: str) -> None:
    """Each bad record's problems on stderr, then CheckFailed(``message``: the bad records) if there was one."""
    bad = [c for c in checks if not c.ok]
    for c in bad:
        for problem in c.problems:
            print(f"record {c.record}: {problem}", file=sys.stderr)
    if bad:
        raise CheckFailed(f"{message}: " + ", ".join(c.record for c in bad))


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from arritmias.data.beats import parse_records
    from arritmias.data.integrity import MITDB, database_label, fetch

    data_dir = resolve_data_dir(args.data_dir)
    records = list(parse_records(args.records)) if args.records else None
    what = database_label(args.database)
    size = "(48 records, ~100 MB)" if args.database == MITDB else "(every record)"
    print(f"downloading {what} {'records ' + ' '.join(records) if records else size} "
          f"from PhysioNet into {data_dir} ...", file=sys.stderr)
    checks = fetch(data_dir, records, database=args.database)
    print(format_verify_table(checks))
    _fail_on_bad(checks, "downloaded records failed verification")
    return 0


def ensure_records(data_dir: Path) -> None:
    """No records: offer the download on a terminal, else fail with the one-line how-to."""
    from arritmias.data.records import list_records, no_records_message

    if list_records(data_dir):
        return
    if not sys.stdin.isatty():
        raise ArritmiasError(no_records_message(data_dir))
    answer = input(f"No MIT-BIH records in '{data_dir}'. Download them from PhysioNet now (~100 MB)? [y/N] ")
    if answer.strip().lower() not in ("y", "yes", "s", "si", "sí"):
        raise ArritmiasError(no_records_message(data_dir))
    from arritmias.data.integrity import fetch

    bad = [c.record for c in fetch(data_dir) if not c.ok]
    if bad:
        raise CheckFailed(f"downloaded records failed verification: {', '.join(bad)}")
