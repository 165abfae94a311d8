"""The project's own promises about set-up: the README's two commands, one source of dependencies."""

from __future__ import annotations

import re

from arritmias.requirements import render
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
