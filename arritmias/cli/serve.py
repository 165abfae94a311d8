"""Serving: ``serve`` (MLflow's app behind the guard, or Ray Serve with A/B and shadow) and ``ab-report``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from arritmias.cli.options import (MODEL_URI_DEFAULT, add_data_dir, add_tracking, port_number, positive_int,
                                 share)
from arritmias.cli.train import SERVERS_KEEP_THEIR_VERSION
from arritmias.errors import ArritmiasError, CheckFailed
from arritmias.tracking.registry import PREVIOUS_ALIAS, PRODUCTION_ALIAS


def add_parsers(sub) -> None:
    """This group's subcommands, added to the ``arritmias`` parser's ``sub``."""
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
    add_tracking(serve, experiment=False)
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
    add_data_dir(abr)
    add_tracking(abr, experiment=False)
    abr.set_defaults(func=cmd_ab_report)


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
