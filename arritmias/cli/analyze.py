"""Recordings: ``analyze`` one, ``batch-score`` an archive on Ray, ``evaluate`` against annotations (EC57).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from arritmias.cli.options import EPILOG_DATA, MODEL_URI_DEFAULT, add_data_dir, add_lead_csv, add_tracking
from arritmias.data.records import resolve_data_dir
from arritmias.util.atomic import write_text_atomic


def add_parsers(sub) -> None:
    """This group's subcommands, added to the ``arritmias`` parser's ``sub``."""
    analyze = sub.add_parser("analyze", help="find the PVCs of a whole recording (no annotations needed)",
                             description="Detect QRS complexes (arritmias.signal.qrs), classify every beat with the model, "
                                         "and write a WFDB annotation file (<record>.pvc), a JSON summary (PVC "
                                         "count and burden, couplets, runs, bigeminy/trigeminy) and an HTML "
                                         "report with ECG strips. Any sampling rate: the lead is resampled.")
    analyze.add_argument("record", help="WFDB record (a name in the data folder, a path without extension, or its "
                         ".hea) or a CSV of one lead (see --fs, --units, --decimal)")
    analyze.add_argument("--model-uri", default=MODEL_URI_DEFAULT, help=f"model (default: {MODEL_URI_DEFAULT})")
    analyze.add_argument("--out", default="outputs", help="output folder (default: ./outputs)")
    add_lead_csv(analyze)
    analyze.add_argument("--column", help="CSV column holding the lead (when the CSV has several)")
    analyze.add_argument("--deriv-idx", type=int, default=0, help="WFDB lead, MLII first (default: 0)")
    add_data_dir(analyze)
    add_tracking(analyze, experiment=False)
    analyze.set_defaults(func=cmd_analyze)

    batch = sub.add_parser("batch-score", help="score many recordings (a Holter archive) on Ray",
                           description="Score every WFDB record named by INPUT (record paths, folders searched "
                                       "recursively, or glob patterns) with Ray Data: --workers actors load the "
                                       "model once and each analyses whole recordings as `analyze` does. Per "
                                       "recording it writes <record>.pvc and "
                                       "<record>_summary.json (as `analyze`) and beats/<record>.parquet (the "
                                       "beats/ folder reads as one table); batch_results.csv lists every input "
                                       "with its status. Unreadable recordings become error rows (exit 1); "
                                       "re-running skips recordings already written, so a killed job resumes.")
    batch.add_argument("inputs", nargs="+", metavar="INPUT", help="WFDB record, folder of records, or glob "
                       "(quote it: 'archive/**/*.hea')")
    batch.add_argument("--model-uri", default=MODEL_URI_DEFAULT, help=f"model (default: {MODEL_URI_DEFAULT})")
    batch.add_argument("--out", default="batch_outputs", help="output folder (default: ./batch_outputs)")
    batch.add_argument("--address", help="Ray cluster to join (e.g. ray://head:10001 or auto); default: start a "
                       "local Ray on this machine")
    batch.add_argument("--workers", type=int, default=None, help="analysing actors (default: one per CPU: the "
                       "cores this process may use, or the cluster's CPUs); the CPUs are shared out among them, so "
                       "one worker on several cores runs its network on all of them")
    batch.add_argument("--no-resume", dest="resume", action="store_false",
                       help="rescore recordings whose outputs already exist")
    add_tracking(batch, experiment=False)
    batch.set_defaults(func=cmd_batch_score)

    evaluate = sub.add_parser("evaluate", help="score a model beat by beat against reference annotations (EC57)",
                              description="ANSI/AAMI EC57 evaluation as the WFDB toolkit's bxb does it: 150 ms "
                                          "match window, first 5 minutes excluded, every reference beat class "
                                          "present. Prints per-record Nn/Nv/Vn/Vv counts and gross/average VEB and "
                                          "QRS Se/+P; writes JSON and each record's annotation file for bxb.",
                              epilog=EPILOG_DATA)
    evaluate.add_argument("--model-uri", default=MODEL_URI_DEFAULT, help=f"model (default: {MODEL_URI_DEFAULT})")
    evaluate.add_argument("--records", default="DS2", help="records: DS2 (default), DS1, names like 100,119, or "
                          "'all' (every record in the data folder: another annotated WFDB database, e.g. INCART)")
    evaluate.add_argument("--deriv-idx", type=int, default=0,
                          help="lead: 0 (default) is MLII, else lead II, else the record's first; 1, 2, ... the "
                               "others in file order")
    evaluate.add_argument("--mode", choices=("reference", "detected", "both"), default="both",
                          help="classify at the reference beats, end to end with own QRS detection, or both "
                               "(default)")
    evaluate.add_argument("--include-first-5min", action="store_true", help="do not exclude the first 5 minutes")
    evaluate.add_argument("--out", default="outputs/ec57", help="output folder (default: ./outputs/ec57)")
    evaluate.add_argument("--noise-stress", action="store_true",
                          help="instead of --records: EC57's noise stress test, records 118 and 119 with electrode "
                               "motion at 24 ... -6 dB, from --nstdb-dir (one line per SNR)")
    evaluate.add_argument("--nstdb-dir", metavar="DIR",
                          help="the MIT-BIH Noise Stress Test Database (default: an 'nstdb' folder beside the data "
                               "folder)")
    add_data_dir(evaluate)
    add_tracking(evaluate, experiment=False)
    evaluate.set_defaults(func=cmd_evaluate)


def cmd_analyze(args: argparse.Namespace) -> int:
    from arritmias.tracking import runs
    from arritmias.analysis.recording import analyze_signal, lead_choice, read_signal, supra_caution
    from arritmias.model.detector import Detector
    from arritmias.data.records import record_paths
    from arritmias.analysis.report import provenance, write_outputs

    runs.use_tracking(args.tracking_uri, "read", args.model_uri)

    record = args.record
    if not Path(record).exists() and not Path(record).with_suffix(".hea").exists():
        record = str(record_paths([record], resolve_data_dir(args.data_dir))[0])  # a name like 119
    signal = read_signal(record, fs=args.fs, column=args.column, deriv_idx=args.deriv_idx, units=args.units,
                         decimal=args.decimal)
    detector = Detector.from_model_uri(args.model_uri)
    analysis = analyze_signal(signal, detector, provenance(detector, args.model_uri))
    paths = write_outputs(analysis, Path(args.out))
    s = analysis.summary
    print(f"{s['record']} (lead {s['lead']}): {s['beats']} beats, {s['pvc_count']} PVCs ({s['pvc_burden_percent']} %), "
          f"{s['couplets']} couplets, {len(s['runs_of_3_or_more'])} runs of >= 3, "
          f"{len(s['bigeminy_episodes'])} bigeminy and {len(s['trigeminy_episodes'])} trigeminy episodes")
    if "sve_count" in s:
        print(f"  {s['sve_count']} SVEs ({s['sve_burden_percent']} %), {s['sve_couplets']} SVE couplets, "
              f"{len(s['svt_runs'])} SVT runs (>= 3 SVEs)")
    for note in (supra_caution(s), lead_choice(s)):
        if note:
            print(f"  note: {note}")
    for kind, path in paths.items():
        print(f"  {kind}: {path}")
    return 0


def cmd_batch_score(args: argparse.Namespace) -> int:
    from arritmias.tracking import runs
    from arritmias.analysis.batch import batch_score

    runs.use_tracking(args.tracking_uri, "read", args.model_uri)
    result = batch_score(args.inputs, args.model_uri, Path(args.out), args.address, args.workers, args.resume)
    rate = result.beats / result.seconds if result.seconds else 0.0
    print(f"{result.scored} recordings scored ({result.beats} beats, {rate:.0f} beats/s), {result.skipped} "
          f"already done, {len(result.errors)} failed; per-recording status: {result.results_path}")
    for name, error in result.errors:
        print(f"  {name}: {error}", file=sys.stderr)
    return 1 if result.errors else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from arritmias.tracking import runs
    from arritmias.data.beats import parse_records
    from arritmias.model.detector import Detector
    from arritmias.analysis.ec57 import evaluate, format_table
    from arritmias.data.records import lead_name, list_records, require_records

    runs.use_tracking(args.tracking_uri, "read", args.model_uri)
    data_dir = resolve_data_dir(args.data_dir)
    out = Path(args.out)
    modes = ("detected", "reference") if args.mode == "both" else (args.mode,)
    if args.noise_stress:
        return _noise_stress(args, data_dir, out, modes)
    records = tuple(list_records(data_dir)) if args.records.strip().lower() == "all" else parse_records(args.records)
    require_records(data_dir, records)
    leads = {name: lead_name(data_dir, name, args.deriv_idx) for name in records}
    detector = Detector.from_model_uri(args.model_uri)
    for mode in modes:
        result = evaluate(detector, data_dir, records, mode, args.include_first_5min, out / mode,
                          deriv_idx=args.deriv_idx)
        path = write_text_atomic(out / f"ec57_{mode}.json",
                                 json.dumps({**result.to_dict(), "leads": leads}, indent=2))
        print(format_table(result))
        print(f"  lead: {', '.join(sorted(set(leads.values())))} (--deriv-idx {args.deriv_idx})")
        print(f"  written: {path} and one {out / mode}/<record>.pvc annotation file per record\n")
    return 0


def _noise_stress(args: argparse.Namespace, data_dir: Path, out: Path, modes: tuple[str, ...]) -> int:
    from arritmias.model.detector import Detector
    from arritmias.analysis.ec57 import NST_RECORDS, NST_SNR_DB, format_noise_table, noise_stress, nst_record
    from arritmias.errors import DataError
    from arritmias.data.records import require_records

    nstdb = Path(args.nstdb_dir) if args.nstdb_dir else data_dir.resolve().parent / "nstdb"
    names = [nst_record(r, s) for r in NST_RECORDS for s in NST_SNR_DB]
    if not all((nstdb / f"{n}.hea").is_file() for n in names):
        raise DataError(f"no noise stress records ({names[0]} ... {names[-1]}) in {nstdb}: give the MIT-BIH Noise "
                        "Stress Test Database with --nstdb-dir (PhysioNet: nstdb)")
    require_records(nstdb, names)
    detector = Detector.from_model_uri(args.model_uri)
    out.mkdir(parents=True, exist_ok=True)
    for mode in modes:
        results = noise_stress(detector, nstdb, mode)
        path = out / f"noise_stress_{mode}.json"
        path.write_text(json.dumps({str(s): r.to_dict() for s, r in results.items()}, indent=2))
        print(format_noise_table(results))
        print(f"  written: {path}\n")
    return 0
