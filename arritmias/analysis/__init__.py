"""Recordings: one analysed end to end (:mod:`~arritmias.analysis.recording`: checks, beats, the Detector, the PVC
summary), its files (:mod:`~arritmias.analysis.report`: annotations, JSON, the Spanish clinical page of
:mod:`~arritmias.analysis.clinical_report`), an archive on Ray (:mod:`~arritmias.analysis.batch`) and the EC57
evaluation against annotated records (:mod:`~arritmias.analysis.ec57`)."""

from arritmias.analysis.recording import Analysis, analyze_signal, find_beats, read_signal
from arritmias.analysis.report import write_outputs

__all__ = ["Analysis", "analyze_signal", "find_beats", "read_signal", "write_outputs"]
