"""Monitoring: per-beat ``features`` as CSV and the ``drift`` check against the training data (Evidently).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from arritmias.cli.options import EPILOG_DATA, MODEL_URI_DEFAULT, add_data_dir, add_lead_csv, add_tracking
from arritmias.data.records import resolve_data_dir


def add_parsers(sub) -> None:
    """This group's subcommands, added to the ``arritmias`` parser's ``sub``."""
    features = sub.add_parser("features", help="write per-beat monitoring features as CSV",
                              description="Detect beats (arritmias.signal.qrs) and write their rhythm, morphology and "
                                          "signal-quality features (and, with --model-uri, the model's output) as "
                                          "CSV, the input of `arritmias drift`. E.g. --records DS1 --out "
                                          "reference_features.csv; --records rec1,rec2.csv --fs 250 --out "
                                          "production_features.csv.", epilog=EPILOG_DATA)
    features.add_argument("--records", required=True, help="DS1, DS2, record names, WFDB paths or lead CSVs")
    features.add_argument("--out", required=True, help="CSV file to write")
    add_lead_csv(features)
    features.add_argument("--model-uri", help="add the model's prob_v and pred_v columns")
    add_data_dir(features)
    add_tracking(features, experiment=False)
    features.set_defaults(func=cmd_features)

    from arritmias.drift.check import DEFAULT_DRIFT_SHARE, DEFAULT_METHOD, DEFAULT_THRESHOLD, MONITORING_EXPERIMENT

    p = sub.add_parser(
        "drift", help="is incoming ECG still like the training data? (Evidently drift report)",
        description="Compare current ECG beats with the training data (Evidently): write an HTML report, a "
                    "summary page and JSON, a line in drift_alerts.log and, with a tracking store, a run in "
                    f"the {MONITORING_EXPERIMENT} experiment. Exit 0: no drift, 1: drift, 2: bad input. "
                    "`python monitoring/drift_detector.py` takes the same options.", epilog=EPILOG_DATA)
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--reference", metavar="CSV", help="reference beat features (e.g. reference_features.csv)")
    ref.add_argument("--reference-records", default="DS1", metavar="LIST",
                     help="build reference features from these records (default: DS1, the training patients)")
    cur = p.add_mutually_exclusive_group(required=True)
    cur.add_argument("--current", metavar="CSV", help="current beat features (e.g. production_features.csv)")
    cur.add_argument("--current-records", metavar="LIST", help="WFDB records (names in the data folder, paths) or "
                     "lead CSVs to build current features from")
    add_lead_csv(p)
    p.add_argument("--model-uri", help=f"also monitor the model's output (prediction drift), e.g. {MODEL_URI_DEFAULT}")
    add_data_dir(p)
    p.add_argument("--method", default=DEFAULT_METHOD, help=f"Evidently drift method (default: {DEFAULT_METHOD})")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"per-feature threshold (default: {DEFAULT_THRESHOLD})")
    p.add_argument("--drift-share", type=float, default=DEFAULT_DRIFT_SHARE,
                   help=f"share of drifted features that means drift (default: {DEFAULT_DRIFT_SHARE})")
    p.add_argument("--out", default="reports", help="output folder (default: ./reports)")
    add_tracking(p, experiment=False)
    p.set_defaults(func=cmd_drift)


def cmd_features(args: argparse.Namespace) -> int:
    from arritmias.tracking import runs
    from arritmias.data.beats import parse_records
    from arritmias.util.atomic import write_atomic
    from arritmias.data.records import record_paths
    from arritmias.drift.features import records_features

    detector = None
    if args.model_uri:
        from arritmias.model.detector import Detector

        runs.use_tracking(args.tracking_uri, "read", args.model_uri)
        detector = Detector.from_model_uri(args.model_uri)
    data_dir = resolve_data_dir(args.data_dir)
    paths = record_paths(parse_records(args.records), data_dir)
    frame = records_features(paths, fs_csv=args.fs, detector=detector, units=args.units, decimal=args.decimal)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda tmp: frame.to_csv(tmp, index=False))
    print(f"{len(frame)} beats from {len(paths)} recording(s) -> {out}")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    import os

    from arritmias.drift.check import check

    tracking = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "").strip() or None
    results = check(current=args.current, current_records=args.current_records, reference=args.reference,
                    reference_records=args.reference_records, data_dir=args.data_dir, fs=args.fs,
                    units=args.units, decimal=args.decimal,
                    model_uri=args.model_uri, method=args.method, threshold=args.threshold,
                    drift_share=args.drift_share, out=args.out, tracking_uri=tracking)
    verdict = "DRIFT" if results["drift_detected"] else "no drift"
    print(f"{verdict}: {len(results['drifted_features'])}/{len(results['features'])} features drifted "
          f"({', '.join(results['drifted_features']) or 'none'}); {results['n_current']} current vs "
          f"{results['n_reference']} reference beats")
    print(f"  summary page: {results['summary_html']}\n  Evidently report: {results['report_html']}\n"
          f"  summary JSON: {results['summary_json']}")
    return 1 if results["drift_detected"] else 0
