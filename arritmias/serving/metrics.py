"""Prometheus metrics of the serving paths, at ``GET /metrics`` (the Prometheus client library's exposition).

Both servers record through :func:`observe`: ``arritmias serve`` (MLflow's app behind the request guard, several
uvicorn worker processes: the client library's multiprocess mode, in the folder ``serve_env`` creates) and
``serve --engine ray`` (its single ingress replica). Labels: ``model_version`` (the registered version, "" when
the URI names none) and ``arm`` (champion, challenger, shadow). What the dashboards and alert rules read
(``monitoring/grafana``, ``monitoring/prometheus``):

* ``arritmias_requests_total{outcome}`` — ok, bad_request (a 4xx: the client's fault) or error (a 5xx);
* ``arritmias_beats_total{label}`` — beats scored, N, V or Q (the V rate is a ratio of two rates);
* ``arritmias_request_seconds`` — latency histogram of ``/invocations``;
* ``arritmias_prob_v`` — histogram of P(V) of the scored beats;
* ``arritmias_shadow_disagreements_total`` / ``arritmias_shadow_beats_total`` — shadow vs the answer given;
* ``arritmias_model_training_v_rate`` — the V share of the model's training beats;
* ``arritmias_feature_drift{feature}`` — live drift (PSI) of each signal feature (:mod:`arritmias.serving.live_drift`).
"""

from __future__ import annotations

import os

import numpy as np

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # the client library's own variable
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROB_BUCKETS = tuple(np.round(np.arange(0.1, 1.0, 0.1), 1)) + (1.0,)
_METRICS = None


def _metrics():
    global _METRICS
    if _METRICS is None:
        from prometheus_client import Counter, Gauge, Histogram

        labels = ["model_version", "arm"]
        _METRICS = {
            "requests": Counter("arritmias_requests", "Requests to /invocations by outcome (ok, bad_request, "
                                "error)", labels + ["outcome"]),
            "beats": Counter("arritmias_beats", "Beats scored, by decided label (N, V or Q)", labels + ["label"]),
            "latency": Histogram("arritmias_request_seconds", "Time to answer /invocations (s)", labels,
                                 buckets=LATENCY_BUCKETS),
            "prob": Histogram("arritmias_prob_v", "P(V) of scored beats", labels, buckets=PROB_BUCKETS),
            "disagree": Counter("arritmias_shadow_disagreements", "Beats the shadow labelled differently from "
                                "the answer given", ["model_version"]),
            "shadow_beats": Counter("arritmias_shadow_beats", "Beats the shadow scored", ["model_version"]),
            "drift": Gauge("arritmias_feature_drift", "Live PSI of a signal feature over the last beats against "
                           "the model's training beats", ["model_version", "feature"], multiprocess_mode="livemax"),
            "training_v_rate": Gauge("arritmias_model_training_v_rate", "Share of V among the N and V beats the "
                                     "model was trained on", ["model_version"], multiprocess_mode="max"),
        }
    return _METRICS


def _label(version) -> str:
    """The ``model_version`` label: the version number, "" when the served URI names none."""
    return "" if version is None else str(version)


def observe(version, arm: str, outcome: str | None, seconds: float | None = None, labels=None, prob=None) -> None:
    """Record one request: its outcome, latency and, when it was scored, each beat's label and P(V). ``outcome``
    None records the beats only (the shadow's, which answer no request)."""
    m, v = _metrics(), _label(version)
    if outcome is not None:
        m["requests"].labels(v, arm, outcome).inc()
    if seconds is not None:
        m["latency"].labels(v, arm).observe(seconds)
    if labels is not None:
        labels = np.asarray(labels)
        n_v = int((labels == "V").sum())
        m["beats"].labels(v, arm, "V").inc(n_v)
        m["beats"].labels(v, arm, "N").inc(len(labels) - n_v)
        _observe_many(m["prob"].labels(v, arm), np.asarray(prob, np.float64))


def _observe_many(hist, values: np.ndarray) -> None:
    """``hist.observe`` for every value, as one increment per bucket: the client library observes one value per
    call (~3 us each in multiprocess mode, 12 ms for a 4,096-beat request). Its histogram child keeps
    non-cumulative ``_buckets`` against ``_upper_bounds`` and a ``_sum``; where those are absent (another client
    version), the one-by-one loop."""
    if not all(hasattr(hist, a) for a in ("_buckets", "_upper_bounds", "_sum")):
        for x in values:
            hist.observe(float(x))
        return
    index = np.searchsorted(np.asarray(hist._upper_bounds, np.float64), values, side="left")  # x <= bound
    for i, count in zip(*np.unique(index, return_counts=True)):
        hist._buckets[int(i)].inc(int(count))
    hist._sum.inc(float(values.sum()))


def observe_shadow(version, served_labels, shadow_labels) -> None:
    """Record the shadow's beats and how many it labelled differently from the answer given."""
    m, v = _metrics(), _label(version)
    m["shadow_beats"].labels(v).inc(len(shadow_labels))
    m["disagree"].labels(v).inc(int((np.asarray(served_labels) != np.asarray(shadow_labels)).sum()))


def set_drift(version, scores: dict[str, float]) -> None:
    """Publish the live drift score of each feature (:class:`arritmias.serving.live_drift.LiveDrift`'s callback)."""
    gauge, v = _metrics()["drift"], _label(version)
    for feature, score in scores.items():
        gauge.labels(v, feature).set(score)


def live_drift_for(reference: dict | None, fs: float, version, window: int | None):
    """A running :class:`~arritmias.serving.live_drift.LiveDrift` of beats at ``fs`` Hz against a model's drift
    ``reference``, publishing to the gauge; None when the model carries no reference (trained before live drift)
    or ``window`` is not set (not a server)."""
    if not window or reference is None:
        return None
    from arritmias.serving.live_drift import LiveDrift

    return LiveDrift(reference, fs, window, on_scores=lambda s: set_drift(version, s))


def set_training_v_rate(version, rate: float | None) -> None:
    """Publish the V share of the model's training beats (what the V-rate alert compares against)."""
    if rate is not None:
        _metrics()["training_v_rate"].labels(_label(version)).set(rate)


def training_v_rate(run_id: str | None) -> float | None:
    """V / (N + V) of the training beats of run ``run_id`` (its ``train_V_total`` and ``train_N_total``)."""
    if not run_id:
        return None
    try:
        from arritmias.tracking.runs import run_metrics

        m = run_metrics(run_id)
        return m["train_V_total"] / (m["train_V_total"] + m["train_N_total"])
    except Exception:  # noqa: BLE001  an older run or an unreachable store: the alert then has no reference
        return None


def exposition() -> tuple[bytes, str]:
    """``(body, content type)`` for ``GET /metrics``: every worker's metrics in multiprocess mode."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _metrics()
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
