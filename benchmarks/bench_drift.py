"""Benchmark: drift detection rates on real shifts, false alarms on same-patient data, and speed.

Reference: beat features of the first half of every DS1 record. Control (must not alarm): the second halves.
Shifts applied to the second halves (so only the acquisition changes, not the patients): gain x2, NSTDB muscle
artefact and baseline wander at 6 dB (nst's SNR), the other lead passed as MLII, a 250 Hz signal declared at
360 Hz. Also DS2 with NSTDB noise at 6 dB, and clean DS2 for context (other patients drift too).
Rates are over ``--batches`` random batches of ``--batch-size`` beats. Speed target (issue 5): 50,000 current
against 50,000 reference beats in <= 20 s.

    python benchmarks/bench_drift.py [--batches 50] [--batch-size 1000] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.analysis.recording import read_signal  # noqa: E402
from arritmias.data.beats import DS1, DS2  # noqa: E402
from arritmias.drift.features import signal_features  # noqa: E402
from arritmias.data.records import resolve_data_dir  # noqa: E402
from benchmarks.common import write_results  # noqa: E402
from monitoring import scenarios as sc  # noqa: E402
from arritmias.drift.check import ECGDriftDetector  # noqa: E402

SPEED_TARGET_S = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--data-dir")
    parser.add_argument("--nstdb", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "nstdb"))
    args = parser.parse_args()
    data, nstdb = resolve_data_dir(args.data_dir), Path(args.nstdb)

    halves = {r: sc.halves(read_signal(data / r)) for r in DS1}

    def feats(signals):
        return pd.concat([signal_features(s) for s in signals], ignore_index=True)

    reference = feats(h[0] for h in halves.values())
    second = [h[1] for h in halves.values()]
    currents = {
        "same_patients_second_half": feats(second),
        "gain_x2": feats(sc.with_gain(s, 2.0) for s in second),
        "nstdb_ma_6dB": feats(sc.with_nstdb_noise(s, nstdb, "ma", 6.0) for s in second),
        "nstdb_bw_6dB": feats(sc.with_nstdb_noise(s, nstdb, "bw", 6.0) for s in second),
        "other_lead_as_MLII": feats(sc.halves(sc.other_lead(data, r))[1] for r in DS1),
        "250Hz_not_resampled": feats(sc.not_resampled(s) for s in second),
        "DS2_nstdb_ma_6dB": feats(sc.with_nstdb_noise(read_signal(data / r), nstdb, "ma", 6.0) for r in DS2),
        "DS2_clean": feats(read_signal(data / r) for r in DS2),
    }
    detector = ECGDriftDetector()
    detector.load_reference_data(reference)
    rates = {}
    for name, frame in currents.items():
        hits = sum(detector.detect_drift(frame.sample(args.batch_size, random_state=b))["drift_detected"]
                   for b in range(args.batches))
        rates[name] = round(hits / args.batches, 3)
        print(f"{name:<28} drift reported in {hits}/{args.batches} batches of {args.batch_size} beats", flush=True)

    big_ref = reference.sample(50_000, replace=True, random_state=1)
    big_cur = currents["same_patients_second_half"].sample(50_000, replace=True, random_state=2)
    with tempfile.TemporaryDirectory() as tmp:
        timed_detector = ECGDriftDetector(out_dir=tmp)
        t0 = time.perf_counter()
        timed_detector.load_reference_data(big_ref)
        timed_detector.detect_drift(big_cur)
        speed = time.perf_counter() - t0
    figures = {
        "reference_beats": len(reference), "batches": args.batches, "batch_size": args.batch_size,
        "method": detector.method, "threshold": detector.threshold, "drift_share": detector.drift_share,
        "false_alarm_rate": rates["same_patients_second_half"],
        "detection_rates": {k: v for k, v in rates.items() if k != "same_patients_second_half"},
        "seconds_50k_vs_50k_with_reports": round(speed, 2), "speed_target_s": SPEED_TARGET_S,
        "speed_met": speed <= SPEED_TARGET_S,
    }
    path = write_results("drift", figures)
    print(f"false-alarm rate (same patients): {figures['false_alarm_rate']:.3f}")
    print(f"50,000 vs 50,000 beats, HTML and JSON written: {speed:.1f} s (target {SPEED_TARGET_S} s)")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
