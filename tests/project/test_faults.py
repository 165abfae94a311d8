"""Faults a careful user meets in the first hour, through the real commands: a tracking store that is not one, a
registry touched twice or by two people at once, a disk that fills under --out, a run killed mid-write."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import mlflow
import pytest
import wfdb

from tests.conftest import LENIENT_GATE_ARGS, ROOT, run_cli


def _one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, (proc.stdout[-500:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("arritmias: error:") and needle in lines[0], proc.stderr[-2000:]


def test_a_bad_tracking_uri_is_one_line_and_a_reading_command_creates_nothing(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    cases = {
        str(text): "is a file, not a store",
        f"sqlite:///{text}": "is not an SQLite database",
        "foo://bar": "unknown scheme 'foo://'",
        f"sqlite:///{tmp_path}/nodir/x.db": "does not exist (a misspelled path?)",
        f"sqlite:///{tmp_path}/mlfow.db": "there is no database at",
    }
    for uri, needle in cases.items():
        for command in (["compare"], ["promote", "--version", "1"]):
            _one_line_error(run_cli(*command, "--tracking-uri", uri, cwd=tmp_path, timeout=120), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no store, no mlruns/ made on the way


def test_a_read_only_store_refuses_promote_in_one_line(trained, store, tmp_path):
    db = Path(store[len("sqlite:///"):])
    source, folder = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    folder.mkdir()
    shutil.copy(db, source / "mlflow.db")
    mounted = False
    if os.geteuid() == 0:
        # root writes through any file permission: a read-only mount (a Docker volume's :ro) binds it too.
        mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(folder)],
                                 capture_output=True).returncode == 0
        if not mounted:
            pytest.skip("running as root without mount: no way to make a store read-only here")
    else:
        shutil.copy(db, folder / "mlflow.db")
        (folder / "mlflow.db").chmod(0o444)
        folder.chmod(0o555)
    try:
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        _one_line_error(run_cli("promote", "--version", "1", "--tracking-uri", uri, timeout=120), "is read-only")
        listed = run_cli("compare", "--tracking-uri", uri, timeout=120)  # reading it is fine
        assert listed.returncode == 0 and trained.run_id in listed.stdout, listed.stderr[-2000:]
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)
        else:
            folder.chmod(0o755)


def _store_copy_with_two_versions(store: str, tmp_path: Path) -> str:
    """A copy of the session's store (its registry only) with a second version of the same model."""
    from arritmias.tracking.registry import MODEL_NAME

    copy = tmp_path / "mlflow.db"
    with sqlite3.connect(Path(store[len("sqlite:///"):])) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    uri = f"sqlite:///{copy}"
    mlflow.set_tracking_uri(uri)  # a version made from a LoggedModel (models:/m-...) is looked up in the global store
    client = mlflow.MlflowClient(uri, uri)
    first = client.get_model_version(MODEL_NAME, "1")
    client.create_model_version(MODEL_NAME, first.source, first.run_id)
    return uri


def test_gate_register_twice_keeps_one_version(trained, store, tmp_path):
    uri = _store_copy_with_two_versions(store, tmp_path)
    client = mlflow.MlflowClient(uri, uri)
    before = len(client.search_model_versions("name='ECG_Arritmias_NvsV'"))
    for _ in range(2):
        proc = run_cli("gate", "--run-id", trained.run_id, "--register", *LENIENT_GATE_ARGS, "--tracking-uri", uri)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"run {trained.run_id} is already ECG_Arritmias_NvsV version 1: nothing registered" in proc.stdout
    assert len(client.search_model_versions("name='ECG_Arritmias_NvsV'")) == before


def test_concurrent_promotions_tell_one_true_history(trained, store, tmp_path):
    """Two `promote` at the same moment, several times: what they print is a history that happened (each says
    which version it replaced, and the replaced versions chain), and the last line is the final state."""
    uri = _store_copy_with_two_versions(store, tmp_path)
    client = mlflow.MlflowClient(uri, uri)
    pattern = re.compile(r"version (\d+) is now @production \((?:was version (\d+)|it already was|a new alias)")
    for _ in range(3):
        client.set_registered_model_alias("ECG_Arritmias_NvsV", "production", "1")
        outcomes = {}

        def promote(version: str) -> None:
            outcomes[version] = run_cli("promote", "--version", version, "--tracking-uri", uri, timeout=120)

        threads = [threading.Thread(target=promote, args=(v,)) for v in ("1", "2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = str(client.get_model_version_by_alias("ECG_Arritmias_NvsV", "production").version)
        claims = {}
        for version, proc in outcomes.items():
            assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
            if proc.returncode == 0:
                m = pattern.search(proc.stdout)
                assert m and m.group(1) == version, proc.stdout
                claims[version] = m.group(2) or version  # the version it replaced
            else:
                assert "another promotion moved @production" in proc.stderr and f"version {final}" in proc.stderr
        # Replaying the claims from production = 1 must end on the final version: in some order, each promotion
        # replaced what the one before it left.
        orders = ([("1", "2"), ("2", "1")] if len(claims) == 2 else [tuple(claims)])
        assert any(_replay(order, claims) == final for order in orders), (claims, final)


def _replay(order, claims) -> str | None:
    current = "1"
    for version in order:
        if claims[version] != current:
            return None
        current = version
    return current


def test_a_full_disk_names_the_path_and_leaves_nothing(trained, store, mitdb, tmp_path):
    """Under a file-size limit (EFBIG, what a full disk gives as ENOSPC: an OSError with no file name), analyze
    fails in one line naming the output and the room left, and writes nothing; a staging folder a killed run
    left is swept by the next run."""
    rec = wfdb.rdrecord(str(mitdb / "119"), sampto=int(120 * 360))
    wfdb.wrsamp("r119", fs=360, units=rec.units, sig_name=rec.sig_name, p_signal=rec.p_signal, fmt=["16"] * 2,
                write_dir=str(tmp_path))
    mlflow.set_tracking_uri(store)
    model = mlflow.artifacts.download_artifacts(f"runs:/{trained.run_id}/model", dst_path=str(tmp_path / "model"))
    out = tmp_path / "out"

    def limited():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))  # the report is ~80 kB

    proc = subprocess.run([sys.executable, "-m", "arritmias.cli", "analyze", str(tmp_path / "r119"), "--model-uri",
                           model, "--out", str(out)], capture_output=True, text=True, cwd=ROOT, preexec_fn=limited,
                          timeout=300)
    _one_line_error(proc, str(out))
    assert "File too large" in proc.stderr and "MiB free on that disk" in proc.stderr
    assert list(out.iterdir()) == []

    orphan = out / ".r119_summary.99999999.x1y2"  # a pid no process can have: a run killed by SIGKILL
    orphan.mkdir()
    (orphan / "r119_report.html").write_text("half")
    proc = run_cli("analyze", str(tmp_path / "r119"), "--model-uri", model, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["r119.pvc", "r119_report.html", "r119_summary.json"]


def test_sigterm_during_a_run_unwinds_cleanly(trained, store, mitdb, tmp_path):
    """SIGTERM (a scheduler stopping a job) ends `evaluate` with one line and exit 143, no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "arritmias.cli", "evaluate", "--model-uri", f"runs:/{trained.run_id}/model", "--tracking-uri", store, "--out",
                             str(tmp_path / "ev")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "ARRITMIAS_DATA_DIR": str(mitdb)})
    import time

    deadline = time.time() + 180
    while not list((tmp_path / "ev").glob("*/*.pvc")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)  # until it is well into the 22 test records
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "stopped (SIGTERM)" in err and "Traceback" not in err, err[-2000:]
