"""Benchmark: build all DS1+DS2 beats from the raw WFDB files, and load them back from the cache.

Targets (issue 2): build <= 6 s, cached load <= 0.5 s on the 2-core CI machine. For reference it also times
the plain approach (a serial loop of wfdb reads and a Python loop cutting each window).

    python benchmarks/bench_dataset.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import wfdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.data.beats import AAMI_CLASSES, DS1, DS2, build_beats  # noqa: E402
from arritmias.data.records import resolve_data_dir  # noqa: E402
from benchmarks.common import timed, write_results  # noqa: E402

BUILD_TARGET_S, LOAD_TARGET_S = 6.0, 0.5


def plain_loop(data_dir: Path) -> int:
    """The straightforward script: read each record with wfdb, cut windows one beat at a time."""
    n = 0
    for name in DS1 + DS2:
        rec = wfdb.rdrecord(str(data_dir / name))
        ann = wfdb.rdann(str(data_dir / name), "atr")
        sig = rec.p_signal[:, rec.sig_name.index("MLII")]
        windows = []
        for s, sym in zip(ann.sample, ann.symbol):
            if sym in AAMI_CLASSES and 180 <= s <= len(sig) - 180:
                windows.append(sig[s - 180: s + 180])
        n += len(np.array(windows))
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    records = DS1 + DS2
    build_s, build_all, beats = timed(lambda: build_beats(data_dir, records, progress=False), 3)
    with tempfile.TemporaryDirectory() as cache_dir:
        build_beats(data_dir, records, cache_dir=Path(cache_dir), progress=False)
        load_s, load_all, _ = timed(lambda: build_beats(data_dir, records, cache_dir=Path(cache_dir),
                                                        progress=False), 5)
    plain_s, _, _ = timed(lambda: plain_loop(data_dir), 1)
    figures = {
        "records": len(records), "beats": len(beats), "beats_per_class": beats.counts(),
        "dropped_at_edges": beats.dropped_counts(),
        "build_s": round(build_s, 3), "build_runs_s": [round(t, 3) for t in build_all],
        "build_target_s": BUILD_TARGET_S, "build_meets_target": build_s <= BUILD_TARGET_S,
        "cached_load_s": round(load_s, 3), "cached_load_runs_s": [round(t, 3) for t in load_all],
        "cached_load_target_s": LOAD_TARGET_S, "cached_load_meets_target": load_s <= LOAD_TARGET_S,
        "plain_wfdb_loop_s": round(plain_s, 3),
    }
    path = write_results("dataset", figures)
    print(f"DS1+DS2: {len(beats)} beats from {len(records)} records {beats.counts()}")
    print(f"build from raw files : {build_s:6.2f} s (median of 3; target <= {BUILD_TARGET_S} s)")
    print(f"load from cache      : {load_s:6.3f} s (median of 5; target <= {LOAD_TARGET_S} s)")
    print(f"plain wfdb loop      : {plain_s:6.2f} s (reference)")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
