"""Benchmark: the served model called in process, by input form, against plain Keras predict on the same network.

Issue "A 24-hour Holter in seconds": an MLflow user sends a DataFrame of per-beat lists (``sig``, ``rr``, and the
record context ``ctx_sig``, ``ctx_rr``); turning those Python lists into arrays cost more than the network. This
times, on the same DS2 beats and the same model, 4,096 beats a call:

* the pyfunc (``mlflow.pyfunc.load_model(...).predict``) on a DataFrame of per-beat lists with context: parsing,
  validation, preprocessing, the network in OpenVINO, thresholds;
* the pyfunc on numpy arrays (no list parsing);
* plain Keras ``model.predict`` on the network's prepared inputs (preprocessing not counted): what a user of the
  bare network would run.

Each on one core (CPU affinity, one runtime thread) and on every core this process may use.

    python benchmarks/bench_pyfunc.py [--model-uri URI] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import shrunk_model, timed, write_results  # noqa: E402

BATCH = 4096
CALLS = 12
TARGET_BEATS_PER_S = 40_000


def rates(cores: set[int], uri: str, beats) -> dict:
    """Beats/s of each form on ``cores``, in a fresh process each (runtimes size their thread pools at load)."""
    import subprocess

    script = f"""
import os, sys, json
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
os.sched_setaffinity(0, {sorted(cores)!r})
from benchmarks.bench_pyfunc import measure
print("RESULT " + json.dumps(measure({uri!r})))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    import json

    return json.loads(out.rsplit("RESULT ", 1)[1])


def measure(uri: str) -> dict:
    """The forms' beats per second in this process (see the module docstring)."""
    import mlflow
    import pandas as pd

    from arritmias import import_tensorflow
    from arritmias.data.beats import build_beats
    from arritmias.data.cache import default_cache_dir
    from arritmias.model.detector import Detector
    from arritmias.model.preprocess import model_inputs
    from arritmias.data.records import resolve_data_dir

    import_tensorflow()
    beats = build_beats(resolve_data_dir(None), "DS2", cache_dir=default_cache_dir(), progress=False)
    chunks = [slice(i, i + BATCH) for i in range(0, CALLS * BATCH, BATCH)]
    frames = [pd.DataFrame({"sig": beats.windows[c].astype(float).tolist(), "rr": beats.rr[c].astype(float).tolist(),
                            "ctx_sig": beats.template[c].astype(float).tolist(),
                            "ctx_rr": beats.rr_usual[c].astype(float).tolist()}) for c in chunks]
    arrays = [{"sig": beats.windows[c], "rr": beats.rr[c], "ctx_sig": beats.template[c],
               "ctx_rr": beats.rr_usual[c]} for c in chunks]
    model = mlflow.pyfunc.load_model(uri)
    keras_model = Detector.from_model_uri(uri).model
    prepared = [model_inputs(beats.windows[c], beats.rr[c], beats.context.select(c)) for c in chunks]
    beats_total = CALLS * BATCH
    out = {}
    for name, call in (("pyfunc_dataframe_of_lists_with_context", lambda: [model.predict(f) for f in frames]),
                       ("pyfunc_numpy_with_context", lambda: [model.predict(a) for a in arrays]),
                       ("keras_predict_prepared_inputs", lambda: [keras_model.predict(p, batch_size=BATCH, verbose=0)
                                                                  for p in prepared])):
        call()  # warm: graphs traced, runtimes compiled
        out[name] = round(beats_total / timed(call, 3)[0])
    out["cores"] = len(os.sched_getaffinity(0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-uri", help="model to time (default: a shrunk training of the default network)")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    if args.data_dir:
        os.environ["ARRITMIAS_DATA_DIR"] = args.data_dir
    from arritmias.tracking import runs
    from arritmias.data.records import resolve_data_dir

    with tempfile.TemporaryDirectory() as tmp:
        store = runs.use_tracking(f"sqlite:///{tmp}/mlflow.db")
        uri = args.model_uri or shrunk_model(resolve_data_dir(None), store)
        if not args.model_uri:
            import mlflow

            uri = mlflow.artifacts.download_artifacts(uri, dst_path=f"{tmp}/model")  # a folder: no store needed
        cores = sorted(os.sched_getaffinity(0))
        figures = {"one_core": rates({cores[0]}, uri, None), "all_cores": rates(set(cores), uri, None)}
    one = figures["one_core"]
    figures["target_beats_per_s"] = TARGET_BEATS_PER_S
    figures["targets_met"] = {
        "dataframe_of_lists_at_least_target": one["pyfunc_dataframe_of_lists_with_context"] >= TARGET_BEATS_PER_S,
        "dataframe_of_lists_faster_than_keras_predict":
            one["pyfunc_dataframe_of_lists_with_context"] > one["keras_predict_prepared_inputs"]}
    figures["model_uri"] = args.model_uri or "shrunk training of the default architecture (temporary)"
    path = write_results("pyfunc", figures)
    for where in ("one_core", "all_cores"):
        f = figures[where]
        print(f"{where} ({f['cores']}): " + ", ".join(f"{k} {v:,} beats/s" for k, v in f.items() if k != "cores"))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
