"""The ``arritmias`` command: its options, generated where they can be, mapped onto thin handlers.

The handlers live in :mod:`arritmias.commands`; each calls one plain function. Errors the project raises on
purpose (:class:`~arritmias.errors.ArritmiasError`) become one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from arritmias import __version__
from arritmias.commands import (cmd_ab_report, cmd_analyze, cmd_batch_score, cmd_ci_summary, cmd_compare,
                                cmd_data_fetch, cmd_data_verify, cmd_drift, cmd_evaluate, cmd_features, cmd_gate,
                                cmd_promote, cmd_serve, cmd_train, cmd_tune)
from arritmias.errors import ArritmiasError, Terminated, os_error_line
from arritmias.data.records import DATA_DIR_ENV
from arritmias.tracking.registry import MODEL_NAME, PREVIOUS_ALIAS, PRODUCTION_ALIAS, model_uri
from arritmias.tracking.runs import DEFAULT_TRACKING_URI, EXPERIMENT

MODEL_URI_DEFAULT = model_uri(PRODUCTION_ALIAS)
EPILOG_DATA = f"Data folder: --data-dir, else ${DATA_DIR_ENV}, else ./mit-bih."


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", help=f"folder of WFDB records (default: ${DATA_DIR_ENV} or ./mit-bih)")


def _add_lead_csv(p: argparse.ArgumentParser) -> None:
    """How to read a lead CSV: its rate, amplitude unit and decimal mark (arritmias.lead_csv)."""
    p.add_argument("--fs", type=float, help="sampling rate in Hz of lead CSVs (a CSV carries none)")
    p.add_argument("--units", default="mV", choices=["mV", "uV", "V"],
                   help="amplitude unit of lead CSVs (default: mV; WFDB records use their header's units)")
    p.add_argument("--decimal", default="auto", choices=["auto", "point", "comma"],
                   help="decimal mark of lead CSVs (default: auto: ';'-separated files use decimal commas, as "
                        "Spanish-locale spreadsheets write them)")


BOOL_FLAGS = {"use_augment": "augment", "use_ruleguard": "ruleguard",  # --no-augment, --no-ruleguard, --no-context
              "use_context": "context"}


def add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per TrainConfig field, help text from the field's why-comment, default shown."""
    from arritmias.config import field_defaults, field_help

    helps = field_help()
    group = p.add_argument_group("training parameters (each is logged to MLflow as a param)")
    for name, default in field_defaults().items():
        if isinstance(default, bool):
            group.add_argument(f"--{BOOL_FLAGS.get(name, name).replace('_', '-')}", dest=name,
                               action=argparse.BooleanOptionalAction, default=default,
                               help=f"{helps[name]} (default: on)" if default else helps[name])
            continue
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=default,
                           type=str if isinstance(default, tuple) else type(default),
                           metavar="LIST" if isinstance(default, tuple) else type(default).__name__.upper(),
                           help=f"{helps[name]} (default: {shown})")


def add_gate_options(p: argparse.ArgumentParser) -> None:
    from arritmias.tracking.registry import GATE_DEFAULTS

    for metric, default in GATE_DEFAULTS.items():
        flag = "--min-" + metric.removeprefix("test_").replace("_", "-").lower()
        p.add_argument(flag, dest=f"gate_{metric}", type=float, default=default, metavar="X",
                       help=f"lowest acceptable {metric} (default: {default})")


def _add_tracking(p: argparse.ArgumentParser, experiment: bool = True) -> None:
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking store (default: $MLFLOW_TRACKING_URI, "
                   f"else {DEFAULT_TRACKING_URI})")
    if experiment:
        p.add_argument("--experiment", default=EXPERIMENT, help=f"MLflow experiment (default: {EXPERIMENT})")


def _add_run_and_gate(p: argparse.ArgumentParser, verb: str) -> None:
    """Which run (--run-id, the store, the experiment) and the gate's thresholds: what `gate` and `ci-summary`
    take."""
    p.add_argument("--run-id", help=f"run to {verb} (default: the latest finished run)")
    _add_tracking(p)
    add_gate_options(p)


def add_train_parser(sub) -> argparse.ArgumentParser:
    train = sub.add_parser(
        "train", help="train the detector and log the run to MLflow",
        description="Train the CNN+RR detector on DS1, choose threshold and RuleGuard on held-out DS1 patients, "
                    "report on DS2, log params, curves, metrics and the servable model to MLflow, and register "
                    f"the model as {MODEL_NAME} when it passes the gate.", epilog=EPILOG_DATA)
    _add_data_dir(train)
    train.add_argument("--cache-dir", metavar="DIR", help="dataset cache (default: $ARRITMIAS_CACHE_DIR or "
                       "./.cache/arritmias)")
    train.add_argument("--noise-dir", metavar="DIR", help="folder with NSTDB bw/ma noise records for "
                       "augmentation (default: $ARRITMIAS_NOISE_DIR, else an nstdb folder beside the data)")
    _add_tracking(train)
    train.add_argument("--tag", action="append", metavar="KEY=VALUE", help="MLflow run tag (repeatable)")
    train.add_argument("--no-register", action="store_true", help="do not register the model even if it "
                       "passes the gate")
    train.add_argument("--params-from-study", metavar="NAME", help="train with the best parameters of an "
                       "`arritmias tune` study (they override the options below)")
    train.add_argument("--study-storage", default="sqlite:///optuna.db", metavar="URL",
                       help="Optuna storage of that study (default: sqlite:///optuna.db)")
    add_gate_options(train)
    add_config_options(train)
    train.set_defaults(func=cmd_train)
    return train


def add_drift_parser(sub) -> argparse.ArgumentParser:
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
    _add_lead_csv(p)
    p.add_argument("--model-uri", help=f"also monitor the model's output (prediction drift), e.g. {MODEL_URI_DEFAULT}")
    _add_data_dir(p)
    p.add_argument("--method", default=DEFAULT_METHOD, help=f"Evidently drift method (default: {DEFAULT_METHOD})")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"per-feature threshold (default: {DEFAULT_THRESHOLD})")
    p.add_argument("--drift-share", type=float, default=DEFAULT_DRIFT_SHARE,
                   help=f"share of drifted features that means drift (default: {DEFAULT_DRIFT_SHARE})")
    p.add_argument("--out", default="reports", help="output folder (default: ./reports)")
    _add_tracking(p, experiment=False)
    p.set_defaults(func=cmd_drift)
    return p


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

    add_train_parser(sub)

    gate = sub.add_parser("gate", help="check a run's DS2 metrics against the release thresholds",
                          description="Exit 1 naming each metric below its threshold; 0 when the run passes. "
                                      "--register then registers the run's model.")
    _add_run_and_gate(gate, "check")
    gate.add_argument("--register", action="store_true", help="register the model when the gate passes")
    gate.set_defaults(func=cmd_gate)

    promote = sub.add_parser("promote", help="point the production alias at a registered version",
                             description=f"Set an alias (default: {PRODUCTION_ALIAS}) of {MODEL_NAME} to a "
                                         f"version, so that {MODEL_URI_DEFAULT} loads it (aliases replace "
                                         f"MLflow's deprecated stages); the outgoing one becomes @{PREVIOUS_ALIAS}. "
                                         "--challenger N promotes only when N's V F1 is not lower than the "
                                         "champion's and McNemar's test does not show it significantly worse "
                                         "on the same annotated records (exit 1 when refused). --rollback gives "
                                         f"@{PRODUCTION_ALIAS} back to @{PREVIOUS_ALIAS}.", epilog=EPILOG_DATA)
    which = promote.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", type=int, help="registered model version to promote")
    which.add_argument("--latest", action="store_true",
                       help="promote the newest registered version (what `make train` just registered)")
    which.add_argument("--challenger", type=int, metavar="N", help="version to promote only if it holds up")
    which.add_argument("--rollback", action="store_true", help=f"restore the @{PREVIOUS_ALIAS} version")
    promote.add_argument("--alias", default=PRODUCTION_ALIAS,
                         help=f"alias to set with --version (default: {PRODUCTION_ALIAS})")
    promote.add_argument("--against", default=PRODUCTION_ALIAS,
                         help=f"alias of the champion (default: {PRODUCTION_ALIAS})")
    promote.add_argument("--records", metavar="LIST", help="annotated records both models are scored on "
                         "(default: DS2; in production, freshly labelled recordings)")
    _add_data_dir(promote)
    _add_tracking(promote, experiment=False)
    promote.set_defaults(func=cmd_promote)

    summary = sub.add_parser(
        "ci-summary", help="the training run as a Markdown table (GitHub job summary, pull-request comment)",
        description="Write a run's DS2 figures, the gate's verdict, its registered version and its MLflow run name "
                    "as Markdown: appended to $GITHUB_STEP_SUMMARY when set (GitHub shows it on the job's page) "
                    "and written whole to --out (the body of the pull-request comment).")
    _add_run_and_gate(summary, "summarise")
    summary.add_argument("--out", metavar="FILE", help="also write the Markdown to FILE")
    summary.set_defaults(func=cmd_ci_summary)

    compare = sub.add_parser("compare", help="table of the best runs",
                             description="The top runs of the experiment ordered by DS2 V F1, with their key "
                                         "metrics and params.")
    compare.add_argument("--top", type=int, default=10, help="runs to show (default: 10)")
    compare.add_argument("--filter", metavar="EXPR", help="MLflow search filter, e.g. "
                         "\"metrics.test_f1_V > 0.9\" or \"params.use_augment = 'True'\"")
    _add_tracking(compare)
    compare.set_defaults(func=cmd_compare)

    serve = sub.add_parser("serve", help="serve a registered model over HTTP with MLflow",
                           description="Serve the model with MLflow's scoring app (what `mlflow models serve "
                                       "--env-manager local` runs) behind a request guard: bodies over "
                                       "--max-request-mb get a 413, errors are one line without stack traces. "
                                       "POST /invocations takes {\"instances\": [{\"sig\": [360 numbers, mV], "
                                       "\"rr\": [prev_s, next_s, next/prev]}]}, optionally with each beat's "
                                       "\"ctx_sig\" and \"ctx_rr\" (see arritmias.data.beats.for_recording).")
    serve.add_argument("--model-uri", default=MODEL_URI_DEFAULT, help=f"model to serve (default: {MODEL_URI_DEFAULT})")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=port_number, default=5001, help="port, 1-65535 (default: 5001)")
    serve.add_argument("--workers", type=positive_int, default=2,
                       help="server worker processes (default: 2, so one large request does not stall single beats: "
                            "p99 8 ms with two, 919 ms with one, while a 32 MiB request is parsed)")
    serve.add_argument("--max-request-mb", type=positive_int, default=32,
                       help="largest request body in MiB; larger ones get a 413 (default: 32: ~4,500 beats, ~2,200 "
                            "with context)")
    ab = serve.add_argument_group("production serving on Ray Serve (--engine ray; needs the 'cluster' extra)")
    ab.add_argument("--engine", choices=("mlflow", "ray"), default="mlflow",
                    help="mlflow (default): one model, MLflow's app; ray: one Ray Serve application holding the "
                         "champion and optionally a challenger and a shadow, autoscaled, with a prediction log")
    ab.add_argument("--champion", default=PRODUCTION_ALIAS, metavar="ALIAS",
                    help=f"alias of the model that answers by default (default: {PRODUCTION_ALIAS})")
    ab.add_argument("--challenger", metavar="ALIAS", help="alias of the model that answers the --split share")
    ab.add_argument("--split", type=share, default=0.0,
                    help="share of requests (0-1) the challenger answers; a request's \"subject\" key keeps all of "
                         "that subject's requests on one model (default: 0)")
    ab.add_argument("--shadow", metavar="ALIAS", help="alias of a model that scores every request beside the "
                    "champion; its decisions are only logged, never answered")
    ab.add_argument("--min-replicas", type=positive_int, default=1, help="replicas per model at least (default: 1)")
    ab.add_argument("--max-replicas", type=positive_int, default=2,
                    help="replicas per model at most; Ray Serve adds one while each has more than one request "
                         "in flight (default: 2)")
    ab.add_argument("--scale-down-after", type=float, default=60.0, metavar="S",
                    help="seconds of low load before a replica is removed (default: 60)")
    ab.add_argument("--log-dir", default="prediction_log", metavar="DIR",
                    help="Parquet prediction log, one folder per hour (default: ./prediction_log)")
    _add_tracking(serve, experiment=False)
    serve.set_defaults(func=cmd_serve)

    from arritmias.serving.ab_report import AB_EXPERIMENT

    abr = sub.add_parser("ab-report", help="compare the models of `serve --engine ray` from its prediction log",
                         description="Per model: requests, beats, V rate, latency; with a shadow, how often it "
                                     "disagrees with the answer given and on which beats; with --records (requests "
                                     "that sent the record name as \"subject\" and each beat's \"sample\"), "
                                     "Se/+P/F1 per model and, on the beats both scored (shadow mode), the decision "
                                     f"`promote --challenger` makes. Logged to the MLflow experiment {AB_EXPERIMENT}.")
    abr.add_argument("--log", required=True, metavar="DIR", help="the prediction log folder (serve's --log-dir)")
    abr.add_argument("--records", metavar="LIST", help="annotated records the requests came from: DS1, DS2 or "
                     "names like 100,119")
    abr.add_argument("--promote", action="store_true", help=f"when the shadow is accepted, make it "
                     f"@{PRODUCTION_ALIAS} (the old champion becomes @{PREVIOUS_ALIAS}); exit 1 when it is refused")
    _add_data_dir(abr)
    _add_tracking(abr, experiment=False)
    abr.set_defaults(func=cmd_ab_report)

    analyze = sub.add_parser("analyze", help="find the PVCs of a whole recording (no annotations needed)",
                             description="Detect QRS complexes (arritmias.qrs), classify every beat with the model, "
                                         "and write a WFDB annotation file (<record>.pvc), a JSON summary (PVC "
                                         "count and burden, couplets, runs, bigeminy/trigeminy) and an HTML "
                                         "report with ECG strips. Any sampling rate: the lead is resampled.")
    analyze.add_argument("record", help="WFDB record (a name in the data folder, a path without extension, or its "
                         ".hea) or a CSV of one lead (see --fs, --units, --decimal)")
    analyze.add_argument("--model-uri", default=MODEL_URI_DEFAULT, help=f"model (default: {MODEL_URI_DEFAULT})")
    analyze.add_argument("--out", default="outputs", help="output folder (default: ./outputs)")
    _add_lead_csv(analyze)
    analyze.add_argument("--column", help="CSV column holding the lead (when the CSV has several)")
    analyze.add_argument("--deriv-idx", type=int, default=0, help="WFDB lead, MLII first (default: 0)")
    _add_data_dir(analyze)
    _add_tracking(analyze, experiment=False)
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
    _add_tracking(batch, experiment=False)
    batch.set_defaults(func=cmd_batch_score)

    evaluate = sub.add_parser("evaluate", help="score a model beat by beat against reference annotations (EC57)",
                              description="ANSI/AAMI EC57 evaluation as the WFDB toolkit's bxb does it: 150 ms "
                                          "match window, first 5 minutes excluded, every reference beat class "
                                          "present. Prints per-record Nn/Nv/Vn/Vv counts and gross/average VEB and "
                                          "QRS Se/+P; writes JSON and each record's annotation file for bxb.",
                              epilog=EPILOG_DATA)
    evaluate.add_argument("--model-uri", default=MODEL_URI_DEFAULT, help=f"model (default: {MODEL_URI_DEFAULT})")
    evaluate.add_argument("--records", default="DS2", help="records: DS2 (default), DS1, or names like 100,119")
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
    _add_data_dir(evaluate)
    _add_tracking(evaluate, experiment=False)
    evaluate.set_defaults(func=cmd_evaluate)

    features = sub.add_parser("features", help="write per-beat monitoring features as CSV",
                              description="Detect beats (arritmias.qrs) and write their rhythm, morphology and "
                                          "signal-quality features (and, with --model-uri, the model's output) as "
                                          "CSV, the input of `arritmias drift`. E.g. --records DS1 --out "
                                          "reference_features.csv; --records rec1,rec2.csv --fs 250 --out "
                                          "production_features.csv.", epilog=EPILOG_DATA)
    features.add_argument("--records", required=True, help="DS1, DS2, record names, WFDB paths or lead CSVs")
    features.add_argument("--out", required=True, help="CSV file to write")
    _add_lead_csv(features)
    features.add_argument("--model-uri", help="add the model's prob_v and pred_v columns")
    _add_data_dir(features)
    _add_tracking(features, experiment=False)
    features.set_defaults(func=cmd_features)
    add_drift_parser(sub)

    tune = sub.add_parser("tune", help="search hyperparameters with Optuna (cross-validated on DS1 only)",
                          description="Optuna search over learning rate, filters, kernels, dropout, focal loss, "
                                      "balancing and augmentation. Objective: the pooled out-of-fold PR-AUC of "
                                      "patient-wise cross-validation on the training patients, as training "
                                      "optimises it (--cv-folds 3 makes trials cheaper); DS2 is never used. Every "
                                      "trial is a nested MLflow run under one parent run that logs the best "
                                      "parameters and the importance and history plots. Several workers join one "
                                      "study through a shared --storage.",
                          epilog=EPILOG_DATA)
    tune.add_argument("--trials", type=int, default=20, help="trials to run in this process (default: 20)")
    tune.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    tune.add_argument("--storage", default="sqlite:///optuna.db", metavar="URL",
                      help="Optuna storage: sqlite:///file.db (default sqlite:///optuna.db), postgresql://..., or "
                           "journal:///shared/path.log")
    tune.add_argument("--study", default="arritmias", help="study name (default: arritmias)")
    tune.add_argument("--cache-dir", metavar="DIR", help="dataset cache (default: ./.cache/arritmias)")
    _add_data_dir(tune)
    _add_tracking(tune, experiment=False)
    add_config_options(tune)
    tune.set_defaults(func=cmd_tune)
    return parser


def int_in(lo: int, hi: int | None = None, what: str = "a whole number"):
    """argparse type: a whole number in ``[lo, hi]`` (no upper bound when ``hi`` is None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {what}") from None
        if value < lo or (hi is not None and value > hi):
            bounds = f"{lo}-{hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"{value} is not {what} ({bounds})")
        return value

    return parse


positive_int = int_in(1)
port_number = int_in(1, 65535, "a port number")


def share(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not a share between 0 and 1")
    return value


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
