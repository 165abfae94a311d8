"""Drift while serving: the last beats' signal features against the training beats', as one score per feature.

Training writes the reference into the model (:mod:`arritmias.model.drift_reference`: the training beats' deciles
of each per-beat feature and the share of them in each decile bin). While serving, each scored beat's features are binned against those deciles into a rolling
window of the last ``window`` beats, and the population stability index (PSI) of the window against the
training shares is published as the
gauge ``arritmias_feature_drift{feature}``: ~0.01 when the incoming beats come from the training patients, up to
~1.0 between disjoint halves of them, several units when a lead, a gain or the noise has changed; the alert fires
above 2 (``monitoring/prometheus/alerts.yml``, where the DS1 measurements behind it are written).

The work happens off the response path: :meth:`LiveDrift.add` only queues the request's arrays; a background
thread computes, once a second, the features of the latest queued beats, at most a quarter of the window (500 of
2,000): under heavy traffic the window turns over in 4 s, and the thread's cost stays ~10 ms a second however
many beats arrive (featurising every beat of 1,000-beat requests took a fifth of a core and 20 % of the
throughput). The weekly Evidently job stays the detailed report (:mod:`arritmias.drift`, `arritmias drift`).
"""

from __future__ import annotations

import threading

import numpy as np

from arritmias.model.drift_reference import bin_of, psi
from arritmias.signal.measures import beat_features

class LiveDrift:
    """Rolling PSI per feature over the last ``window`` beats, updated by a background thread every
    ``every_s`` seconds; ``on_scores(dict)`` receives the scores (the metrics' gauge)."""

    def __init__(self, ref: dict, fs: float, window: int = 2000, every_s: float = 1.0, on_scores=None):
        self.edges = {k: np.asarray(v["edges"], np.float64) for k, v in ref.items()}
        self.expected = {k: np.asarray(v["shares"], np.float64) for k, v in ref.items()}
        self.fs, self.window, self.every_s, self.on_scores = float(fs), int(window), float(every_s), on_scores
        self.bins = {k: np.full(self.window, -1, np.int8) for k in self.edges}  # -1: not filled yet
        self.seen = 0
        self.per_update = max(1, self.window // 4)  # beats featurised per update, the latest ones
        self.scores: dict[str, float] = {}
        self._queue: list[tuple[np.ndarray, np.ndarray]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-drift", daemon=True)
        self._thread.start()

    def add(self, windows: np.ndarray, rr: np.ndarray) -> None:
        """Queue a request's raw windows (n, win) in mV and RR features (n, 3); cheap."""
        with self._lock:
            self._queue.append((windows, rr))
            while len(self._queue) > 1 and sum(len(r) for _, r in self._queue[1:]) >= self.per_update:
                self._queue.pop(0)  # older than what the next update will featurise

    def update(self) -> dict[str, float]:
        """Bin everything queued into the window and recompute the scores (the background thread calls this)."""
        with self._lock:
            queued, self._queue = self._queue, []
        if not queued:
            return self.scores
        windows = np.concatenate([w for w, _ in queued])[-self.per_update:]
        rr = np.concatenate([r for _, r in queued])[-self.per_update:]
        table = beat_features(windows, rr, self.fs)
        n = len(table)
        slots = (self.seen + np.arange(n)) % self.window
        for name, edges in self.edges.items():
            self.bins[name][slots] = bin_of(edges, table[name].to_numpy())
        self.seen += n
        self.scores = {name: round(psi(np.bincount(b[b >= 0], minlength=10), self.expected[name]), 4)
                       for name, b in self.bins.items()}
        if self.on_scores is not None:
            self.on_scores(self.scores)
        return self.scores

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.update()
            except Exception:  # noqa: BLE001  monitoring must never stop serving
                import logging

                logging.getLogger("arritmias.serving.live_drift").exception("live drift update failed")
