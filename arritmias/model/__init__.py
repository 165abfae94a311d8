"""The classifier: one per-beat preprocessing (:mod:`~arritmias.model.preprocess`), the network
(:mod:`~arritmias.model.network`, Keras; import it explicitly: it loads TensorFlow) and its ONNX export run in
OpenVINO (:mod:`~arritmias.model.export`), the decision rule and RuleGuard (:mod:`~arritmias.model.detector`,
:mod:`~arritmias.model.ruleguard`), the training beats' drift reference saved with it
(:mod:`~arritmias.model.drift_reference`) and the served contract: what a request carries and how it is checked
(:mod:`~arritmias.model.contract`)."""

from arritmias.model.contract import REQUEST_DOC, RESPONSE_DOC, Request, parse_request
from arritmias.model.detector import DETECTOR_ARTIFACT, Decisions, Detector, Rule
from arritmias.model.preprocess import OUTPUTS, model_inputs

__all__ = ["DETECTOR_ARTIFACT", "OUTPUTS", "REQUEST_DOC", "RESPONSE_DOC", "Decisions", "Detector", "Request", "Rule",
           "model_inputs", "parse_request"]
