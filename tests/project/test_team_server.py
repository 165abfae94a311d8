"""A team's set-up for real: PostgreSQL (Debian's package) behind `mlflow server` (started by start_mlflow.sh),
every `arritmias` command pointed at it by MLFLOW_TRACKING_URI, and tune workers sharing one Optuna study in the
same PostgreSQL."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import LENIENT_GATE_ARGS, ROOT, SHRUNK_ARGS, free_port, run_cli

pytestmark = pytest.mark.slow


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        message = "PostgreSQL server binaries not found (Debian: apt-get install postgresql; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(found[-1]).parent


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL on a free loopback port, trust auth for user ``arritmias``; yields a URL factory."""
    bin_dir, port = _pg_bin(), free_port()
    base = Path(tempfile.mkdtemp(prefix="arritmias-pg-"))
    # PostgreSQL refuses to run as root: as root, the cluster belongs to Debian's 'postgres' user.
    owner = {}
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        owner = {"user": account.pw_uid, "group": account.pw_gid}
        os.chown(base, account.pw_uid, account.pw_gid)
    base.chmod(0o755)
    data = base / "data"

    def pg(*cmd):
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120, cwd=base, **owner)

    pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "arritmias", "--auth=trust", "-E", "UTF8")
    pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "start", "-o",
       f"-p {port} -k {base} -c listen_addresses=127.0.0.1")
    try:
        for db in ("mlflow", "optuna"):
            subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "arritmias", db],
                           check=True, capture_output=True, timeout=60)
        yield lambda db: f"postgresql://arritmias@127.0.0.1:{port}/{db}"
    finally:
        subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True,
                       timeout=60, cwd=base, **owner)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def team_server(postgres, tmp_path_factory):
    """`mlflow server` over the PostgreSQL store, artifacts proxied into a folder only the server writes."""
    port, artifacts = free_port(), tmp_path_factory.mktemp("server") / "artifacts"
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "MLFLOW_PORT": str(port),
           "MLFLOW_BACKEND_STORE_URI": postgres("mlflow"), "MLFLOW_ARTIFACTS_DESTINATION": str(artifacts),
           "MLFLOW_WORKERS": "2"}
    proc = subprocess.Popen(["bash", str(ROOT / "start_mlflow.sh")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {proc.stdout.read()[-3000:]}")
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:  # not listening yet, or busy starting its workers
                time.sleep(1)
        else:
            pytest.fail("mlflow server did not answer /health within 180 s")
        yield url, artifacts
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def _psql(postgres, db: str, sql: str) -> str:
    return subprocess.run([str(_pg_bin() / "psql"), postgres(db), "-tAc", sql], check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def test_team_trains_registers_promotes_and_loads_through_one_server(team_server, postgres, mitdb, cache_dir,
                                                                     tmp_path):
    url, artifacts = team_server
    client = tmp_path / "laptop"  # a team member's working folder: nothing may be stored here
    client.mkdir()
    env = {"MLFLOW_TRACKING_URI": url}
    common = ["--data-dir", str(mitdb), "--cache-dir", str(cache_dir)]

    proc = run_cli("train", "--no-register", *common, *SHRUNK_ARGS, env=env, cwd=client, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli("gate", "--register", *LENIENT_GATE_ARGS,
                   env=env, cwd=client)
    assert proc.returncode == 0 and "version 1" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    proc = run_cli("promote", "--version", "1", env=env, cwd=client)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Anyone on the team loads the production model through the server.
    proc = run_cli("analyze", str(mitdb / "233"), "--model-uri", "models:/ECG_Arritmias_NvsV@production",
                   "--out", str(client / "out"), env=env, cwd=client, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (client / "out" / "233_summary.json").is_file()

    # Runs, versions and aliases live in PostgreSQL; the model files in the server's artifact folder.
    assert int(_psql(postgres, "mlflow", "SELECT count(*) FROM runs WHERE status = 'FINISHED'")) >= 1
    assert _psql(postgres, "mlflow", "SELECT alias || ':' || version FROM registered_model_aliases") == "production:1"
    assert list(artifacts.rglob("model.keras")) and list(artifacts.rglob("MLmodel"))
    assert sorted(p.name for p in client.iterdir()) == ["out"]  # no mlflow.db, mlruns or mlartifacts here


def test_tune_workers_share_one_postgres_study(team_server, postgres, mitdb, cache_dir, tmp_path):
    import optuna

    url, _ = team_server
    storage = postgres("optuna")
    args = ["tune", "--trials", "1", "--storage", storage, "--study", "team", "--data-dir", str(mitdb),
            "--cache-dir", str(cache_dir), *SHRUNK_ARGS]
    # Both workers start at once on an empty database: they race to create Optuna's tables, the study and the
    # MLflow experiment, as a team's workers would.
    procs = [subprocess.Popen([sys.executable, "-m", "arritmias.cli", *args], cwd=tmp_path, text=True,
                              env={**os.environ, "MLFLOW_TRACKING_URI": url}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="team", storage=storage)
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 2
    assert int(_psql(postgres, "mlflow", "SELECT count(*) FROM runs r JOIN experiments e ON "
                     "r.experiment_id = e.experiment_id WHERE e.name = 'tuning_arritmias_ecg' AND "
                     "r.name LIKE 'trial_%'")) == 2
