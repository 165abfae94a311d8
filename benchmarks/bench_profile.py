"""Benchmark: where the time of a 24-hour recording goes, stage by stage, in µs per beat on one core.

Issue "A 24-hour Holter in seconds" asks for a profile before any speed work: per stage (read, resample, QRS,
windows, context, network, decision, writing) for ``analyze`` of a 24-hour recording. ``batch-score`` runs the
same stages per recording (``analysis.find_beats`` then ``Detector.decide_recording``) inside a Ray actor, so its
per-beat profile is this one plus Ray's fixed costs (``bench_batch.py`` measures those).

Method. The process is pinned to one core (CPU affinity) and the network to one OpenVINO thread. The 24-hour
recording is the first lead of all 48 MIT-BIH records end to end (``bench_batch.holter_24h``: 31 million samples,
~110,000 beats). Each stage is timed by calling the functions ``analyze`` calls, in its order; the profile's
result is checked against ``analyze_signal``'s (same beats, same PVC count), so the stages are the real path.
Then the whole command, ``arritmias analyze`` in a fresh process on one core, is timed from process start to
files written, with its peak resident memory. The model is a shrunk training (speed depends on the
architecture, not on how long it trained) unless ``--model-uri`` names one; families are timed whatever the
model's family weight.

    python benchmarks/bench_profile.py [--model-uri URI] [--data-dir DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_batch import holter_24h  # noqa: E402
from benchmarks.common import write_results  # noqa: E402


# `arritmias …` with argv, printing the process's peak resident memory (kB, from /proc) to stderr as it exits.
PEAK_REPORTING_CLI = """
import atexit, re, sys
atexit.register(lambda: sys.stderr.write("\\nVmHWM_kB %s\\n" % re.search(r"VmHWM:\\s+(\\d+)",
                                         open("/proc/self/status").read()).group(1)))
from arritmias.cli import main
sys.exit(main(sys.argv[1:]))
"""


def shrunk_model(data_dir: Path, store: str) -> str:
    """A shrunk training (2 DS1 records, 2 folds, 1 epoch) of the default architecture; its ``runs:/`` URI."""
    from arritmias.config import TrainConfig
    from arritmias.training import train

    cfg = TrainConfig(train_records=("208", "119"), cv_folds=2, test_records=("233",), epochs_max=1)
    result = train(cfg, data_dir=data_dir, tracking=store, register=False, progress=False)
    return f"runs:/{result.run_id}/model"


def profile(record: str, detector, out: Path) -> tuple[dict, dict]:
    """Seconds per stage of one analysis of ``record`` (the path ``analyze`` takes) and the summary it made."""
    from arritmias import families
    from arritmias.analysis import (MIN_MEDIAN_TEMPLATE_CORR, QRS_HALF_S, Analysis, check_signal, detect_qrs,
                                    origin, read_signal, summarize_decisions, touches,
                                    unreadable_samples)
    from arritmias.analysis import FoundBeats, resample
    from arritmias.beats import record_context, rr_features, window_at
    from arritmias.context import template_correlation
    from arritmias.detector import context_mask
    from arritmias.report import write_outputs

    t: dict[str, float] = {}

    def stage(name, fn):
        t0 = time.perf_counter()
        value = fn()
        t[name] = t.get(name, 0.0) + time.perf_counter() - t0
        return value

    sig = stage("read", lambda: read_signal(record))
    invented = ~np.isfinite(sig.values)
    x = stage("check", lambda: check_signal(sig))
    x = stage("resample", lambda: resample(x, sig.fs, detector.fs))
    fs = detector.fs
    assert len(x) == len(invented), "the profile's recording is at the model's rate"
    bad = stage("unreadable", lambda: unreadable_samples(x, fs, invented))
    peaks = stage("qrs", lambda: detect_qrs(x, fs))
    rr = stage("rr", lambda: rr_features(peaks, fs))
    windows, kept = stage("windows", lambda: window_at(x, peaks, detector.win))
    windows, rr = stage("windows", lambda: (windows.astype(np.float32, copy=False), rr[kept]))
    context = stage("context", lambda: record_context(windows, rr))
    consistency = stage("consistency", lambda: float(np.median(template_correlation(windows, context, fs))))
    assert consistency >= MIN_MEDIAN_TEMPLATE_CORR
    samples = peaks[kept]
    half = int(round(QRS_HALF_S * fs))
    unreadable = touches(bad, samples - half, samples + half + 1)
    found = FoundBeats(x, fs, samples, windows, rr, context, int((~kept).sum()), unreadable,
                       round(float(bad.sum()) / fs, 1))
    ctx = context if detector.uses_context else None
    probs = stage("network", lambda: detector.predict(windows, rr, ctx))
    family = stage("families", lambda: detector.families(windows))

    def decide():
        p = families.smooth(probs, family, detector.rule.family_weight) if detector.rule.family_weight > 0 else probs
        thresholds = np.full(len(windows), detector.rule.threshold_recording if ctx is not None
                             else detector.rule.threshold_no_context, np.float32)
        return detector._decisions(windows, rr, p, thresholds, context_mask(len(windows), ctx, None))

    decisions = stage("decision", lambda: decide().excluding(unreadable))
    summary = stage("summary", lambda: summarize_decisions(decisions, samples, fs, found.duration_s)
                    | origin(sig, found))
    analysis = Analysis(sig.name, fs, sig.fs, samples, decisions, x, summary)
    stage("writing", lambda: write_outputs(analysis, out))
    return t, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", default=None, help="model to time (default: a shrunk training)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3, help="profiles taken; the median of each stage is kept")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, inherited by the analyze process

    import mlflow

    from arritmias import registry
    from arritmias.analysis import analyze_signal, read_signal
    from arritmias.detector import Detector
    from arritmias.records import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        tmp = Path(tmp)
        store = f"sqlite:///{tmp / 'mlflow.db'}"
        registry.use_tracking(store)
        uri = args.model_uri or shrunk_model(data_dir, store)
        model = mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp / "model"))
        detector = Detector.load(Path(model) / "artifacts" / "detector", threads=1)
        record = holter_24h(data_dir, tmp)

        runs = [profile(record, detector, tmp / f"out{i}") for i in range(args.repeats)]
        summary = runs[-1][1]
        reference = analyze_signal(read_signal(record), detector).summary
        assert reference["beats"] == summary["beats"] and reference["pvc_count"] == summary["pvc_count"], \
            "the profile took another path than analyze_signal"
        detections = summary["beats"] + summary.get("detections_not_beats", 0)
        seconds = {name: float(np.median([r[0][name] for r in runs])) for name in runs[0][0]}
        total = sum(seconds.values())

        # The whole command in a fresh process on this core: start-up, imports, model load, analysis, files.
        # Its peak memory is the process's own VmHWM, printed as it exits: getrusage's maxrss is no use here, as
        # Linux carries the parent's high-water mark (this process holds a day of data) into a child across exec.
        cmd = [sys.executable, "-c", PEAK_REPORTING_CLI, "analyze", record, "--model-uri", model, "--out",
               str(tmp / "cli")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        assert proc.returncode == 0, proc.stderr[-2000:]
        peak_mb = int(proc.stderr.rsplit("VmHWM_kB ", 1)[1].split()[0]) / 1024

    print(f"24-hour recording: {summary['duration_s'] / 3600 if 'duration_s' in summary else 24:.1f} h, "
          f"{detections:,} detections, {summary['beats']:,} beats; one core, median of {args.repeats}")
    print(f"{'stage':<12} {'s':>8} {'us/beat':>9} {'share':>7}")
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"{name:<12} {s:8.2f} {1e6 * s / detections:9.1f} {100 * s / total:6.1f} %")
    print(f"{'in process':<12} {total:8.2f} {1e6 * total / detections:9.1f}   ({detections / total:,.0f} beats/s)")
    print(f"arritmias analyze, process start to files written: {wall:.1f} s ({detections / wall:,.0f} beats/s), "
          f"peak RSS {peak_mb:,.0f} MB")
    path = write_results("profile", {
        "recording": "first lead of the 48 MIT-BIH records end to end (24 h at 360 Hz)",
        "detections": int(detections), "beats": int(summary["beats"]), "cores": 1, "repeats": args.repeats,
        "model_uri": args.model_uri or "shrunk training (default architecture)",
        "stages_s": {k: round(v, 3) for k, v in seconds.items()},
        "stages_us_per_beat": {k: round(1e6 * v / detections, 2) for k, v in seconds.items()},
        "in_process_s": round(total, 2), "in_process_beats_per_s": round(detections / total),
        "analyze_process_s": round(wall, 2), "analyze_process_beats_per_s": round(detections / wall),
        "analyze_peak_rss_mb": round(peak_mb)})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
