"""Judging the detector on another recorder's annotated database (issue 29's "another database"): the lead nearest
the model's, any sampling rate, every record of the folder, as a user runs it."""

from __future__ import annotations

import json

from arritmias.data.records import lead_order, read_recording
from tests.conftest import ANOTHER_DB_RECORDS, run_cli


def test_lead_order_puts_mlii_then_lead_ii_first():
    assert lead_order(["V5", "MLII"]) == [1, 0]  # MIT-BIH 114
    assert lead_order(["I", "II", "III", "aVR"]) == [1, 0, 2, 3]  # a 12-lead recorder: lead II, not lead I
    assert lead_order(["MLII", "II"]) == [0, 1]  # MLII is still the model's own lead
    assert lead_order(["i", "ii"]) == [1, 0] and lead_order(["ECG II"]) == [0]  # written another way
    assert lead_order(["V5", "V2"]) == [0, 1] and lead_order(["ECG1", "ECG2"]) == [0, 1]  # neither: file order


def test_a_257_hz_record_is_read_on_lead_ii_at_the_models_rate(another_db):
    rec = read_recording(another_db, "I119", fs=360.0)
    assert rec.lead == "II" and rec.fs == 360.0 and len(rec.signal) == 12 * 60 * 360
    assert read_recording(another_db, "I119", 1, fs=360.0).lead == "I"


def test_evaluate_every_record_of_another_database(trained, store, another_db, tmp_path):
    """`evaluate --records all` scores each record of a 257 Hz, lead-I-first database on its lead II, in both modes,
    and writes which lead it read; --deriv-idx reads another."""
    model = f"runs:/{trained.run_id}/model"
    out = tmp_path / "ev"
    proc = run_cli("evaluate", "--data-dir", str(another_db), "--records", "all", "--model-uri", model,
                   "--tracking-uri", store, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lead: II (--deriv-idx 0)" in proc.stdout
    for mode in ("detected", "reference"):
        result = json.loads((out / f"ec57_{mode}.json").read_text())
        assert result["leads"] == {name: "II" for name in ANOTHER_DB_RECORDS}
        assert set(result["per_record"]) == set(ANOTHER_DB_RECORDS)
        # 119's PVCs on the model's lead, at another rate: found (the shrunk model trained on 119 at 360 Hz)
        assert result["per_record"]["I119"]["veb_se"] > 0.9, result["per_record"]["I119"]
        assert result["per_record"]["I119"]["qrs_se"] > 0.95, result["per_record"]["I119"]
        assert sorted(p.name for p in (out / mode).iterdir()) == ["I100.pvc", "I119.pvc"]
    proc = run_cli("evaluate", "--data-dir", str(another_db), "--records", "I119", "--deriv-idx", "1", "--mode",
                   "reference", "--model-uri", model, "--tracking-uri", store, "--out", str(tmp_path / "ev1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "ev1" / "ec57_reference.json").read_text())["leads"] == {"I119": "I"}


def test_evaluate_names_a_lead_the_records_lack(trained, store, another_db, tmp_path):
    proc = run_cli("evaluate", "--data-dir", str(another_db), "--records", "all", "--deriv-idx", "5", "--model-uri",
                   f"runs:/{trained.run_id}/model", "--tracking-uri", store, "--out", str(tmp_path / "ev"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "deriv_idx=5 but the record has 2 lead(s)" in proc.stderr
    assert not (tmp_path / "ev").exists()
