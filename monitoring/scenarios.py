"""Real acquisition shifts applied to real records, for testing and benchmarking drift detection.

Each returns an :class:`arritmias.analysis.Signal` as a user's pipeline would hand it over: noisy, with another
gain, another lead, or a sampling rate that was never converted.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from arritmias.analysis.recording import Signal, read_signal
from arritmias.training.augment import nst_gain
from arritmias.data.records import read_recording, resample


def nst_noise_scale(clean: np.ndarray, noise: np.ndarray, fs: float, snr_db: float) -> float:
    """Gain for ``noise`` so that clean + gain*noise has ``snr_db`` (:func:`arritmias.training.augment.nst_gain`), the
    peak-to-peak QRS amplitude taken as the median over 1-s blocks of each block's peak-to-peak."""
    block = int(fs)
    n = len(clean) // block * block
    ptp = np.median(np.ptp(clean[:n].reshape(-1, block), axis=1))
    return float(nst_gain(ptp, np.var(noise), snr_db))


def with_nstdb_noise(sig: Signal, nstdb_dir: Path, kind: str = "ma", snr_db: float = 6.0, channel: int = 0,
                     offset_s: float = 0.0) -> Signal:
    """``sig`` plus NSTDB noise record ``kind`` ('bw' or 'ma') at ``snr_db`` dB, as nst adds it."""
    noise = read_recording(nstdb_dir, kind, deriv_idx=channel, fs=sig.fs, annotator=None).signal.astype(np.float64)
    start = int(offset_s * sig.fs) % max(len(noise) - 1, 1)
    noise = np.resize(np.roll(noise, -start), len(sig.values))
    noise -= noise.mean()
    gain = nst_noise_scale(sig.values.astype(np.float64), noise, sig.fs, snr_db)
    return replace(sig, values=(sig.values + gain * noise).astype(np.float32), name=f"{sig.name}_{kind}{snr_db:g}dB")


def with_gain(sig: Signal, gain: float) -> Signal:
    return replace(sig, values=(sig.values * gain).astype(np.float32), name=f"{sig.name}_x{gain:g}")


def other_lead(data_dir: Path, record: str) -> Signal:
    """The record's second lead (V1, V2, V4 or V5) passed on as if it were MLII."""
    sig = read_signal(data_dir / record, deriv_idx=1)
    return replace(sig, lead="MLII", name=f"{record}_{sig.lead}_as_MLII")


def not_resampled(sig: Signal, true_fs: float = 250.0) -> Signal:
    """The lead recorded at ``true_fs`` Hz but declared at the original rate (nobody resampled it)."""
    return replace(sig, values=resample(sig.values, sig.fs, true_fs), name=f"{sig.name}_{true_fs:g}Hz_as_{sig.fs:g}")


def halves(sig: Signal) -> tuple[Signal, Signal]:
    """First and second half of the recording (same patient, same set-up: the no-drift control)."""
    mid = len(sig.values) // 2
    return (replace(sig, values=sig.values[:mid], name=f"{sig.name}_a"),
            replace(sig, values=sig.values[mid:], name=f"{sig.name}_b"))
