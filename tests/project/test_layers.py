"""The house's shape, checked: stages import downwards only (import-linter's layers contract in pyproject.toml), no
module imports another's private name, and no subpackage or module outgrows a reader's sitting."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "arritmias"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the package under ``root`` with the project's contract."""
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=root, env={"PYTHONPATH": str(root), "PATH": ""},
                          timeout=300)


def test_stages_import_downwards_only():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "KEPT" in proc.stdout


def test_a_lower_stage_importing_a_higher_one_breaks_the_contract(tmp_path):
    """The contract has teeth: the same tree with one upward import, inside a function as lazy imports are, fails
    and names it."""
    shutil.copytree(PACKAGE, tmp_path / "arritmias", ignore=shutil.ignore_patterns("__pycache__"))
    qrs = tmp_path / "arritmias" / "signal" / "qrs.py"
    qrs.write_text(qrs.read_text() + "\n\ndef _upward():\n    from arritmias.serving import pyfunc  # noqa: F401\n")
    proc = _lint(tmp_path)
    assert proc.returncode != 0
    assert "arritmias.signal.qrs -> arritmias.serving.pyfunc" in proc.stdout


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_imports_a_private_name():
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("arritmias"):
                offenders += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and a.name != "__version__"]
    assert not offenders, offenders


@pytest.mark.parametrize("limit_modules, limit_lines", [(10, 400)])
def test_rooms_a_reader_can_walk(limit_modules, limit_lines):
    """Each subpackage holds at most ~10 modules, and no module is over ~400 lines."""
    packages = [p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()]
    crowded = {p.name: n for p in packages if (n := len([m for m in p.glob("*.py") if m.name != "__init__.py"]))
               > limit_modules}
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > limit_lines}
    assert not crowded and not long, (crowded, long)
