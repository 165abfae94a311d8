"""The project's own promises about set-up: the README's two commands, one source of dependencies."""

from __future__ import annotations

import re

from arritmias.tracking.requirements import render
from tests.conftest import ROOT


def test_requirements_api_is_generated_from_pyproject():
    assert (ROOT / "requirements-api.txt").read_text() == render(ROOT / "pyproject.toml"), (
        "requirements-api.txt is stale: run `make requirements`")


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S).group(1).strip().splitlines()
    commands = [line for line in first_block if line.strip() and not line.startswith("#")]
    assert commands == ["make train", "make test"]
    assert text.index("```") < text.index("\n## ")  # the commands come before any section


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_make_checks_each_test_service_on_its_own(tmp_path):
    """A machine with Prometheus but not Alertmanager (or any other mix) gets what it lacks installed. apt-get is
    the one stand-in here (a test cannot install system packages): it records what make asks of it."""
    import os
    import shutil
    import subprocess

    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    for tool in ("sh", "ls", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for present in ("promtool", "prometheus", "chromium"):
        (bin_dir / present).write_text("#!/bin/sh\n")
        (bin_dir / present).chmod(0o755)
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bin_dir / "apt-get").chmod(0o755)
    env = {**os.environ, "PATH": str(bin_dir)}
    proc = subprocess.run([shutil.which("make"), "-s", "prometheus", "alertmanager", "chromium"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    installs = [line.split()[-1] for line in log.read_text().splitlines() if line.startswith("install")]
    assert installs == ["prometheus-alertmanager"]
    make_test = subprocess.run([shutil.which("make"), "-n", "-p", "test"], cwd=ROOT, capture_output=True, text=True)
    needs = next(line for line in make_test.stdout.splitlines() if line.startswith("services:"))
    assert set(needs.split()[1:]) == {"postgresql", "prometheus", "alertmanager", "chromium"}
