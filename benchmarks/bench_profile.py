"""Benchmark: where the time of a 24-hour recording goes, stage by stage, in µs per beat on one core.

Issue "A 24-hour Holter in seconds" asks for a profile before any speed work: per stage (read, resample, QRS,
windows, context, network, decision, writing) for ``analyze`` of a 24-hour recording. ``batch-score`` runs the
same stages per recording (``analysis.find_beats`` then ``Detector.decide_recording``) inside a Ray actor, so its
per-beat profile is this one plus Ray's fixed costs (``bench_batch.py`` measures those).

Method. The process is pinned to one core (CPU affinity) and the network to one OpenVINO thread. The 24-hour
recording is the first lead of all 48 MIT-BIH records end to end (``bench_batch.holter_24h``: 31 million samples,
~110,000 beats). The profile runs ``analyze``'s own path (``read_signal``, ``analyze_signal``, ``write_outputs``)
with a timer around each function it calls (``STAGES``); what none of them covers is reported as "other".
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
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_batch import holter_24h  # noqa: E402
from benchmarks.common import shrunk_model, write_results  # noqa: E402


# `arritmias …` with argv, printing the process's peak resident memory (kB, from /proc) to stderr as it exits.
PEAK_REPORTING_CLI = """
import atexit, re, sys
atexit.register(lambda: sys.stderr.write("\\nVmHWM_kB %s\\n" % re.search(r"VmHWM:\\s+(\\d+)",
                                         open("/proc/self/status").read()).group(1)))
from arritmias.cli import main
sys.exit(main(sys.argv[1:]))
"""


# Stage -> (owner, attribute) of the functions the analyze path calls, where it looks them up: each is wrapped
# with a timer for one profile, so the profile runs analyze_signal itself rather than a copy of its steps.
STAGES = {
    "check": ("arritmias.analysis.recording", "check_signal"), "resample": ("arritmias.analysis.recording", "resample"),
    "mains": ("arritmias.analysis.recording", "remove_mains"),
    "unreadable": ("arritmias.analysis.recording", "unreadable_samples"), "qrs": ("arritmias.analysis.recording", "detect_qrs"),
    "rr": ("arritmias.data.beats", "rr_features"), "windows": ("arritmias.data.beats", "window_at"),
    "context": ("arritmias.data.beats", "record_context"), "consistency": ("arritmias.analysis.recording", "template_correlation"),
    "network": ("arritmias.model.detector:Detector", "predict"), "families": ("arritmias.model.detector:Detector", "families"),
    "decision": ("arritmias.model.detector:Detector", "_decisions"),
    "summary": ("arritmias.analysis.ectopy", "summarize_decisions"),
}


@contextmanager
def timed(seconds: dict[str, float]):
    """Within the block, the functions of :data:`STAGES` add their wall time to ``seconds`` under their stage."""
    import importlib

    patched = []
    for name, (where, attr) in STAGES.items():
        module, _, cls = where.partition(":")
        owner = getattr(importlib.import_module(module), cls) if cls else importlib.import_module(module)
        original = getattr(owner, attr)

        def wrapper(*args, _f=original, _name=name, **kwargs):
            t0 = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                seconds[_name] = seconds.get(_name, 0.0) + time.perf_counter() - t0

        setattr(owner, attr, wrapper)
        patched.append((owner, attr, original))
    try:
        yield seconds
    finally:
        for owner, attr, original in patched:
            setattr(owner, attr, original)


def profile(record: str, detector, out: Path) -> tuple[dict, dict]:
    """Seconds per stage of one ``analyze`` of ``record`` (read, analyze_signal, write_outputs, as the command
    runs them) and the summary it made; "other" is what no stage covers. Families are timed whatever the model's
    family weight (the trained model's is 0.8; a weight of 0 skips them)."""
    from arritmias.analysis.recording import analyze_signal, find_beats, read_signal
    from arritmias.analysis.report import write_outputs

    t: dict[str, float] = {}
    t0 = time.perf_counter()
    sig = read_signal(record)
    t["read"] = time.perf_counter() - t0
    with timed(t):
        t0 = time.perf_counter()
        analysis = analyze_signal(sig, detector)
        whole = time.perf_counter() - t0
    t["other"] = whole - sum(v for k, v in t.items() if k != "read")
    if detector.rule.family_weight == 0:  # the path skipped them: timed on their own
        windows = find_beats(sig, detector.fs, detector.win).windows
        t0 = time.perf_counter()
        detector.families(windows)
        t["families"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_outputs(analysis, out)
    t["writing"] = time.perf_counter() - t0
    return t, analysis.summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", default=None, help="model to time (default: a shrunk training)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3, help="profiles taken; the median of each stage is kept")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, inherited by the analyze process

    import mlflow

    from arritmias.tracking import runs
    from arritmias.model.detector import Detector
    from arritmias.data.records import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        tmp = Path(tmp)
        store = f"sqlite:///{tmp / 'mlflow.db'}"
        runs.use_tracking(store)
        uri = args.model_uri or shrunk_model(data_dir, store)
        model = mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp / "model"))
        detector = Detector.load(Path(model) / "artifacts" / "detector", threads=1)
        record = holter_24h(data_dir, tmp)

        runs = [profile(record, detector, tmp / f"out{i}") for i in range(args.repeats)]
        summary = runs[-1][1]
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
