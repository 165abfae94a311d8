"""What a user sees, looked at in a real browser: Debian's headless Chromium driven by Playwright, against a real
MLflow UI (start_mlflow.sh) over the session's store, the PVC report of a real record, and a drift report in
MLflow's own artifact viewer.

Set ARRITMIAS_SCREENSHOTS=docs/screenshots to refresh the README's screenshots from this test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, mlflow_ui, run_cli

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOAD_MS = 60_000  # the first MLflow page of a fresh browser loads ~10 MB of JavaScript


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium refuses its own sandbox.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def ui(trained, store):
    """The MLflow UI as users start it, on a free loopback port; yields its base URL."""
    with mlflow_ui(store) as base:
        yield base


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("ARRITMIAS_SCREENSHOTS", "").strip() or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser, url: str, expect: str, width: int = 1400):
    """A new page at ``url`` once ``expect`` is visible on it; MLflow's assistant side panel closed."""
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.goto(url)
    page.get_by_text(expect, exact=False).first.wait_for(timeout=LOAD_MS)
    close = page.get_by_role("button", name="Close", exact=True)
    if close.count():
        close.first.click()
    return page


def _frame_text(page, expect: str) -> str:
    """Text of the artifact viewer's iframe on ``page`` once it contains ``expect``.

    Found through the iframe element: Playwright's ``page.frames`` does not always list the viewer's sandboxed
    blob frame, and a page with scripts (Evidently's) shows its text only after they ran.
    """
    body = page.frame_locator("iframe").first.locator("body")
    deadline, text = time.time() + LOAD_MS / 1000, ""
    while time.time() < deadline:
        try:
            text = body.inner_text(timeout=5000)
        except Exception:  # noqa: BLE001  no iframe yet, or it was replaced while loading
            text = ""
        if expect in text:
            return text
        time.sleep(0.5)
    pytest.fail(f"the viewer at {page.url} never showed {expect!r}; its frame says {text[:300]!r}")


def test_run_page_experiment_and_registry(browser, ui, trained, store, shots):
    from arritmias.tracking import registry, runs

    runs.use_tracking(store)
    registry.promote(trained.registered_version)
    os.environ["MLFLOW_PORT"] = ui.rsplit(":", 1)[1]
    try:
        url = runs.ui_url(trained.run_id)  # the link `arritmias train` prints
    finally:
        os.environ.pop("MLFLOW_PORT")
    page = _open(browser, url, trained.run_name)
    text = page.inner_text("body")
    for needle in ("PVC (AAMI V) and supraventricular (S) beat detector", "threshold", "best_epoch", "test_pr_auc", "cv_folds"):
        assert needle in text, needle
    page.screenshot(path=str(shots / "run_page.jpg"), type="jpeg", quality=80, full_page=False)
    page.close()

    # The experiment opens on its runs, not on MLflow's GenAI overview.
    experiment_id = url.split("/experiments/")[1].split("/")[0]
    page = _open(browser, f"{ui}/#/experiments/{experiment_id}?workflowType=machine_learning", trained.run_name)
    assert "/runs" in page.url and "Token Usage" not in page.inner_text("body")
    page.close()

    page = _open(browser, f"{ui}/#/models/{registry.MODEL_NAME}/versions/{trained.registered_version}",
                 "PVC (AAMI V) and supraventricular (S) beat detector")
    # The page fills its parts one request at a time (the alias after the description on a loaded machine).
    for needle in ("production", "test_ec57_detected_veb_se"):
        page.get_by_text(needle, exact=False).first.wait_for(timeout=LOAD_MS)
    text = page.inner_text("body")
    assert "production" in text and trained.run_name in text and "gate" in text
    assert "test_ec57_detected_veb_se" in text  # the logged model's figures, on the version's page (MLflow 3)
    page.close()

    # The experiment's Models tab lists the training's logged model with its figures (MLflow 3).
    import mlflow

    [model_id] = [o.model_id for o in mlflow.get_run(trained.run_id).outputs.model_outputs]
    page = _open(browser, f"{ui}/#/experiments/{experiment_id}/models?workflowType=machine_learning",
                 trained.run_name)
    text = page.inner_text("body")
    assert "Models" in text and registry.MODEL_NAME in text and "__main__.py" not in text
    page.screenshot(path=str(shots / "models_tab.jpg"), type="jpeg", quality=80, full_page=False)
    page.close()
    page = _open(browser, f"{ui}/#/experiments/{experiment_id}/models/{model_id}?workflowType=machine_learning",
                 "test_ec57_detected_veb_se")
    assert "test_f1_V" in page.inner_text("body")
    page.close()


def test_pvc_report_renders_in_a_browser(browser, trained, store, mitdb, tmp_path, shots):
    out = tmp_path / "out"
    proc = run_cli("analyze", "119", "--out", str(out), "--tracking-uri", store, "--model-uri",
                   f"models:/ECG_Arritmias_NvsV/{trained.registered_version}", env={"ARRITMIAS_DATA_DIR": str(mitdb)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "119_summary.json").read_text())
    burden = f"{summary['pvc_burden_percent']:.2f}".replace(".", ",")
    page = _open(browser, (out / "119_report.html").as_uri(), "Carga de EV", width=1200)
    text = page.inner_text("body")
    assert f"{burden} % de los latidos legibles" in text and "00:30:05" in text
    assert f"ECG_Arritmias_NvsV versión {trained.registered_version}" in text
    assert "Solo para uso en investigación" in text
    loaded = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
    assert loaded and all(loaded)
    page.screenshot(path=str(shots / "pvc_report.jpg"), type="jpeg", quality=80, full_page=True)
    page.close()


def test_drift_reports_open_in_mlflows_artifact_viewer(browser, ui, store, mitdb, tmp_path, shots):
    import mlflow
    import pandas as pd

    from arritmias.data.records import record_paths
    from arritmias.drift.features import records_features

    reference = records_features(record_paths(["100"], mitdb))
    current = reference.copy()
    current["ptp_mv"] *= 2  # a gain change
    current["noise_mv2"] *= 4
    ref_csv, cur_csv = tmp_path / "ref.csv", tmp_path / "cur.csv"
    reference.to_csv(ref_csv, index=False)
    pd.DataFrame(current).to_csv(cur_csv, index=False)
    proc = subprocess.run([sys.executable, str(ROOT / "monitoring" / "drift_detector.py"), "--reference",
                           str(ref_csv), "--current", str(cur_csv), "--out", str(tmp_path / "reports"),
                           "--tracking-uri", store], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    mlflow.set_tracking_uri(store)
    experiment = mlflow.get_experiment_by_name("monitoring_ecg")
    run = mlflow.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"]).iloc[0]
    names = [a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id)]
    summary_page = next(n for n in names if n.startswith("drift_summary_") and n.endswith(".html"))
    evidently_page = next(n for n in names if n.startswith("drift_report_"))
    viewer = f"{ui}/#/experiments/{experiment.experiment_id}/runs/{run.run_id}/artifacts/"

    page = _open(browser, viewer + summary_page + "?workflowType=machine_learning", summary_page)
    text = _frame_text(page, "DERIVA DETECTADA")
    assert "ptp_mv" in text and "noise_mv2" in text and f"fichero {cur_csv}" in text
    page.screenshot(path=str(shots / "drift_summary_in_mlflow.jpg"), type="jpeg", quality=80)
    page.close()

    page = _open(browser, viewer + evidently_page + "?workflowType=machine_learning", evidently_page)
    assert "Drifted Columns" in _frame_text(page, "Dataset Drift")  # Evidently's page, not a blank frame
    # Evidently's tables read localStorage without a guard; in the viewer's sandbox that read throws
    # SecurityError unless the page carries the shim (arritmias/drift/report.py).
    check = ("() => { try { localStorage.getItem('material-table-groupings'); return 'ok' } "
             "catch (e) { return e.name } }")
    assert page.frame_locator("iframe").first.locator("body").evaluate(check) == "ok"
    page.close()
