"""benchmarks/lenet300.py replaces only its own section of RESULTS.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "lenet300.py"


@pytest.fixture
def lenet300():
    spec = importlib.util.spec_from_file_location("lenet300", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_write_section_replaces_only_its_own(lenet300, tmp_path, monkeypatch):
    results = tmp_path / "RESULTS.md"
    monkeypatch.setattr(lenet300, "RESULTS", results)
    lenet300.write_section(f"{lenet300.HEADING}\n\nfirst\n")
    assert results.read_text().count(lenet300.HEADING) == 1
    results.write_text("# R\n\n## Other\n\nkeep me\n\n" + results.read_text().split("\n", 2)[2]
                       + "\n## Later\n\nkeep me too\n")
    lenet300.write_section(f"{lenet300.HEADING}\n\nsecond\n")
    text = results.read_text()
    assert "first" not in text
    assert "second" in text
    assert "keep me\n" in text
    assert "keep me too" in text
    assert text.count(lenet300.HEADING) == 1
