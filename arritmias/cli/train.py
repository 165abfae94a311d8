"""The model's lifecycle: ``train``, ``tune``, the release ``gate``, ``ci-summary``, ``promote`` and ``compare``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arritmias.cli.data import ensure_records
from arritmias.cli.options import (EPILOG_DATA, MODEL_URI_DEFAULT, add_config_options, add_data_dir, add_gate_options,
                                 add_run_and_gate, add_tracking, config_values, gate_thresholds, parse_tags)
from arritmias.data.records import resolve_data_dir
from arritmias.errors import CheckFailed
from arritmias.tracking.runs import figure
from arritmias.tracking.registry import MODEL_NAME, PREVIOUS_ALIAS, PRODUCTION_ALIAS


def add_parsers(sub) -> None:
    """This group's subcommands, added to the ``arritmias`` parser's ``sub``."""
    train = sub.add_parser(
        "train", help="train the detector and log the run to MLflow",
        description="Train the CNN+RR detector on DS1, choose threshold and RuleGuard on held-out DS1 patients, "
                    "report on DS2, log params, curves, metrics and the servable model to MLflow, and register "
                    f"the model as {MODEL_NAME} when it passes the gate.", epilog=EPILOG_DATA)
    add_data_dir(train)
    train.add_argument("--cache-dir", metavar="DIR", help="dataset cache (default: $ARRITMIAS_CACHE_DIR or "
                       "./.cache/arritmias)")
    train.add_argument("--noise-dir", metavar="DIR", help="folder with NSTDB bw/ma noise records for "
                       "augmentation (default: $ARRITMIAS_NOISE_DIR, else an nstdb folder beside the data)")
    add_tracking(train)
    train.add_argument("--tag", action="append", metavar="KEY=VALUE", help="MLflow run tag (repeatable)")
    train.add_argument("--no-register", action="store_true", help="do not register the model even if it "
                       "passes the gate")
    train.add_argument("--params-file", metavar="YAML", help="training parameters from a file's 'train:' section "
                       "(params.yaml, what `dvc repro` runs); options given here still win")
    train.add_argument("--outputs", metavar="DIR", help="also write the run's figures (metrics.json), per-epoch "
                       "history (history.csv) and model URI (model_uri.txt) into DIR: DVC's metrics and plots")
    train.add_argument("--params-from-study", metavar="NAME", help="train with the best parameters of an "
                       "`arritmias tune` study (they override the options below)")
    train.add_argument("--study-storage", default="sqlite:///optuna.db", metavar="URL",
                       help="Optuna storage of that study (default: sqlite:///optuna.db)")
    add_gate_options(train)
    add_config_options(train)
    train.set_defaults(func=cmd_train)

    gate = sub.add_parser("gate", help="check a run's DS2 metrics against the release thresholds",
                          description="Exit 1 naming each metric below its threshold; 0 when the run passes. "
                                      "--register then registers the run's model.")
    add_run_and_gate(gate, "check")
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
    add_data_dir(promote)
    add_tracking(promote, experiment=False)
    promote.set_defaults(func=cmd_promote)

    summary = sub.add_parser(
        "ci-summary", help="the training run as a Markdown table (GitHub job summary, pull-request comment)",
        description="Write a run's DS2 figures, the gate's verdict, its registered version and its MLflow run name "
                    "as Markdown: appended to $GITHUB_STEP_SUMMARY when set (GitHub shows it on the job's page) "
                    "and written whole to --out (the body of the pull-request comment).")
    add_run_and_gate(summary, "summarise")
    summary.add_argument("--out", metavar="FILE", help="also write the Markdown to FILE")
    summary.set_defaults(func=cmd_ci_summary)

    compare = sub.add_parser("compare", help="table of the best runs, or of the logged models",
                             description="The top runs of the experiment ordered by DS2 V F1, with their key "
                                         "metrics and params; with --models, the experiment's logged models (what "
                                         "the MLflow UI's Models tab lists) ordered by the same figure.")
    compare.add_argument("--top", type=int, default=10, help="runs to show (default: 10)")
    compare.add_argument("--models", action="store_true", help="rank logged models instead of runs (filters then "
                         "name the models' fields, e.g. \"metrics.test_f1_V > 0.9\")")
    compare.add_argument("--filter", metavar="EXPR", help="MLflow search filter, e.g. "
                         "\"metrics.test_f1_V > 0.9\" or \"params.use_augment = 'True'\"")
    add_tracking(compare)
    compare.set_defaults(func=cmd_compare)

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
    add_data_dir(tune)
    add_tracking(tune, experiment=False)
    add_config_options(tune)
    tune.set_defaults(func=cmd_tune)


def cmd_train(args: argparse.Namespace) -> int:
    from arritmias.config import TrainConfig
    from arritmias.training.train import train, write_outputs

    from arritmias.config import read_params

    values = config_values(args, read_params(args.params_file) if args.params_file else None)
    if args.params_from_study:
        from arritmias.training.tuning import best_params

        values.update(best_params(args.params_from_study, args.study_storage))
    cfg = TrainConfig(**values)
    tags = parse_tags(args.tag)
    if args.params_from_study:
        tags.setdefault("params_from_study", args.params_from_study)
    data_dir = resolve_data_dir(args.data_dir)
    ensure_records(data_dir)
    from arritmias.tracking import registry, runs

    runs.use_tracking(args.tracking_uri)
    report_reaped(args.experiment)
    result = train(cfg, data_dir=data_dir, cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                   noise_dir=args.noise_dir, tracking=args.tracking_uri, experiment=args.experiment, tags=tags,
                   register=not args.no_register, gate_thresholds=gate_thresholds(args))
    if args.outputs:
        write_outputs(result, Path(args.outputs))
    m = result.metrics
    print(f"run {result.run_name} ({result.run_id})")
    print(f"cross-validated on the training patients ({cfg.cv_folds} folds, epoch {int(m['best_epoch'])}): "
          f"V precision {m['cv_precision_V']:.4f}  V recall {m['cv_recall_V']:.4f}  V F1 {m['cv_f1_V']:.4f}  "
          f"PR-AUC {m['cv_pr_auc']:.4f}")
    print(f"cross-validated, EC57 gross in detected mode: VEB Se {m['cv_ec57_detected_veb_se']:.4f}  "
          f"+P {m['cv_ec57_detected_veb_ppv']:.4f}  QRS Se {m['cv_ec57_detected_qrs_se']:.4f}  "
          f"+P {m['cv_ec57_detected_qrs_ppv']:.4f}  (family weight {m['family_weight']:g})")
    for mode in ("detected", "reference"):
        print(f"DS2 EC57 gross, {mode + ' mode':<14}: VEB Se {m[f'test_ec57_{mode}_veb_se']:.4f}  "
              f"+P {m[f'test_ec57_{mode}_veb_ppv']:.4f}  QRS Se {m[f'test_ec57_{mode}_qrs_se']:.4f}  "
              f"+P {m[f'test_ec57_{mode}_qrs_ppv']:.4f}")
    print(f"cross-validated, EC57 gross in detected mode: SVEB Se {figure(m, 'cv_ec57_detected_sveb_se')}  "
          f"+P {figure(m, 'cv_ec57_detected_sveb_ppv')}  (P(S) threshold {figure(m, 'threshold_s')})")
    for mode in ("detected", "reference"):
        print(f"DS2 EC57 gross, {mode + ' mode':<14}: SVEB Se {figure(m, f'test_ec57_{mode}_sveb_se')}  "
              f"+P {figure(m, f'test_ec57_{mode}_sveb_ppv')}")
    for label, p in (("with record context", "test"), ("beat alone        ", "test_nocontext")):
        print(f"DS2 N vs V, {label}: V precision {m[f'{p}_precision_V']:.4f}  V recall {m[f'{p}_recall_V']:.4f}  "
              f"V F1 {m[f'{p}_f1_V']:.4f}  PR-AUC {m[f'{p}_pr_auc']:.4f}")
        print(f"DS2 S,      {label}: S precision {figure(m, f'{p}_precision_S')}  S recall {figure(m, f'{p}_recall_S')}  "
              f"S F1 {figure(m, f'{p}_f1_S')}  PR-AUC {figure(m, f'{p}_pr_auc_S')}")
    print(f"  TP {int(m['test_TP'])}  FP {int(m['test_FP'])}  FN {int(m['test_FN'])}  TN {int(m['test_TN'])}  "
          f"thresholds {m['threshold']:.4f} / {m['threshold_no_context']:.4f} / recording "
          f"{m['threshold_recording']:.4f}, not a beat {m['not_beat_threshold']:.2f} (chosen out of fold)  RuleGuard "
          f"{'kept' if m['ruleguard_kept'] else 'dropped'}  {m['train_time_s']:.0f} s")
    print(result.gate.summary())
    if result.registered_version is not None:
        print(f"registered as {registry.MODEL_NAME} version "
              f"{result.registered_version}; promote it with `arritmias promote --version "
              f"{result.registered_version}`")
    print(f"in the MLflow UI (./start_mlflow.sh): {runs.ui_url(result.run_id)}")
    return 0


def report_reaped(experiment: str) -> None:
    """Close the runs a killed process left RUNNING, and say so: a later `gate` must not judge around them."""
    from arritmias.tracking import runs

    for run_id, reason in runs.reap_stale_runs(experiment):
        print(f"run {run_id} was still RUNNING but {reason}: marked FAILED", file=sys.stderr)


def cmd_gate(args: argparse.Namespace) -> int:
    from arritmias.tracking import registry, runs

    runs.use_tracking(args.tracking_uri, "write")
    report_reaped(args.experiment)
    run_id = args.run_id or runs.latest_run_id(args.experiment)
    result = registry.gate_run(run_id, gate_thresholds(args))
    if result.passed:  # a failure is said once, by the error line below
        print(f"run {run_id}: {result.summary()}")
    # The run's tag says what the latest judgement was, not the one made at training time with other thresholds.
    runs.tag_run(run_id, {"gate": "passed" if result.passed else "failed"})
    if not result.passed:
        raise CheckFailed(f"run {run_id} fails the gate: " + "; ".join(result.failures))
    if args.register:
        before = registry.registered_version(run_id)
        version = registry.register(run_id, result)
        runs.tag_run(run_id, {"registered_version": str(version)})
        print(f"run {run_id} is already {registry.MODEL_NAME} version {version}: nothing registered"
              if before is not None else f"registered as {registry.MODEL_NAME} version {version}")
    return 0


def cmd_ci_summary(args: argparse.Namespace) -> int:
    from arritmias.tracking import ci_summary
    from arritmias.tracking import runs

    runs.use_tracking(args.tracking_uri, "read")
    run_id = args.run_id or runs.latest_run_id(args.experiment)
    markdown = ci_summary.render(run_id, gate_thresholds(args))
    written = ci_summary.write(markdown, Path(args.out) if args.out else None)
    if not written:  # neither a job summary nor a file: the table is for this terminal
        print(markdown)
    for path in written:
        print(f"summary of run {run_id} -> {path}", file=sys.stderr)
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from arritmias.training import promotion
    from arritmias.tracking import registry, runs
    from arritmias.data.beats import parse_records

    runs.use_tracking(args.tracking_uri, "write")
    if args.rollback:
        restored, demoted = promotion.rollback()
        print(f"rolled back: version {restored} is @{registry.PRODUCTION_ALIAS} again, version {demoted} is "
              f"@{registry.PREVIOUS_ALIAS}")
        print(SERVERS_KEEP_THEIR_VERSION)
        return 0
    if args.challenger is not None:
        records = parse_records(args.records) if args.records else None
        c = promotion.challenge(args.challenger, args.against, records, args.data_dir)
        for name, version, m in (("challenger", c.challenger, c.challenger_metrics),
                                 ("champion", c.champion, c.champion_metrics)):
            print(f"{name:<10} v{version}: V F1 {m['f1_V']:.4f}  precision {m['precision_V']:.4f}  "
                  f"recall {m['recall_V']:.4f}  accuracy {m['accuracy']:.4f}")
        print(f"beats only the challenger got right: {c.challenger_only_right}; only the champion: "
              f"{c.champion_only_right}; McNemar p (challenger worse) = {c.p_value:.4g}")
        if not c.accepted:
            raise CheckFailed(f"challenger v{c.challenger} refused: {c.reason}")
        print(f"challenger v{c.challenger} promoted to @{args.against} ({c.reason}); v{c.champion} is "
              f"@{registry.PREVIOUS_ALIAS}")
        print(SERVERS_KEEP_THEIR_VERSION)
        return 0
    version = registry.latest_version() if args.latest else args.version
    done = registry.promote(version, args.alias)
    was = "it already was" if done.was == done.version else (
        f"was version {done.was}" if done.was is not None else "a new alias")
    print(f"{registry.MODEL_NAME} version {done.version} is now @{done.alias} ({was}): load it as {done.uri}")
    print(SERVERS_KEEP_THEIR_VERSION)
    return 0


# What a promotion does not do, said where it is done (README, "Serving" says the same).


# What a promotion does not do, said where it is done (README, "Serving" says the same).
SERVERS_KEEP_THEIR_VERSION = ("  servers already running keep the version they loaded (each answer names it in its "
                              "X-Model-Version header): restart `arritmias serve` to serve the new one")


def cmd_tune(args: argparse.Namespace) -> int:
    from arritmias.config import TrainConfig
    from arritmias.training.tuning import tune

    base = TrainConfig(**config_values(args))
    result = tune(base, args.trials, args.timeout, args.storage, args.study, args.data_dir,
                  Path(args.cache_dir) if args.cache_dir else None, args.tracking_uri)
    print(f"study {result.study_name}: {result.n_trials} trials, best cross-validated PR-AUC {result.best_value:.4f}")
    print("best parameters: " + ", ".join(f"{k}={v}" for k, v in result.best_params.items()))
    print(f"parent MLflow run {result.parent_run_id}; train with them: arritmias train --params-from-study "
          f"{result.study_name} --study-storage {args.storage}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from arritmias.tracking import registry, runs

    runs.use_tracking(args.tracking_uri, "read")
    rank = registry.compare_models if args.models else registry.compare
    table = rank(args.top, args.filter or "", args.experiment)
    if table.empty:
        print("no logged models match" if args.models else "no finished runs match")
        return 0
    import pandas as pd

    with pd.option_context("display.max_columns", None, "display.width", 200, "display.float_format",
                           "{:.4f}".format):
        print(table.to_string(index=False))
    return 0
