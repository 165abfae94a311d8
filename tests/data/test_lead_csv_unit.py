"""Lead CSVs as spreadsheets of either locale write them, amplitude units, and signal files that do not match their
header (issue 25, rows 1, 2 and 11): read correctly or refused in one line naming the file and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arritmias.analysis.recording import Signal, check_signal, read_signal
from arritmias.errors import DataError
from arritmias.data.lead_csv import read_lead_csv
from arritmias.data.records import read_recording

LOCALES = {"en": (",", "."), "es": (";", ","), "tab_point": ("\t", "."), "tab_comma": ("\t", ",")}


def _write(path: Path, columns: list[list[float]], sep: str, dec: str, header: bool) -> None:
    def cell(v: float) -> str:
        text = f"{v:.3f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))
        return text.replace(".", dec)

    lines = [sep.join(f"L{i}" for i in range(len(columns)))] if header else []
    lines += [sep.join(cell(c[r]) for c in columns) for r in range(len(columns[0]))]
    path.write_text("\n".join(lines) + "\n")


values = st.lists(st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 3)), min_size=2, max_size=30)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.integers(1, 3).flatmap(lambda k: st.lists(values, min_size=k, max_size=k)),
       locale=st.sampled_from([*LOCALES, "comma_single"]), header=st.booleans())
def test_any_locale_reads_back_equal_or_is_refused_by_name(tmp_path, columns, locale, header):
    n = min(len(c) for c in columns)
    columns = [c[:n] for c in columns]
    if locale == "comma_single":  # one column with decimal commas and no separator at all
        columns, (sep, dec) = columns[:1], (",", ",")
    else:
        sep, dec = LOCALES[locale]
    path = tmp_path / "lead.csv"
    _write(path, columns, sep, dec, header)
    col = len(columns) - 1
    try:
        lead = read_lead_csv(path, (f"L{col}" if header else str(col)) if len(columns) > 1 else None)
    except DataError as exc:  # refused: only where the text cannot say which reading is meant, and by name
        assert str(exc).startswith(f"'{path}'") and "--decimal" in str(exc)
        # ... which is the text of rows "a,b" of two whole numbers without a header, whichever locale wrote it
        rows = path.read_text().split()
        assert not header and all(len(r.split(",")) == 2 and all(p.lstrip("-").isdigit() for p in r.split(","))
                                  for r in rows)
        return
    np.testing.assert_allclose(lead.values, np.float32(columns[col]), atol=1e-6)


def test_spanish_spreadsheet_csv_is_read(tmp_path):
    path = tmp_path / "hoja.csv"
    path.write_text("\ufeffMLII;V1\r\n-0,470;0,125\r\n0,130;-1,5\r\n")  # BOM, CRLF: as Excel writes it
    assert read_lead_csv(path, "MLII").values.tolist() == pytest.approx([-0.47, 0.13])
    assert read_lead_csv(path, "V1").values.tolist() == pytest.approx([0.125, -1.5])
    single = tmp_path / "una.csv"
    single.write_text("-0,470\n0,125\n1\n")
    assert read_lead_csv(single).values.tolist() == pytest.approx([-0.47, 0.125, 1.0])
    ambiguous = tmp_path / "ambigua.csv"
    ambiguous.write_text("0,470\n0,125\n")
    with pytest.raises(DataError, match="--decimal comma or --decimal point"):
        read_lead_csv(ambiguous)
    assert read_lead_csv(ambiguous, decimal="comma").values.tolist() == pytest.approx([0.47, 0.125])
    assert read_lead_csv(ambiguous, "1", decimal="point").values.tolist() == [470, 125]
    bad = tmp_path / "mala.csv"
    bad.write_text("MLII\n0,5\n0,6x\n")
    with pytest.raises(DataError, match=r"row 3 has '0,6x', not a number"):
        read_lead_csv(bad)


def test_microvolts_are_converted_or_refused_with_the_fix(tmp_path, mitdb):
    rec = read_recording(mitdb, "119", annotator=None, fs=None)
    x = rec.signal[: 360 * 30]
    uv = tmp_path / "uv.csv"
    uv.write_text("MLII\n" + "\n".join(f"{v * 1000:.0f}" for v in x))
    with pytest.raises(DataError, match=r"amplitude ~[\d,]+ mV.*microvolts\? give --units uV"):
        check_signal(read_signal(uv, fs=360))
    sig = read_signal(uv, fs=360, units="uV")
    np.testing.assert_allclose(check_signal(sig), x, atol=1e-3)
    # A WFDB record whose header says uV: wfdb reads it in uV; the reader converts it to mV.
    folder = tmp_path / "rec"
    folder.mkdir()
    for ext in ("hea", "dat"):
        shutil.copy(mitdb / f"119.{ext}", folder / f"119.{ext}")
    header = (folder / "119.hea").read_text()
    (folder / "119.hea").write_text(header.replace("212 200 11", "212 0.2/uV 11"))  # 0.2 adu per uV = 200 per mV
    in_uv = read_signal(folder / "119")
    np.testing.assert_allclose(in_uv.values, rec.signal, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="flat.*--units V"):
        check_signal(Signal("v", x / 1000, 360.0, "MLII", "test"))


def test_empty_or_truncated_signal_file_is_named(tmp_path, mitdb):
    for ext in ("hea", "dat"):
        shutil.copy(mitdb / f"100.{ext}", tmp_path / f"100.{ext}")
    (tmp_path / "100.dat").write_bytes(b"")
    with pytest.raises(DataError, match=r"record 100: signal file '.*100.dat' is empty \(the header says 650000 "):
        read_recording(tmp_path, "100", annotator=None)
    (tmp_path / "100.dat").write_bytes((mitdb / "100.dat").read_bytes()[:1000])
    with pytest.raises(DataError, match=r"truncated \(1000 bytes"):
        read_recording(tmp_path, "100", annotator=None)
