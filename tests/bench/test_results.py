"""bench._results.record: what a results file holds, and that smoke runs write nothing."""

from __future__ import annotations

import json

import numpy as np

from bench import _results


def test_record_writes_provenance_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv(_results.RESULTS_ENV, str(tmp_path))
    path = _results.record("kernels", ["--models", "cavity"],
                           [{"case": "cavity", "qbfast": np.float64(1.5e8), "n": np.int64(3)}],
                           notes="a note")
    assert path == tmp_path / "kernels.json"
    doc = json.loads(path.read_text())
    assert doc["command"] == "python -m bench.kernels --models cavity"
    assert doc["figures"] == [{"case": "cavity", "qbfast": 1.5e8, "n": 3}]
    assert doc["machine"]["cores"] >= 1 and "shared" in doc["machine"]["note"]
    assert {"qbfast", "numba", "numpy", "python"} <= set(doc["versions"])
    assert doc["notes"] == "a note" and doc["date"].endswith("+00:00")
    assert not list(tmp_path.glob("*.tmp"))


def test_smoke_runs_are_not_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv(_results.RESULTS_ENV, str(tmp_path))
    assert _results.record("kernels", ["--quick"], [{"case": "x"}], smoke=True) is None
    assert not list(tmp_path.iterdir())
