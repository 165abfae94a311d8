"""What a drift check shows people: a one-page summary of the project's own, and Evidently's report made viewable.

The summary page (Spanish, like every report of the project) says what was compared, the verdict and why, and
ranks the features by how far they moved, with a chart; it has no script, so it renders anywhere, MLflow's
artifact viewer included. Evidently's own page is kept for the detail, with one fix: MLflow shows HTML artifacts
in an iframe sandboxed without same-origin rights (``sandbox="allow-scripts"``), where reading ``localStorage``
throws SecurityError. Evidently 0.7's bundle guards most of its reads but not those of its tables (persisted
groupings), which then break the page (reported blank; here, MLflow 3.17 and Chromium 150, the first view rendered
and the unguarded read threw). A few lines at the top of its head give it an in-memory ``localStorage`` when the
real one is refused; opened from disk, nothing changes.
"""

from __future__ import annotations

import html

from arritmias.analysis.clinical_report import figure, img_tag, num, png_bytes

# Features as a reader of the page names them (the columns of arritmias.signal.measures.FEATURES / PREDICTION_FEATURES).
FEATURE_NAMES_ES = {
    "rr_prev_s": "RR anterior (s)", "rr_next_s": "RR siguiente (s)", "rr_ratio": "RR siguiente / anterior",
    "r_amplitude_mv": "altura de la onda R (mV)", "ptp_mv": "amplitud pico a pico (mV)",
    "qrs_width_ms": "anchura del QRS (ms)", "energy_mv2": "energía del latido (mV²)",
    "corr_median_beat": "correlación con el latido mediano", "noise_mv2": "ruido por encima de ~40 Hz (mV²)",
    "wander_mv": "deriva de la línea de base (mV)", "prob_v": "P(V) del modelo",
    "pred_v": "decisión del modelo (1 = V)",
}

STORAGE_SHIM = """<script>/* arritmias: in-memory localStorage where the page is sandboxed (MLflow's artifact viewer) */
(function(){try{window.localStorage.getItem("_");}catch(e){var m={};
var s={getItem:function(k){return k in m?m[k]:null;},
setItem:function(k,v){m[k]=String(v);},removeItem:function(k){delete m[k];},clear:function(){m={};},
key:function(i){return Object.keys(m)[i]||null;},get length(){return Object.keys(m).length;}};
Object.defineProperty(window,"localStorage",{value:s,configurable:true});
Object.defineProperty(window,"sessionStorage",{value:s,configurable:true});}})();</script>"""


def viewer_safe(page: str) -> str:
    """Evidently's saved HTML with :data:`STORAGE_SHIM` as the first thing in its head."""
    at = page.find("<head>")
    if at < 0:
        return STORAGE_SHIM + page
    return page[:at + len("<head>")] + STORAGE_SHIM + page[at + len("<head>"):]


def reason_text(results: dict) -> str:
    """Why the verdict, in a sentence or two."""
    n, drifted = len(results["features"]), results["drifted_features"]
    share_rule = (f"{len(drifted)} de {n} variables ({num(100 * results['drift_share'], 0)} %) superan su umbral; "
                  f"la alarma por proporción salta desde el {num(100 * results['drift_share_threshold'], 0)} %.")
    quality = [f for f in drifted if f in ("noise_mv2", "wander_mv")]
    if not results["drift_detected"]:
        return "Sin deriva. " + share_rule
    parts = []
    if results["reason"] and "share" in results["reason"]:
        parts.append("Deriva por proporción: " + share_rule)
    if quality:
        parts.append(f"Deriva de calidad de señal ({', '.join(FEATURE_NAMES_ES.get(f, f) for f in quality)}): "
                     "estas variables miden la adquisición (ruido, línea de base), no al paciente, y bastan solas.")
    return " ".join(parts)


def scores_png(results: dict) -> bytes:
    """Horizontal bars of each feature's drift score, the threshold as a line, drifted features in red."""
    items = sorted(results["features"].items(), key=lambda kv: kv[1]["score"])
    fig = figure((8, 0.4 * len(items) + 1.2))
    ax = fig.subplots()
    ax.barh([FEATURE_NAMES_ES.get(k, k) for k, _ in items], [v["score"] for _, v in items],
            color=["#c62828" if v["drifted"] else "#607d8b" for _, v in items])
    ax.axvline(results["threshold"], color="black", ls="--", lw=1, label=f"umbral {num(results['threshold'], 2)}")
    ax.set_xlabel(f"puntuación de deriva ({results['method']}; Wasserstein normalizada = desviaciones típicas "
                  "de la referencia)" if results["method"] == "wasserstein" else f"puntuación ({results['method']})")
    ax.set_title("Deriva por variable (rojo: supera el umbral)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return png_bytes(fig, dpi=100)


def render_summary(results: dict, evidently_file: str | None) -> str:
    """The summary page (str) of a drift check's ``results`` (see ``ECGDriftDetector.detect_drift``)."""
    verdict = "DERIVA DETECTADA" if results["drift_detected"] else "Sin deriva"
    colour = "#c62828" if results["drift_detected"] else "#2e7d32"
    rows = []
    for name, f in sorted(results["features"].items(), key=lambda kv: -kv[1]["score"]):
        rows.append(f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(FEATURE_NAMES_ES.get(name, ''))}"
                    f"</td><td>{_fmt(f.get('reference_median'))}</td><td>{_fmt(f.get('current_median'))}</td>"
                    f"<td>{num(f['score'], 3)}</td><td>{num(f['threshold'], 2)}</td>"
                    f"<td>{'<b style=color:#c62828>sí</b>' if f['drifted'] else 'no'}</td></tr>")
    link = (f'<p>Detalle por variable (distribuciones): informe de Evidently <code>{html.escape(evidently_file)}'
            "</code>, en la misma carpeta.</p>" if evidently_file else "")
    return f"""<!doctype html><html lang="es"><head><meta charset="utf-8"><title>Deriva de datos — {verdict}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:1.5em auto;padding:0 1em;color:#222}}
td,th{{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left}}table{{border-collapse:collapse}}
.verdict{{font-size:1.3em;font-weight:bold;color:{colour}}}</style></head><body>
<h1>Control de deriva de los datos de ECG</h1>
<p class="verdict">{verdict}</p><p>{html.escape(reason_text(results))}</p>
<h2>Qué se comparó</h2><table>
<tr><th>Referencia</th><td>{html.escape(str(results.get('reference', 'referencia')))}: {results['n_reference']}
latidos</td></tr>
<tr><th>Actual</th><td>{html.escape(str(results.get('current', 'actual')))}: {results['n_current']} latidos</td></tr>
<tr><th>Método</th><td>{html.escape(results['method'])}, umbral por variable {num(results['threshold'], 2)},
proporción de alarma {num(100 * results['drift_share_threshold'], 0)} %</td></tr>
<tr><th>Fecha (UTC)</th><td>{_when(results['timestamp'])}</td></tr></table>
<h2>Variables, de más a menos deriva</h2>
{img_tag(scores_png(results), "puntuación de deriva por variable", "max-width:100%")}
<table><thead><tr><th>Variable</th><th>Qué mide</th><th>Mediana ref.</th><th>Mediana actual</th><th>Puntuación</th>
<th>Umbral</th><th>Deriva</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
{link}</body></html>"""


def _when(stamp: str) -> str:
    """``20261129T041100845006Z`` as ``2026-11-29 04:11:00``."""
    from datetime import datetime

    return datetime.strptime(stamp[:15], "%Y%m%dT%H%M%S").strftime("%Y-%m-%d %H:%M:%S")


def _fmt(value) -> str:
    return "—" if value is None else num(value, 3)
