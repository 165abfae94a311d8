"""arritmias: PVC (AAMI class V) detection in ECG recordings and the MLflow lifecycle around it."""

import os

# Set before any module imports TensorFlow (here, in Ray workers and in served models alike): its start-up
# banners are noise for users. So are MLflow's per-file progress bars each time a model is loaded.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

__version__ = "0.3.0"


def import_tensorflow():
    """Import TensorFlow (and so Keras) once, with its C++ start-up lines silenced.

    TensorFlow 2.20 prints "oneDNN custom operations are on" through absl before its logging is set up, so
    ``TF_CPP_MIN_LOG_LEVEL`` cannot hide it; the lines go to file descriptor 2 only for the import. Call this
    before the first ``import keras`` / ``import tensorflow`` of a code path a user runs.
    """
    import sys

    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow
