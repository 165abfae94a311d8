"""mit-bih.dvc describes exactly the verified 48 records (and RECORDS, SHA256SUMS), and the data stays out of git."""

from __future__ import annotations

import subprocess

import yaml

from tests.conftest import ROOT


def test_dvc_file_matches_the_verified_records(mitdb):
    out = yaml.safe_load((ROOT / "mit-bih.dvc").read_text())["outs"][0]
    files = [p for p in mitdb.iterdir() if p.is_file()]
    assert out["path"] == "mit-bih" and out["hash"] == "md5" and out["md5"].endswith(".dir")
    assert out["nfiles"] == len(files) == 48 * 3 + 2
    assert out["size"] == sum(p.stat().st_size for p in files)


def test_data_folder_is_ignored_by_git():
    proc = subprocess.run(["git", "check-ignore", "-q", "mit-bih/100.dat"], cwd=ROOT)
    assert proc.returncode == 0
