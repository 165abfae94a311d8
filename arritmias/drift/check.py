"""Drift monitoring with Evidently: is incoming ECG data still like the data the model was trained on?

    from arritmias.drift.check import ECGDriftDetector      # also importable as monitoring.drift_detector
    detector = ECGDriftDetector()
    detector.load_reference_data(reference_df)   # beat features (arritmias.drift.features)
    results = detector.detect_drift(current_df)
    results["drift_detected"], results["drifted_features"]

Choice of test and thresholds. With thousands of beats on each side, p-value tests (Kolmogorov-Smirnov,
chi-square) call a negligible shift significant, so a healthy clinic would alarm every week. We use Evidently's
normed Wasserstein distance instead: how far the distribution moved, in reference standard deviations.

* A feature drifts at ``threshold`` = 0.3. Measured on DS1 (``benchmarks/bench_drift.py``): 1000-beat batches
  of the same patients later in their recordings score up to ~0.25 (95th percentile, heart-rate and energy
  changes over half an hour), while real acquisition changes move their features by 0.4 to 3.
* The dataset drifts when at least ``drift_share`` = 0.3 of the features drift (rhythm and morphology can move
  with the patient mix, so they must agree), or when a signal-quality feature (``noise_mv2``, ``wander_mv``)
  drifts on its own: those measure the acquisition, not the patient, and baseline wander shows up in little
  else once each beat's median is removed.

Run as a command (exit 0 no drift, 1 drift, 2 bad input); the seed's ``python monitoring/drift_detector.py`` takes
the same options:

    arritmias drift --reference-records DS1 --current-records 100,103 --out reports/
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from arritmias.tracking import runs
from arritmias.util.atomic import staged_files
from arritmias.errors import DataError
from arritmias.drift.features import PREDICTION_FEATURES
from arritmias.signal.measures import FEATURES

DEFAULT_METHOD = "wasserstein"
DEFAULT_THRESHOLD = 0.3
DEFAULT_DRIFT_SHARE = 0.3
QUALITY_FEATURES = ("noise_mv2", "wander_mv")  # drift alone is enough: they describe the acquisition
MONITORING_EXPERIMENT = "monitoring_ecg"
ALERTS_LOG = "drift_alerts.log"


# Fewer beats are no distribution: a handful of beats moves any distance past any threshold ("DRIFT 10/10" from one
# row). 50 beats is under a minute of ECG.
MIN_BEATS = 50


class ECGDriftDetector:
    """Compare current beat features with a reference set using Evidently's data drift preset.

    Parameters
    ----------
    features : list of str, optional
        Columns to monitor (default: every ``arritmias.signal.measures.FEATURES`` column, plus ``prob_v`` / ``pred_v``
        when the reference has them: prediction drift).
    method, threshold, drift_share
        Evidently drift method per feature, its threshold, and the share of drifted features that makes the
        dataset drift (see the module docstring for why these defaults).
    out_dir : path, optional
        Where ``detect_drift`` writes ``drift_report_<timestamp>.html`` and ``drift_summary_<timestamp>.json``
        (written to a temporary name, then renamed) and appends to ``drift_alerts.log``; None writes nothing.
    """

    def __init__(self, features: list[str] | None = None, method: str = DEFAULT_METHOD,
                 threshold: float = DEFAULT_THRESHOLD, drift_share: float = DEFAULT_DRIFT_SHARE,
                 out_dir: str | Path | None = None):
        if not 0 < drift_share <= 1:
            raise DataError(f"drift_share={drift_share}: must be in (0, 1]")
        if not (np.isfinite(threshold) and threshold > 0):  # NaN would compare false everywhere: "no drift"
            raise DataError(f"threshold={threshold}: must be a finite number > 0")
        self.features = list(features) if features else None
        self.method, self.threshold, self.drift_share = method, threshold, drift_share
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.reference: pd.DataFrame | None = None

    def _validate(self, df, what: str, columns: list[str]) -> pd.DataFrame:
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
        if df.empty:
            raise DataError(f"{what} is empty")
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise DataError(f"{what} lacks columns {missing} (build them with `arritmias features`)")
        frame = df[columns]
        non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if non_numeric:
            raise DataError(f"{what}: columns {non_numeric} are not numeric")
        bad = [c for c in columns if not np.all(np.isfinite(frame[c].to_numpy(dtype=float)))]
        if bad:
            raise DataError(f"{what}: columns {bad} hold NaN or infinite values")
        if len(df) < MIN_BEATS:
            raise DataError(f"{what} has {len(df)} beats; at least {MIN_BEATS} are needed to compare distributions "
                            "(about a minute of ECG)")
        return frame.astype("float64").reset_index(drop=True)

    def load_reference_data(self, reference_df: pd.DataFrame, label: str = "datos de referencia") -> None:
        """Set the reference beats; the monitored columns are fixed here (extra columns are ignored)."""
        if self.features is None:
            cols = list(FEATURES)
            if isinstance(reference_df, pd.DataFrame):
                cols += [c for c in PREDICTION_FEATURES if c in reference_df.columns]
            self.features = cols
        self.reference = self._validate(reference_df, "reference data", self.features)
        self.reference_label = label

    def detect_drift(self, current_df: pd.DataFrame, label: str = "datos actuales") -> dict:
        """Run the drift report of ``current_df`` (described by ``label``) against the reference; returns the
        results dict.

        Keys: ``drift_detected``, ``reason`` ("share", "signal_quality" or both), ``drifted_features``,
        ``drift_share`` (share of monitored features that drifted), ``features`` (per feature: method, score,
        threshold, drifted, reference_median, current_median), ``reference`` and ``current`` (labels),
        ``n_reference``, ``n_current``, ``method``, ``threshold``, ``timestamp``, and the written files
        ``report_html`` (Evidently's), ``summary_html`` (the project's page) and ``summary_json`` (paths, or None
        when no ``out_dir``).
        """
        if self.reference is None:
            raise DataError("no reference data: call load_reference_data(reference_df) first")
        current = self._validate(current_df, "current data", self.features)
        from evidently import Report
        from evidently.presets import DataDriftPreset

        report = Report([DataDriftPreset(columns=self.features, method=self.method, threshold=self.threshold,
                                         drift_share=self.drift_share)])
        snapshot = report.run(current_data=current, reference_data=self.reference)
        per_feature = {}
        for metric in snapshot.dict()["metrics"]:
            column = metric["config"].get("column")
            if metric["config"]["type"].endswith("ValueDrift") and column in self.features:
                score = float(metric["value"])
                per_feature[column] = {"method": self.method, "score": score, "threshold": self.threshold,
                                       "drifted": _drifted(self.method, score, self.threshold),
                                       "reference_median": float(self.reference[column].median()),
                                       "current_median": float(current[column].median())}
        drifted = [c for c in self.features if per_feature[c]["drifted"]]
        share = len(drifted) / len(self.features)
        quality = [c for c in drifted if c in QUALITY_FEATURES]
        reason = ("share" if share >= self.drift_share else "") + ("+" if share >= self.drift_share and quality
                                                                  else "") + ("signal_quality" if quality else "")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        results = {
            "timestamp": stamp, "drift_detected": bool(reason), "reason": reason or None, "drifted_features": drifted,
            "drift_share": share, "drift_share_threshold": self.drift_share, "features": per_feature,
            "reference": self.reference_label, "current": label, "n_reference": len(self.reference),
            "n_current": len(current), "method": self.method, "threshold": self.threshold, "report_html": None,
            "summary_html": None, "summary_json": None,
        }
        if self.out_dir is not None:
            self._write(snapshot, results)
        return results

    def _write(self, snapshot, results: dict) -> None:
        out = self.out_dir
        out.mkdir(parents=True, exist_ok=True)
        from arritmias.drift.report import render_summary, viewer_safe

        paths = {key: out / f"drift_{kind}_{results['timestamp']}.{ext}" for key, kind, ext in
                 (("report_html", "report", "html"), ("summary_html", "summary", "html"),
                  ("summary_json", "summary", "json"))}
        results.update({key: str(path) for key, path in paths.items()})
        with staged_files(paths) as tmp:  # the JSON last: a summary on disk means the run finished
            snapshot.save_html(str(tmp["report_html"]))
            page = tmp["report_html"].read_text(encoding="utf-8")
            tmp["report_html"].write_text(viewer_safe(page), encoding="utf-8")
            tmp["summary_html"].write_text(render_summary(results, paths["report_html"].name), encoding="utf-8")
            tmp["summary_json"].write_text(json.dumps(results, indent=2))
        line = (f"{results['timestamp']}\tdrift={'yes' if results['drift_detected'] else 'no'}\t"
                f"share={results['drift_share']:.2f}\tdrifted={','.join(results['drifted_features']) or '-'}\n")
        with (out / ALERTS_LOG).open("a") as fh:
            fh.write(line)


def _drifted(method: str, score: float, threshold: float) -> bool:
    """Distances drift above the threshold; statistical tests (p-values) drift below it."""
    p_value_methods = {"ks", "chisquare", "z", "t_test", "mannw", "anderson", "cramer_von_mises", "fisher_exact",
                       "g_test", "epps_singleton", "empirical_mmd"}
    return score < threshold if method in p_value_methods else score >= threshold


def log_to_mlflow(results: dict, args: dict, tracking_uri: str) -> str:
    """Log one monitoring run (params, drift metrics, the report files) to the ``monitoring_ecg`` experiment."""
    import mlflow

    runs.use_tracking(tracking_uri)
    runs.use_experiment(MONITORING_EXPERIMENT)
    with mlflow.start_run(run_name=f"drift_{results['timestamp']}") as run:
        mlflow.log_params({k: v for k, v in args.items() if v is not None})
        mlflow.log_metrics({"drift_detected": float(results["drift_detected"]), "drift_share": results["drift_share"],
                            "n_current": results["n_current"], "n_reference": results["n_reference"],
                            **{f"score_{k}": v["score"] for k, v in results["features"].items()}})
        mlflow.set_tag("drifted_features", ",".join(results["drifted_features"]) or "-")
        for key in ("summary_html", "report_html", "summary_json"):
            if results[key]:
                mlflow.log_artifact(results[key])
    return run.info.run_id


def describe_side(csv: str | None, records: str | None) -> str:
    """What one side of the comparison is, for the reports: a file, or a record list as given and its size."""
    from arritmias.data.beats import parse_records

    if csv:
        return f"fichero {csv}"
    names = parse_records(records)
    return f"registros {records}" + (f" ({len(names)} registros)" if len(names) > 1 and records != ",".join(names)
                                     else "")


def load_side(csv: str | None, records: str | None, data_dir: str | None, fs: float | None, model,
              units: str = "mV", decimal: str = "auto") -> pd.DataFrame:
    """One side's beat features: read from ``csv``, or built from ``records`` (lead CSVs at ``fs`` Hz in
    ``units``, decimal mark ``decimal``), with the model's output when ``model`` (a Detector) is given."""
    from arritmias.data.beats import parse_records
    from arritmias.data.records import record_paths
    from arritmias.drift.features import records_features
    from arritmias.data.records import resolve_data_dir

    if csv:
        try:
            return pd.read_csv(csv)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read '{csv}': {exc}") from None
    return records_features(record_paths(parse_records(records), resolve_data_dir(data_dir)), fs_csv=fs,
                            detector=model, units=units, decimal=decimal)


def check(current: str | None = None, current_records: str | None = None, reference: str | None = None,
          reference_records: str | None = "DS1", data_dir: str | None = None, fs: float | None = None,
          units: str = "mV", decimal: str = "auto",
          model_uri: str | None = None, method: str = DEFAULT_METHOD, threshold: float = DEFAULT_THRESHOLD,
          drift_share: float = DEFAULT_DRIFT_SHARE, out: str | Path | None = "reports",
          tracking_uri: str | None = None) -> dict:
    """The drift check ``arritmias drift`` runs: features of each side (a CSV, or records), the Evidently
    comparison, the reports in ``out`` and, with ``tracking_uri``, a run in ``monitoring_ecg``; returns the
    results of :meth:`ECGDriftDetector.detect_drift` (plus ``mlflow_run_id`` when logged)."""
    model = None
    if model_uri:
        from arritmias.model.detector import Detector

        if tracking_uri:
            runs.use_tracking(tracking_uri, "read", model_uri)
        model = Detector.from_model_uri(model_uri)
    reference_df = load_side(reference, reference_records, data_dir, fs, model, units, decimal)
    current_df = load_side(current, current_records, data_dir, fs, model, units, decimal)
    detector = ECGDriftDetector(method=method, threshold=threshold, drift_share=drift_share, out_dir=out)
    detector.load_reference_data(reference_df, describe_side(reference, reference_records))
    results = detector.detect_drift(current_df, describe_side(current, current_records))
    if tracking_uri:
        results["mlflow_run_id"] = log_to_mlflow(
            results, {"reference": reference or reference_records, "current": current or current_records,
                      "method": method, "threshold": threshold, "drift_share_threshold": drift_share,
                      "model_uri": model_uri}, tracking_uri)
    return results
