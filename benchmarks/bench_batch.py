"""Benchmark: batch scoring on Ray — recordings/s and beats/s with 1 and 2 CPU cores, and a projection.

Issue 8 asks for recordings/s and beats/s with 1 and 2 workers on this machine (the scaling ratio), and a written
projection, from the measured per-beat and per-record costs, of how many nodes score 10,000 24-hour recordings
in one hour.

Method. The job is pinned to 1 core, then to 2 (CPU affinity, inherited by every Ray process), and
``batch_score`` scores 96 recordings of 30 min (the 48 MIT-BIH records plus a renamed copy of each). Ray's
start-up and the actors' model loading are a fixed cost per job, which varies by tens of seconds from run to run
on this small machine; the steady throughput an archive-sized job sees is measured inside each run, from the
time the first quarter of the recordings was done to the end. Whole-job figures (start-up included) are kept
too. A 24-hour Holter-sized recording (the first lead of all 48 records end to end, 31 million samples) is
scored on its own to check that a recording of that size goes through and to time it.

    python benchmarks/bench_batch.py [--model-uri URI] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.tracking import runs  # noqa: E402
from arritmias.analysis.batch import batch_score  # noqa: E402
from arritmias.data.beats import DS1, DS2, PACED  # noqa: E402
from arritmias.data.records import resolve_data_dir  # noqa: E402
from benchmarks.common import shrunk_model, write_results  # noqa: E402

ARCHIVE = 10_000  # 24-hour recordings
HOURS = 1.0


def holter_24h(data_dir: Path, out: Path) -> str:
    """One WFDB record of 24 h at 360 Hz: the first lead of all 48 MIT-BIH records, end to end."""
    import wfdb

    leads = [wfdb.rdrecord(str(data_dir / r), channels=[0]).p_signal[:, 0] for r in sorted(DS1 + DS2 + PACED)]
    signal = np.concatenate(leads)[:, None]
    wfdb.wrsamp("holter24", fs=360, units=["mV"], sig_name=["MLII"], p_signal=signal, fmt=["16"],
                adc_gain=[200.0], baseline=[0], write_dir=str(out))
    return str(out / "holter24")


def renamed_copies(data_dir: Path, names: list[str], out: Path) -> list[str]:
    """Each record written again under the name ``<name>c`` (same signal, same header fields)."""
    import wfdb

    out.mkdir()
    for name in names:
        rec = wfdb.rdrecord(str(data_dir / name), physical=False)
        wfdb.wrsamp(f"{name}c", fs=rec.fs, units=rec.units, sig_name=rec.sig_name, d_signal=rec.d_signal,
                    fmt=["16"] * rec.n_sig, adc_gain=rec.adc_gain, baseline=rec.baseline, write_dir=str(out))
    return [str(out / f"{name}c") for name in names]


def run(inputs: list[str], uri: str, out: Path, cores: set[int], workers: int) -> dict:
    os.sched_setaffinity(0, cores)  # Ray's processes inherit it
    t0 = time.perf_counter()
    result = batch_score(inputs, uri, out, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    if result.errors:
        raise SystemExit(f"benchmark inputs failed: {result.errors}")
    figures = {"recordings": result.scored, "beats": result.beats, "wall_s": round(wall, 2),
               "first_result_s": round(result.timeline[0][0], 1)}
    if len(result.timeline) >= 8:  # steady state: from a quarter of the recordings done to the last one
        k = len(result.timeline) // 4
        (t_a, b_a), (t_b, b_b) = result.timeline[k - 1], result.timeline[-1]
        figures.update({"recordings_per_s": round((len(result.timeline) - k) / (t_b - t_a), 2),
                        "beats_per_s": round((b_b - b_a) / (t_b - t_a))})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-uri")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    all_cores = os.sched_getaffinity(0)
    if len(all_cores) < 2:
        raise SystemExit("this benchmark compares 1 and 2 cores: it needs a machine with at least 2")
    two = set(sorted(all_cores)[:2])
    names = sorted(DS1 + DS2 + PACED)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        large = [str(data_dir / r) for r in names] + renamed_copies(data_dir, names, tmp / "copies")
        store = f"sqlite:///{tmp / 'mlflow.db'}"
        runs.use_tracking(store)
        uri = args.model_uri or shrunk_model(data_dir, store)
        configs = {"1 core, 1 worker": ({min(two)}, 1), "2 cores, 1 worker": (two, 1),
                   "2 cores, 2 workers": (two, 2)}
        figures: dict = {"configs": {}}
        for label, (cores, workers) in configs.items():
            figures["configs"][label] = run(large, uri, tmp / label, cores, workers)
            c = figures["configs"][label]
            print(f"{label}: steady {c['recordings_per_s']} recordings/s, {c['beats_per_s']} beats/s; whole job "
                  f"{c['wall_s']} s ({c['first_result_s']} s to the first result)")
        one = figures["configs"]["1 core, 1 worker"]
        best_label = max(list(configs)[1:], key=lambda k: figures["configs"][k]["beats_per_s"])
        best = figures["configs"][best_label]
        ratio = best["beats_per_s"] / one["beats_per_s"]
        ratio_wall = one["wall_s"] / best["wall_s"]
        holter = run([holter_24h(data_dir, tmp)], uri, tmp / "holter", two, configs[best_label][1])
        os.sched_setaffinity(0, all_cores)

    # Projection: core-seconds per 24-h recording from the 1-core steady cost per beat and the beats of the 24-h
    # recording, spread over nodes at the parallel efficiency measured here from 1 to 2 cores.
    beats_24h = holter["beats"]
    core_s_per_recording = beats_24h / one["beats_per_s"]
    efficiency = ratio / 2
    core_hours = ARCHIVE * core_s_per_recording / 3600
    projection = {}
    for cores_per_node in (2, 16):
        nodes = math.ceil(core_hours / (HOURS * cores_per_node * efficiency))
        projection[f"nodes_of_{cores_per_node}_cores"] = nodes
    figures.update({
        "scaling_ratio_2_over_1_core": round(ratio, 2), "best_2_core_config": best_label,
        "scaling_ratio_2_over_1_core_whole_job": round(ratio_wall, 2),
        "holter_24h": {**holter, "cores": 2, "workers": configs[best_label][1]},
        "projection": {"recordings": ARCHIVE, "hours": HOURS, "beats_per_24h_recording": beats_24h,
                       "core_seconds_per_24h_recording": round(core_s_per_recording, 1),
                       "parallel_efficiency": round(efficiency, 2), "core_hours": round(core_hours, 1),
                       **projection},
    })
    path = write_results("batch", figures)
    print(f"scaling 1 -> 2 cores: x{ratio:.2f} steady, x{ratio_wall:.2f} whole 96-recording job ({best_label}); "
          f"24-h recording ({beats_24h} beats) in {holter['wall_s']} s including start-up")
    print(f"projection: {ARCHIVE} 24-h recordings in {HOURS:g} h need {core_hours:.0f} core-hours: "
          f"{projection['nodes_of_2_cores']} nodes of 2 cores or {projection['nodes_of_16_cores']} of 16 "
          f"(at {efficiency:.0%} parallel efficiency)")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
