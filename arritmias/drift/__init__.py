"""Drift: the beats of incoming recordings measured (:mod:`~arritmias.drift.features`) and compared with the
training patients' by Evidently (:mod:`~arritmias.drift.check`, ``arritmias drift``), with its pages
(:mod:`~arritmias.drift.report`). The live score while serving is :mod:`arritmias.serving.live_drift`."""

from arritmias.drift.check import ECGDriftDetector, check

__all__ = ["ECGDriftDetector", "check"]
