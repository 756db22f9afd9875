"""``qbfast extrema | corr | claims | plot | figures``: outputs parsed back, PNGs checked,
and every bad input answered with one line on stderr and status 2."""

from __future__ import annotations

import argparse
import csv
import math

import numpy as np
import pytest

import qbfast.analysis as qa
from qbfast.analysis.extrema import EXTREMA_SUFFIXES
from qbfast.cli_analysis import add_commands

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="qbfast")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_png(path):
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC)
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_extrema_table_parses_back(cavity_path, capsys):
    code, out, err = run(["extrema", cavity_path, "--metric", "energy"], capsys)
    assert code == 0 and err == ""
    header, *rows = [line.split() for line in out.splitlines()]
    assert header[:2] == ["J2", "n"] and header[2:4] == ["energy_max", "energy_t_max"]
    assert len(rows) == 6
    table = {(float(r[0]), int(r[1])): dict(zip(header, map(float, r))) for r in rows}
    ext = qa.extrema(qa.open_store(cavity_path), "energy").compute()
    for (j2, n), row in table.items():
        for name in header[2:]:
            np.testing.assert_allclose(row[name], float(ext[name].sel(J2=j2, n=n)), rtol=1e-9)
    # the sample (= [reduce]) columns only, and no refined one unless asked for
    assert header[2:] == [f"energy_{s}" for s in EXTREMA_SUFFIXES]
    # at least 7 significant digits: the sample first maximum is the stored series there
    t_first = table[(1.0, 7)]["energy_t_first_max"]
    sample = qa.open_store(cavity_path).energy.sel(J2=1.0, n=7, t=t_first)
    assert abs(table[(1.0, 7)]["energy_first_max"] - float(sample)) < 1e-8


def test_extrema_csv_with_selection_and_refinement(cavity_path, tmp_path, capsys):
    target = tmp_path / "e.csv"
    code, out, _ = run(["extrema", cavity_path, "--metric", "energy", "--refine", "kernel",
                        "--csv", target, "--sel", "J2=1", "n=7"], capsys)
    assert code == 0 and "wrote 1 rows" in out
    with target.open() as f:
        (row,) = list(csv.DictReader(f))
    assert abs(float(row["energy_t_first_max_refined"]) - math.pi / math.sqrt(26)) < 1e-9
    assert abs(float(row["energy_first_max_refined"]) - 1344 / 676) < 1e-9
    # the unsuffixed columns stay the sample values: the grid time nearest pi / sqrt(26)
    t = qa.open_store(cavity_path).t.values
    assert float(row["energy_t_first_max"]) == t[np.argmin(np.abs(t - math.pi / math.sqrt(26)))]


def test_corr_summary_and_per_point(cavity_path, tmp_path, capsys):
    code, out, _ = run(["corr", cavity_path, "energy", "ergotropy", "--per-point"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["J2", "n", "pearson", "spearman", "count"]
    corr = qa.correlation(qa.open_store(cavity_path), "energy", "ergotropy").compute()
    j2, n, pearson = (f(v) for f, v in zip((float, int, float), lines[1].split()))
    assert pearson == pytest.approx(float(corr.pearson.sel(J2=j2, n=n)), rel=1e-9)
    summary = [line.split() for line in lines if line.split()[:1] in (["pearson"], ["spearman"])]
    assert summary[-2][0] == "pearson" and int(summary[-2][1]) == 6
    target = tmp_path / "c.csv"
    code, _, _ = run(["corr", cavity_path, "energy", "ergotropy", "--csv", target], capsys)
    with target.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and set(rows[0]) == {"J2", "n", "pearson", "spearman", "count"}


def test_claims_report(cavity_path, capsys):
    code, out, _ = run(["claims", cavity_path, "--sel", "n=7", "--examples", "1"], capsys)
    assert code == 0
    assert "model cavity" in out
    assert "entropy_battery min vs energy max: holds at 1/3 grid points (33.3%)" in out
    assert "fails at J2=0" in out


def test_plot_writes_a_png(cavity_path, tmp_path, capsys):
    target = tmp_path / "energy.png"
    code, out, _ = run(["plot", cavity_path, "--y", "energy", "--sel", "n=7", "--out", target],
                       capsys)
    assert code == 0 and out.strip() == f"wrote {target}"
    assert_png(target)
    target = tmp_path / "vs_j2.png"
    code, _, _ = run(["plot", cavity_path, "--y", "concurrence", "--x", "J2", "--sel", "t=0.6",
                      "--out", target], capsys)
    assert code == 0
    assert_png(target)


@pytest.mark.slow  # every figure
def test_figures_writes_every_figure(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no sweeps/ here: the figure data are computed in-process
    code, out, _ = run(["figures", "--out", tmp_path / "figs", "--n-t", "201"], capsys)
    assert code == 0
    assert out.startswith("no figure specs in sweeps/; computing the figure data in-process")
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == ["chargers.png", "fig1.png", "fig2.png", "fig3_bare.png",
                     "fig3_interacting.png", "fig4_bare.png", "fig4_interacting.png", "fig5.png",
                     "open_maps.png"]
    for name in names:
        assert_png(tmp_path / "figs" / name)
        assert f"wrote {tmp_path / 'figs' / name}" in out


@pytest.mark.parametrize("argv, message", [
    (["extrema", "{missing}", "--metric", "energy"], "no such file or directory"),
    (["extrema", "{store}", "--metric", "nope"], "unknown metric 'nope'"),
    (["corr", "{store}", "energy", "nope"], "unknown metric 'nope'"),
    (["extrema", "{store}", "--metric", "energy", "--sel", "J2=3"],
     "selection J2=3: outside the coordinate range [0, 1] of J2"),
    (["extrema", "{store}", "--metric", "energy", "--sel", "J2"], "expected NAME=VALUE"),
    (["extrema", "{store}", "--metric", "energy", "--sel", "J2=x"], "'x' is not a number"),
    (["claims", "{store}", "--sel", "g=1"], "'g' is not a dimension"),
    (["claims", "{store}", "--sel", "J1=2"], "J1 is fixed at 1.0"),
    (["plot", "{store}", "--y", "energy", "--out", "{tmp}/e.png"], "still has dims J2, n"),
    (["plot", "{store}", "--y", "energy", "--x", "J1", "--out", "{tmp}/e.png"],
     "--x J1: not a dimension"),
    (["plot", "{store}", "--y", "energy", "--out", "{tmp}/e.pdf"], "expected a .png"),
    (["plot", "{store}", "--y", "energy", "--out", "{tmp}/no/e.png"], "does not exist"),
    (["plot", "{tmp}", "--y", "energy"], "not a readable Zarr store"),
    (["figures", "--out", "{tmp}/f", "--n-t", "2"], "--n-t"),
    (["figures", "--out", "{tmp}/f", "--specs", "{tmp}/none"], "fig1.toml': no such file"),
])
def test_bad_input_gives_one_line(argv, message, cavity_path, tmp_path, capsys):
    argv = [a.format(store=cavity_path, missing=tmp_path / "missing.zarr", tmp=tmp_path)
            for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("qbfast: error: ")
    assert message in err


def test_claims_merges_stores_of_one_grid(cavity_path, tmp_path, capsys, writer):
    ds = qa.open_store(cavity_path)
    first = writer(ds[["energy", "entropy_battery"]].load(), tmp_path / "a.zarr", {"J2": 1})
    writer(ds[["purity_battery"]].load(), tmp_path / "b.zarr", {"J2": 1})
    assert "purity_battery" not in first
    code, out, _ = run(["claims", tmp_path / "a.zarr", tmp_path / "b.zarr", "--sel", "n=7"],
                       capsys)
    assert code == 0 and "purity_battery max vs energy max: holds at 1/3" in out
    bare = qa.open_store(cavity_path).load().assign_attrs(battery_hamiltonian="bare")
    writer(bare, tmp_path / "c.zarr", {"J2": 1})
    code, _, err = run(["claims", tmp_path / "a.zarr", tmp_path / "c.zarr"], capsys)
    assert code == 2 and "stores differ in battery_hamiltonian" in err


def test_wired_into_qbfast_main(cavity_path, capsys):
    from qbfast.cli import main

    assert main(["extrema", str(cavity_path), "--metric", "energy", "--sel", "J2=1", "n=7",
                 "--refine", "parabolic"]) == 0
    header, row = (line.split() for line in capsys.readouterr().out.splitlines())
    assert header[12] == "energy_first_max_refined"
    assert float(row[12]) == pytest.approx(1344 / 676, abs=1e-6)
    assert main(["corr", str(cavity_path), "energy", "nope"]) == 2
    assert capsys.readouterr().err.startswith("qbfast: error: unknown metric 'nope'")



@pytest.mark.slow  # a subprocess
def test_output_into_a_closed_pipe_is_not_an_error(tmp_path):
    """`qbfast extrema STORE | head -1`: the reader leaves early; no traceback, exit 0.
    The table (20,000 rows) is far larger than a pipe's buffer, so the writer does hit the
    closed pipe."""
    import subprocess
    import sys

    import numpy as np

    import qbfast

    from .conftest import write_store

    path = tmp_path / "big.zarr"
    write_store(qbfast.sweep("cavity", [0.0, 0.5, 1.0], metrics=["energy"], n=list(range(1, 11)),
                             J1=np.linspace(0, 1, 40), J2=np.linspace(-1, 1, 50)),
                path, {"n": 5})
    with subprocess.Popen([sys.executable, "-m", "qbfast", "extrema", str(path),
                           "--metric", "energy"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        first = proc.stdout.readline()
        proc.stdout.close()  # like `head -1`
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
    assert first.split()[:3] == [b"n", b"J1", b"J2"]
    assert "Traceback" not in err and "BrokenPipe" not in err, err
