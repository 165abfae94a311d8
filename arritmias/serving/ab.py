"""Production serving on Ray Serve: champion / challenger routing, shadow scoring, autoscaling, a prediction log.

``arritmias serve --engine ray`` runs one Ray Serve application:

    HTTP ──► Ingress (one replica: decode, validate, route, answer, log)
               ├─► Arm "champion"    models:/ECG_Arritmias_NvsV@production   min..max replicas, autoscaled
               ├─► Arm "challenger"  @<alias>, the --split share of requests   (optional)
               └─► Arm "shadow"      @<alias>, every request, off the response path, only logged (optional)

A request is read exactly as ``arritmias serve`` reads it (:mod:`arritmias.serving.guard`: orjson, MLflow's
protocol parser, :func:`arritmias.model.contract.parse_request`), so the same bodies get the same answers and the same
one-line 400s; each beat's answer also names the ``model_version`` that gave it, and the body carries the
``request_id`` its log rows are filed under. A request may carry ``"subject": "<key>"`` (a patient, a recorder):
all requests with the same key go to the same arm (a hash of the key against ``--split``), so a patient's beats
are never judged by two models; requests without one are drawn at random. Each beat may carry ``"sample"`` (its
sample number in the recording) so that ``arritmias ab-report`` can match it to reference annotations.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arritmias.errors import DataError
from arritmias.tracking.registry import PRODUCTION_ALIAS, model_uri

APP_NAME = "arritmias"
ARMS = ("champion", "challenger", "shadow")
SHADOW_BATCH_S = 0.05  # the shadow scores what arrived in the last 50 ms as one batch


@dataclass(frozen=True)
class ABConfig:
    """What ``serve --engine ray`` runs. Aliases name versions of the registered model."""

    champion: str = PRODUCTION_ALIAS  # alias that answers by default
    challenger: str | None = None  # alias that answers the ``split`` share of requests
    split: float = 0.0  # share of requests (or of subjects) routed to the challenger
    shadow: str | None = None  # alias that scores every request off the response path, only logged
    min_replicas: int = 1  # per arm
    max_replicas: int = 2  # per arm; Ray Serve adds replicas when each has more than ~1 request in flight
    scale_down_after_s: float = 60.0  # how long load must stay low before a replica is removed
    log_dir: Path = Path("prediction_log")  # the Parquet prediction log (hour partitions)
    host: str = "127.0.0.1"
    port: int = 5001

    def check(self) -> None:
        """Refuse a configuration that cannot run, in one line."""
        if not 0.0 <= self.split <= 1.0:
            raise DataError(f"--split {self.split:g}: must be a share between 0 and 1")
        if self.split > 0 and not self.challenger:
            raise DataError("--split needs --challenger ALIAS: which model gets that share of the requests")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise DataError(f"replicas: need 1 <= --min-replicas ({self.min_replicas}) <= --max-replicas "
                            f"({self.max_replicas})")
        named = [a for a in (self.champion, self.challenger, self.shadow) if a]
        if len(set(named)) != len(named):
            raise DataError(f"the champion, challenger and shadow aliases must differ, got {named}")

    def aliases(self) -> dict[str, str]:
        return {arm: alias for arm, alias in zip(ARMS, (self.champion, self.challenger, self.shadow)) if alias}


def resolve_versions(cfg: ABConfig) -> dict[str, int]:
    """The registered version behind each arm's alias, or a DataError naming the alias that has none."""
    from mlflow.exceptions import MlflowException

    from arritmias.tracking.registry import MODEL_NAME
    from arritmias.tracking.runs import client as mlflow_client

    client, out = mlflow_client(), {}
    for arm, alias in cfg.aliases().items():
        try:
            out[arm] = int(client.get_model_version_by_alias(MODEL_NAME, alias).version)
        except MlflowException:
            raise DataError(f"{MODEL_NAME} has no alias @{alias} (the {arm}): set it with `arritmias promote "
                            f"--version N --alias {alias}`") from None
    return out


def choose_arm(subject: str | None, split: float, draw: float) -> str:
    """``"challenger"`` for the ``split`` share, else ``"champion"``. With a subject key the share is decided by a
    hash of the key (the same subject always lands on the same arm); without one by ``draw``, uniform in [0, 1)."""
    if split <= 0.0:
        return "champion"
    if subject:
        draw = int.from_bytes(hashlib.sha256(subject.encode()).digest()[:8], "big") / 2.0**64
    return "challenger" if draw < split else "champion"


def _deployments():
    """The two Ray Serve deployment classes (built on first use: ``ray[serve]`` is an optional extra)."""
    from ray import serve

    @serve.deployment
    class Arm:
        """One model version, scoring validated requests (one OpenVINO thread per replica)."""

        def __init__(self, uri: str, tracking_uri: str, version: int):
            import mlflow

            from arritmias.model.detector import Detector

            mlflow.set_tracking_uri(tracking_uri)
            self.detector, self.version = Detector.load(_detector_folder(uri), threads=1), version
            self.detector.decide(np.zeros((1, self.detector.win), np.float32),
                                 np.array([[0.8, 0.8, 1.0]], np.float32))  # compile before the first request

        def score(self, req) -> dict:
            from arritmias.serving.pyfunc import decision_columns

            t0 = time.perf_counter()
            d = self.detector.decide(req.windows, req.rr, req.context, req.use_context)
            return {**decision_columns(d), "model_version": self.version,
                    "latency_ms": (time.perf_counter() - t0) * 1000}

    @serve.deployment(num_replicas=1, max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
    class Ingress:
        """Decode, validate, route, answer; log both arms' decisions off the response path."""

        def __init__(self, arms: dict, split: float, log_dir: str, win: int, max_bytes: int, versions: dict,
                     training_v_rates: dict, drift_reference: dict | None, fs: float):
            from arritmias.serving import metrics
            from arritmias.serving.prediction_log import PredictionLog
            from arritmias.serving.pyfunc import LIVE_DRIFT_WINDOW

            self.versions = versions
            # Live drift of the incoming beats against the champion's training beats (its reference).
            self.live_drift = metrics.live_drift_for(drift_reference, fs, versions["champion"], LIVE_DRIFT_WINDOW)
            for arm, rate in training_v_rates.items():
                metrics.set_training_v_rate(versions[arm], rate)

            self.arms, self.split, self.win, self.max_bytes = arms, float(split), int(win), int(max_bytes)
            self.log = PredictionLog(Path(log_dir))
            self.shadow_queue: list = []  # (request, log metadata) waiting for the shadow's next batch
            self.shadow_task: asyncio.Task | None = None
            self.rng = random.Random()

        async def __call__(self, request):
            from starlette.responses import Response

            path = request.url.path.rstrip("/")
            if request.method == "GET" and path in ("/ping", "/health"):
                return Response("\n", media_type="application/json")
            if request.method == "GET" and path == "/status":
                return _json(200, _replicas())
            if request.method == "GET" and path == "/metrics":
                from arritmias.serving.metrics import exposition

                body, content_type = exposition()
                return Response(body, media_type=content_type)
            if request.method != "POST" or path != "/invocations":
                return _json(404, {"error_code": "NOT_FOUND", "message": "POST beats to /invocations"})
            return await self._invocations(request)

        async def _invocations(self, request):
            from arritmias.serving.metrics import observe
            from arritmias.serving.prediction_log import now_utc
            from arritmias.serving.guard import Refusal, read_beats, read_capped, request_kind

            arrived, request_id, t0 = now_utc(), uuid.uuid4().hex, time.perf_counter()
            try:
                if request_kind(request.headers.get("content-type")) != "json":
                    raise Refusal(415, "the A/B server reads JSON requests only: 'Content-Type: application/json'",
                                  "UNSUPPORTED_MEDIA_TYPE")
                body = await read_capped(request.headers.get("content-length"), request.stream(), self.max_bytes,
                                         request.headers.get("content-encoding"))
                payload, req, samples = read_beats(body, self.win)
                subject = payload.get("subject")
                if subject is not None and not isinstance(subject, (str, int)):
                    raise Refusal(400, "'subject' must be a string: the key that keeps a patient on one model")
            except Refusal as r:
                observe(self.versions["champion"], "champion", "bad_request" if r.status < 500 else "error",
                        time.perf_counter() - t0)
                return _json(r.status, {"error_code": r.code, "message": r.message})
            subject = None if subject is None else str(subject)
            if self.live_drift is not None:
                self.live_drift.add(req.windows, req.rr)
            arm = choose_arm(subject, self.split if "challenger" in self.arms else 0.0, self.rng.random())
            try:
                answer = await self.arms[arm].score.remote(req)
            except Exception:  # noqa: BLE001  the traceback stays in Ray's log, never in a response
                import logging

                logging.getLogger("arritmias.serving.ab").exception("scoring failed")
                observe(self.versions[arm], arm, "error", time.perf_counter() - t0)
                return _json(500, {"error_code": "INTERNAL_ERROR", "message": "internal error while scoring"})
            observe(answer["model_version"], arm, "ok", time.perf_counter() - t0, answer["label"], answer["prob_v"])
            meta = {"request_id": request_id, "time_utc": arrived, "subject": subject or "", "sample": samples,
                    "served_labels": answer["label"]}
            self.log.append(_rows(answer, arm, meta))
            if "shadow" in self.arms:
                self.shadow_queue.append((req, meta))
                if self.shadow_task is None or self.shadow_task.done():
                    self.shadow_task = asyncio.create_task(self._shadow())
            n = len(answer["prob_v"])
            predictions = [{"prob_v": float(answer["prob_v"][i]), "label": str(answer["label"][i]),
                            "prob_not_beat": float(answer["prob_not_beat"][i]),
                            "prob_s": _number(answer["prob_s"][i]), "class": str(answer["class"][i]),
                            "ruleguard_changed": bool(answer["ruleguard_changed"][i]),
                            "context_used": bool(answer["context_used"][i]),
                            "model_version": answer["model_version"]} for i in range(n)]
            return _json(200, {"predictions": predictions, "request_id": request_id})

        async def _shadow(self) -> None:
            """Score what the shadow queue holds every SHADOW_BATCH_S as one request: one call to the shadow per
            batch instead of one per request keeps the shadow's cost off the champion's latency."""
            while self.shadow_queue:
                await asyncio.sleep(SHADOW_BATCH_S)
                batch, self.shadow_queue = self.shadow_queue, []
                try:
                    answer = await self.arms["shadow"].score.remote(concat([req for req, _ in batch]))
                except Exception:  # noqa: BLE001  the shadow never affects serving
                    import logging

                    logging.getLogger("arritmias.serving.ab").exception("shadow scoring failed")
                    continue
                from arritmias.serving.metrics import observe, observe_shadow

                observe(answer["model_version"], "shadow", None, None, answer["label"], answer["prob_v"])
                start = 0
                for req, meta in batch:
                    n = len(req.windows)
                    part = {k: v[start:start + n] if isinstance(v, np.ndarray) else v for k, v in answer.items()}
                    self.log.append(_rows(part, "shadow", meta))
                    observe_shadow(answer["model_version"], meta["served_labels"], part["label"])
                    start += n

        async def __del__(self):
            # Ray Serve calls this on a graceful shutdown (SIGTERM to `serve`): the shadow's last batch is scored,
            # then every queued row is written.
            while self.shadow_task is not None and not self.shadow_task.done():
                await asyncio.wait([self.shadow_task], timeout=30)
            self.log.close()
            if self.live_drift is not None:
                self.live_drift.close()

    return Arm, Ingress


def concat(requests: list):
    """Validated requests (:class:`arritmias.model.contract.Request`) joined into one, beats in order."""
    from arritmias.signal.context import Context
    from arritmias.model.contract import Request

    if len(requests) == 1:
        return requests[0]
    win = requests[0].windows.shape[1]
    template = [r.context.template if r.context is not None else np.zeros((len(r.windows), win), np.float32)
                for r in requests]
    usual = [r.context.rr_usual if r.context is not None else np.zeros(len(r.windows), np.float32)
             for r in requests]
    use = np.concatenate([r.use_context for r in requests])
    return Request(np.concatenate([r.windows for r in requests]), np.concatenate([r.rr for r in requests]),
                   Context(np.concatenate(template), np.concatenate(usual)) if use.any() else None, use)


def _detector_folder(uri: str) -> Path:
    """The local folder of the Detector inside a logged model (MLflow caches the download)."""
    import mlflow

    from arritmias.model.detector import DETECTOR_ARTIFACT

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    return local / "artifacts" / DETECTOR_ARTIFACT


def _rows(answer: dict, arm: str, meta: dict) -> dict:
    n = len(answer["prob_v"])
    return {"request_id": [meta["request_id"]] * n, "beat": np.arange(n), "time_utc": [meta["time_utc"]] * n,
            "subject": [meta["subject"]] * n, "arm": [arm] * n, "model_version": [answer["model_version"]] * n,
            "prob_v": answer["prob_v"], "label": answer["label"], "ruleguard_changed": answer["ruleguard_changed"],
            "context_used": answer["context_used"], "latency_ms": [answer["latency_ms"]] * n,
            "sample": meta["sample"] if meta["sample"] is not None else [None] * n}


def _number(x) -> float | None:
    """A float for JSON, None (null) for None: a model without the S answer has no P(S)."""
    return None if x is None else float(x)


def _json(status: int, payload: dict):
    import orjson
    from starlette.responses import Response

    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _replicas() -> dict:
    """Running replicas per arm, from Ray Serve's controller."""
    from ray import serve

    app = serve.status().applications.get(APP_NAME)
    if app is None:
        return {}
    return {name: int(dep.replica_states.get("RUNNING", 0)) for name, dep in app.deployments.items()
            if name in ARMS}


def build_app(cfg: ABConfig, tracking_uri: str, versions: dict[str, int], champion, max_bytes: int):
    """The bound Ray Serve application for ``cfg``; ``champion`` is the champion's Detector, loaded once by
    :func:`run` for what the ingress needs of it (window length, live-drift reference, sampling rate)."""
    Arm, Ingress = _deployments()
    autoscaling = {"min_replicas": cfg.min_replicas, "max_replicas": cfg.max_replicas,
                   "target_ongoing_requests": 1, "metrics_interval_s": 1.0, "look_back_period_s": 3.0,
                   "upscale_delay_s": 2.0, "downscale_delay_s": float(cfg.scale_down_after_s)}
    arms = {}
    for arm, alias in cfg.aliases().items():
        arms[arm] = Arm.options(name=arm, autoscaling_config=autoscaling, max_ongoing_requests=8,
                                ray_actor_options={"num_cpus": 1}).bind(
            model_uri(alias), tracking_uri, versions[arm])
    from arritmias.serving.metrics import training_v_rate
    from arritmias.tracking.registry import model_provenance

    rates = {arm: training_v_rate(model_provenance(model_uri(v))["run_id"])
             for arm, v in versions.items()}
    return Ingress.bind(arms, cfg.split, str(cfg.log_dir), champion.win, max_bytes, versions, rates,
                        champion.drift_reference, champion.fs)


def run(cfg: ABConfig, tracking_uri: str, max_bytes: int, ready=print) -> None:
    """Start Ray, deploy, serve until SIGTERM / Ctrl-C, then shut down gracefully (the log is flushed)."""
    import ray
    from ray import serve

    from arritmias.util import ray_local
    from arritmias.model.detector import Detector

    cfg.check()
    versions = resolve_versions(cfg)
    champion = Detector.from_model_uri(model_uri(cfg.champion))
    logical_cpus = max(os.cpu_count() or 1, cfg.max_replicas * len(versions))  # replicas may share cores
    ray_local.init(num_cpus=logical_cpus, runtime_env={"env_vars": {"MLFLOW_TRACKING_URI": tracking_uri}})
    stopping = {"now": False}

    def on_signal(signum, frame):
        stopping["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        serve.start(http_options={"host": cfg.host, "port": cfg.port})
        ray_local.quiet_ray_loggers()  # Serve sets up its own logger when it starts
        serve.run(build_app(cfg, tracking_uri, versions, champion, max_bytes), name=APP_NAME, route_prefix="/")
        ready(f"serving {', '.join(f'{a} v{v}' for a, v in versions.items())} on "
              f"http://{cfg.host}:{cfg.port}/invocations (split {cfg.split:g}); prediction log in {cfg.log_dir}")
        while not stopping["now"]:
            time.sleep(0.2)
    finally:
        serve.shutdown()  # graceful: in-flight requests finish, the ingress writes its log
        ray.shutdown()
