"""Benchmark: DS2 as other recorders would store it — other sampling rates, gains, bandwidth, mains, another
lead — scored end to end (EC57, detected mode) by the same model.

The detector is judged on databases it never saw (issue 29: "another database"). We have none here, but part of
what changes between recorders can be rebuilt from MIT-BIH itself (:data:`CONDITIONS`): the sampling rate (St
Petersburg INCART 257 Hz, many Holters 128 or 250 Hz, 12-lead carts 500 Hz) with the recorder's anti-aliasing (a
polyphase FIR), the gain, a Holter's narrower band, 50 Hz mains, and the lead layout (lead I stored first, MLII's
signal named "II"); and another lead, each record's second. Each condition rewrites the 22 DS2 records as WFDB
files (annotations moved to the rate), and ``evaluate`` reads them back at 360 Hz as a user's database is read.
Nothing is chosen on these figures: they say how far the model's DS2 figure carries. What this cannot rebuild is
another population, other electrodes and other noise: the figure on a real other database stays to be measured
(``arritmias data fetch --database incartdb`` then ``arritmias evaluate --records all``).

    python benchmarks/bench_recorder.py --model-uri URI [--tracking URI]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import wfdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.analysis import ec57  # noqa: E402
from arritmias.config import TrainConfig  # noqa: E402
from arritmias.data.records import resample, resolve_data_dir  # noqa: E402
from arritmias.model.detector import Detector  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

KEYS = ("veb_se", "veb_ppv", "qrs_se", "qrs_ppv", "sveb_se", "sveb_ppv")


def rewrite(data_dir: Path, name: str, dest: Path, fs: float = 360.0, change=None, seconds: float | None = None,
            as_name: str | None = None) -> None:
    """Record ``name`` of ``data_dir`` (its first ``seconds``, default all) as another recorder at ``fs`` Hz
    stores it, as ``as_name`` (default ``name``) in ``dest``: two leads, "I" (the record's other lead) first and
    "II" (its MLII, through ``change(mv, fs)`` when given), 16-bit, its annotations moved to ``fs``."""
    path = str(data_dir / name)
    rec = wfdb.rdrecord(path, sampto=None if seconds is None else int(seconds * wfdb.rdheader(path).fs))
    mlii = rec.sig_name.index("MLII")
    lead_ii = resample(rec.p_signal[:, mlii], rec.fs, fs)
    if change is not None:
        lead_ii = change(lead_ii, fs)
    leads = [resample(rec.p_signal[:, 1 - mlii], rec.fs, fs), lead_ii]
    out = as_name or name
    wfdb.wrsamp(out, fs=fs, units=["mV", "mV"], sig_name=["I", "II"], p_signal=np.column_stack(leads),
                fmt=["16", "16"], write_dir=str(dest))
    ann = wfdb.rdann(path, "atr", sampto=rec.sig_len)
    samples = np.round(ann.sample * (fs / rec.fs)).astype(np.int64)
    keep = samples < len(leads[0])
    wfdb.wrann(out, "atr", samples[keep], np.asarray(ann.symbol)[keep].tolist(),
               aux_note=np.asarray(ann.aux_note)[keep].tolist(), write_dir=str(dest))


def mains(amplitude_mv: float, hz: float = 50.0):
    """A change adding mains interference: Europe's and most of Latin America's 50 Hz (MIT-BIH has 60 Hz)."""
    return lambda x, fs: x + amplitude_mv * np.sin(2 * np.pi * hz * np.arange(len(x)) / fs)


def holter_band(x: np.ndarray, fs: float) -> np.ndarray:
    """A Holter's bandwidth: 0.5-40 Hz (AHA's minimum for monitoring; MIT-BIH's recorders passed 0.1-100 Hz)."""
    from scipy.signal import butter, sosfiltfilt

    return sosfiltfilt(butter(2, (0.5, 40.0), "bandpass", fs=fs, output="sos"), x)


# (label, sampling rate, change to lead II): each a way another recorder stores the same heart.
CONDITIONS = (
    ("128 Hz", 128.0, None), ("250 Hz", 250.0, None), ("257 Hz (INCART)", 257.0, None), ("500 Hz", 500.0, None),
    ("half the amplitude", 360.0, lambda x, fs: 0.5 * x), ("twice the amplitude", 360.0, lambda x, fs: 2.0 * x),
    ("Holter band 0.5-40 Hz", 360.0, holter_band), ("50 Hz mains, 0.1 mV", 360.0, mains(0.1)),
    ("60 Hz mains, 0.1 mV", 360.0, mains(0.1, 60.0)),
)


def score(detector: Detector, folder: Path, records: tuple[str, ...], deriv_idx: int = 0) -> dict:
    """Gross EC57 figures of ``detector`` on ``records`` of ``folder``, end to end (detected mode), with their
    average over the records and the per-record VEB Se / +P."""
    result = ec57.evaluate(detector, folder, records, "detected", progress=False, deriv_idx=deriv_idx)
    out = {k: result.gross.get(k) for k in KEYS}
    out.update({f"avg_{k}": result.average.get(k) for k in KEYS})
    out["per_record"] = {n: {k: c.get(k) for k in ("veb_se", "veb_ppv")} for n, c in result.per_record.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-uri", required=True, help="the model to judge (a default training's)")
    parser.add_argument("--tracking", help="the MLflow store the model URI lives in")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    if args.tracking:
        from arritmias.tracking import runs

        runs.use_tracking(args.tracking)
    data_dir = resolve_data_dir(args.data_dir)
    records = TrainConfig().test_records
    detector = Detector.from_model_uri(args.model_uri)
    figures = {"model_uri": args.model_uri, "records": list(records), "conditions": {}}
    t0 = time.perf_counter()
    figures["conditions"]["as recorded (360 Hz, MLII)"] = score(detector, data_dir, records)
    # Another lead: each record's second lead (V1 in most, V2, V4 or V5 in a few), which the model never saw.
    figures["conditions"]["the other lead (V1 mostly)"] = score(detector, data_dir, records, deriv_idx=1)
    for label, fs, change in CONDITIONS:
        with tempfile.TemporaryDirectory() as tmp:
            for name in records:
                rewrite(data_dir, name, Path(tmp), fs, change)
            figures["conditions"][label] = score(detector, Path(tmp), records)
        print(f"{label}: done", flush=True)
    figures["wall_s"] = round(time.perf_counter() - t0)
    path = write_results("recorder", figures)
    for condition, f in figures["conditions"].items():
        print(f"{condition:28s} VEB Se {100 * f['veb_se']:5.1f} +P {100 * f['veb_ppv']:5.1f}   "
              f"QRS Se {100 * f['qrs_se']:6.2f} +P {100 * f['qrs_ppv']:6.2f}")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
