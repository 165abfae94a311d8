"""arritmias: PVC (AAMI class V) detection in ECG recordings and the MLflow lifecycle around it."""

import os

# Set before any module imports TensorFlow (here, in Ray workers and in served models alike): its start-up
# banners are noise for users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
