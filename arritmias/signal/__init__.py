"""One ECG lead, read as a cardiologist reads a strip: where the beats are (:mod:`~arritmias.signal.qrs`), the
patient's usual beat and rhythm (:mod:`~arritmias.signal.context`), beats grouped by shape
(:mod:`~arritmias.signal.families`), single beats measured (:mod:`~arritmias.signal.measures`: QRS width,
amplitudes, noise, wander) and mains interference removed (:mod:`~arritmias.signal.mains`). Signals in mV, rates
in Hz; no labels, no model."""

from arritmias.signal.context import Context, centre, record_context, template_correlation
from arritmias.signal.families import assign as assign_families
from arritmias.signal.mains import remove_mains
from arritmias.signal.measures import FEATURES, beat_features, qrs_width_ms
from arritmias.signal.qrs import detect_qrs

__all__ = ["FEATURES", "Context", "assign_families", "beat_features", "centre", "detect_qrs", "qrs_width_ms",
           "record_context", "remove_mains", "template_correlation"]
