"""The one single-file atomic write: whole file or nothing, the old file kept when a write fails."""

from __future__ import annotations

import pytest

from arritmias.util.atomic import write_atomic, write_text_atomic


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


def test_staged_files_appear_together_or_not_at_all(tmp_path):
    from arritmias.util.atomic import staged_files

    targets = {"data": tmp_path / "beats" / "r.parquet", "summary": tmp_path / "r_summary.json"}
    with pytest.raises(RuntimeError, match="renderer broke"):
        with staged_files(targets) as tmp:
            tmp["data"].write_text("rows")
            raise RuntimeError("renderer broke")
    assert not targets["data"].exists() and not targets["summary"].exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left

    with staged_files(targets) as tmp:
        tmp["data"].write_text("rows")
        tmp["summary"].write_text("{}")
    assert targets["data"].read_text() == "rows" and targets["summary"].read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beats", "r_summary.json"]


def test_staged_files_moves_the_finished_marker_last(tmp_path, monkeypatch):
    import os

    from arritmias.util import atomic

    order = []
    real = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda src, dst: (order.append(os.path.basename(dst)), real(src, dst)))
    with atomic.staged_files({"a": tmp_path / "a.html", "b": tmp_path / "b.pvc", "done": tmp_path / "s.json"}) as t:
        for p in t.values():
            p.write_text("x")
    assert order == ["a.html", "b.pvc", "s.json"]
