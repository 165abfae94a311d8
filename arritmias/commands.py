"""Handlers of the ``arritmias`` subcommands: each parses nothing, calls one plain function, prints its result.

``cli.py`` builds the parser and maps subcommands here; errors raised as ``ArritmiasError`` become one line and
an exit code there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from arritmias.errors import ArritmiasError, CheckFailed
from arritmias.data.records import resolve_data_dir

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
    from arritmias.data.integrity import fetch

    data_dir = resolve_data_dir(args.data_dir)
    records = list(parse_records(args.records)) if args.records else None
    print(f"downloading MIT-BIH {'records ' + ' '.join(records) if records else '(48 records, ~100 MB)'} "
          f"from PhysioNet into {data_dir} ...", file=sys.stderr)
    checks = fetch(data_dir, records)
    print(format_verify_table(checks))
    _fail_on_bad(checks, "downloaded records failed verification")
    return 0


def gate_thresholds(args: argparse.Namespace) -> dict[str, float]:
    from arritmias.tracking.registry import GATE_DEFAULTS

    return {m: getattr(args, f"gate_{m}") for m in GATE_DEFAULTS}


def parse_tags(values: list[str]) -> dict[str, str]:
    tags = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ArritmiasError(f"--tag '{item}': expected key=value")
        tags[key.strip()] = value.strip()
    return tags


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


def cmd_train(args: argparse.Namespace) -> int:
    from arritmias.config import TrainConfig, field_defaults
    from arritmias.training.train import train

    values = {name: getattr(args, name) for name in field_defaults()}
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
    m = result.metrics
    print(f"run {result.run_name} ({result.run_id})")
    print(f"cross-validated on the training patients ({args.cv_folds} folds, epoch {int(m['best_epoch'])}): "
          f"V precision {m['cv_precision_V']:.4f}  V recall {m['cv_recall_V']:.4f}  V F1 {m['cv_f1_V']:.4f}  "
          f"PR-AUC {m['cv_pr_auc']:.4f}")
    print(f"cross-validated, EC57 gross in detected mode: VEB Se {m['cv_ec57_detected_veb_se']:.4f}  "
          f"+P {m['cv_ec57_detected_veb_ppv']:.4f}  QRS Se {m['cv_ec57_detected_qrs_se']:.4f}  "
          f"+P {m['cv_ec57_detected_qrs_ppv']:.4f}  (family weight {m['family_weight']:g})")
    for mode in ("detected", "reference"):
        print(f"DS2 EC57 gross, {mode + ' mode':<14}: VEB Se {m[f'test_ec57_{mode}_veb_se']:.4f}  "
              f"+P {m[f'test_ec57_{mode}_veb_ppv']:.4f}  QRS Se {m[f'test_ec57_{mode}_qrs_se']:.4f}  "
              f"+P {m[f'test_ec57_{mode}_qrs_ppv']:.4f}")
    for label, p in (("with record context", "test"), ("beat alone        ", "test_nocontext")):
        print(f"DS2 N vs V, {label}: V precision {m[f'{p}_precision_V']:.4f}  V recall {m[f'{p}_recall_V']:.4f}  "
              f"V F1 {m[f'{p}_f1_V']:.4f}  PR-AUC {m[f'{p}_pr_auc']:.4f}")
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
SERVERS_KEEP_THEIR_VERSION = ("  servers already running keep the version they loaded (each answer names it in its "
                              "X-Model-Version header): restart `arritmias serve` to serve the new one")


def cmd_tune(args: argparse.Namespace) -> int:
    from arritmias.config import TrainConfig, field_defaults
    from arritmias.training.tuning import tune

    base = TrainConfig(**{name: getattr(args, name) for name in field_defaults()})
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
    table = registry.compare(args.top, args.filter or "", args.experiment)
    if table.empty:
        print("no finished runs match")
        return 0
    import pandas as pd

    with pd.option_context("display.max_columns", None, "display.width", 200, "display.float_format",
                           "{:.4f}".format):
        print(table.to_string(index=False))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import tempfile

    from arritmias.tracking import runs
    from arritmias.serving.guard import VERSION_ENV
    from arritmias.serving.pyfunc import serve_command, serve_env

    uri = runs.use_tracking(args.tracking_uri, "read", args.model_uri if args.engine != "ray" else None)
    if args.engine == "ray":
        return _serve_on_ray(args, uri)
    if args.challenger or args.shadow or args.split:
        raise ArritmiasError("--challenger, --split and --shadow need --engine ray")
    cmd = serve_command(args.model_uri, args.host, args.port, args.workers)
    with tempfile.TemporaryDirectory(prefix="arritmias-serve-") as tmp:
        env = serve_env(uri, args.model_uri, Path(tmp), args.max_request_mb * 2**20)
        version = env[VERSION_ENV] or "unregistered"
        print(f"serving {args.model_uri} (version {version}) at http://{args.host}:{args.port}/invocations "
              f"(Ctrl-C stops it); requests up to {args.max_request_mb} MiB", flush=True)
        print("  " + " ".join(cmd), flush=True)
        return run_until_stopped(cmd, env)


def run_until_stopped(cmd: list[str], env: dict[str, str], grace_s: float = 20.0) -> int:
    """Run the server ``cmd`` in a process group of its own and wait for it, passing SIGTERM and Ctrl-C on to
    the whole group (SIGTERM is what systemd, Docker and Kubernetes send to the process they started: uvicorn's
    master then stops its workers after answering the requests in flight). The group gets ``grace_s`` seconds
    before it is killed, and whatever is left in it once the master has gone (multiprocessing's resource
    tracker, a worker's child) is stopped too, so no orphan keeps the port."""
    import os
    import signal
    import subprocess

    proc = subprocess.Popen(cmd, env=env, process_group=0)

    def to_group(signum: int) -> None:
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: to_group(signum))
    try:
        while True:
            try:
                code = proc.wait()
                return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code
            except KeyboardInterrupt:
                # The terminal's Ctrl-C reaches only our group, not the server's own: pass it on.
                to_group(signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            to_group(signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        _stop_group(proc.pid, grace_s)


def _stop_group(pgid: int, grace_s: float) -> None:
    """SIGTERM, then after ``grace_s`` seconds SIGKILL, to what is left alive of process group ``pgid``."""
    import os
    import signal
    import time

    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if not _alive_in_group(pgid):
            return
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _alive_in_group(pgid):
            time.sleep(0.1)


def _alive_in_group(pgid: int) -> bool:
    """Whether process group ``pgid`` has a member that is not a zombie. A zombie is dead, but ``kill(pid, 0)``
    still finds it until its parent reaps it, and in a container the orphans' new parent (PID 1) often never
    does; so on Linux this reads ``/proc`` (state and group are the 3rd and 5th fields of ``stat``)."""
    import os

    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone while we looked
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _serve_on_ray(args: argparse.Namespace, tracking: str) -> int:
    from arritmias.serving.ab import ABConfig, run

    try:
        import ray.serve  # noqa: F401
    except ImportError:
        raise ArritmiasError("--engine ray needs Ray Serve: pip install -e '.[cluster]'") from None
    cfg = ABConfig(args.champion, args.challenger, args.split, args.shadow, args.min_replicas, args.max_replicas,
                   args.scale_down_after, Path(args.log_dir), args.host, args.port)
    run(cfg, tracking, args.max_request_mb * 2**20, ready=lambda line: print(line, flush=True))
    print("stopped; prediction log written", flush=True)
    return 0


def cmd_ab_report(args: argparse.Namespace) -> int:
    from arritmias.tracking import registry, runs
    from arritmias.serving.ab_report import AB_EXPERIMENT, report
    from arritmias.data.beats import parse_records

    runs.use_tracking(args.tracking_uri, "write" if args.promote else "create")
    out = report(Path(args.log), parse_records(args.records) if args.records else None, args.data_dir)
    print(out.arms.to_string(index=False))
    if out.disagreement_rate is not None:
        print(f"shadow disagrees with the answer given on {out.disagreement_rate:.2%} of beats "
              f"({len(out.disagreements)} beats)")
    if out.accuracy is not None:
        print(out.accuracy.to_string(index=False))
    for note in out.notes:
        print(note)
    if out.decision:
        d = out.decision
        print(f"shadow v{d['candidate_version']} vs champion v{d['champion_version']} on {d['beats']} beats: "
              f"{'accepted' if d['accepted'] else 'refused'} ({d['reason']})")
    print(f"logged to MLflow experiment {AB_EXPERIMENT}, run {out.run_id}")
    if args.promote:
        if not (out.decision and out.decision["accepted"]):
            raise CheckFailed("--promote: " + (out.decision["reason"] if out.decision else "no paired decision"))
        done = registry.promote(out.decision["candidate_version"])
        print(f"version {done.version} is now @{done.alias} ({done.uri}); the old one (version {done.was}) "
              f"@{registry.PREVIOUS_ALIAS}")
        print(SERVERS_KEEP_THEIR_VERSION)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from arritmias.tracking import runs
    from arritmias.analysis.recording import analyze_signal, lead_choice, read_signal
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
    note = lead_choice(s)
    print(f"{s['record']} (lead {s['lead']}): {s['beats']} beats, {s['pvc_count']} PVCs ({s['pvc_burden_percent']} %), "
          f"{s['couplets']} couplets, {len(s['runs_of_3_or_more'])} runs of >= 3, "
          f"{len(s['bigeminy_episodes'])} bigeminy and {len(s['trigeminy_episodes'])} trigeminy episodes")
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
    from arritmias.data.records import require_records

    runs.use_tracking(args.tracking_uri, "read", args.model_uri)
    data_dir = resolve_data_dir(args.data_dir)
    out = Path(args.out)
    modes = ("detected", "reference") if args.mode == "both" else (args.mode,)
    if args.noise_stress:
        return _noise_stress(args, data_dir, out, modes)
    records = parse_records(args.records)
    require_records(data_dir, records)
    detector = Detector.from_model_uri(args.model_uri)
    for mode in modes:
        result = evaluate(detector, data_dir, records, mode, args.include_first_5min, out / mode)
        path = out / f"ec57_{mode}.json"
        path.write_text(json.dumps(result.to_dict(), indent=2))
        print(format_table(result))
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
