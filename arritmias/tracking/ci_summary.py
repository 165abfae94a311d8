"""The training run as a Markdown table for people reading CI: GitHub's job summary and the pull-request comment.

``arritmias ci-summary`` reads one run from the tracking store (the latest finished training by default) and
writes its test figures, the gate's verdict against the thresholds the gate uses, the registered version and the
MLflow run name. GitHub shows whatever a step appends to the file ``$GITHUB_STEP_SUMMARY`` names; the workflow
posts the same file on pull requests (``gh pr comment --body-file``). Nothing here knows about GitHub beyond that
variable, so a test points it at a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from arritmias.tracking import registry, runs

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
# Test figures shown, in this order (the gate's metrics with their minimum): EC57 in detected mode (what users
# get) and at the reference beats, then single beats with their context, then beats alone; then the same for
# supraventricular beats (SVEB, class S).
SHOWN_METRICS = ("test_ec57_detected_veb_se", "test_ec57_detected_veb_ppv", "test_ec57_detected_qrs_se",
                 "test_ec57_detected_qrs_ppv", "test_ec57_reference_veb_se", "test_ec57_reference_veb_ppv",
                 "test_accuracy", "test_precision_V", "test_recall_V", "test_f1_V", "test_pr_auc",
                 "test_nocontext_precision_V", "test_nocontext_recall_V", "test_ec57_detected_sveb_se",
                 "test_ec57_detected_sveb_ppv", "test_ec57_reference_sveb_se", "test_ec57_reference_sveb_ppv",
                 "test_precision_S", "test_recall_S", "test_f1_S", "test_pr_auc_S")


def render(run_id: str, thresholds: dict[str, float] | None = None) -> str:
    """Markdown for run ``run_id``: a heading with the run name, the gate's verdict and the registered version,
    then one row per DS2 figure with the gate's minimum where it has one."""
    thresholds = thresholds or registry.GATE_DEFAULTS
    run = runs.get_run(run_id)
    metrics, tags = run.data.metrics, run.data.tags
    result = registry.gate(metrics, thresholds)
    verdict = "✅ passed" if result.passed else "❌ failed: " + "; ".join(result.failures)
    version = tags.get("registered_version")
    registered = f"{registry.MODEL_NAME} version {version}" if version else "not registered"
    lines = [
        f"### arritmias: training run `{run.info.run_name}`",
        "",
        "| | |",
        "|---|---|",
        f"| MLflow run | `{run.info.run_name}` (`{run_id}`), status {run.info.status} |",
        f"| gate | {verdict} |",
        f"| registry | {registered} |",
        f"| trained on / tested on | {run.data.params.get('train_records', '?')} / "
        f"{run.data.params.get('test_records', '?')} |",
        "",
        "| test figure (test_records: patients never used for a choice) | value | gate minimum |",
        "|---|---:|---:|",
    ]
    shown = [m for m in SHOWN_METRICS if m in metrics or m in thresholds]
    shown += [m for m in thresholds if m not in shown]
    for name in shown:
        minimum = thresholds.get(name)
        lines.append(f"| {name} | {runs.figure(metrics, name)} | {'' if minimum is None else minimum} |")
    return "\n".join(lines) + "\n"


def write(markdown: str, out: Path | None = None, summary_file: str | None = None) -> list[Path]:
    """Append ``markdown`` to ``summary_file`` (default ``$GITHUB_STEP_SUMMARY``; GitHub concatenates what every
    step appends) and write it whole to ``out`` (the pull-request comment's body); returns the paths written."""
    from arritmias.util.atomic import write_text_atomic

    written = []
    summary_file = summary_file if summary_file is not None else os.environ.get(SUMMARY_ENV, "").strip()
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")
        written.append(Path(summary_file))
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_text_atomic(out, markdown))
    return written
