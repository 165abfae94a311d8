"""Every block of MLOPS_GUIDE.md marked `runnable` runs against a small trained store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
BLOCKS = re.findall(r"```(bash|python) runnable\n(.*?)```", (ROOT / "MLOPS_GUIDE.md").read_text(), re.S)


def test_guide_has_runnable_blocks():
    assert len(BLOCKS) >= 6 and {lang for lang, _ in BLOCKS} == {"bash", "python"}


def test_runnable_blocks_work(trained, store, mitdb, cache_dir, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "ARRITMIAS_DATA_DIR": str(mitdb),
           "ARRITMIAS_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for i, (lang, code) in enumerate(BLOCKS):
        if lang == "bash":
            code = code.replace("python monitoring/", f"python {ROOT}/monitoring/")
            code = code.replace("python deteccionarritmias.py", f"python {ROOT}/deteccionarritmias.py")
            cmd = ["bash", "-e", "-o", "pipefail", "-c", code]
        else:
            cmd = [sys.executable, "-c", code]
        proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"block {i} ({lang}) failed:\n{code}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert list((tmp_path / "reports").glob("drift_report_*.html"))
