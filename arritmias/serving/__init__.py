"""Serving: the MLflow pyfunc around the Detector (:mod:`~arritmias.serving.pyfunc`; models logged by any version
load it as ``arritmias.serving.ArritmiasPyfunc``) behind a request guard (:mod:`~arritmias.serving.guard`), Ray
Serve with champion, challenger and shadow (:mod:`~arritmias.serving.ab`), the prediction log and its A/B report
(:mod:`~arritmias.serving.prediction_log`, :mod:`~arritmias.serving.ab_report`), Prometheus metrics and live drift
(:mod:`~arritmias.serving.metrics`, :mod:`~arritmias.serving.live_drift`)."""

__all__ = ["ArritmiasPyfunc"]


def __getattr__(name: str):
    # Loaded on first use: importing any module of this folder (the CLI reads the A/B report's experiment name)
    # must not import MLflow's pyfunc machinery (~1 s), which only the served model needs.
    if name == "ArritmiasPyfunc":
        from arritmias.serving.pyfunc import ArritmiasPyfunc

        return ArritmiasPyfunc
    raise AttributeError(f"module 'arritmias.serving' has no attribute {name!r}")
