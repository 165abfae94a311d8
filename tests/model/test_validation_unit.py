"""Bad input is refused with one line naming the field, never turned into an answer: a table of probes per entry
point (served request, record header, CSV rate, drift command)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from arritmias.analysis.recording import read_signal
from arritmias.errors import DataError
from arritmias.data.records import check_fs, read_recording
from arritmias.model.contract import parse_request
from tests.conftest import ROOT, free_port, run_cli

SIG = [0.1] * 360
GOOD = {"sig": SIG, "rr": [0.8, 0.8, 1.0]}

REQUEST_PROBES = {
    "value beyond float32": ({"sig": [1e39] + SIG[1:], "rr": [0.8, 0.8, 1.0]}, "sig of beat 0: NaN, infinite or beyond"),
    "integer beyond float64": ({**GOOD, "ctx_sig": SIG, "ctx_rr": 10**400}, "ctx_rr of beat 0: NaN, infinite or"),
    "a boolean among numbers": ({"sig": SIG[1:] + [True], "rr": [0.8, 0.8, 1.0]}, "sig of beat 0: values must be"),
    "numeric strings": ({"sig": ["0.1"] * 360, "rr": [0.8, 0.8, 1.0]}, "sig of beat 0: values must be numbers"),
    "booleans": ({"sig": SIG, "rr": [True, True, True]}, "rr of beat 0: values must be numbers"),
    "nested lists": ({"sig": [[0.1]] * 360, "rr": [0.8, 0.8, 1.0]}, "sig of beat 0: values must be numbers"),
    "null sig": ({"sig": None, "rr": [0.8, 0.8, 1.0]}, "sig of beat 0: expected a list"),
    "dict sig": ({"sig": {"a": 1}, "rr": [0.8, 0.8, 1.0]}, "sig of beat 0: expected a list of 360 numbers, got dict"),
    "ratio zero": ({"sig": SIG, "rr": [0.8, 0.8, 0.0]}, "rr of beat 0: the ratio 0 disagrees"),
    "ratio negative": ({"sig": SIG, "rr": [0.8, 0.8, -5]}, "rr of beat 0: the ratio -5 disagrees"),
    "negative RR": ({"sig": SIG, "rr": [-0.8, 0.8, -1.0]}, "rr of beat 0: RR intervals must be positive"),
    "RR of a minute": ({"sig": SIG, "rr": [60.0, 0.8, 0.0133]}, "within 0.1-6.0 s"),
    "usual RR of 20 s": ({**GOOD, "ctx_sig": SIG, "ctx_rr": 20.0}, "ctx_rr of beat 0: the usual RR must be"),
}


@pytest.mark.parametrize("case", sorted(REQUEST_PROBES))
def test_request_probe_is_refused_naming_the_field(case):
    body, needle = REQUEST_PROBES[case]
    with pytest.raises(DataError) as err:
        parse_request([body], 360)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_rounded_ratio_is_accepted():
    req = parse_request([{"sig": SIG, "rr": [0.78, 0.81, 1.04]}], 360)  # 0.81 / 0.78 = 1.0385
    assert req.rr.shape == (1, 3)


@pytest.mark.parametrize("fs", [0, -360, float("nan"), float("inf"), 20, 1e6, "fast"])
def test_implausible_sampling_rates_are_refused(fs):
    with pytest.raises(DataError, match="sampling rate"):
        check_fs(fs, "--fs")


def test_header_with_negative_rate_is_refused_not_read_as_250_hz(mitdb, tmp_path):
    for ext in ("dat", "atr"):
        shutil.copy(mitdb / f"119.{ext}", tmp_path / f"119.{ext}")
    header = (mitdb / "119.hea").read_text().splitlines()
    header[0] = header[0].replace(" 360 ", " -360 ")
    (tmp_path / "119.hea").write_text("\n".join(header) + "\n")
    with pytest.raises(DataError, match="record 119.*sampling rate -360 Hz is outside"):
        read_recording(tmp_path, "119")
    with pytest.raises(DataError, match="sampling rate -360 Hz"):
        read_signal(tmp_path / "119")


def test_csv_rate_nan_is_refused(tmp_path):
    path = tmp_path / "lead.csv"
    path.write_text("\n".join(str(v) for v in np.sin(np.arange(5000) / 20)) + "\n")
    with pytest.raises(DataError, match="sampling rate nan Hz") as err:
        read_signal(path, fs=float("nan"))
    assert str(path) in str(err.value)


def test_cli_probes_get_one_line_not_a_traceback(mitdb, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    port = run_cli("serve", "--port", "99999")
    assert port.returncode == 2 and "not a port number" in port.stderr and "Traceback" not in port.stderr
    unknown = run_cli("serve", "--model-uri", "models:/ECG_Arritmias_NvsV@nope", "--port", str(free_port()),
                      "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", cwd=tmp_path)
    # A store that does not exist is said before any model is looked for, and serving never creates one.
    assert unknown.returncode == 2 and "there is no database at" in unknown.stderr, unknown.stderr[-2000:]
    assert "Traceback" not in unknown.stderr and not (tmp_path / "mlflow.db").exists()
    drift = subprocess.run([sys.executable, str(ROOT / "monitoring" / "drift_detector.py"), "--reference-records",
                            "100", "--current-records", "101", "--data-dir", str(mitdb), "--out", str(a_file)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path,
                           env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    assert drift.returncode == 2 and "File exists" in drift.stderr and "Traceback" not in drift.stderr
    assert drift.stderr.strip().count("\n") == 0


# --- property: any JSON-like body is either a valid request or one DataError line ----------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**40, 10**40),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5))
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                     max_leaves=20)
_numbers = st.floats(-5, 5, allow_nan=False)
_consistent_rr = st.tuples(st.floats(0.2, 2), st.floats(0.2, 2)).map(lambda t: [t[0], t[1], t[1] / t[0]])
_beat = st.fixed_dictionaries(
    {"sig": st.one_of(st.lists(_numbers, min_size=360, max_size=360), _json),
     "rr": st.one_of(_consistent_rr, st.lists(st.floats(0.05, 8), min_size=3, max_size=3), _json)},
    optional={"ctx_sig": st.one_of(st.lists(_numbers, min_size=360, max_size=360), _json),
              "ctx_rr": st.one_of(st.floats(0.05, 8), _json)})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_beat, max_size=3), st.sampled_from(["instances", "dataframe_records", "inputs", "python"]))
def test_any_body_is_an_answer_or_one_line_refusal(beats, form):
    """Whatever MLflow's server makes of a JSON body (its own conversion runs first), the model's parser gives a
    valid request or one DataError line: never another exception (a 500 with a traceback), never a NaN or a
    non-positive RR let through."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    if form == "python":
        body = beats
    else:
        payload = {form: beats} if form != "inputs" else {form: {k: [b.get(k) for b in beats]
                                                                  for k in ("sig", "rr") if beats}}
        try:
            body = infer_and_parse_data(payload)
        except (MlflowException, ValueError, TypeError):
            return  # refused by MLflow itself before the model sees it
    try:
        req = parse_request(body, 360)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    n = len(req.windows)
    assert n >= 1 and req.windows.shape == (n, 360) and req.rr.shape == (n, 3)
    assert np.isfinite(req.windows).all() and np.isfinite(req.rr).all() and (req.rr[:, :2] > 0).all()
    if req.context is not None:
        assert np.isfinite(req.context.template).all() and (req.context.rr_usual[req.use_context] > 0).all()


def test_the_serving_input_example_mlflow_writes_is_accepted():
    """MLflow writes a logged model's example as ``{"inputs": [{beat}, ...]}`` and parses that form into beat dicts
    of arrays, a scalar ``ctx_rr`` as a 0-d array: the request is read, not refused as a null ``ctx_rr``."""
    import json

    from mlflow.models import convert_input_example_to_serving_input
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    rng = np.random.default_rng(0)
    beat = {"sig": rng.normal(0, 0.2, 360).tolist(), "rr": [0.8, 0.82, 1.025],
            "ctx_sig": rng.normal(0, 0.2, 360).tolist(), "ctx_rr": 0.81}
    parsed = infer_and_parse_data(json.loads(convert_input_example_to_serving_input([beat, beat])))
    request = parse_request(parsed, 360)
    assert request.context is not None and request.context.rr_usual.tolist() == pytest.approx([0.81, 0.81])
    assert request.windows.shape == (2, 360)
