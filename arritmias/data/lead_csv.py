"""Reading one ECG lead from a CSV file as spreadsheets and recorders write it, or refusing it in one line.

Spanish-locale spreadsheets (and most of continental Europe's) write decimal commas and separate columns with
``;``: ``-0,470;0,125``. English-locale ones write ``-0.470,0.125``. Both are read. The separator is ``;`` or a
tab when the data rows hold one, else ``,``. With ``;`` or a tab, a comma inside a cell can only be a decimal
comma. With
``,`` as separator, a comma is a decimal comma only when that is the one reading that fits: a header names fewer
columns than the rows split into (``MLII`` over ``-0,470``), or the rows split unevenly (``1`` and ``-0,47``:
whole numbers lose their comma). Rows of two whole numbers without a header (``0,470``) read either as one lead
with decimal commas or as two integer columns; that is refused, naming ``--decimal``, not guessed.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arritmias.errors import DataError

DECIMALS = {"auto": None, "point": ".", "comma": ","}
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class CsvLead:
    """``values`` (n,) float32 as written (NaN for an empty cell), from column ``name`` (None: no header)."""

    values: np.ndarray
    name: str | None


def _lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"'{path}': {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of the first cell
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # Windows spreadsheets' default; numbers read the same
    return [line for line in text.splitlines() if line.strip()]


def _is_number(text: str, decimal: str) -> bool:
    text = text.strip()
    if decimal == ",":
        if "." in text:
            return False
        text = text.replace(",", ".", 1)
    try:
        float(text)
        return True
    except ValueError:
        return False


def _split(line: str, sep: str) -> list[str]:
    """The cells of one line (CSV quoting understood: ``"-0,470","0,125"`` is two cells)."""
    return [c.strip() for c in next(csv.reader([line], delimiter=sep))]


def _decimal_for_commas(path: Path, header: list[str] | None, rows: list[list[str]]) -> str:
    """The decimal mark of a ``,``-separated file (see the module docstring)."""
    cells = [c for r in rows for c in r if c]
    if any("," in c for c in cells):  # quoted cells: the commas left inside them are decimal commas
        return ","
    widths = {len(r) for r in rows}
    if any("." in c for c in cells):
        return "."
    if header is not None:
        return "," if widths == {2 * len(header)} or (len(widths) > 1 and max(widths) <= 2 * len(header)) else "."
    if not all(_INTEGER.match(c) for c in cells):
        return "."
    if len(widths) == 1:
        if widths == {2}:
            raise DataError(f"'{path}': rows like '{','.join(rows[0])}' read either as one lead with decimal commas "
                            "or as two integer columns; say which with --decimal comma or --decimal point")
        return "."
    return "," if max(widths) == 2 else "."


def read_lead_csv(path: Path, column: str | None = None, decimal: str = "auto") -> CsvLead:
    """The lead of ``path``: its only column, or ``column`` (a header name) of several.

    ``decimal`` is ``auto`` (see the module docstring), ``point`` or ``comma``. Raises :class:`DataError`
    naming the file and what to change for an empty file, several columns without ``column``, an unknown column,
    rows of different widths or a cell that is not a number.
    """
    if decimal not in DECIMALS:
        raise DataError(f"--decimal must be one of {', '.join(DECIMALS)}, not '{decimal}'")
    lines = _lines(path)
    if not lines:
        raise DataError(f"'{path}': the file is empty")
    body = lines[1:] or lines
    sep = ";" if any(";" in line for line in body) else "\t" if any("\t" in line for line in body) else ","
    first = _split(lines[0], sep)
    header = first if any(c and not _is_number(c, ".") and not _is_number(c, ",") for c in first) else None
    rows = [_split(line, sep) for line in (lines[1:] if header is not None else lines)]
    if not rows:
        raise DataError(f"'{path}': a header and no values")
    mark = DECIMALS[decimal]
    if mark is None and sep != ",":  # ';' or tab between columns: a comma inside a cell is a decimal comma
        mark = "," if any("," in c for r in rows for c in r) else "."
    elif mark is None:
        mark = _decimal_for_commas(path, header, rows)
    if mark == "," and sep == "," and not any("," in c for r in rows for c in r):
        # unquoted: each value spans two comma-separated parts (or one, for whole numbers)
        rows = [[line.strip()] for line in (lines[1:] if header is not None else lines)]
        if header is not None and len(header) > 1:
            raise DataError(f"'{path}': decimal commas with ',' between columns cannot be told apart; export the "
                            "columns separated by ';'")
    names = header or [str(i) for i in range(len(rows[0]))]
    if len({len(r) for r in rows}) > 1 or len(rows[0]) != len(names):
        widths = sorted({len(r) for r in rows})
        raise DataError(f"'{path}': rows have {widths} columns (header: {len(names)}, separator '{sep}'); "
                        "every row must have one value per column")
    if column is None:
        if len(names) != 1:
            raise DataError(f"'{path}' has columns {names}: choose the lead with --column NAME")
        idx = 0
    elif column in names:
        idx = names.index(column)
    else:
        raise DataError(f"'{path}': no column '{column}' (columns: {names})")
    cells = [r[idx] for r in rows]
    out = np.full(len(cells), np.nan, np.float32)
    for i, cell in enumerate(cells):
        if not cell:
            continue
        if not _is_number(cell, mark):
            raise DataError(f"'{path}': column '{names[idx]}' row {i + 1 + (header is not None)} has '{cell}', not "
                            f"a number (decimal mark '{mark}', separator '{sep}'; see --decimal)")
        out[i] = float(cell.replace(",", ".", 1) if mark == "," else cell)
    return CsvLead(out, names[idx] if header is not None else None)
