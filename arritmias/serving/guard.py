"""The served app: MLflow's own scoring app (what ``mlflow models serve`` runs) behind a request guard.

MLflow's server parses a whole body before the model sees it, so some faults never reach
:func:`arritmias.model.contract.parse_request`: a body of any size is read into memory (100,000 beats took 5.5 GB and a
504), a deeply nested JSON array overflows the parser's recursion (a 500), and errors raised outside the model
carry a stack trace with file paths. It also decodes a JSON body twice with the standard library (70 ms each for
1,000 beats). The guard, a plain ASGI middleware, answers those itself:

* a body over ``max_bytes`` gets a 413 with one line, checked from ``Content-Length`` and while receiving, so an
  oversized body is never held whole;
* a JSON request to ``/invocations`` is decoded once, by orjson (22 ms for the same 1,000 beats), read by MLflow's
  own protocol parser (``instances``, ``inputs``, ``dataframe_records``, ``dataframe_split``, ``params``) and the
  answer written by orjson (MLflow's ``json.dump`` took 16 ms for 1,000 answers): the same request and answer as
  ``mlflow models serve``; JSON nested beyond what the parsers allow gets a 400, never a recursion error;
* any 5xx becomes a one-line JSON error, a ``stack_trace`` field is dropped from any error (the traceback stays
  in the server's log), and a message is cut to its one line: MLflow prefixes the model's own refusal with a
  dump of the whole parsed request ("Failed to predict data '...'"), which for 10,000 beats is megabytes.

``uvicorn arritmias.serving.guard:app`` serves the model whose local path is in MLflow's own environment variable,
as MLflow's ``app`` module does; ``arritmias serve`` sets it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import zlib

import numpy as np
import orjson

MAX_BYTES_ENV = "ARRITMIAS_MAX_REQUEST_BYTES"
VERSION_ENV = "ARRITMIAS_MODEL_VERSION"  # the registered version served: metrics' labels, answers' headers
MODEL_URI_ENV, RUN_ID_ENV = "ARRITMIAS_MODEL_URI", "ARRITMIAS_MODEL_RUN_ID"
# Every /invocations answer names the model that made it: a server keeps the version it loaded when an alias
# moves, and a client comparing answers must be able to tell (the pyfunc's answer table stays MLflow's contract).
VERSION_HEADER, RUN_HEADER = b"x-model-version", b"x-model-run-id"
TRAINING_V_RATE_ENV = "ARRITMIAS_TRAINING_V_RATE"
# 32 MiB holds ~4,500 beats without context or ~2,200 with it, written with full float precision (~7 and ~15 kB a
# beat; fewer digits fit more): a 30-minute recording in one or two requests, while parsing stays within ~1 GB of
# server memory (benchmarks/bench_large_request.py: +832 MB for 2,196 beats with context).
DEFAULT_MAX_BYTES = 32 * 2**20
_log = logging.getLogger("arritmias.serving.guard")
SHAPE = '{"instances": [{"sig": [...], "rr": [...]}]}'


def one_line(message: str) -> str:
    """The model's own message without MLflow's "Failed to predict data '<the whole request>'" prefix, and the
    first line of anything else."""
    if message.startswith("Failed to predict data") and "\nError: " in message:
        message = message.split("\nError: ", 1)[1]
    return message.strip().splitlines()[0] if message.strip() else "bad request"


def _error(status: int, message: str, code: str) -> tuple[int, bytes]:
    return status, json.dumps({"error_code": code, "message": message}).encode()


class Refusal(Exception):
    """A request answered with HTTP ``status`` and the one-line ``message`` (JSON ``error_code`` ``code``)."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def too_large(size: int, max_bytes: int) -> str:
    return (f"body of {size:,} bytes refused: the request limit is {max_bytes / 2**20:.0f} MiB (a beat is ~7 kB of "
            "JSON, ~15 kB with its context): split the beats into several requests")


def request_kind(content_type: str | None) -> str:
    """``"json"`` or ``"csv"`` from a request's ``Content-Type`` header (RFC 9110: a media type, then parameters
    whose values may be quoted), or a 415 :class:`Refusal` naming what to send. JSON is UTF-8 (RFC 8259), so a
    ``charset`` other than UTF-8 is refused rather than read wrongly."""
    send = "send the beats as JSON with 'Content-Type: application/json' (or a CSV as text/csv)"
    if not content_type or not content_type.strip():
        raise Refusal(415, f"the request has no Content-Type header: {send}", "UNSUPPORTED_MEDIA_TYPE")
    media, *params = content_type.split(";")
    media = media.strip().lower()
    kinds = {"application/json": "json", "text/csv": "csv"}
    if media not in kinds:
        raise Refusal(415, f"Content-Type {media!r} is not supported: {send}", "UNSUPPORTED_MEDIA_TYPE")
    for param in params:
        key, _, value = param.partition("=")
        value = value.strip().strip('"').lower()
        if key.strip().lower() == "charset" and value not in ("utf-8", "utf8"):
            raise Refusal(415, f"charset {value!r} is not supported: JSON and CSV requests are UTF-8",
                          "UNSUPPORTED_MEDIA_TYPE")
    return kinds[media]


async def read_capped(content_length: str | None, chunks, max_bytes: int, encoding: str | None = None) -> bytes:
    """The body from the async iterable ``chunks``, refused with a 413 :class:`Refusal` when its declared
    ``content_length`` or the bytes received pass ``max_bytes``: an oversized body is never held whole. Both
    servers read ``/invocations`` through this (the guard from ASGI messages, the Ray ingress from its stream).

    ``encoding`` is the request's ``Content-Encoding``: a gzip body is decoded as it arrives and the limit applies
    to the decoded bytes (a small gzip bomb must not expand into gigabytes); any other coding is a 415."""
    coding = (encoding or "identity").strip().lower()
    if coding not in ("identity", "gzip", "x-gzip"):
        raise Refusal(415, f"Content-Encoding {coding!r} is not supported: send the body uncompressed or as gzip",
                      "UNSUPPORTED_MEDIA_TYPE")
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise Refusal(413, too_large(int(content_length), max_bytes), "REQUEST_TOO_LARGE")
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if coding != "identity" else None
    parts, size = [], 0
    async for chunk in chunks:
        if inflate is not None:
            try:
                # At most one byte past the limit per call: the refusal comes before the expansion is held.
                chunk = inflate.decompress(chunk, max_bytes - size + 1)
                while inflate.unconsumed_tail and len(chunk) <= max_bytes - size:
                    chunk += inflate.decompress(inflate.unconsumed_tail, max_bytes - size - len(chunk) + 1)
            except zlib.error:
                raise Refusal(400, "the body is not valid gzip (Content-Encoding: gzip)") from None
        size += len(chunk)
        if size > max_bytes:
            raise Refusal(413, too_large(size, max_bytes) + (" (after gzip decoding)" if inflate else ""),
                          "REQUEST_TOO_LARGE")
        parts.append(chunk)
    if inflate is not None and not inflate.eof:
        raise Refusal(400, "the body is not valid gzip: the compressed stream ends early")
    return b"".join(parts)


def decode(body: bytes) -> dict:
    """The JSON object in ``body`` holding exactly one of MLflow's request forms, or a :class:`Refusal`."""
    from mlflow.pyfunc.scoring_server import SUPPORTED_FORMATS

    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson is strict JSON; the standard parser (what MLflow uses) also reads NaN and Infinity, which the
        # model then refuses by name. Only bodies orjson refused pay for the second, slower parse.
        try:
            payload = json.loads(body)
        except RecursionError:
            raise Refusal(400, f"JSON nested deeper than the parser allows: a request is {SHAPE}") from None
        except ValueError as e:
            raise Refusal(400, f"the body is not valid JSON ({one_line(str(e))}): a request is {SHAPE}") from None
    formats = set(payload) & SUPPORTED_FORMATS if isinstance(payload, dict) else set()
    if len(formats) != 1:
        raise Refusal(400, f"the body needs exactly one of {sorted(SUPPORTED_FORMATS)}: a request is {SHAPE}")
    return payload


def protocol_input(payload: dict, schema=None):
    """The request's beats as MLflow's scoring server hands them to a model (its own protocol parser)."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import SUPPORTED_FORMATS, infer_and_parse_data

    form = (set(payload) & SUPPORTED_FORMATS).pop()
    try:
        return infer_and_parse_data({form: payload[form]}, schema)
    except MlflowException as e:
        raise Refusal(400, one_line(e.message)) from None


def read_beats(body: bytes, win: int):
    """``(payload, Request, samples)`` from a request body, read as ``arritmias serve`` reads it; ``samples`` is
    the optional per-beat ``"sample"`` field as an int64 array (None when no beat sent one). A Refusal otherwise."""
    from arritmias.errors import DataError
    from arritmias.model.contract import parse_request

    payload = decode(body)
    try:
        req = parse_request(protocol_input(payload), win)
    except DataError as e:
        raise Refusal(400, str(e)) from None
    return payload, req, _samples(payload, len(req.windows))


def _samples(payload: dict, n: int):
    rows = payload.get("instances", payload.get("dataframe_records"))
    if isinstance(rows, list):
        values = [r.get("sample") if isinstance(r, dict) else None for r in rows]
    elif isinstance(payload.get("inputs"), dict):
        values = payload["inputs"].get("sample")
    else:
        values = None
    if values is None or all(v is None for v in values):
        return None
    bad = [i for i, v in enumerate(values) if type(v) is not int or v < 0]
    if bad or len(values) != n:
        raise Refusal(400, f"sample of beat {bad[0] if bad else n}: each beat's 'sample' must be a non-negative "
                           "integer (its sample number in the recording), or left out")
    return np.asarray(values, np.int64)


def served_headers(version: str | None, run_id: str | None, uri: str | None) -> list[tuple[bytes, bytes]]:
    """The headers naming the served model: its registered version (or "unregistered"), run id and URI."""
    headers = [(VERSION_HEADER, (version or "unregistered").encode())]
    if run_id:
        headers.append((RUN_HEADER, run_id.encode()))
    if uri:
        headers.append((b"x-model-uri", uri.encode("latin-1", "replace")))
    return headers


def _headers(scope) -> dict[str, str]:
    """An ASGI request's headers as ``{lower-case name: value}``."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}


class RequestGuard:
    """ASGI middleware: a size limit on ``/invocations``, JSON decoded once, clean error bodies everywhere.

    ``model`` is the loaded pyfunc the wrapped MLflow ``app`` serves; with it, JSON requests are decoded here and
    scored through MLflow's ``invocations`` (without it, every request goes to ``app`` as it came)."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BYTES, model=None):
        from arritmias.serving import metrics

        self.app, self.max_bytes, self.model = app, int(max_bytes), model
        self.schema = model.metadata.get_input_schema() if model is not None else None
        self.version = os.environ.get(VERSION_ENV) or None
        self.served = served_headers(self.version, os.environ.get(RUN_ID_ENV), os.environ.get(MODEL_URI_ENV))
        rate = os.environ.get(TRAINING_V_RATE_ENV)
        metrics.set_training_v_rate(self.version, float(rate) if rate else None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"].rstrip("/") == "/metrics" and scope["method"] == "GET":
            from arritmias.serving.metrics import exposition

            body, content_type = exposition()
            return await self._respond(send, 200, body, content_type.encode())
        if scope["path"].rstrip("/") == "/invocations" and scope["method"] == "POST":
            headers = _headers(scope)
            try:
                kind = request_kind(headers.get("content-type"))
                body = await self._read(scope, receive, headers)
            except Refusal as r:
                return await self._respond(send, *_error(r.status, r.message, r.code), version=self.served)
            if self.model is not None and kind == "json":
                t0 = time.perf_counter()
                status, answer, scored = await self._score_json(body)
                self._observe(status, time.perf_counter() - t0, scored)
                return await self._respond(send, status, answer, version=self.served)

            async def replay():
                return {"type": "http.request", "body": body, "more_body": False}

            # MLflow's app reads CSV itself; it gets the decoded body, so no Content-Encoding goes with it.
            scope = {**scope, "headers": [(k, v) for k, v in scope.get("headers") or []
                                          if k.lower() not in (b"content-encoding", b"content-length")]
                     + [(b"content-length", str(len(body)).encode())]}
            receive = replay
        return await self.app(scope, receive, self._clean(send, self.served))

    async def _read(self, scope, receive, headers: dict) -> bytes:
        """The request body from its ASGI messages (:func:`read_capped`, gzip decoded); a Refusal when it is too
        large, badly encoded, or the client left before sending all of it."""
        async def chunks():
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Refusal(400, "the client disconnected before sending the whole body")
                yield message.get("body", b"")
                more = message.get("more_body", False)

        return await read_capped(headers.get("content-length"), chunks(), self.max_bytes,
                                 headers.get("content-encoding"))

    async def _score_json(self, body: bytes) -> tuple[int, bytes, object]:
        """Decode ``body`` once, read it with MLflow's own protocol parser, score it, write the answer with orjson;
        within MLflow's request timeout. The answer is what ``mlflow models serve`` writes, made 5x faster.
        Returns the status, the body and the answer's table (None unless it was scored), for the metrics."""
        from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc import scoring_server

        try:
            payload = decode(body)
        except Refusal as r:
            return (*_error(r.status, r.message, r.code), None)

        def score():
            data = protocol_input(payload, self.schema)
            params = payload.get(scoring_server.SERVING_PARAMS_KEY)
            return self.model.predict(data, params=params) if params else self.model.predict(data)

        try:
            frame = await asyncio.wait_for(asyncio.to_thread(score), MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get())
        except (asyncio.TimeoutError, TimeoutError):
            return (*_error(504, "the request took longer than the server's limit: send fewer beats", "TIMEOUT"), None)
        except Refusal as r:
            return (*_error(r.status, r.message, r.code), None)
        except MlflowException as e:
            if e.get_http_status_code() >= 500:
                _log.error("server error: %s", e.message[-2000:])
                return (*_error(500, "internal error; the server log has the details", "INTERNAL_ERROR"), None)
            return (*_error(e.get_http_status_code(), one_line(e.message), e.error_code), None)
        except Exception:
            _log.exception("server error")
            return (*_error(500, "internal error; the server log has the details", "INTERNAL_ERROR"), None)
        return 200, orjson.dumps({"predictions": frame.to_dict(orient="records")},
                                 option=orjson.OPT_SERIALIZE_NUMPY), frame

    def _observe(self, status: int, seconds: float, scored) -> None:
        """The request in the metrics: outcome by status, latency, and the answer's labels and P(V)."""
        from arritmias.serving.metrics import observe

        outcome = "ok" if status < 400 else "bad_request" if status < 500 else "error"
        labels, prob = (scored["label"].to_numpy(), scored["prob_v"].to_numpy()) if scored is not None else (None, None)
        observe(self.version, "champion", outcome, seconds, labels, prob)

    @staticmethod
    async def _respond(send, status: int, body: bytes, content_type: bytes = b"application/json",
                       version: list | None = None) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type),
                                (b"content-length", str(len(body)).encode())] + (version or [])})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _clean(send, version: list | None = None):
        """A ``send`` that rewrites error responses: 5xx to one line, no ``stack_trace`` in any error, and a JSON
        body for every error (MLflow answers some, e.g. an unsupported content type, in plain text); ``version``
        headers go on every answer."""
        state = {"status": 200, "headers": [], "chunks": []}

        async def wrapped(message):
            if message["type"] == "http.response.start":
                state["status"], state["headers"] = message["status"], message.get("headers", [])
                if state["status"] < 400:
                    return await send({**message, "headers": list(state["headers"]) + (version or [])})
                return None
            if message["type"] != "http.response.body" or state["status"] < 400:
                return await send(message)
            state["chunks"].append(message.get("body", b""))
            if message.get("more_body", False):
                return None
            status, body = state["status"], b"".join(state["chunks"])
            if status >= 500:
                _log.error("server error %s: %s", status, body[:2000])
                status, body = _error(500, "internal error; the server log has the details", "INTERNAL_ERROR")
            else:
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = None
                code = "NOT_FOUND" if status == 404 else "BAD_REQUEST"
                if not isinstance(payload, dict):
                    payload = {"message": body.decode("utf-8", "replace")}
                if "detail" in payload and "message" not in payload:  # FastAPI's own errors
                    payload["message"] = str(payload.pop("detail"))
                payload.setdefault("error_code", code)
                if "stack_trace" in payload:
                    _log.warning("error response with a stack trace: %s", str(payload["stack_trace"])[-2000:])
                    payload.pop("stack_trace")
                payload["message"] = one_line(str(payload.get("message", "")))
                body = json.dumps(payload).encode()
            headers = [(k, v) for k, v in state["headers"] if k.lower() not in (b"content-length", b"content-type")]
            await send({"type": "http.response.start", "status": status,
                        "headers": headers + [(b"content-type", b"application/json"),
                                              (b"content-length", str(len(body)).encode())] + (version or [])})
            await send({"type": "http.response.body", "body": body})
            return None

        return wrapped


def build_app():
    """MLflow's scoring app for the model at MLflow's model-path variable (loaded as MLflow's own ``app`` module
    loads it), behind the guard."""
    from mlflow.pyfunc import scoring_server

    model = scoring_server.load_model_with_mlflow_config(os.environ[scoring_server._SERVER_MODEL_PATH])
    return RequestGuard(scoring_server.init(model), int(os.environ.get(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)), model)


def __getattr__(name: str):
    # ``uvicorn arritmias.serving.guard:app`` imports this module in each worker; the model loads only then.
    if name == "app":
        return build_app()
    raise AttributeError(name)
