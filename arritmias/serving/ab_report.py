"""``arritmias ab-report``: what the prediction log of ``serve --engine ray`` says about champion and challenger.

Per arm: requests, beats, V rate and the arm's scoring latency. With a shadow: on the same beats, how often the
shadow and the model that answered disagree, and which beats. With annotated records (requests that carried the
record name as ``subject`` and each beat's ``sample``): per-arm Se / +P / F1 against the reference labels and, when
the arms scored the same beats (shadow mode), the decision ``promote --challenger`` makes (V F1 not lower, and
McNemar's exact test not showing it worse). Arms of a split saw different beats, so McNemar cannot pair them:
their figures are reported and no decision is made. Logged to the MLflow experiment ``ab_testing_ecg``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from arritmias.errors import DataError

AB_EXPERIMENT = "ab_testing_ecg"


@dataclass
class ABReport:
    arms: pd.DataFrame  # one row per arm: requests, beats, v_rate, latency_p50_ms, latency_p99_ms, model_version
    disagreement_rate: float | None = None  # shadow vs the arm that answered, on the same beats
    disagreements: pd.DataFrame | None = None  # those beats
    accuracy: pd.DataFrame | None = None  # per arm against annotations: beats, se_V, p_V, f1_V
    decision: dict | None = None  # candidate, accepted, reason, p_value (paired beats only)
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)


def arm_summary(log: pd.DataFrame) -> pd.DataFrame:
    """Requests, beats, V rate and scoring latency (per request) of each arm."""
    per_request = log.drop_duplicates(["arm", "request_id"])
    rows = []
    for arm, part in log.groupby("arm", sort=True):
        lat = per_request.loc[per_request["arm"] == arm, "latency_ms"].to_numpy(np.float64)
        rows.append({"arm": arm, "model_version": int(part["model_version"].iloc[0]),
                     "requests": int(part["request_id"].nunique()), "beats": len(part),
                     "v_rate": round(float((part["label"] == "V").mean()), 4),
                     "latency_p50_ms": round(float(np.percentile(lat, 50)), 2),
                     "latency_p99_ms": round(float(np.percentile(lat, 99)), 2)})
    return pd.DataFrame(rows)


def shadow_pairs(log: pd.DataFrame) -> pd.DataFrame:
    """Each beat the shadow scored beside the answer the client got: columns of both, suffixed _served/_shadow."""
    served = log[log["arm"] != "shadow"]
    shadow = log[log["arm"] == "shadow"]
    return served.merge(shadow, on=["request_id", "beat"], suffixes=("_served", "_shadow"))


def reference_labels(log: pd.DataFrame, records: tuple[str, ...], data_dir) -> pd.Series:
    """The reference AAMI class (N or V) of each logged beat that names a record and sample among ``records``
    (NaN for the others: no annotation, or a class other than N/V)."""
    from arritmias.data.beats import n_v_beats

    beats = n_v_beats(data_dir, records)
    truth = pd.Series(beats.aami, index=pd.MultiIndex.from_arrays([beats.record.astype(str),
                                                                   beats.sample.astype(np.int64)]))
    truth = truth[~truth.index.duplicated()]
    has = log["sample"].notna()
    keys = pd.MultiIndex.from_arrays([log.loc[has, "subject"].astype(str), log.loc[has, "sample"].astype(np.int64)])
    out = pd.Series(np.nan, index=log.index, dtype=object)
    out[has] = truth.reindex(keys).to_numpy()
    return out


def report(log_dir: Path, records: tuple[str, ...] | None = None, data_dir=None,
           log_to_mlflow: bool = True) -> ABReport:
    """Read the prediction log under ``log_dir`` and compare the arms (see the module's docstring)."""
    from arritmias.training.evaluation import binary_metrics
    from arritmias.serving.prediction_log import read_log

    log = read_log(log_dir)
    if log.empty:
        raise DataError(f"no decisions logged under {log_dir}: serve with `arritmias serve --engine ray "
                        f"--log-dir {log_dir}` first")
    out = ABReport(arm_summary(log))
    if (log["arm"] == "shadow").any():
        pairs = shadow_pairs(log)
        differ = pairs["label_served"] != pairs["label_shadow"]
        out.disagreement_rate = round(float(differ.mean()), 5) if len(pairs) else None
        out.disagreements = pairs.loc[differ, ["request_id", "beat", "subject_served", "sample_served",
                                               "arm_served", "label_served", "prob_v_served", "label_shadow",
                                               "prob_v_shadow"]].rename(columns=lambda c: c.replace("_served", "")
                                                                        if c in ("subject_served", "sample_served")
                                                                        else c)
    if records:
        from arritmias.data.records import resolve_data_dir

        truth = reference_labels(log, records, resolve_data_dir(data_dir))
        known = truth.isin(["N", "V"])
        if not known.any():
            out.notes.append("no logged beat names an annotated N/V beat of those records (send 'subject': "
                             "record name and each beat's 'sample')")
        else:
            rows = []
            for arm, part in log[known].groupby("arm", sort=True):
                m = binary_metrics(truth[part.index].to_numpy() == "V", part["label"].to_numpy() == "V")
                rows.append({"arm": arm, "beats": len(part), **{k: round(v, 4) for k, v in m.items()
                                                               if k in ("recall_V", "precision_V", "f1_V")}})
            out.accuracy = pd.DataFrame(rows)
            out.decision = _paired_decision(log, truth, known)
            if out.decision is None:
                out.notes.append("the arms scored different beats (a split without shadow): McNemar needs the "
                                 "same beats, so no promotion decision; run the challenger as --shadow")
    if log_to_mlflow:
        out.run_id = _log_run(out, log_dir, records)
    return out


def _paired_decision(log, truth, known) -> dict | None:
    """promote --challenger's rule (:func:`arritmias.training.promotion.decide`) on the beats the shadow and the champion
    both scored, or None when there are none."""
    from arritmias.training.promotion import decide

    pairs = shadow_pairs(log[known].assign(truth=truth[known]))
    pairs = pairs[pairs["arm_served"] == "champion"]
    if pairs.empty:
        return None
    y = pairs["truth_served"].to_numpy() == "V"
    d = decide(y, pairs["label_shadow"].to_numpy() == "V", pairs["label_served"].to_numpy() == "V")
    return {"candidate_version": int(pairs["model_version_shadow"].iloc[0]),
            "champion_version": int(pairs["model_version_served"].iloc[0]), "beats": len(pairs),
            "accepted": d.accepted, "reason": d.reason, "p_value": float(d.p_value)}


def _log_run(out: ABReport, log_dir: Path, records) -> str:
    import tempfile

    import mlflow

    from arritmias.tracking import runs
    from arritmias.analysis.clinical_report import figure

    runs.use_experiment(AB_EXPERIMENT)
    with mlflow.start_run(run_name="ab_report") as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({"log_dir": str(log_dir), "records": ",".join(records or ()) or "none"})
        for row in out.arms.to_dict("records"):
            mlflow.log_metrics({f"{row['arm']}_{k}": float(v) for k, v in row.items() if k != "arm"})
        if out.disagreement_rate is not None:
            mlflow.log_metric("shadow_disagreement_rate", out.disagreement_rate)
        if out.accuracy is not None:
            for row in out.accuracy.to_dict("records"):
                mlflow.log_metrics({f"{row['arm']}_{k}": float(v) for k, v in row.items() if k != "arm"})
        if out.decision:
            mlflow.log_metrics({"accepted": float(out.decision["accepted"]),
                                "mcnemar_p_worse": out.decision["p_value"]})
            mlflow.set_tag("decision", out.decision["reason"])
        fig = figure((10, 3.6))
        a, b = fig.subplots(1, 2)
        a.bar(out.arms["arm"], out.arms["v_rate"] * 100, color="#4c72b0")
        a.set_ylabel("beats called V (%)")
        a.set_title("V rate per arm")
        b.bar(out.arms["arm"], out.arms["latency_p50_ms"], color="#55a868", label="p50")
        b.bar(out.arms["arm"], out.arms["latency_p99_ms"] - out.arms["latency_p50_ms"],
              bottom=out.arms["latency_p50_ms"], color="#c44e52", alpha=0.6, label="p99")
        b.set_ylabel("scoring time per request (ms)")
        b.set_title("latency per arm")
        b.legend()
        fig.tight_layout()
        fig.savefig(Path(tmp) / "ab_arms.png", dpi=110)
        out.arms.to_csv(Path(tmp) / "ab_arms.csv", index=False)
        if out.disagreements is not None:
            out.disagreements.to_csv(Path(tmp) / "shadow_disagreements.csv", index=False)
        if out.accuracy is not None:
            out.accuracy.to_csv(Path(tmp) / "ab_accuracy.csv", index=False)
        mlflow.log_artifacts(tmp, "ab_report")
        return run.info.run_id
