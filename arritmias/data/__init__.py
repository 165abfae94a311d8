"""Records and beats: WFDB files and lead CSVs read in mV (:mod:`~arritmias.data.records`,
:mod:`~arritmias.data.lead_csv`), the MIT-BIH copy fetched and verified (:mod:`~arritmias.data.integrity`), beats
cut with their RR features and record context at the reference annotations or at the QRS detector's positions
(:mod:`~arritmias.data.beats`, with "not a beat" decoys from :mod:`~arritmias.data.decoys`), cached
(:mod:`~arritmias.data.cache`), and detections matched to the reference beat by beat as EC57's bxb does
(:mod:`~arritmias.data.matching`)."""

from arritmias.data.beats import (DS1, DS2, BeatSet, beat_inputs, build_beats, for_recording, parse_records,
                                  reference_beats)
from arritmias.data.records import Recording, read_recording, record_paths, resolve_data_dir

__all__ = ["DS1", "DS2", "BeatSet", "Recording", "beat_inputs", "build_beats", "for_recording", "parse_records",
           "read_recording", "record_paths", "reference_beats", "resolve_data_dir"]
