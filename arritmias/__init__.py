"""arritmias: PVC (AAMI class V) detection in ECG recordings and the MLflow lifecycle around it."""

__version__ = "0.1.0"
