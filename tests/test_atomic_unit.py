"""The one single-file atomic write: whole file or nothing, the old file kept when a write fails."""

from __future__ import annotations

import pytest

from arritmias.atomic import write_atomic, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "results.json", '{"ok": 1}\n')
    assert path.read_text() == '{"ok": 1}\n'

    def half_then_fail(tmp):
        tmp.write_text('{"half')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, half_then_fail)
    assert path.read_text() == '{"ok": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
