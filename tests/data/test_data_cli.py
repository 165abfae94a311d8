"""`arritmias data verify` and `data fetch` on real and damaged records, run as a user would."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest

from arritmias.data.integrity import verify
from tests.conftest import ANOTHER_DB_RECORDS, copy_records, free_port, run_cli

RECORDS = ["100", "119"]


@pytest.fixture()
def small_copy(mitdb, tmp_path):
    """Two intact records with their published SHA-256 sums."""
    data = copy_records(mitdb, tmp_path / "data", RECORDS)
    sums = [line for line in (mitdb / "SHA256SUMS").read_text().splitlines() if line.split()[1][:3] in RECORDS]
    (data / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return data


def _assert_one_line_error(proc, *needles):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_verify_all_48_records_pass(mitdb):
    checks = verify(mitdb, progress=False)
    assert len(checks) == 48 and all(c.ok for c in checks)
    totals = {k: sum(c.counts[k] for c in checks) for k in "NSVFQ"}
    # Totals of the shared copy's README: N+L+R+e+j, A+a+J+S, V+E, F, /+f+Q.
    assert totals == {"N": 90631, "S": 2781, "V": 7236, "F": 803, "Q": 8043}


def test_verify_cli_json_and_table(small_copy):
    proc = run_cli("data", "verify", "--data-dir", str(small_copy), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] and [r["record"] for r in out["records"]] == RECORDS
    assert out["records"][1]["counts"]["V"] == 444
    table = run_cli("data", "verify", "--data-dir", str(small_copy))
    assert table.returncode == 0 and "2/2 ok" in table.stdout


def test_truncated_dat_is_named(small_copy):
    dat = small_copy / "119.dat"
    dat.write_bytes(dat.read_bytes()[:100_000])
    proc = run_cli("data", "verify", "--data-dir", str(small_copy))
    assert proc.returncode == 1
    _assert_one_line_error(proc, "record 119: 119.dat: 100000 bytes", "1 of 2 records")
    assert "119" in proc.stdout and "BAD" in proc.stdout


def test_missing_atr_is_named(small_copy):
    (small_copy / "100.atr").unlink()
    proc = run_cli("data", "verify", "--data-dir", str(small_copy))
    assert proc.returncode == 1
    _assert_one_line_error(proc, "record 100: 100.atr: annotations unreadable")


def test_garbled_header_is_named(small_copy):
    (small_copy / "100.hea").write_text("this is not\na WFDB header\n")
    proc = run_cli("data", "verify", "--data-dir", str(small_copy))
    assert proc.returncode == 1
    _assert_one_line_error(proc, "record 100: 100.hea: header unreadable")


def test_flipped_sample_breaks_checksum_and_sha(small_copy):
    dat = small_copy / "100.dat"
    raw = bytearray(dat.read_bytes())
    raw[30_000] ^= 0x01
    dat.write_bytes(bytes(raw))
    proc = run_cli("data", "verify", "--data-dir", str(small_copy))
    _assert_one_line_error(proc, "SHA-256 differs", "checksum of signal")


def test_empty_folder_says_how_to_get_data(tmp_path):
    proc = run_cli("data", "verify", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    _assert_one_line_error(proc, "arritmias data fetch", "ARRITMIAS_DATA_DIR")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_for_every_subcommand():
    for args in (["--help"], ["data", "--help"], ["data", "fetch", "--help"], ["data", "verify", "--help"]):
        proc = run_cli(*args)
        assert proc.returncode == 0 and "usage: arritmias" in proc.stdout


@pytest.fixture()
def mirror_requests() -> list[str]:
    """The paths the mirror below was asked for (GET), in order."""
    return []


@pytest.fixture()
def physionet_mirror(mitdb, another_db, tmp_path, mirror_requests):
    """A loopback HTTP server laid out like PhysioNet (``content/DB/`` and ``files/DB/1.0.0/``) serving mitdb's
    records 100 and 119 and, as ``incartdb``, the 257 Hz records of another recorder (``another_db``)."""
    root = tmp_path / "mirror"
    for db, src, names in (("mitdb", mitdb, RECORDS), ("incartdb", another_db, list(ANOTHER_DB_RECORDS))):
        files = copy_records(src, root / "files" / db / "1.0.0", names)
        (files / "ANNOTATORS").write_text("atr\treference beat, rhythm, and signal quality annotations\n")
        (root / "content" / db / "1.0.0").mkdir(parents=True)
        (root / "content" / db / "index.html").write_text("<p>Version: 1.0.0</p>\n")
        (root / "content" / db / "1.0.0" / "index.html").write_text(f"<p>{db}</p>\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

    requested = mirror_requests
    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_downloads_with_wfdb_and_verifies(physionet_mirror, mirror_requests, tmp_path):
    dest = tmp_path / "mit-bih"
    proc = run_cli("data", "fetch", "--data-dir", str(dest), "--records", "100,119",
                   env={"ARRITMIAS_PHYSIONET_URL": physionet_mirror})
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the verify table (stdout) says which check failed
    assert "2/2 ok" in proc.stdout
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["RECORDS", "SHA256SUMS"] + [f"{r}.{e}" for r in RECORDS for e in ("atr", "dat", "hea")])
    assert len((dest / "SHA256SUMS").read_text().splitlines()) == 6
    assert not list(tmp_path.glob(".mit-bih.fetch.*"))
    # Each file downloaded once: wfdb.dl_database fetched 100.dat twice at once (one entry per lead) and one thread
    # appended to the other's partial file, a .dat twice its size (a race: this catches it every time).
    data_files = [p for p in mirror_requests if p.startswith("/files/mitdb/1.0.0/")]
    assert sorted(set(data_files)) == sorted(data_files) and any(p.endswith("100.dat") for p in data_files)


def test_fetch_another_database_records_its_sums(physionet_mirror, tmp_path):
    """`--database incartdb` fetches every record it lists, with sums of what arrived, which verify then holds to."""
    dest = tmp_path / "incart"
    proc = run_cli("data", "fetch", "--database", "incartdb", "--data-dir", str(dest),
                   env={"ARRITMIAS_PHYSIONET_URL": physionet_mirror})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "downloading incartdb (every record)" in proc.stderr and "2/2 ok" in proc.stdout
    assert (dest / "RECORDS").read_text().split() == list(ANOTHER_DB_RECORDS)
    sums = (dest / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split()[1] for line in sums) == sorted(f"{r}.{e}" for r in ANOTHER_DB_RECORDS
                                                               for e in ("atr", "dat", "hea"))
    dat = dest / "I119.dat"
    raw = bytearray(dat.read_bytes())
    raw[5_000] ^= 0x01
    dat.write_bytes(bytes(raw))
    proc = run_cli("data", "verify", "--data-dir", str(dest))
    _assert_one_line_error(proc, "record I119: I119.dat: SHA-256 differs")


def test_fetch_unreachable_is_one_line_and_writes_nothing(tmp_path):
    dest = tmp_path / "mit-bih"
    proc = run_cli("data", "fetch", "--data-dir", str(dest), "--records", "100",
                   env={"ARRITMIAS_PHYSIONET_URL": f"http://127.0.0.1:{free_port()}"}, timeout=120)
    assert proc.returncode == 2
    _assert_one_line_error(proc, "could not download MIT-BIH", "--data-dir DIR or ARRITMIAS_DATA_DIR=DIR")
    assert list(dest.iterdir()) == [] and not list(tmp_path.glob(".mit-bih.fetch.*"))
