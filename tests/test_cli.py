"""``qbfast run`` / ``info`` / ``verify``: summaries, resume messages, one-line user errors;
--overwrite that deletes only qbfast stores; one writer per store (real processes); damaged
chunks reported and repaired."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import qbstore
import xarray as xr

import qbfast
from qbfast import store
from qbfast.cli import main
from qbfast.runner.spec import load_spec
from qbfast.runner.tasks import DEBUG_DELAY_ENV

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
"""  # 3 tasks, float64


@pytest.fixture
def spec_file(tmp_path) -> Path:
    p = tmp_path / "scan.toml"
    p.write_text(SPEC)
    return p


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The spec written task by task in this process (no cluster)."""
    d = tmp_path_factory.mktemp("ref")
    (d / "scan.toml").write_text(SPEC)
    path = d / "scan.zarr"
    spec = load_spec(d / "scan.toml")
    qbstore.create(spec, path)
    qbstore.write_tasks(spec, path)
    return path


one_error_line = qbstore.one_error_line


@pytest.mark.slow
def test_run_local_cluster_default_store_summary_rerun_and_overwrite(spec_file, tmp_path,
                                                                     reference, monkeypatch,
                                                                     capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(spec_file), "--workers", "2"]) == 0
    out, err = capsys.readouterr()
    path = tmp_path / "scan.zarr"  # the spec's name in the current directory
    assert qbstore.is_complete(path)
    for label in ("store", "points", "on disk", "wall time", "throughput", "max energy",
                  "max ergotropy"):
        assert label in out
    assert "1,452 (n=2, J2=6, t=121)" in out and "3 computed" in out
    assert "3 tasks" in err and "points" in err  # the plan line and the progress bar
    ds = xr.open_zarr(path)
    ref = qbfast.sweep("cavity", ds.t.values, metrics=["energy", "ergotropy"], n=[2, 5],
                       J2=ds.J2.values)
    np.testing.assert_array_equal(ds.energy.values, ref.energy.values)
    e = ref.energy
    loc = {k: float(e[k][int(v)]) for k, v in e.argmax(...).items()}
    assert f"max energy     {float(e.max()):.7g} at n={loc['n']:.6g}, J2={loc['J2']:.6g}" in out
    assert qbstore.data_files(path) == qbstore.data_files(reference)

    before = qbstore.tree_state(path)
    assert main(["run", str(spec_file)]) == 0
    out, _ = capsys.readouterr()
    assert "already complete" in out and qbstore.tree_state(path) == before

    assert main(["run", str(spec_file), "--overwrite", "--workers", "1",
                 "--threads-per-worker", "2"]) == 0
    out, _ = capsys.readouterr()
    assert "3 computed, 3 total; 1 workers x 1 numba threads" in out
    assert qbstore.is_complete(path)
    assert qbstore.data_files(path) == qbstore.data_files(reference)


def test_info_reports_spec_dims_tasks_and_bytes(spec_file, tmp_path, capsys):
    spec = load_spec(spec_file)
    path = tmp_path / "partial.zarr"
    qbstore.create(spec, path)
    qbstore.write_tasks(spec, path, [1])
    assert main(["info", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "dims        n=2, J2=6, t=121" in out
    assert "tasks       1/3 done (incomplete)" in out
    assert "task shape  (2, 2, 121) (3 tasks)" in out
    assert "on disk     " in out and "kB" in out
    assert 'J2 = { start = 0.0, stop = 1.0, num = 6 }' in out  # the spec text
    assert "model       cavity" in out
    assert "qbfast store format 2" in out


def test_info_says_incomplete_when_a_chunk_file_is_gone(reference, tmp_path, capsys):
    path = tmp_path / "scan.zarr"
    shutil.copytree(reference, path)
    info = store.open_info(path)
    store.write_complete(info, store.read_record(info))
    assert main(["info", str(path)]) == 0
    assert "3/3 done (complete)" in capsys.readouterr().out
    (path / "ergotropy" / "c.0.1.0").unlink()
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(complete)" not in out
    assert "incomplete: 1 recorded tasks have missing chunk files" in out


def test_mismatched_store_is_refused_untouched(spec_file, tmp_path, capsys):
    spec = load_spec(spec_file)
    path = tmp_path / "scan.zarr"
    qbstore.create(spec, path)
    qbstore.write_tasks(spec, path, [0])
    before = qbstore.tree_state(path)
    other = tmp_path / "other.toml"
    other.write_text(SPEC.replace("num = 6", "num = 7"))
    assert main(["run", str(other), "--store", str(path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "made from a different spec" in line and "left untouched" in line
    assert qbstore.tree_state(path) == before


def _refused_spec(tmp_path, monkeypatch, capsys, text: str, fragment: str) -> None:
    """`qbfast run` of the spec ``text``: rc 2, one line naming the spec file and containing
    ``fragment``, and nothing written beside the spec."""
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert main(["run", str(bad)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(bad) in line and fragment in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


@pytest.mark.parametrize("text, fragment", [
    ('model = "cavity"\n[params]\nt = [0.0]\nJ2 = { start = 0, stop = 1, num = 0 }\n',
     "params.J2.num: expected an integer >= 1"),
    ('model = "cavity"\nwhat = 1\n[params]\nt = [0.0]\n', "what: unknown key; allowed:"),
    ('[params]\nt = [0.0]\n', "model: missing; allowed: 'field', 'cavity'"),
])
def test_bad_spec_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, text, fragment):
    _refused_spec(tmp_path, monkeypatch, capsys, text, fragment)


@pytest.mark.parametrize("args, fragment", [
    (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "cannot be combined"),
    (["--workers", "0"], "--workers: expected an integer >= 1"),
    (["--threads-per-worker", "0"], "--threads-per-worker: expected an integer >= 1"),
])
def test_bad_options(spec_file, capsys, args, fragment):
    assert main(["run", str(spec_file), *args]) == 2
    assert fragment in one_error_line(capsys.readouterr().err)


def test_missing_spec_and_store(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.toml")]) == 2
    assert "cannot read the spec" in one_error_line(capsys.readouterr().err)
    assert main(["info", str(tmp_path / "none.zarr")]) == 2
    assert "no such store" in one_error_line(capsys.readouterr().err)
    assert main(["verify", str(tmp_path / "none.zarr")]) == 2
    assert "no such store" in one_error_line(capsys.readouterr().err)


@pytest.mark.slow  # a subprocess
def test_console_error_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "cavity"\n[params]\nn = [0]\nt = [0.0]\n')
    r = subprocess.run([sys.executable, "-m", "qbfast", "run", str(bad)], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path, check=False)
    assert r.returncode == 2 and r.stdout == ""
    line = one_error_line(r.stderr)
    assert line.startswith(f"qbfast: error: {bad}: params.n[0]: expected an integer >= 1")
    assert line.endswith(", got 0")


# ---- --overwrite deletes only qbfast stores ------------------------------------------------

def _all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not p.is_symlink()}


def _format1_store(path: Path) -> None:
    import zarr

    zarr.create_group(path, zarr_format=3,
                      attributes={"spec_hash": "ab" * 32, "qbfast_store_format": 1})
    meta = zarr.create_group(path / "_qbfast", zarr_format=3,
                             attributes={"qbfast_store_format": 1, "complete": True})
    meta.create_array("done", shape=(2,), chunks=(1,), dtype="int8")[...] = 1


def test_overwrite_refuses_foreign_directories(spec_file, tmp_path, monkeypatch, capsys):
    """Each refused in one line naming the path, rc 2, before any cluster starts; every
    foreign file survives."""
    work = tmp_path / "work"
    work.mkdir()
    xs = work / "xarray.zarr"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_zarr(xs, zarr_format=3, consolidated=False)
    (xs / "notes.txt").write_text("my notes")
    thesis = work / "thesis"
    (thesis / "sub").mkdir(parents=True)
    (thesis / "zarr.json").write_text("")
    (thesis / "thesis.txt").write_text("chapter 1")
    (thesis / "sub" / "results.csv").write_text("1,2\n")
    old = work / "old.zarr"
    _format1_store(old)
    real = tmp_path / "real.zarr"
    spec = load_spec(spec_file)
    qbstore.create(spec, real)
    (work / "link.zarr").symlink_to(real)
    (work / "dangling.zarr").symlink_to(work / "nowhere")
    (work / "mine.txt").write_text("keep me")
    before = _all_files(tmp_path)
    cases = [(xs, str(xs)), (thesis, str(thesis)), (old, str(old)),
             (work / "link.zarr", str(work / "link.zarr")),
             (work / "dangling.zarr", str(work / "dangling.zarr"))]
    for target, named in cases:
        assert main(["run", str(spec_file), "--store", str(target), "--overwrite"]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert named in line, line
    monkeypatch.chdir(work)  # `cd dir; qbfast run ../s.toml --store . --overwrite`
    for target in (".", "..", str(work)):
        assert main(["run", str(spec_file), "--store", target, "--overwrite"]) == 2
        line = one_error_line(capsys.readouterr().err)
        if target == "..":  # names no store: refused before the lock or any removal
            assert "'..' names no store" in line, line
        else:  # named by its resolved path
            assert str(work) in line and "nothing was deleted" in line, line
    assert _all_files(tmp_path) == before  # every file survives, and nothing was added
    assert (work / "link.zarr").is_symlink() and (work / "dangling.zarr").is_symlink()
    assert not list(tmp_path.rglob(".*qbfast-lock"))


def test_refusal_without_overwrite_does_not_invite_deleting_foreign_data(spec_file, tmp_path,
                                                                         capsys):
    xs = tmp_path / "xarray.zarr"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_zarr(xs, zarr_format=3, consolidated=False)
    assert main(["run", str(spec_file), "--store", str(xs)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(xs) in line and "not one written by qbfast" in line
    assert "--overwrite" not in line or "only" in line


# ---- one writer per store (real processes) -------------------------------------------------

def _run_cli(args, timeout=120):
    return subprocess.run([sys.executable, "-m", "qbfast", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_second_run_on_a_store_being_written_is_refused_then_takeover(spec_file, tmp_path,
                                                                      reference):
    """While a run writes the store, a second `qbfast run` (same spec, another spec, each with
    and without --overwrite) refuses in one line naming the holder; the first run is then
    SIGKILLed, and the next run takes its lock over, says so, and finishes the store bit for
    bit as a clean run: never a mixed store."""
    path = tmp_path / "scan.zarr"
    other = tmp_path / "other.toml"
    other.write_text(SPEC.replace("start = 0.0, stop = 1.0", "start = 0.5, stop = 1.5"))
    log = open(tmp_path / "first.log", "w")
    first = qbstore.qbfast_proc(["run", str(spec_file), "--store", str(path), "--workers", "1"],
                                env={DEBUG_DELAY_ENV: "30"}, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        qbstore.wait_for(lambda: path.exists() or first.poll() is not None, 120, "the store")
        assert first.poll() is None, (tmp_path / "first.log").read_text()
        for spec_path in (spec_file, other):
            for extra in ([], ["--overwrite"]):
                r = _run_cli(["run", str(spec_path), "--store", str(path), "--workers", "1",
                              *extra])
                line = one_error_line(r.stderr)
                assert r.returncode == 2, r.stderr
                assert str(path) in line and "in use by run" in line
                assert f"pid {first.pid}" in line
                assert path.exists() and first.poll() is None
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
        log.close()
    assert store.open_info(path).attrs["spec_hash"] == load_spec(spec_file).hash
    r = _run_cli(["run", str(spec_file), "--store", str(path), "--workers", "1"], timeout=300)
    assert r.returncode == 0, r.stderr
    assert "taking over the stale lock" in r.stderr and f"pid {first.pid}" in r.stderr
    assert qbstore.is_complete(path)
    assert qbstore.data_files(path) == qbstore.data_files(reference)


# ---- damaged chunks: verify and repair ------------------------------------------------------

@pytest.mark.slow
def test_verify_reports_each_damaged_chunk_and_repair_restores_the_bytes(reference, tmp_path):
    path = tmp_path / "scan.zarr"
    shutil.copytree(reference, path)
    info = store.open_info(path)
    store.write_complete(info, store.read_record(info))
    assert main(["verify", str(path)]) == 0
    r = _run_cli(["verify", str(path)])
    assert r.returncode == 0 and "3 of 3 tasks verified, 0 damaged" in r.stdout
    victims = {"energy/c.0.0.0": "flip", "ergotropy/c.0.1.0": "truncate",
               "energy/c.0.2.0": "empty"}
    for rel, how in victims.items():
        p = path / rel
        data = p.read_bytes()
        if how == "flip":
            p.write_bytes(data[:20] + bytes([data[20] ^ 1]) + data[21:])
        elif how == "truncate":
            p.write_bytes(data[:-9])
        else:
            p.write_bytes(b"")
    for rel in victims:  # every reader refuses the damaged chunks
        with pytest.raises(ValueError, match="checksum do not match"):
            xr.open_zarr(path)[rel.split("/")[0]].compute()
    r = _run_cli(["verify", str(path)])
    assert r.returncode == 1, r.stdout + r.stderr
    damaged = [ln for ln in r.stdout.splitlines() if ln.startswith("damaged")]
    assert len(damaged) == 3
    for rel in victims:
        assert sum(rel in ln for ln in damaged) == 1, damaged
    assert "0 of 3 tasks verified, 3 damaged" in r.stdout
    assert "Traceback" not in r.stderr
    r = _run_cli(["verify", str(path), "--repair"], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "repaired" in r.stdout
    assert qbstore.data_files(path) == qbstore.data_files(reference)
    assert qbstore.is_complete(path)
    r = _run_cli(["verify", str(path)])
    assert r.returncode == 0 and "3 of 3 tasks verified, 0 damaged" in r.stdout


def _run_cli_bokeh(args: list[str], cwd: Path, hide_bokeh: bool) -> subprocess.CompletedProcess:
    """``qbfast ARGS`` in a fresh interpreter; ``hide_bokeh``: as if bokeh were not installed
    (``sys.modules["bokeh"] = None``: imports of it fail and ``find_spec`` finds nothing)."""
    code = ("import sys\n" + ("sys.modules['bokeh'] = None\n" if hide_bokeh else "")
            + "from qbfast.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow  # a subprocess and a local cluster
def test_dashboard_without_bokeh_warns_and_runs(spec_file, tmp_path):
    """--dashboard without bokeh: one warning line naming the extra, then the run as without
    --dashboard (a complete store, no dashboard line)."""
    r = _run_cli_bokeh(["run", str(spec_file), "--workers", "1", "--dashboard"], tmp_path,
                        True)
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if "bokeh" in ln]
    assert len(warnings) == 1 and warnings[0].startswith("qbfast: warning: --dashboard")
    assert "qbfast[dashboard]" in warnings[0]
    assert "dashboard at" not in r.stderr and "Traceback" not in r.stderr
    assert qbstore.is_complete(tmp_path / "scan.zarr")


@pytest.mark.slow  # a subprocess and a local cluster
def test_dashboard_address_is_printed(spec_file, tmp_path):
    pytest.importorskip("bokeh")
    r = _run_cli_bokeh(["run", str(spec_file), "--workers", "1", "--dashboard"], tmp_path,
                        False)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "Dask dashboard at" in ln]
    assert len(lines) == 1 and re.search(r"at http://\S+:\d+/status", lines[0]), r.stderr
    assert "bokeh" not in r.stderr


@pytest.mark.parametrize("text, fragment", [
    ('model = "cavity"\n[params]\nt = [0.0, 1.0]\nn_th = 0.0\n',
     "params.n_th: not a rate of model 'cavity'"),
    ('model = "field"\n[params]\nt = [0.0, 1.0]\nkappa = 0.1\n',
     "params.kappa: not a rate of model 'field'"),
    ('model = "cavity"\ncharger = "coherent"\n[params]\nt = [0.0, 1.0]\ngamma_phi = [0, 0.1]\n',
     "params.gamma_phi: the open dynamics of charger 'coherent' is not built"),
    ('model = "field"\n[params]\nt = [0.0, 1.0]\ngamma_c = 1e4\n',
     "params.gamma_c: gamma_c reaches 10000, outside the open kernels' accuracy range"),
    ('model = "field"\nprotocol = "full"\nmax_step = 0.01\n[params]\nt = [0.0, 1.0]\n'
     'gamma = 0.1\n', "max_step: only for the closed field kernel"),
])
def test_bad_rates_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, text,
                                                   fragment):
    _refused_spec(tmp_path, monkeypatch, capsys, text, fragment)
