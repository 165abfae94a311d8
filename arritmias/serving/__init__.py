"""Serving: the MLflow pyfunc around the Detector (:mod:`~arritmias.serving.pyfunc`; models logged by any version
load it as ``arritmias.serving.ArritmiasPyfunc``) behind a request guard (:mod:`~arritmias.serving.guard`), Ray
Serve with champion, challenger and shadow (:mod:`~arritmias.serving.ab`), the prediction log and its A/B report
(:mod:`~arritmias.serving.prediction_log`, :mod:`~arritmias.serving.ab_report`), Prometheus metrics and live drift
(:mod:`~arritmias.serving.metrics`, :mod:`~arritmias.serving.live_drift`)."""

from arritmias.serving.pyfunc import ArritmiasPyfunc

__all__ = ["ArritmiasPyfunc"]
