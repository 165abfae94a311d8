"""Training-time augmentation of raw beat windows (mV), with real noise from the MIT-BIH Noise Stress Test DB.

Each transform imitates a between-patient or between-recording difference the test patients will show:
electrode gain (amplitude scale), respiration and movement (baseline wander), QRS-detector jitter (shift), and
noise: NSTDB's ``bw`` and ``ma`` records when available (else synthetic), and synthetic electrode motion
(:func:`motion_artifacts`). NSTDB's own electrode-motion record ``em`` is never trained on: it is the noise of the
EC57 noise stress test (records 118e*/119e*), which must stay a test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arritmias.config import TrainConfig
from arritmias.data.records import read_recording

NOISE_DIR_ENV = "ARRITMIAS_NOISE_DIR"
NOISE_RECORDS = ("bw", "ma")  # baseline wander and muscle artefact; 'em' is the noise stress test's noise
MOTION_CHANNELS = 2  # synthetic electrode-motion channels added to every bank


def find_noise_dir(data_dir: Path | None = None, cli_value: str | None = None) -> Path | None:
    """``--noise-dir``, else ``$ARRITMIAS_NOISE_DIR``, else an ``nstdb`` folder beside the data folder, else None."""
    candidates = [cli_value, os.environ.get(NOISE_DIR_ENV, "").strip() or None]
    if data_dir is not None:
        candidates.append(str(Path(data_dir).resolve().parent / "nstdb"))
    for c in candidates:
        if c and all((Path(c) / f"{r}.hea").is_file() for r in NOISE_RECORDS):
            return Path(c)
    return None


@dataclass(frozen=True)
class NoiseBank:
    """Noise channels to draw segments from: shape (n_channels, n_samples), mV at the model's ``fs``."""

    channels: np.ndarray
    source: str  # "nstdb" or "synthetic"


def load_noise(noise_dir: Path | None, fs: float, seed: int = 0) -> NoiseBank:
    """Both channels of NSTDB ``bw`` and ``ma`` when ``noise_dir`` has them, else 10 min of synthetic noise; plus
    ``MOTION_CHANNELS`` channels of synthetic electrode motion (seeded by ``seed``) either way."""
    rng = np.random.default_rng(seed)
    if noise_dir is not None:
        chans = []
        for name in NOISE_RECORDS:
            for idx in (0, 1):
                chans.append(read_recording(noise_dir, name, deriv_idx=idx, fs=fs, annotator=None).signal)
        n = min(len(c) for c in chans)
        motion = [motion_artifacts(n, fs, rng) for _ in range(MOTION_CHANNELS)]
        return NoiseBank(np.stack([c[:n] for c in chans] + motion).astype(np.float32), "nstdb")
    n = int(600 * fs)
    white = rng.standard_normal((2, n))
    # Muscle-like: white noise; wander-like: integrated noise, high-passed by removing a moving mean (~2 s).
    walk = np.cumsum(rng.standard_normal((2, n)), axis=1)
    k = int(2 * fs)
    kernel = np.ones(k) / k
    walk = walk - np.stack([np.convolve(w, kernel, mode="same") for w in walk])
    motion = np.stack([motion_artifacts(n, fs, rng) for _ in range(MOTION_CHANNELS)])
    return NoiseBank(np.concatenate([white, walk / walk.std(), motion]).astype(np.float32), "synthetic")


def motion_artifacts(n: int, fs: float, rng: np.random.Generator, rate_hz: float = 1.0) -> np.ndarray:
    """``n`` samples (unit variance) of synthetic electrode motion: what a moving electrode does to a lead.

    Motion changes the electrode's half-cell potential and the skin's impedance, so the lead shows transients
    rather than steady noise: pulses and biphasic swings 20-200 ms wide, as fast as a QRS and as large, and
    baseline steps that decay over 0.1-1 s, arriving at random (``rate_hz`` per second on average, Poisson)
    in bursts of uneven size. Written from that description, never from NSTDB's ``em`` record.
    """
    t = np.arange(n) / fs
    out = np.zeros(n)
    count = rng.poisson(rate_hz * n / fs)
    at = rng.uniform(0, n / fs, count)
    size = rng.lognormal(0.0, 0.7, count) * rng.choice((-1.0, 1.0), count)
    kind = rng.integers(0, 3, count)
    width = rng.uniform(0.02, 0.2, count)
    decay = rng.uniform(0.1, 1.0, count)
    for a, s, k, w, d in zip(at, size, kind, width, decay):
        lo, hi = int(max(a - 4 * max(w, d), 0) * fs), int(min(a + 5 * max(w, d), n / fs) * fs)
        x = t[lo:hi] - a
        if k == 0:  # a pulse
            out[lo:hi] += s * np.exp(-0.5 * (x / w) ** 2)
        elif k == 1:  # a biphasic swing (derivative of a Gaussian, peak 1)
            out[lo:hi] += s * 1.6487 * (x / w) * np.exp(-0.5 * (x / w) ** 2)
        else:  # a step that decays back to the baseline
            out[lo:hi] += s * np.where(x >= 0, np.exp(-np.maximum(x, 0) / d), 0.0)
    out -= out.mean()
    return (out / (out.std() + 1e-12)).astype(np.float32)


def nst_gain(ptp_mv, noise_var, snr_db):
    """The factor for noise of variance ``noise_var`` (mV^2) so that a signal of peak-to-peak amplitude ``ptp_mv``
    plus the scaled noise has ``snr_db`` dB, as the WFDB toolkit's ``nst`` defines SNR: signal power
    S = ptp^2 / 8 (a sine of that amplitude), noise power N = the noise variance, SNR = 10 log10(S / N).
    Arrays broadcast; the one place this formula lives (augmentation, monitoring/scenarios.py)."""
    return np.sqrt((ptp_mv ** 2 / 8) / ((noise_var + 1e-12) * 10 ** (snr_db / 10)))


def add_noise(windows: np.ndarray, noise: np.ndarray, snr_db: np.ndarray | float) -> np.ndarray:
    """Add ``noise`` (same shape as ``windows``, (n, win)) scaled to ``snr_db`` per window (:func:`nst_gain`,
    the window's own peak-to-peak amplitude)."""
    noise = noise - noise.mean(axis=1, keepdims=True)
    snr = np.asarray(snr_db, dtype=np.float32).reshape(-1, 1)
    gain = nst_gain(np.ptp(windows, axis=1, keepdims=True), noise.var(axis=1, keepdims=True), snr)
    return (windows + gain * noise).astype(np.float32)


def noise_segments(bank: NoiseBank, n: int, win: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random ``win``-sample segments of random noise channels, shape (n, win)."""
    ch = rng.integers(0, bank.channels.shape[0], n)
    start = rng.integers(0, bank.channels.shape[1] - win, n)
    return bank.channels[ch[:, None], start[:, None] + np.arange(win)[None, :]]


def augment_windows(windows: np.ndarray, cfg: TrainConfig, bank: NoiseBank,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Randomly transformed copies of raw windows (n, win) in mV; the input is not modified.

    Returns ``(windows, gain)``: the augmented windows and each window's amplitude factor (n, 1). The gain is a
    property of the electrode, so the caller applies the same factor to the beat's record context: a beat stays
    as large relative to the patient's usual beat as it really was.
    """
    n, win = windows.shape
    gain = rng.uniform(1 - cfg.aug_scale, 1 + cfg.aug_scale, (n, 1)).astype(np.float32)
    x = windows * gain
    if cfg.aug_shift:
        # Shift each window by up to aug_shift samples, repeating the edge sample (no wrap-around).
        shifts = rng.integers(-cfg.aug_shift, cfg.aug_shift + 1, n)
        idx = np.clip(np.arange(win)[None, :] - shifts[:, None], 0, win - 1)
        x = np.take_along_axis(x, idx, axis=1)
    if cfg.aug_wander_mv:
        # A slow sinusoid (0.05-0.5 Hz) of random phase: over 1 s it is an offset plus a slope or a gentle bow.
        t = np.arange(win, dtype=np.float32)[None, :] / cfg.fs
        freq = rng.uniform(0.05, 0.5, (n, 1))
        phase = rng.uniform(0, 2 * np.pi, (n, 1))
        amp = rng.uniform(0, cfg.aug_wander_mv, (n, 1))
        x = x + (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)
    noisy = rng.random(n) < cfg.aug_noise_prob
    if noisy.any():
        k = int(noisy.sum())
        snr = rng.uniform(*cfg.aug_snr_db, k)
        x[noisy] = add_noise(x[noisy], noise_segments(bank, k, win, rng), snr)
    return x.astype(np.float32), gain
