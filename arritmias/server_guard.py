"""The served app: MLflow's own scoring app (what ``mlflow models serve`` runs) behind a request guard.

MLflow's server parses a whole body before the model sees it, so some faults never reach
:func:`arritmias.serving.parse_request`: a body of any size is read into memory (100,000 beats took 5.5 GB and a
504), a deeply nested JSON array overflows the parser's recursion (a 500), and errors raised outside the model
carry a stack trace with file paths. The guard, a plain ASGI middleware, answers those itself:

* a body over ``max_bytes`` gets a 413 with one line, checked from ``Content-Length`` and while receiving, so an
  oversized body is never held whole;
* JSON nested deeper than ``MAX_DEPTH`` gets a 400 (a valid request nests four levels);
* any 5xx becomes a one-line JSON error, a ``stack_trace`` field is dropped from any error (the traceback stays
  in the server's log), and a message is cut to its one line: MLflow prefixes the model's own refusal with a
  dump of the whole parsed request ("Failed to predict data '...'"), which for 10,000 beats is megabytes.

``uvicorn arritmias.server_guard:app`` serves the model whose local path is in MLflow's own environment variable,
as MLflow's ``app`` module does; ``arritmias serve`` sets it.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np

MAX_BYTES_ENV = "ARRITMIAS_MAX_REQUEST_BYTES"
# 32 MiB holds ~4,500 beats without context or ~2,200 with it, written with full float precision (~7 and ~15 kB a
# beat; fewer digits fit more): a 30-minute recording in one or two requests, while parsing stays within ~1 GB of
# server memory (benchmarks/bench_large_request.py: +832 MB for 2,196 beats with context).
DEFAULT_MAX_BYTES = 32 * 2**20
MAX_DEPTH = 32
_log = logging.getLogger("arritmias.server_guard")


def json_depth(body: bytes) -> int:
    """Deepest ``[``/``{`` nesting in ``body``, counted over the raw bytes (brackets inside strings count too,
    which can only overestimate: request bodies carry numbers, not text)."""
    raw = np.frombuffer(body, np.uint8)
    steps = (raw == ord("[")).astype(np.int32) + (raw == ord("{")) - (raw == ord("]")) - (raw == ord("}"))
    return int(np.cumsum(steps).max()) if len(steps) else 0


def one_line(message: str) -> str:
    """The model's own message without MLflow's "Failed to predict data '<the whole request>'" prefix, and the
    first line of anything else."""
    if message.startswith("Failed to predict data") and "\nError: " in message:
        message = message.split("\nError: ", 1)[1]
    return message.strip().splitlines()[0] if message.strip() else "bad request"


def _error(status: int, message: str, code: str) -> tuple[int, bytes]:
    return status, json.dumps({"error_code": code, "message": message}).encode()


class RequestGuard:
    """ASGI middleware: size and depth limits on ``/invocations``, clean error bodies everywhere."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BYTES):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"].rstrip("/") == "/invocations" and scope["method"] == "POST":
            body, refusal = await self._read(scope, receive)
            if refusal is not None:
                return await self._respond(send, *refusal)

            async def replay():
                return {"type": "http.request", "body": body, "more_body": False}

            receive = replay
        return await self.app(scope, receive, self._clean(send))

    async def _read(self, scope, receive) -> tuple[bytes, tuple[int, bytes] | None]:
        limit = f"the request limit is {self.max_bytes / 2**20:.0f} MiB (a beat is ~7 kB of JSON, ~15 kB with its " \
                "context): split the beats into several requests"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return b"", _error(413, f"body of {int(length):,} bytes refused: {limit}", "REQUEST_TOO_LARGE")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", _error(400, "the client disconnected before sending the whole body", "BAD_REQUEST")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return b"", _error(413, f"body over {self.max_bytes:,} bytes refused: {limit}", "REQUEST_TOO_LARGE")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if json_depth(body) > MAX_DEPTH:
            return body, _error(400, f"JSON nested deeper than {MAX_DEPTH} levels: a request is "
                                     '{"instances": [{"sig": [...], "rr": [...]}]}', "BAD_REQUEST")
        return body, None

    @staticmethod
    async def _respond(send, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _clean(send):
        """A ``send`` that rewrites error responses: 5xx to one line, and no ``stack_trace`` in any error."""
        state = {"status": 200, "headers": [], "chunks": []}

        async def wrapped(message):
            if message["type"] == "http.response.start":
                state["status"], state["headers"] = message["status"], message.get("headers", [])
                if state["status"] < 400:
                    return await send(message)
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
                if isinstance(payload, dict):
                    if "stack_trace" in payload:
                        _log.warning("error response with a stack trace: %s", str(payload["stack_trace"])[-2000:])
                        payload.pop("stack_trace")
                    payload["message"] = one_line(str(payload.get("message", "")))
                    body = json.dumps(payload).encode()
            headers = [(k, v) for k, v in state["headers"] if k.lower() not in (b"content-length", b"content-type")]
            await send({"type": "http.response.start", "status": status,
                        "headers": headers + [(b"content-type", b"application/json"),
                                              (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return None

        return wrapped


def build_app():
    """MLflow's scoring app for the model at MLflow's model-path variable, behind the guard."""
    from mlflow.pyfunc.scoring_server import app as mlflow_app

    return RequestGuard(mlflow_app.app, int(os.environ.get(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)))


def __getattr__(name: str):
    # ``uvicorn arritmias.server_guard:app`` imports this module in each worker; the model loads only then.
    if name == "app":
        return build_app()
    raise AttributeError(name)
