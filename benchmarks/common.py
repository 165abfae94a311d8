"""Helpers shared by the benchmark scripts: the data folder, timing, and the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def timed(fn, repeats: int) -> tuple[float, list[float], object]:
    """Run ``fn()`` ``repeats`` times; return (median seconds, all seconds, last result)."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine()}


def write_results(name: str, figures: dict) -> Path:
    """Write ``figures`` with the date and machine to ``benchmarks/results/<name>.json`` (atomically)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    from arritmias.atomic import write_text_atomic

    payload = {"benchmark": name, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), **figures}
    return write_text_atomic(RESULTS_DIR / f"{name}.json", json.dumps(payload, indent=2) + "\n")


def quick_model(data_dir: Path, store: str) -> str:
    """A model of the default architecture trained for 2 epochs into ``store``: speed benchmarks depend on the
    architecture, not on how long it trained. Returns its ``runs:/`` URI."""
    from arritmias.config import TrainConfig
    from arritmias.training import train

    result = train(TrainConfig(epochs_max=2), data_dir=data_dir, tracking=store, register=False, progress=False)
    return f"runs:/{result.run_id}/model"


def registered_quick_models(data_dir: Path, store: str, copies: int = 1) -> None:
    """:func:`quick_model` registered ``copies`` times in ``store`` (versions 1..copies, same weights: what serving
    benchmarks need), version 1 @production."""
    import mlflow

    from arritmias import registry

    uri = quick_model(data_dir, store)
    registry.use_tracking(store)
    for _ in range(copies):
        mlflow.register_model(uri, registry.MODEL_NAME)
    registry.promote(1)


def cached_beats(data_dir: Path, records: tuple[str, ...]):
    """All annotated beats of ``records`` (lead 0, 360-sample windows at 360 Hz), from the project's dataset
    cache."""
    from arritmias.beats import build_beats
    from arritmias.cache import default_cache_dir

    return build_beats(data_dir, records, 0, 360, 360.0, default_cache_dir(), progress=False)
