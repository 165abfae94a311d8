"""Batch scoring of many recordings on Ray Data: a Holter archive in one command, on one machine or a cluster.

The pipeline, per recording (one row each):

1. **Analyse** — a pool of ``workers`` Ray actors sharing the CPUs (one each by default; fewer workers get more
   threads for their network); each loads the Detector once (shipped from the
   driver as bytes, so workers need no access to the tracking server) and runs
   :func:`arritmias.analysis.analyze_signal` on each recording it is handed: exactly what ``arritmias analyze``
   runs (signal checks, QRS detection, windows, record context, network, families, decisions). Only the beats'
   positions and decisions travel back, a few bytes a beat: not the windows (two 360-sample rows a beat, ~300 MB
   for a 24-hour recording). A recording that cannot be read or analysed becomes an error row naming it; the
   others go on.
2. **Write** — on the driver: ``<name>.pvc`` and ``<name>_summary.json`` (the same files as ``analyze``) and
   ``beats/<name>.parquet`` (one part per recording; the ``beats/`` folder reads as one table), written
   atomically with the summary last (:func:`arritmias.analysis.report.write_outputs`). Writing on the driver means
   ``--out`` only has to exist where the command runs; the inputs must be readable from every Ray node.

A recording whose three files exist is skipped, so re-running a killed job resumes it. ``batch_manifest.json``
records the model; resuming into a folder scored by another model is refused. ``batch_results.csv`` lists every
input of the last run with its status (scored, skipped, error) and error message.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arritmias.util.atomic import write_text_atomic
from arritmias.errors import DataError

MANIFEST = "batch_manifest.json"
RESULTS = "batch_results.csv"
# An analysing actor holds a lead, the detector's filtered copies, the windows and their context: ~1 GB for a 24-h
# Holter lead at 360 Hz (benchmarks/bench_profile.py). Reserving it keeps Ray from starting more actors than
# memory holds.
ANALYSE_MEMORY = 2**30
# What batch-score writes per recording (report.write_outputs' switches): no HTML report, a Parquet part. Both
# the writing and the "already complete?" check read this, so they cannot disagree.
OUTPUTS = {"report": False, "beats": True}


@dataclass(frozen=True)
class BatchInput:
    """One input: the WFDB record ``path`` (without extension) and its output ``name``."""

    name: str
    path: str


def find_recordings(inputs: list[str]) -> list[BatchInput]:
    """WFDB records named by ``inputs``: record paths (with or without ``.hea``), folders (searched recursively
    for ``.hea`` headers) or glob patterns. Duplicates are dropped; two different records with one name, or an
    input that names no record, are refused (DataError)."""
    found: dict[str, BatchInput] = {}
    for item in inputs:
        if any(ch in item for ch in "*?["):
            headers = [Path(p) for p in sorted(glob.glob(item, recursive=True))]
            headers = [h if h.suffix == ".hea" else h.with_suffix(".hea") for h in headers]
        elif Path(item).is_dir():
            headers = sorted(Path(item).rglob("*.hea"))
        else:
            path = Path(item)
            headers = [path if path.suffix == ".hea" else path.with_name(path.name + ".hea")]
            if path.suffix in (".dat", ".atr"):
                headers = [path.with_suffix(".hea")]
        headers = [h for h in headers if h.is_file()]
        if not headers:
            raise DataError(f"'{item}' names no WFDB record (no .hea header found)")
        for header in headers:
            rec = BatchInput(header.stem, str(header.with_suffix("").resolve()))
            if rec.name in found and found[rec.name].path != rec.path:
                raise DataError(f"two records are named '{rec.name}' ({found[rec.name].path} and {rec.path}); "
                                "their outputs would collide: score them into different --out folders")
            found[rec.name] = rec
    return list(found.values())


def completed_counts(name: str, out_dir: Path) -> tuple[int, int, int | str] | None:
    """``(beats, pvc_count, sve_count)`` of a recording whose batch outputs are complete and consistent, else None
    (sve_count "" for a model without the S answer).

    File names alone are not trusted: the summary must parse, the Parquet part must read with one row per detection
    (beats and those judged not beats) and as many V and S rows as the summary's PVCs and SVEs, and the annotation
    file must hold
    one annotation per detection. Anything
    else (an empty summary, a garbage Parquet file, a truncated .pvc) is rescored.
    """
    import pandas as pd
    import wfdb

    from arritmias.analysis.report import ANNOTATOR, output_paths

    paths = output_paths(name, out_dir, **OUTPUTS)
    if not all(p.is_file() for p in paths.values()):
        return None
    try:
        summary = json.loads(paths["summary"].read_text())
        beats, pvcs, sves = int(summary["beats"]), int(summary["pvc_count"]), summary.get("sve_count", "")
        detections = beats + int(summary.get("detections_not_beats", 0))
        try:  # only the columns checked, not the whole part
            table = pd.read_parquet(paths["beats"], columns=["label", "class"])
        except Exception:  # noqa: BLE001  a part written before the S answer has no "class"
            table = pd.read_parquet(paths["beats"], columns=["label"])
        annotations = wfdb.rdann(str(out_dir / name), ANNOTATOR)
    except Exception:  # noqa: BLE001  any unreadable part means: not done
        return None
    if (len(table) != detections or int((table["label"] == "V").sum()) != pvcs
            or int((table.get("class", table["label"]) == "S").sum()) != (sves or 0)
            or len(annotations.sample) != detections):
        return None
    return beats, pvcs, sves


def pack_detector(detector) -> dict[str, bytes]:
    """The Detector's saved files (``model.keras``, ``detector.json``) as bytes: what the driver ships to the
    classifier actors."""
    with tempfile.TemporaryDirectory() as tmp:
        detector.save(Path(tmp))
        return {f.name: f.read_bytes() for f in Path(tmp).iterdir() if f.is_file()}


def unpack_detector(files: dict[str, bytes], folder: Path, threads: int = 1):
    """The Detector of :func:`pack_detector`'s files, written into ``folder`` (which must outlive it: ONNX
    Runtime and the lazily loaded Keras model read from there)."""
    from arritmias.model.detector import Detector

    for name, data in files.items():
        (folder / Path(name).name).write_bytes(data)
    return Detector.load(folder, threads)


class Analyzer:
    """Ray actor: loads the Detector once, then analyses whole recordings, one per call."""

    def __init__(self, model_ref: list, threads: int = 1):
        import ray

        # One actor per CPU: the runtime's own thread pools would oversubscribe the cores the other actors use.
        self._folder = tempfile.TemporaryDirectory(prefix="arritmias-actor-")
        self.detector = unpack_detector(ray.get(model_ref[0]), Path(self._folder.name), threads)
        if self.detector.onnx_path is None:  # an export-less model: TensorFlow, limited the same way
            from arritmias import import_tensorflow

            tf = import_tensorflow()
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)

    def __call__(self, row: dict) -> dict:
        """One recording (``name``, ``path``) -> its beats' samples and decisions and its summary, or its error."""
        from arritmias.analysis.recording import analyze_signal, read_signal

        out = {"name": row["name"], "path": row["path"], "error": "", "summary": "{}"}
        try:
            a = analyze_signal(read_signal(row["path"]), self.detector)
        except Exception as exc:  # noqa: BLE001  one bad recording must not stop the archive
            message = str(exc).splitlines()[0] if str(exc) else ""
            return out | {"error": f"{type(exc).__name__}: {message}", **{k: np.zeros(0, t) for k, t in COLUMNS}}
        d = a.decisions
        return out | {"summary": json.dumps(a.summary), "samples": a.samples,
                      "prob": d.prob, "is_v": d.is_v, "changed": d.ruleguard_changed, "context_used": d.context_used,
                      "prob_not_beat": d.prob_not_beat, "not_beat": d.not_beat, "unreadable": d.unreadable,
                      # a model without the S answer: NaN and False (its summary has no "sve_count")
                      "prob_s": np.full(len(d.prob), np.nan, np.float32) if d.prob_s is None else d.prob_s,
                      "is_s": np.zeros(len(d.prob), bool) if d.is_s is None else d.is_s}


# The per-beat columns an Analyzer answers with, and their types.
COLUMNS = (("samples", np.int64), ("prob", np.float32), ("is_v", bool), ("changed", bool), ("context_used", bool),
           ("prob_not_beat", np.float32), ("not_beat", bool), ("unreadable", bool), ("prob_s", np.float32),
           ("is_s", bool))


def to_analysis(row: dict, fs: float, made_by: dict | None = None):
    """An :class:`arritmias.analysis.Analysis` (without the signal) from an :class:`Analyzer`'s row; ``made_by``
    (see :func:`arritmias.analysis.report.provenance`) joins its summary."""
    from arritmias.analysis.recording import Analysis
    from arritmias.model.detector import Decisions

    summary = json.loads(row["summary"]) | (made_by or {})
    supra = "sve_count" in summary  # the model has the S answer
    decisions = Decisions(*(np.asarray(row[k], t) for k, t in COLUMNS[1:5]),
                          unreadable=np.asarray(row["unreadable"], bool),
                          prob_not_beat=np.asarray(row["prob_not_beat"], np.float32),
                          not_beat=np.asarray(row["not_beat"], bool),
                          prob_s=np.asarray(row["prob_s"], np.float32) if supra else None,
                          is_s=np.asarray(row["is_s"], bool) if supra else None)
    return Analysis(row["name"], fs, float(summary["fs_in_hz"]), np.asarray(row["samples"], np.int64), decisions,
                    None, summary)


@dataclass(frozen=True)
class BatchResult:
    """What a run did; ``timeline`` is (seconds since start, beats so far) after each scored recording."""

    scored: int
    skipped: int
    errors: list[tuple[str, str]]
    beats: int
    seconds: float
    results_path: Path
    timeline: list[tuple[float, int]]


def check_manifest(out_dir: Path, model_uri: str, resume: bool) -> None:
    """Refuse to mix two models' outputs in one folder; write the manifest for a new folder."""
    path = out_dir / MANIFEST
    if path.is_file():
        try:
            previous = json.loads(path.read_text()).get("model_uri")
        except (ValueError, AttributeError):
            previous = None
        if previous is None and resume:
            raise DataError(f"'{path}' is damaged, so which model filled '{out_dir}' is unknown: pass --no-resume "
                            "to rescore everything, or score into another --out folder")
        if previous != model_uri and resume:
            raise DataError(f"'{out_dir}' holds outputs of model '{previous}', not '{model_uri}': score into "
                            "another --out folder, or pass --no-resume to rescore everything")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"model_uri": model_uri}, indent=2))


def start_ray(address: str | None, workers: int | None) -> int:
    """Join the cluster at ``address``, or start a local Ray with one logical CPU per core this process may use
    (and at least ``workers``); returns the CPUs Ray has."""
    import ray

    from arritmias.util import ray_local

    # Ray Data passes the classifier's constructor arguments through the object store, and Ray's core warns about
    # that for every actor (ray-project/ray#53727; harmless here: the driver holds the model's reference all along).
    quiet = "fatal"
    if address:
        ray_local.init(address, core_log_level=quiet)
    else:
        ray_local.init(num_cpus=max(len(os.sched_getaffinity(0)), workers or 1), core_log_level=quiet)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # our own bar counts recordings and beats
    context.print_on_execution_start = False
    return int(ray.cluster_resources().get("CPU", 1))


def batch_score(inputs: list[str], model_uri: str, out_dir: Path, address: str | None = None,
                workers: int | None = None, resume: bool = True, progress: bool = True) -> BatchResult:
    """Score every recording named by ``inputs`` into ``out_dir`` (see the module docstring)."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise DataError("batch-score needs Ray: pip install 'arritmias[cluster]' (make install does)") from None
    from tqdm import tqdm

    from arritmias.model.detector import Detector
    from arritmias.analysis.report import provenance, write_outputs

    if workers is not None and workers < 1:
        raise DataError(f"--workers must be at least 1, got {workers}")
    recordings = find_recordings(inputs)
    detector = Detector.from_model_uri(model_uri)
    made_by = provenance(detector, model_uri)
    check_manifest(out_dir, model_uri, resume)
    done = {r.name: completed_counts(r.name, out_dir) for r in recordings} if resume else {}
    todo = [r for r in recordings if done.get(r.name) is None]
    for rec in todo:  # temporary folders a killed run left behind (write_outputs names them .<record>.*)
        for leftover in out_dir.glob(f".{glob.escape(rec.name)}.*"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
    statuses = {r.name: ("skipped", *done[r.name], "") if done.get(r.name) else ("error", 0, 0, "", "not scored")
                for r in recordings}
    errors, beats, timeline, t0 = [], 0, [], time.perf_counter()
    if todo:
        cpus = start_ray(address, workers)
        workers = workers or cpus
        threads = max(1, cpus // workers)
        try:
            ds = ray.data.from_items([{"name": r.name, "path": r.path} for r in todo],
                                     override_num_blocks=len(todo))
            # The model travels once through Ray's object store; a reference inside a list is not resolved by
            # Ray, so each actor fetches the bytes itself. The driver holds the reference for the whole job, so
            # an actor Ray restarts can fetch it again.
            model_ref = ray.put(pack_detector(detector))
            ds = ds.map(Analyzer, fn_constructor_args=([model_ref], threads), concurrency=workers,
                        num_cpus=threads, memory=ANALYSE_MEMORY)
            bar = tqdm(total=len(todo), unit="rec", desc="batch-score", disable=not progress)
            for row in ds.iter_rows():
                if row["error"]:
                    errors.append((row["name"], row["error"]))
                    statuses[row["name"]] = ("error", 0, 0, "", row["error"])
                else:
                    analysis = to_analysis(row, detector.fs, made_by)
                    write_outputs(analysis, out_dir, **OUTPUTS)
                    beats += len(analysis.samples)  # the work done: every detection was classified
                    timeline.append((time.perf_counter() - t0, beats))
                    # The summary's beats, as a resumed recording reports them: detections judged not beats
                    # are not beats.
                    s = analysis.summary
                    statuses[row["name"]] = ("scored", s["beats"], s["pvc_count"], s.get("sve_count", ""), "")
                bar.update(1)
                bar.set_postfix(beats=beats, beats_per_s=f"{beats / (time.perf_counter() - t0):.0f}",
                                errors=len(errors))
            bar.close()
        finally:
            ray.shutdown()  # a local Ray stops; a cluster is only disconnected from
    results = write_results(out_dir, recordings, statuses)
    scored = sum(1 for s in statuses.values() if s[0] == "scored")
    return BatchResult(scored, len(recordings) - scored - len(errors), errors, beats,
                       time.perf_counter() - t0, results, timeline)


def write_results(out_dir: Path, recordings: list[BatchInput], statuses: dict) -> Path:
    """``batch_results.csv``: record, path, status, beats, pvc_count, sve_count (empty for a model without the S
    answer), error — one row per input."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(["record", "path", "status", "beats", "pvc_count", "sve_count", "error"])
    for r in recordings:
        writer.writerow([r.name, r.path, *statuses[r.name]])
    return write_text_atomic(out_dir / RESULTS, buf.getvalue())
