"""Benchmark: QRS detectors on DS1 (the training patients: where the detector is chosen), EC57 matching.

Per candidate: gross QRS Se / +P over DS1 (150 ms window, first 5 minutes excluded, ventricular flutter
episodes excluded as EC57 does), the false and missed beats of its worst records, and beats/s on one core (the
detector alone, the record already in memory). Candidates: this project's detector (arritmias.signal.qrs, the one
analysis uses), NeuroKit2's default (what analysis used before) and two more of its methods, WFDB's XQRS and
GQRS (wfdb-python), and sleepecg's C detector when it is installed (``pip install sleepecg``; not a project
dependency). Target: the chosen detector >= 50,000 beats/s per core.

    python benchmarks/bench_qrs.py [--records DS1] [--data-dir DIR] [--candidates ours,neurokit,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the figures say
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np  # noqa: E402

from arritmias.data.beats import parse_records, reference_beats  # noqa: E402
from arritmias.data.matching import figures, record_counts  # noqa: E402
from arritmias.data.records import read_recording, resolve_data_dir  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

TARGET_BEATS_PER_S = 50_000


def _neurokit(method: str):
    def detect(x: np.ndarray, fs: float) -> np.ndarray:
        import neurokit2 as nk

        clean = nk.ecg_clean(x, sampling_rate=int(fs), method="neurokit")
        _, info = nk.ecg_peaks(clean, sampling_rate=int(fs), method=method)
        return np.asarray(info["ECG_R_Peaks"], np.int64)
    return detect


def _ours(x, fs):
    from arritmias.signal.qrs import detect_qrs

    return detect_qrs(x, fs)


def _xqrs(x, fs):
    import wfdb.processing

    return np.asarray(wfdb.processing.xqrs_detect(x.astype(np.float64), fs, verbose=False), np.int64)


def _gqrs(x, fs):
    import wfdb.processing

    return np.asarray(wfdb.processing.gqrs_detect(x.astype(np.float64), fs=fs), np.int64)


def _sleepecg(x, fs):
    import sleepecg

    return np.asarray(sleepecg.detect_heartbeats(x.astype(np.float64), fs), np.int64)


CANDIDATES = {"ours": _ours, "neurokit": _neurokit("neurokit"), "pantompkins1985": _neurokit("pantompkins1985"),
              "kalidas2017": _neurokit("kalidas2017"), "xqrs": _xqrs, "gqrs": _gqrs, "sleepecg": _sleepecg}


def measure(detect, recordings) -> dict:
    counts, seconds, found = {}, 0.0, 0
    for rec, ref in recordings:
        t0 = time.perf_counter()
        peaks = detect(rec.signal, rec.fs)
        seconds += time.perf_counter() - t0
        found += len(peaks)
        counts[rec.name] = record_counts(ref.samples, ref.aami, peaks, np.zeros(len(peaks), bool), rec.fs,
                                         exclude=ref.unscored)
    totals = {k: sum(c[k] for c in counts.values()) for k in next(iter(counts.values()))}
    errors = {r: {"missed": c["No"] + c["Vo"], "false": c["On"] + c["Ov"]} for r, c in counts.items()}
    worst = dict(sorted(errors.items(), key=lambda kv: -(kv[1]["missed"] + kv[1]["false"]))[:4])
    g = figures(totals)
    return {"qrs_se": round(100 * g["qrs_se"], 2), "qrs_ppv": round(100 * g["qrs_ppv"], 2),
            "missed": totals["No"] + totals["Vo"], "false": totals["On"] + totals["Ov"],
            "beats_per_s_one_core": round(found / seconds), "worst_records": worst}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default="DS1")
    ap.add_argument("--data-dir")
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    args = ap.parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    recordings = []
    for name in parse_records(args.records):
        rec = read_recording(data_dir, name, fs=None)
        recordings.append((rec, reference_beats(rec)))
    results = {}
    for name in args.candidates.split(","):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results[name] = measure(CANDIDATES[name], recordings)
        except ImportError as exc:
            results[name] = {"skipped": f"not installed ({exc.name})"}
            print(f"{name:16s} skipped: not installed ({exc.name})", flush=True)
            continue
        r = results[name]
        print(f"{name:16s} QRS Se {r['qrs_se']:6.2f}  +P {r['qrs_ppv']:6.2f}  missed {r['missed']:5d}  "
              f"false {r['false']:5d}  {r['beats_per_s_one_core']:>8,} beats/s  worst {r['worst_records']}",
              flush=True)
    ours = results.get("ours", {})
    if "beats_per_s_one_core" in ours:
        print(f"ours: {ours['beats_per_s_one_core']:,} beats/s per core (target >= {TARGET_BEATS_PER_S:,})")
    write_results("qrs", {"records": args.records, "target_beats_per_s": TARGET_BEATS_PER_S, "candidates": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
