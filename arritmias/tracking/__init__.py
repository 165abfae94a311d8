"""MLflow: where runs go and what is in them (:mod:`~arritmias.tracking.runs`), the registry with its gate,
aliases and promotions (:mod:`~arritmias.tracking.registry`), a run as a CI job summary
(:mod:`~arritmias.tracking.ci_summary`) and the served model's requirements (:mod:`~arritmias.tracking.requirements`).
MLflow itself is imported only by the functions that talk to a store."""

from arritmias.tracking.registry import MODEL_NAME, PREVIOUS_ALIAS, PRODUCTION_ALIAS, gate, model_uri, promote, register
from arritmias.tracking.runs import DEFAULT_TRACKING_URI, EXPERIMENT, use_experiment, use_tracking

__all__ = ["DEFAULT_TRACKING_URI", "EXPERIMENT", "MODEL_NAME", "PREVIOUS_ALIAS", "PRODUCTION_ALIAS", "gate",
           "model_uri", "promote", "register", "use_experiment", "use_tracking"]
