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
    """What ran the benchmark: speed figures differ ~3x between the CPUs this project's machines have had (an AVX2
    EPYC at 2 GHz against a newer core with AVX-512), so each result names its CPU and vector units."""
    cpu, vectors = platform.processor() or platform.machine(), []
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags"))
        vectors = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
            "processor": cpu, "vector_units": vectors}


def write_results(name: str, figures: dict) -> Path:
    """Write ``figures`` with the date and machine to ``benchmarks/results/<name>.json`` (atomically)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    from arritmias.util.atomic import write_text_atomic

    payload = {"benchmark": name, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), **figures}
    return write_text_atomic(RESULTS_DIR / f"{name}.json", json.dumps(payload, indent=2) + "\n")


def shrunk_model(data_dir: Path, store: str) -> str:
    """A shrunk training (2 DS1 records, 2 folds, 1 epoch) of the default architecture; its ``runs:/`` URI. For
    speed benchmarks: speed depends on the architecture, not on how long it trained."""
    from arritmias.config import TrainConfig
    from arritmias.training.train import train

    cfg = TrainConfig(train_records=("208", "119"), cv_folds=2, test_records=("233",), epochs_max=1)
    result = train(cfg, data_dir=data_dir, tracking=store, register=False, progress=False)
    return f"runs:/{result.run_id}/model"


def quick_model(data_dir: Path, store: str) -> str:
    """A model of the default architecture trained for 2 epochs into ``store``: speed benchmarks depend on the
    architecture, not on how long it trained. Returns its ``runs:/`` URI."""
    from arritmias.config import TrainConfig
    from arritmias.training.train import train

    result = train(TrainConfig(epochs_max=2), data_dir=data_dir, tracking=store, register=False, progress=False)
    return f"runs:/{result.run_id}/model"


def registered_quick_models(data_dir: Path, store: str, copies: int = 1) -> None:
    """:func:`quick_model` registered ``copies`` times in ``store`` (versions 1..copies, same weights: what serving
    benchmarks need), version 1 @production."""
    import mlflow

    from arritmias.tracking import registry, runs

    uri = quick_model(data_dir, store)
    runs.use_tracking(store)
    for _ in range(copies):
        mlflow.register_model(uri, registry.MODEL_NAME)
    registry.promote(1)


def cached_beats(data_dir: Path, records: tuple[str, ...]):
    """All annotated beats of ``records`` (lead 0, 360-sample windows at 360 Hz), from the project's dataset
    cache."""
    from arritmias.data.beats import build_beats
    from arritmias.data.cache import default_cache_dir

    return build_beats(data_dir, records, 0, 360, 360.0, default_cache_dir(), progress=False)
