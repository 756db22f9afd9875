"""``qbfast run`` / ``qbfast info``: summaries, resume messages, and one-line user errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import qbfast
from qbfast import store
from qbfast.cli import main
from qbfast.runner.driver import chunk_task
from qbfast.runner.spec import load_spec

SPEC = """
description = "a small cavity scan"
model = "cavity"
metrics = ["energy", "ergotropy"]
[params]
n = [2, 5]
J2 = { start = 0.0, stop = 1.0, num = 6 }
t = { start = 0.0, stop = 6.0, num = 121 }
[chunks]
J2 = 2
"""  # 3 chunks, float64


@pytest.fixture
def spec_file(tmp_path) -> Path:
    p = tmp_path / "scan.toml"
    p.write_text(SPEC)
    return p


def _tree(path: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(path).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in path.rglob("*")}


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("qbfast: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.slow  # a local Dask cluster
def test_run_local_cluster_default_store_summary_rerun_and_overwrite(spec_file, tmp_path,
                                                                     monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(spec_file), "--workers", "2"]) == 0
    out, err = capsys.readouterr()
    path = tmp_path / "scan.zarr"  # the spec's name in the current directory
    assert store.is_complete(path)
    for label in ("store", "points", "on disk", "wall time", "throughput", "max energy",
                  "max ergotropy"):
        assert label in out
    assert "1,452 (n=2, J2=6, t=121)" in out and "3 computed" in out
    assert "3/3 chunks" in err and "points/s" in err  # the progress bar
    ds = xr.open_zarr(path)
    ref = qbfast.sweep("cavity", ds.t.values, metrics=["energy", "ergotropy"], n=[2, 5],
                       J2=ds.J2.values)
    np.testing.assert_array_equal(ds.energy.values, ref.energy.values)
    e = ref.energy
    loc = {k: float(e[k][int(v)]) for k, v in e.argmax(...).items()}
    assert f"max energy     {float(e.max()):.7g} at n={loc['n']:.6g}, J2={loc['J2']:.6g}" in out

    before = _tree(path)
    assert main(["run", str(spec_file)]) == 0
    out, _ = capsys.readouterr()
    assert "already complete" in out and _tree(path) == before

    assert main(["run", str(spec_file), "--overwrite", "--workers", "1",
                 "--threads-per-worker", "2"]) == 0
    out, _ = capsys.readouterr()
    assert "3 computed, 3 total; 1 workers x 1 numba threads" in out
    assert store.is_complete(path)


def test_info_reports_spec_dims_chunks_and_bytes(spec_file, tmp_path, capsys):
    spec = load_spec(spec_file)
    path = tmp_path / "partial.zarr"
    store.create(spec, path)
    chunk_task((0, 1, 0), str(path), spec, {})
    assert main(["info", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "dims        n=2, J2=6, t=121" in out
    assert "chunks      1/3 done (incomplete)" in out
    assert "chunk shape (2, 2, 121)" in out
    assert f"on disk     " in out and "kB" in out
    assert 'J2 = { start = 0.0, stop = 1.0, num = 6 }' in out  # the spec text
    assert "model       cavity" in out


def test_mismatched_store_is_refused_untouched(spec_file, tmp_path, capsys):
    spec = load_spec(spec_file)
    path = tmp_path / "scan.zarr"
    store.create(spec, path)
    chunk_task((0, 0, 0), str(path), spec, {})
    before = _tree(path)
    other = tmp_path / "other.toml"
    other.write_text(SPEC.replace("num = 6", "num = 7"))
    assert main(["run", str(other), "--store", str(path)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "made from a different spec" in line and "left untouched" in line
    assert _tree(path) == before


@pytest.mark.parametrize("text, fragment", [
    ('model = "cavity"\n[params]\nt = [0.0]\nJ2 = { start = 0, stop = 1, num = 0 }\n',
     "params.J2.num: expected an integer >= 1"),
    ('model = "cavity"\nwhat = 1\n[params]\nt = [0.0]\n', "what: unknown key; allowed:"),
    ('[params]\nt = [0.0]\n', "model: missing; allowed: 'field', 'cavity'"),
])
def test_bad_spec_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, text, fragment):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert main(["run", str(bad)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(bad) in line and fragment in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


@pytest.mark.parametrize("args, fragment", [
    (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "cannot be combined"),
    (["--workers", "0"], "--workers: expected an integer >= 1"),
    (["--threads-per-worker", "0"], "--threads-per-worker: expected an integer >= 1"),
])
def test_bad_options(spec_file, capsys, args, fragment):
    assert main(["run", str(spec_file), *args]) == 2
    assert fragment in _one_error_line(capsys.readouterr().err)


def test_missing_spec_and_store(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.toml")]) == 2
    assert "cannot read the spec" in _one_error_line(capsys.readouterr().err)
    assert main(["info", str(tmp_path / "none.zarr")]) == 2
    assert "no such store" in _one_error_line(capsys.readouterr().err)


@pytest.mark.slow  # a subprocess
def test_console_error_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "cavity"\n[params]\nn = [0]\nt = [0.0]\n')
    r = subprocess.run([sys.executable, "-m", "qbfast", "run", str(bad)], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert _one_error_line(r.stderr) == (
        f"qbfast: error: {bad}: params.n[0]: expected an integer >= 1, got 0")
