"""The ectopy report a clinician reads: one self-contained HTML page in Spanish (``lang="es"``, like the users' guide).

What it shows, in the order a Holter report does: the summary (duration hh:mm:ss, beats, heart rate, PVC count
and burden, and SVE count and burden for a model with the S answer), burdens per hour, the patterns as one compact
table (couplets, runs of >= 3, bigeminy, trigeminy; SVE couplets and SVT runs; every episode in a folded table),
ectopic beats per minute, and ECG strips chosen from the episodes (the first of each
kind and the densest minute) drawn on the standard paper grid: 25 mm/s, 10 mm/mV, small squares of 1 mm
(0.04 s, 0.1 mV) and large ones of 5 mm (0.2 s, 0.5 mV). The footer says which model, threshold and date
produced it and that it is for research use only. Times are from the start of the recording.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from arritmias.analysis.recording import Analysis
from arritmias.data.records import nearest_lead

STRIP_S = 10.0  # seconds per strip: 250 mm of paper at 25 mm/s
PAPER_MM_PER_S, PAPER_MM_PER_MV = 25.0, 10.0
LEAD_IN_S = 2.0  # a strip starts this long before its episode, so the beats before it show the rhythm
MAX_EPISODE_ROWS = 200  # the folded table of all episodes lists at most this many per kind
RESEARCH_ONLY = ("Solo para uso en investigación. No es un dispositivo médico: no sustituye la lectura del "
                 "trazado por un profesional ni debe usarse para decisiones clínicas.")
# What the page says above an SVE count: arritmias.analysis.recording.SUPRA_CAUTION, in Spanish.
SUPRA_CAUTION_ES = ("Recuento de ESV experimental (modelo entrenado con --supra): en pacientes que el modelo no vio, "
                    "la mayoría de las ESV que informa no lo son y pasa por alto muchas de las reales "
                    "(docs/benchmarks.md). Confirme cada ESV en el trazado.")

# (summary key, name in the tables, name in a strip title)
V_PATTERNS = (("couplet_episodes", "Parejas (2 EV seguidas)", "Primera pareja de EV"),
              ("runs_of_3_or_more", "Rachas de ≥ 3 EV", "Primera racha de ≥ 3 EV"),
              ("bigeminy_episodes", "Bigeminismo", "Primer episodio de bigeminismo"),
              ("trigeminy_episodes", "Trigeminismo", "Primer episodio de trigeminismo"))
S_PATTERNS = (("sve_couplet_episodes", "Parejas de ESV (2 seguidas)", "Primera pareja de ESV"),
              ("svt_runs", "Rachas de TSV (≥ 3 ESV)", "Primera racha de TSV"))
LABEL_COLOURS = {"V": "#c62828", "S": "#1565c0", "Q": "#ef6c00"}


def patterns(a: Analysis) -> tuple:
    """The patterns the report lists: the ventricular ones, and the supraventricular ones for a model with the S
    answer."""
    return V_PATTERNS + (S_PATTERNS if "sve_count" in a.summary else ())


def hms(seconds: float) -> str:
    """``hh:mm:ss`` of a time in seconds (rounded down to the second)."""
    s = int(max(seconds, 0))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def num(value: float, digits: int = 1) -> str:
    """A number the Spanish way: decimal comma."""
    return f"{value:.{digits}f}".replace(".", ",")


def choose_strips(a: Analysis) -> list[tuple[str, float]]:
    """(title, start in s) of the strips to draw: the first episode of each pattern, the 10 s with most PVCs in
    the densest minute, else the first isolated PVC, else the start; strips overlapping an earlier one by more
    than half are dropped."""
    s, duration = a.summary, len(a.signal) / a.fs
    t_v = (a.samples / a.fs)[a.decisions.is_v]
    last_start = max(duration - STRIP_S, 0.0)
    wanted = [(title, s[key][0]["start_s"]) for key, _, title in patterns(a) if s.get(key)]
    if len(t_v):
        counts = np.bincount((t_v // 60).astype(np.int64))
        minute = int(np.argmax(counts))
        in_minute = t_v[(t_v >= 60 * minute) & (t_v < 60 * (minute + 1))]
        best = max(in_minute, key=lambda t0: np.sum((t_v >= t0) & (t_v < t0 + STRIP_S - LEAD_IN_S)))
        wanted.append((f"Minuto con más EV ({hms(60 * minute)}, {counts[minute]} EV)", float(best)))
        if not any(s.get(key) for key, _, _ in V_PATTERNS):
            wanted.insert(0, ("Primera EV", float(t_v[0])))
    else:
        wanted.append(("Inicio del registro (sin EV)", LEAD_IN_S))
    strips: list[tuple[str, float]] = []
    for title, t0 in wanted:
        start = float(np.clip(t0 - LEAD_IN_S, 0.0, last_start))
        if all(abs(start - other) > STRIP_S / 2 for _, other in strips):
            strips.append((title, start))
    return strips


def png_bytes(fig, dpi: int = 110) -> bytes:
    """``fig`` as PNG bytes (for embedding in a page)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure(figsize: tuple[float, float]):
    """A matplotlib Figure of ``figsize`` inches drawn by Agg, outside pyplot: reports are drawn on servers
    without a display, nothing needs closing, and pyplot's import (~0.6 s with its 3-D toolkit) is skipped."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def strip_png(a: Analysis, start_s: float) -> tuple[bytes, float, float]:
    """PNG of ``STRIP_S`` seconds of the lead from ``start_s`` on ECG paper, beats labelled N / S / V / Q; returns the
    PNG and its paper size (width, height) in mm, so the page can show it at 25 mm/s and 10 mm/mV."""
    i0 = int(start_s * a.fs)
    i1 = min(int((start_s + STRIP_S) * a.fs), len(a.signal))
    x = a.signal[i0:i1]
    lo = np.floor(np.percentile(x, 0.5) * 2) / 2 - 0.5
    hi = max(np.ceil(np.percentile(x, 99.5) * 2) / 2 + 1.0, lo + 3.0)  # room above for the beat labels
    width_mm, height_mm = STRIP_S * PAPER_MM_PER_S, (hi - lo) * PAPER_MM_PER_MV
    fig = figure((width_mm / 25.4, height_mm / 25.4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(start_s, start_s + STRIP_S)
    ax.set_ylim(lo, hi)
    # ECG paper: 1-mm lines (0.04 s, 0.1 mV) under 5-mm ones (0.2 s, 0.5 mV), drawn as two line collections;
    # as ticks, matplotlib builds an object per line (~300 a strip), 70 % of a 24-hour report's drawing time.
    for step_s, step_mv, colour, lw in ((0.04, 0.1, "#f6cfcb", 0.35), (0.2, 0.5, "#e3877f", 0.7)):
        ax.vlines(np.arange(start_s, start_s + STRIP_S + 1e-9, step_s), lo, hi, colors=colour, lw=lw, zorder=0)
        ax.hlines(np.arange(lo, hi + 1e-9, step_mv), start_s, start_s + STRIP_S, colors=colour, lw=lw, zorder=0)
    ax.set_axis_off()
    ax.plot(np.arange(i0, i1) / a.fs, x, lw=0.9, color="black")
    labels = a.decisions.classes()
    t = a.samples / a.fs
    top = hi - 0.35
    for k in np.flatnonzero((t >= start_s) & (t < start_s + STRIP_S)):
        colour = LABEL_COLOURS.get(labels[k], "#555555")
        ax.text(t[k], top, labels[k], ha="center", va="center", fontsize=9, color=colour,
                fontweight="bold" if labels[k] != "N" else None)
    ax.text(start_s + 0.05, lo + 0.12, f"{hms(start_s)}   25 mm/s · 10 mm/mV", fontsize=8, color="#333333")
    return png_bytes(fig), width_mm, height_mm


def per_minute_png(a: Analysis) -> bytes:
    """Bar chart of PVCs (and SVEs, for a model with the S answer) in each minute of the recording, x in hh:mm from
    the start."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    minutes = int(np.ceil(len(a.signal) / a.fs / 60))
    t = a.samples / a.fs
    fig = figure((10, 2.6))
    ax = fig.subplots()
    kinds = [("EV", a.decisions.is_v, LABEL_COLOURS["V"])]
    if a.decisions.is_s is not None:
        kinds.append(("ESV", a.decisions.supra(), LABEL_COLOURS["S"]))
    for name, flags, colour in kinds:
        counts = np.bincount((t[flags] // 60).astype(np.int64), minlength=minutes)[:minutes]
        # One filled step outline, not a rectangle per minute (1,440 artists for 24 hours): the same picture.
        ax.stairs(counts, np.arange(minutes + 1), fill=len(kinds) == 1, color=colour, label=name)
    ax.set_xlim(0, max(minutes, 1))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda m, _: hms(60 * m)[:5]))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("tiempo desde el inicio (hh:mm)")
    ax.set_ylabel("latidos por minuto")
    if len(kinds) > 1:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"Registro {a.name}: extrasístoles por minuto ({' y '.join(k[0] for k in kinds)})")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def img_tag(png: bytes, alt: str, style: str = "width:100%") -> str:
    """An ``<img>`` carrying ``png`` inline, so the page is one self-contained file."""
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" style="{style}" src="data:image/png;base64,{data}">'


def _table(head: list[str], rows: list[list], cls: str = "") -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _summary_rows(a: Analysis) -> list[list]:
    s = a.summary
    rate = s.get("mean_heart_rate_bpm")
    rows = [["Duración del registro", hms(s["duration_s"])],
            ["Latidos detectados", s["beats"]],
            ["Frecuencia cardiaca media", f"{num(rate, 0)} lpm" if rate is not None else "—"],
            ["Extrasístoles ventriculares (EV)", s["pvc_count"]],
            ["Carga de EV", f"{num(s['pvc_burden_percent'], 2)} % de los latidos legibles"]]
    if "sve_count" in s:
        rows += [["Extrasístoles supraventriculares (ESV)", s["sve_count"]],
                 ["Carga de ESV", f"{num(s['sve_burden_percent'], 2)} % de los latidos legibles"]]
        if s.get("irregular_rhythm_beats"):
            rows.append(["Ritmo irregular (compatible con fibrilación o flúter auricular)",
                         f"{num(s['irregular_rhythm_percent'], 2)} % de los latidos legibles: ahí no se cuentan ESV"])
    if s.get("beats_unreadable_not_classified") or s.get("seconds_unreadable"):
        rows.append(["Tramos ilegibles", f"{hms(s['seconds_unreadable'])} ({s['beats_unreadable_not_classified']} "
                                         "latidos no clasificados, marcados Q)"])
    if s.get("beats_at_edges_not_classified"):
        rows.append(["Latidos en los bordes sin clasificar", s["beats_at_edges_not_classified"]])
    return rows


def _patterns(a: Analysis) -> str:
    s = a.summary
    rows = []
    for key, name, _ in patterns(a):
        eps = s.get(key, [])
        rows.append([name, len(eps), hms(eps[0]["start_s"]) if eps else "—",
                     f"{max(e['beats'] for e in eps)} latidos" if eps else "—"])
    table = _table(["Patrón", "Episodios", "Primero", "Más largo"], rows, "compact")
    every = [[name, hms(e["start_s"]), hms(e["end_s"]), e["beats"]]
             for key, name, _ in patterns(a) for e in s.get(key, [])[:MAX_EPISODE_ROWS]]
    total = sum(len(s.get(key, [])) for key, _, _ in patterns(a))
    if not every:
        return table
    shown = "" if len(every) == total else f" (se muestran {len(every)})"
    return (table + f"<details><summary>Todos los episodios: {total}{shown}</summary>"
            + _table(["Patrón", "Inicio", "Fin", "Latidos"], every, "compact") + "</details>")


def _footer(a: Analysis) -> str:
    s, m = a.summary, a.summary.get("model") or {}
    if m.get("version") is not None:
        which = f"{m['name']} versión {m['version']} ({m['uri']})"
    else:
        which = m.get("uri", "desconocido")
    th = m.get("threshold_recording")
    rule = (f"EV si P(V) ≥ {num(th, 3)} tras sumar la evidencia de su familia morfológica (peso "
            f"{num(m.get('family_weight', 0), 1)}); no es un latido si P(no latido) ≥ "
            f"{num(m.get('not_beat_threshold', 0), 2)}; RuleGuard {'activo' if m.get('ruleguard') else 'inactivo'}"
            if th is not None else "")
    th_s = m.get("threshold_s")
    rule_s = f"ESV si P(S) ≥ {num(th_s, 3)} según el ritmo alrededor del latido, y no es EV" if th_s is not None else (
        "Este modelo no distingue las extrasístoles supraventriculares (anterior a la clase S)" if th is not None else "")
    items = [f"Modelo: {which}", rule, rule_s, f"Fecha del análisis: {s.get('analysed_at_utc', '—')} (UTC)",
             f"Registro: {s['record']} · derivación {s['lead']} · {num(s['fs_in_hz'], 0)} Hz · {s['source']}",
             lead_note_es(s),
             f"arritmias {m.get('arritmias_version', '')}. N = latido normal u otro no ectópico; V = extrasístole "
             "ventricular (clase AAMI V); S = extrasístole supraventricular, auricular o de la unión (clase AAMI S); "
             "Q = no clasificable (tramo ilegible); las detecciones que no son latidos (ondas "
             "P o T, ruido) no se cuentan. Las horas son desde el inicio del "
             "registro."]
    return "".join(f"<li>{html.escape(i)}</li>" for i in items if i)


def lead_note_es(s: dict) -> str:
    """The report's line for a lead other than MLII (see :func:`arritmias.analysis.lead_choice`); "" for MLII."""
    leads = s.get("leads_in_record") or []
    if s.get("lead") == "MLII":
        return ""
    if leads:
        options = ", ".join(f"{i} = {name}" for i, name in enumerate(leads))
        if nearest_lead(s.get("lead")):
            return (f"Atención: analizado en la derivación {s['lead']}; el registro no tiene MLII, la derivación con "
                    f"la que se entrenó el modelo (la II comparte su eje). Otra derivación: --deriv-idx ({options}).")
        return (f"Atención: analizado en la derivación {s['lead']}; el registro no tiene MLII, la derivación con la "
                "que se entrenó el modelo, ni la II. En otras derivaciones el modelo pasa por alto la mayoría de las "
                "extrasístoles ventriculares y llama EV a algunos latidos normales: no se fíe de estos recuentos. "
                f"Otra derivación: --deriv-idx ({options}).")
    return (f"Atención: la columna «{s['lead']}» se analizó como la derivación MLII del modelo; otra columna: "
            "--column NOMBRE.")


CSS = """body{font-family:system-ui,sans-serif;max-width:1040px;margin:1.5em auto;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.warn{background:#fff4e5;border-left:4px solid #ef6c00;padding:.5em .8em}
table{border-collapse:collapse;margin:.4em 0}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:left}
table.kv th{font-weight:normal;color:#555}table.compact td:nth-child(n+2){font-variant-numeric:tabular-nums}
figure{margin:1em 0;overflow-x:auto}figcaption{font-size:.9em;color:#444}footer{font-size:.85em;color:#444}
@media print{.warn{border:1px solid #ef6c00}details{display:none}}"""


def render_html(a: Analysis) -> str:
    """The whole report page (str); images are embedded, so the one file can be mailed or archived."""
    s = a.summary
    kv = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in _summary_rows(a))
    supra = "sve_count" in s
    hours = _table(["Hora", "Latidos", "EV", "Carga de EV"] + (["ESV", "Carga de ESV"] if supra else []),
                   [[f"{hms(h['start_s'])[:5]}–{hms(h['end_s'])[:5]}", h["beats"], h["pvc_count"],
                     f"{num(h['pvc_burden_percent'], 2)} %"]
                    + ([h["sve_count"], f"{num(h['sve_burden_percent'], 2)} %"] if supra else [])
                    for h in s.get("per_hour", [])], "compact")
    strips = []
    for title, start in choose_strips(a):
        png, w_mm, _ = strip_png(a, start)
        strips.append(f"<figure>{img_tag(png, title, f'width:{w_mm:.0f}mm;max-width:none')}<figcaption>"
                      f"{html.escape(title)}: {hms(start)}–{hms(start + STRIP_S)}</figcaption></figure>")
    name = html.escape(a.name)
    return f"""<!doctype html><html lang="es"><head><meta charset="utf-8">
<title>Informe de {"extrasístoles" if supra else "EV"} — registro {name}</title><style>{CSS}</style></head><body>
<h1>Informe de extrasístoles {"ventriculares y supraventriculares" if supra else "ventriculares"} — registro {name}</h1>
<p class="warn"><strong>{html.escape(RESEARCH_ONLY)}</strong></p>
{f'<p class="warn">{html.escape(SUPRA_CAUTION_ES)}</p>' if supra else ""}
<h2>Resumen</h2><table class="kv">{kv}</table>
<h2>Carga por hora</h2>{hours}
<h2>Patrones</h2>{_patterns(a)}
<h2>Extrasístoles por minuto</h2>{img_tag(per_minute_png(a), "Extrasístoles por minuto")}
<h2>Tiras de ECG</h2><p>Papel estándar: 25 mm/s, 10 mm/mV; cuadro pequeño 0,04 s × 0,1 mV, grande 0,2 s × 0,5 mV.
Latidos: <b style="color:#c62828">V</b> extrasístole ventricular, <b style="color:#1565c0">S</b> extrasístole
supraventricular, N normal, <b style="color:#ef6c00">Q</b> no clasificable.</p>
{"".join(strips)}
<h2>Procedencia</h2><footer><ul>{_footer(a)}</ul></footer>
</body></html>"""
