"""Figures are generated, never typed: docs/benchmarks.md and the README's headline table are what
benchmarks/render_docs.py renders from benchmarks/results/*.json, and the README stays a door (a few screens)."""

from __future__ import annotations

from benchmarks import render_docs
from tests.conftest import ROOT


def test_benchmarks_page_and_readme_figures_are_the_results():
    render = render_docs
    assert (ROOT / "docs" / "benchmarks.md").read_text() == render.render_page(), "stale: run `make docs`"
    readme = (ROOT / "README.md").read_text()
    assert readme == render.readme_with_headlines(readme), "the README's figures are stale: run `make docs`"


def test_a_changed_result_changes_the_page(tmp_path, monkeypatch):
    """The page really reads the results: one figure changed in a copy of the results changes its row."""
    import json
    import shutil

    render = render_docs
    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    profile = json.loads((results / "profile.json").read_text())
    profile["analyze_process_s"] = 123.4
    (results / "profile.json").write_text(json.dumps(profile))
    monkeypatch.setattr(render, "RESULTS", results)
    assert "| 123.4 s |" in render.render_page()
    assert "| 123.4 s |" in render.render_headlines()


def test_readme_is_a_door():
    assert len((ROOT / "README.md").read_text()) <= 12_000
