"""The served network runs its ONNX graph in OpenVINO: parity with Keras on every DS2 beat, both paths, same labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arritmias.data.beats import DS2, build_beats
from arritmias.model.detector import Detector

pytestmark = pytest.mark.slow


def test_onnx_graph_in_openvino_matches_keras_on_every_ds2_beat(trained, store, mitdb, cache_dir):
    import mlflow

    mlflow.set_tracking_uri(store)
    served = Detector.from_model_uri(f"runs:/{trained.run_id}/model")  # what serving and analysis load
    assert served.onnx_path is not None and served.onnx_path.is_file()
    keras_only = Detector(served.model, served.rule, served.win, served.fs, served.uses_context)
    ds2 = build_beats(mitdb, DS2, 0, served.win, served.fs, cache_dir, progress=False)
    ds2 = ds2.select(np.isin(ds2.aami, ["N", "V"]))
    context = ds2.context
    assert len(ds2) > 40_000
    for ctx in (context, None):  # the record-context path and the beat-alone path
        onnx = served.decide(ds2.windows, ds2.rr, ctx)
        reference = keras_only.decide(ds2.windows, ds2.rr, ctx)
        assert served.runtime == "openvino" and keras_only.runtime == "tensorflow"
        assert np.max(np.abs(onnx.prob - reference.prob)) <= 1e-5
        assert np.array_equal(onnx.labels(), reference.labels())
        assert np.array_equal(onnx.ruleguard_changed, reference.ruleguard_changed)
    # The recording path (families) on one record: the same labels from either runtime.
    rows = np.flatnonzero(ds2.record == "233")
    one = ds2.select(rows)
    assert np.array_equal(served.decide_recording(one.windows, one.rr, one.context).labels(),
                          keras_only.decide_recording(one.windows, one.rr, one.context).labels())


def test_model_serves_from_a_virtualenv_without_tensorflow(trained, store, mitdb, cache_dir, tmp_path):
    """The logged model's own requirements in a fresh virtual environment: no TensorFlow, same answers."""
    import os
    import subprocess
    import sys

    import mlflow
    import requests

    from tests.conftest import free_port, wait_until_up

    mlflow.set_tracking_uri(store)
    model_dir = Path(mlflow.artifacts.download_artifacts(f"runs:/{trained.run_id}/model", dst_path=str(tmp_path)))
    needs = (model_dir / "requirements.txt").read_text().lower()
    assert "openvino" in needs and "tensorflow" not in needs and "keras" not in needs
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    pip = subprocess.run([py, "-m", "pip", "install", "-q", "-r", str(model_dir / "requirements.txt")],
                         capture_output=True, text=True, timeout=1200)
    assert pip.returncode == 0, pip.stderr[-2000:]
    assert subprocess.run([py, "-c", "import tensorflow"], capture_output=True).returncode != 0

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    proc = subprocess.Popen([py, "-m", "mlflow", "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                             "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", proc, timeout=300)
        beats = build_beats(mitdb, ("233",), 0, 360, 360.0, cache_dir, progress=False)
        rows = slice(0, 300)
        instances = [{"sig": w.tolist(), "rr": r.tolist(), "ctx_sig": t.tolist(), "ctx_rr": float(u)}
                     for w, r, t, u in zip(beats.windows[rows], beats.rr[rows], beats.template[rows],
                                           beats.rr_usual[rows])]
        answer = requests.post(f"http://127.0.0.1:{port}/invocations", json={"instances": instances}, timeout=60)
        assert answer.status_code == 200, answer.text[:500]
        served = answer.json()["predictions"]
        local = Detector.from_model_uri(f"runs:/{trained.run_id}/model").decide(
            beats.windows[rows], beats.rr[rows], beats.select(np.arange(300)).context)
        assert [p["label"] for p in served] == local.labels().tolist()
        assert np.max(np.abs(np.array([p["prob_v"] for p in served]) - local.prob)) <= 1e-6
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
