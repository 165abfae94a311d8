"""Outputs of an analysed recording: WFDB annotation file, JSON summary, HTML report with ECG strips.

Everything is written into a temporary folder beside the output folder and moved in file by file only when all
were written, so an interrupted run never leaves a summary without its annotation file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from arritmias.analysis import Analysis

ANNOTATOR = "pvc"  # annotation file extension: <record>.pvc, read with wfdb.rdann(path, "pvc") or bxb -t pvc
STRIP_SECONDS = 10.0
BEATS_DIR = "beats"  # batch-score: one Parquet part per recording; the folder reads as one table


def input_samples(a: Analysis) -> np.ndarray:
    """R peaks of ``a`` as sample indices at the input's own sampling rate (int64, shape (n,))."""
    return np.round(a.samples * (a.fs_in / a.fs)).astype(np.int64)


def write_annotations(a: Analysis, folder: Path) -> Path:
    """``<name>.pvc``: one N or V beat annotation per classified beat, at the input's own sampling rate."""
    import wfdb

    wfdb.wrann(a.name, ANNOTATOR, input_samples(a), a.decisions.labels().tolist(), fs=a.fs_in,
               write_dir=str(folder))
    return folder / f"{a.name}.{ANNOTATOR}"


def beats_table(a: Analysis):
    """One row per classified beat: record, beat index, sample (input rate), time_s, prob_v, label,
    ruleguard_changed — a pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame({
        "record": a.name,
        "beat": np.arange(len(a.samples), dtype=np.int64),
        "sample": input_samples(a),
        "time_s": a.samples / a.fs,
        "prob_v": a.decisions.prob.astype(np.float32),
        "label": a.decisions.labels(),
        "ruleguard_changed": a.decisions.ruleguard_changed.astype(bool),
    })


def strip_figure(a: Analysis, max_strips: int = 4) -> bytes:
    """PNG of up to ``max_strips`` 10-s ECG strips around PVCs (V in red) and the PVC rate per minute."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = a.samples / a.fs
    v_times = t[a.decisions.is_v]
    starts, last_end = [], -np.inf
    for vt in v_times:
        if vt - 2 >= last_end and len(starts) < max_strips:
            starts.append(max(vt - 2, 0.0))
            last_end = starts[-1] + STRIP_SECONDS
    if not starts:
        starts = [0.0]
    fig, axes = plt.subplots(len(starts) + 1, 1, figsize=(11, 2.1 * (len(starts) + 1)), squeeze=False)
    minutes = np.arange(0, len(a.signal) / a.fs / 60 + 1)
    counts, _ = np.histogram(v_times / 60, bins=minutes)
    axes[0, 0].bar(minutes[:-1], counts, width=0.9, color="tab:red")
    axes[0, 0].set_title(f"{a.name}: PVCs per minute ({int(a.decisions.is_v.sum())} PVCs, "
                         f"{a.summary['pvc_burden_percent']} % of {len(t)} beats)")
    axes[0, 0].set_xlabel("minute")
    for ax, s0 in zip(axes[1:, 0], starts):
        i0, i1 = int(s0 * a.fs), int(min((s0 + STRIP_SECONDS) * a.fs, len(a.signal)))
        ax.plot(np.arange(i0, i1) / a.fs, a.signal[i0:i1], lw=0.7, color="black")
        sel = (t >= s0) & (t < s0 + STRIP_SECONDS)
        for ti, v, si in zip(t[sel], a.decisions.is_v[sel], a.samples[sel]):
            ax.annotate("V" if v else "N", (ti, a.signal[si]), xytext=(0, 6), textcoords="offset points",
                        ha="center", color="tab:red" if v else "tab:gray", fontsize=8, fontweight="bold" if v else None)
        ax.set_xlim(s0, s0 + STRIP_SECONDS)
        ax.set_ylabel("mV")
        ax.grid(alpha=0.25)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def render_html(a: Analysis, png: bytes) -> str:
    s = a.summary
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in s.items()
                   if not isinstance(v, list))

    def episodes(key, title):
        items = s[key]
        body = "".join(f"<li>{e['start_s']} s – {e['end_s']} s ({e['beats']} beats)</li>" for e in items[:50])
        more = f"<li>… {len(items) - 50} more</li>" if len(items) > 50 else ""
        return f"<h3>{title}: {len(items)}</h3><ul>{body}{more}</ul>"

    return f"""<!doctype html><html lang="es"><head><meta charset="utf-8">
<title>arritmias — {html.escape(a.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}th{{text-align:left;padding-right:1em}}</style>
</head><body><h1>PVC analysis of {html.escape(a.name)}</h1>
<table>{rows}</table>
{episodes("runs_of_3_or_more", "Runs of ≥ 3 PVCs")}
{episodes("bigeminy_episodes", "Bigeminy episodes")}
{episodes("trigeminy_episodes", "Trigeminy episodes")}
<img alt="ECG strips with PVCs marked" src="data:image/png;base64,{base64.b64encode(png).decode()}" style="width:100%">
<p>Beats: N = normal or other non-ventricular, V = premature ventricular contraction (AAMI class V).
Annotations: <code>{html.escape(a.name)}.{ANNOTATOR}</code>.</p></body></html>"""


def output_paths(name: str, out_dir: Path, report: bool = True, beats: bool = False) -> dict[str, Path]:
    """Where :func:`write_outputs` puts a recording's files; the summary is written last, so a recording whose
    files all exist was written completely."""
    paths = {"annotations": out_dir / f"{name}.{ANNOTATOR}"}
    if beats:
        paths["beats"] = out_dir / BEATS_DIR / f"{name}.parquet"
    if report:
        paths["report"] = out_dir / f"{name}_report.html"
    paths["summary"] = out_dir / f"{name}_summary.json"
    return paths


def write_outputs(a: Analysis, out_dir: Path, report: bool = True, beats: bool = False) -> dict[str, Path]:
    """Write ``<name>.pvc``, ``<name>_summary.json``, and ``<name>_report.html`` (``report``) and
    ``beats/<name>.parquet`` (``beats``) into ``out_dir`` atomically: each file is written into a temporary folder
    and moved in when all are written, the summary last."""
    paths = output_paths(a.name, out_dir, report, beats)
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{a.name}."))
    try:
        written = {"annotations": write_annotations(a, tmp)}
        if beats:
            written["beats"] = tmp / "beats.parquet"
            beats_table(a).to_parquet(written["beats"], index=False)
        if report:
            written["report"] = tmp / "report.html"
            written["report"].write_text(render_html(a, strip_figure(a)))
        written["summary"] = tmp / "summary.json"
        written["summary"].write_text(json.dumps(a.summary, indent=2))
        for kind, path in paths.items():
            os.replace(written[kind], path)
        return paths
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
