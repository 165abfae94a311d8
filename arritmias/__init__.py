"""arritmias: PVC (AAMI class V) detection in ECG recordings and the MLflow lifecycle around it."""

import os

# Set before any module imports TensorFlow (here, in Ray workers and in served models alike): its start-up
# banners are noise for users. So are MLflow's per-file progress bars each time a model is loaded.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

__version__ = "0.1.0"
