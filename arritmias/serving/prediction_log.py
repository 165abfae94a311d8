"""The prediction log: every served decision appended to a Parquet dataset partitioned by hour.

Rows are buffered in memory and written by a background thread (never on a response's path) every
``flush_every_s`` seconds, as one new file per flush: ``<dir>/hour=YYYY-MM-DDTHH/part-<writer>-<n>.parquet``.
Each file is written under a temporary name and renamed into place, so a reader (``arritmias ab-report``, or
pandas / Spark reading the hive-partitioned folder) never sees half a file; :meth:`PredictionLog.close` writes
what is left, so a clean shutdown (SIGTERM) loses nothing.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from arritmias.util.atomic import write_atomic

# One row per beat and arm: which request, when, for whom, which model, what it said and how fast.
COLUMNS = {
    "request_id": "string",      # the id the response carried ("request_id")
    "beat": "int32",             # the beat's position in its request
    "time_utc": "datetime64[ns, UTC]",  # when the request arrived
    "subject": "string",         # the request's subject key ("" when it sent none)
    "arm": "string",             # champion, challenger or shadow
    "model_version": "int32",    # the registered version that decided
    "prob_v": "float32",         # P(V)
    "label": "string",           # N, V or Q (not a beat / unclassifiable)
    "ruleguard_changed": "bool",
    "context_used": "bool",
    "latency_ms": "float32",     # the arm's scoring time for the request (the shadow's: for its batch)
    "sample": "Int64",           # the beat's sample in its recording, when the request sent one (else null)
}


class PredictionLog:
    """Appends decision rows under ``folder``; thread-safe; one instance per serving process."""

    def __init__(self, folder: Path, flush_every_s: float = 1.0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flush_every_s = float(flush_every_s)
        self._rows: list[dict] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._writer = uuid.uuid4().hex[:12]
        self._n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, rows: dict) -> None:
        """Queue rows given as columns (see ``COLUMNS``; equal lengths, one entry per beat). Cheap: the table is
        built by the writer, once per flush, not on the caller's (a response's) path."""
        with self._lock:
            self._rows.append(rows)

    def flush(self) -> int:
        """Write the queued rows (one file per hour they span); returns how many were written."""
        with self._write_lock:
            with self._lock:
                queued, self._rows = self._rows, []
            if not queued:
                return 0
            table = pd.DataFrame({name: pd.Series(np.concatenate([np.asarray(r[name], object if dtype in
                                                                             ("string", "Int64") else None)
                                                                  for r in queued])).astype(dtype)
                                  for name, dtype in COLUMNS.items()})
            hours = table["time_utc"].dt.strftime("%Y-%m-%dT%H")
            parts = list(table.groupby(hours, sort=True))
            for i, (hour, part) in enumerate(parts):
                try:
                    self._write(hour, part)
                except Exception:
                    with self._lock:  # what was not written goes back to the queue for the next flush
                        self._rows[:0] = [p.to_dict("list") for _, p in parts[i:]]
                    raise
            return len(table)

    def _write(self, hour: str, part: pd.DataFrame) -> None:
        folder = self.folder / f"hour={hour}"
        folder.mkdir(parents=True, exist_ok=True)
        self._n += 1
        # Readers see the whole file or none of it.
        write_atomic(folder / f"part-{self._writer}-{self._n:06d}.parquet",
                     lambda tmp: part.to_parquet(tmp, index=False))

    def close(self) -> int:
        """Stop the background writer and write what is left."""
        self._stop.set()
        self._thread.join(timeout=30)
        return self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_every_s):
            try:
                self.flush()
            except Exception:  # noqa: BLE001  a full disk must not kill serving; the rows stay queued
                import logging

                logging.getLogger("arritmias.serving.prediction_log").exception("prediction log flush failed")
                time.sleep(self.flush_every_s)


def read_log(folder: Path) -> pd.DataFrame:
    """Every logged row under ``folder`` (all hours), in ``COLUMNS`` order; empty frame when there is none."""
    files = sorted(Path(folder).glob("hour=*/part-*.parquet"))
    if not files:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in COLUMNS.items()})
    table = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return table[list(COLUMNS)]


def now_utc() -> pd.Timestamp:
    """The time a row's ``time_utc`` holds: now, in UTC."""
    return pd.Timestamp.now(tz="UTC")
