"""A rate sweep end to end (issue 18): ``qbfast run`` of a spec sweeping ``gamma_phi`` (and
``gamma``) on a real local Dask cluster into a Zarr store, then ``qbfast extrema`` on it. The
store holds the rates as coordinates (swept) and attrs (fixed), its series are those of
``qbfast.sweep`` bit for bit and QuTiP ``mesolve``'s within 1e-8 abs + 1e-6 rel, and the
extrema table is the NumPy maximum of the series."""

from __future__ import annotations

import csv

import independent_reference as ref
import numpy as np
import open_reference as R
import pytest
import xarray as xr

import qbfast
from qbfast.cli import main

SPEC = """
description = "a small open run"
model = "cavity"
charger = "thermal"
metrics = ["energy", "ergotropy", "concurrence"]
[params]
nbar = 0.4
gamma_phi = [0.0, 0.3, 0.8]
gamma = [0.0, 0.1]
kappa = 0.05
t = { start = 0.0, stop = 4.0, num = 41 }
[reduce]
stats = ["max", "argmax"]
keep_series = true
"""


@pytest.mark.slow
def test_rate_sweep_run_into_a_store_then_extrema(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "open.toml").write_text(SPEC)
    assert main(["run", "open.toml", "--workers", "1"]) == 0
    ds = xr.open_zarr(tmp_path / "open.zarr")
    assert ds.energy.dims == ("gamma_phi", "gamma", "t")
    assert ds.gamma_phi.attrs["long_name"] == "pure dephasing rate of each qubit"
    assert ds.attrs["kappa"] == 0.05 and ds.attrs["gamma_c"] == 0.0
    assert "gamma_phi" not in ds.attrs

    t = ds.t.values
    want = qbfast.sweep("cavity", t, charger="thermal", nbar=0.4, gamma_phi=[0.0, 0.3, 0.8],
                        gamma=[0.0, 0.1], kappa=0.05,
                        metrics=["energy", "ergotropy", "concurrence"])
    for m in want.data_vars:
        np.testing.assert_array_equal(ds[m].values, want[m].values)
    np.testing.assert_array_equal(ds.ergotropy_max.values, want.ergotropy.max("t").values)
    # one open point against QuTiP (17 photons: all but 0.4^17/1.4^17 ~ 6e-10 of the weights)
    point = dict(J1=1.0, J2=1.0, omega_g=1.0, omega_a=1.0, Delta=1.0, gamma=0.1,
                 gamma_phi=0.8, gamma_c=0.0, kappa=0.05)
    sub = t[::8]
    rhos = R.cavity_mesolve(point, R.thermal(0.4, 17), sub)
    mesolve = R.metrics(rhos, sub, ref.cavity_battery_h(1.0, 1.0, 1.0), 1.0)
    for m in want.data_vars:
        np.testing.assert_allclose(ds[m].sel(gamma_phi=0.8, gamma=0.1).values[::8],
                                   mesolve[m], atol=1e-8, rtol=1e-6, err_msg=m)
    assert ds.qb.parameters(gamma_phi=0.8, gamma=0.1)["kappa"] == 0.05
    capsys.readouterr()

    assert main(["extrema", "open.zarr", "--metric", "ergotropy", "--csv", "ext.csv"]) == 0
    with open(tmp_path / "ext.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    for row in rows:
        series = want.ergotropy.sel(gamma_phi=float(row["gamma_phi"]),
                                    gamma=float(row["gamma"])).values
        # the table prints 10 significant digits
        assert float(row["ergotropy_max"]) == pytest.approx(series.max(), rel=1e-9)
        assert float(row["ergotropy_t_max"]) == pytest.approx(t[np.argmax(series)], rel=1e-9)


@pytest.mark.slow
def test_reduce_without_series_on_a_mixed_rate_grid(tmp_path, monkeypatch):
    """[reduce] without stored series (the fused route of the tasks) on a grid whose
    gamma_phi = 0 points are closed and the others open: the maxima are those of the series
    of qbfast.sweep, and the closed points' those of the closed model."""
    monkeypatch.chdir(tmp_path)
    spec = SPEC.replace("keep_series = true", "keep_series = false").replace(
        "gamma = [0.0, 0.1]", "gamma = 0.0").replace("kappa = 0.05\n", "")
    (tmp_path / "mixed.toml").write_text(spec)
    assert main(["run", "mixed.toml", "--workers", "1"]) == 0
    ds = xr.open_zarr(tmp_path / "mixed.zarr")
    assert "ergotropy" not in ds and ds.ergotropy_max.dims == ("gamma_phi",)
    t = ds.t.values
    want = qbfast.sweep("cavity", t, charger="thermal", nbar=0.4, gamma_phi=[0.0, 0.3, 0.8],
                        metrics=["energy", "ergotropy", "concurrence"])
    closed = qbfast.sweep("cavity", t, charger="thermal", nbar=0.4,
                          metrics=["energy", "ergotropy", "concurrence"])
    for m in want.data_vars:
        np.testing.assert_array_equal(ds[f"{m}_max"].values, want[m].max("t").values)
        np.testing.assert_array_equal(ds[f"{m}_t_max"].values,
                                      t[want[m].argmax("t").values])
        assert float(ds[f"{m}_max"].sel(gamma_phi=0.0)) == float(closed[m].max())
