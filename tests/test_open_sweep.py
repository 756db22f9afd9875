"""The rates of physics.md section 8 as ordinary parameters of ``qbfast.sweep``: a swept rate
against QuTiP ``mesolve`` (field both protocols, cavity Fock and thermal), every rate 0 bit for
bit the closed model, a mixed grid (closed points through the closed kernel, open points
through the open one), ``[reduce]`` on open points against NumPy reductions of the series, the
kernel names, and ``ds.qb.parameters`` recomputing an open point."""

from __future__ import annotations

import independent_reference as ref
import numpy as np
import open_reference as R
import pytest

import qbfast
from qbfast.core import Grid
from qbfast.reduce import reduce_grid, reduce_stats

T = np.array([0.0, 0.4, 1.1, 2.0, 3.3])
FIELD = dict(A=1.3, B=0.7, omega=1.9, g=0.4, Delta=1.0)
FIELD_RATES = dict(gamma=0.3, n_th=0.2, gamma_c=0.25)
CAVITY = dict(J1=0.8, J2=0.3, omega_g=0.9, omega_a=1.4, Delta=1.0)
CAVITY_RATES = dict(gamma=0.2, gamma_c=0.15, kappa=0.3)


def as_dict(ds, **isel) -> dict[str, np.ndarray]:
    return {m: ds[m].isel(**isel).values for m in ds.data_vars}


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["drive", "full"])
def test_field_swept_rate_matches_mesolve(protocol):
    phis = [0.0, 0.45]
    ds = qbfast.sweep("field", T, protocol=protocol, gamma_phi=phis, **FIELD, **FIELD_RATES)
    assert ds.energy.dims == ("gamma_phi", "t") and ds.attrs["gamma"] == 0.3
    assert ds.gamma_phi.attrs["units"] == "Delta"
    hb = ref.field_battery_h(FIELD["Delta"], FIELD["g"])
    for i, phi in enumerate(phis):
        point = {**FIELD, **FIELD_RATES, "gamma_phi": phi}
        want = R.metrics(R.field_mesolve(point, T, protocol == "full"), T, hb, FIELD["Delta"])
        R.assert_close(as_dict(ds, gamma_phi=i), want, what=f"{protocol} gamma_phi={phi}")


@pytest.mark.slow
@pytest.mark.parametrize("charger", ["fock", "thermal"])
def test_cavity_swept_rate_matches_mesolve(charger):
    phis = [0.0, 0.5]
    first = {"n": 2} if charger == "fock" else {"nbar": 0.3}
    ds = qbfast.sweep("cavity", T, charger=None if charger == "fock" else charger,
                      gamma_phi=phis, **first, **CAVITY, **CAVITY_RATES)
    hb = ref.cavity_battery_h(CAVITY["Delta"], CAVITY["J1"], CAVITY["J2"])
    # thermal: 16 photons hold all but 0.3^16 / 1.3^16 ~ 6e-11 of the weights
    photons = R.fock(2) if charger == "fock" else R.thermal(0.3, 16)
    for i, phi in enumerate(phis):
        point = {**CAVITY, **CAVITY_RATES, "gamma_phi": phi}
        want = R.metrics(R.cavity_mesolve(point, photons, T), T, hb, CAVITY["Delta"])
        R.assert_close(as_dict(ds, gamma_phi=i), want, what=f"{charger} gamma_phi={phi}")


CASES = [
    ("field", dict(protocol="drive")),
    ("field", dict(protocol="full")),
    ("cavity", dict(n=3)),
    ("cavity", dict(charger="thermal", nbar=0.7)),
    ("cavity", dict(charger="coherent", nbar=0.7)),
]


@pytest.mark.parametrize(("model", "kwargs"), CASES)
def test_every_rate_zero_is_the_closed_model_bit_for_bit(model, kwargs):
    closed = qbfast.sweep(model, T, **kwargs)
    zeros = {r: 0.0 for r in qbfast.MODELS[model].rate_names}
    given = qbfast.sweep(model, T, **kwargs, **zeros)
    swept = qbfast.sweep(model, T, **kwargs, gamma=[0.0])
    for m in closed.data_vars:
        np.testing.assert_array_equal(given[m].values, closed[m].values)
        np.testing.assert_array_equal(swept[m].isel(gamma=0).values, closed[m].values)
    assert Grid(model, T, **kwargs, **zeros).kernel == Grid(model, T, **kwargs).kernel
    assert all(given.attrs[r] == 0.0 for r in zeros)


@pytest.mark.parametrize(("model", "kwargs", "name"), [
    ("field", dict(protocol="drive"), "open_field_drive"),
    ("field", dict(protocol="full"), "open_field_full"),
    ("cavity", dict(n=3), "open_cavity"),
    ("cavity", dict(charger="thermal", nbar=0.7), "open_cavity_thermal"),
])
def test_kernel_names_the_open_route_when_a_rate_is_positive(model, kwargs, name):
    assert Grid(model, T, **kwargs, gamma_phi=0.1).kernel == name
    assert Grid(model, T, **kwargs, gamma_phi=[0.0, 0.1]).kernel == name
    assert Grid(model, T, **kwargs, gamma_phi=[0.0]).kernel == Grid(model, T, **kwargs).kernel


@pytest.mark.slow
@pytest.mark.parametrize(("model", "kwargs"), CASES[:4])
def test_mixed_grid_computes_each_point_with_its_own_kernel(model, kwargs):
    """Closed points (every rate 0) bit for bit the closed sweep, open points bit for bit the
    open-only sweep, whatever the mix's order."""
    other = "J2" if model == "cavity" else "g"
    mixed = qbfast.sweep(model, T, **kwargs, **{other: [0.1, 0.5]}, gamma_phi=[0.3, 0.0, 0.7])
    for j, value in enumerate([0.1, 0.5]):
        closed = qbfast.sweep(model, T, **kwargs, **{other: value})
        opened = qbfast.sweep(model, T, **kwargs, **{other: value}, gamma_phi=[0.3, 0.7])
        for m in closed.data_vars:
            np.testing.assert_array_equal(mixed[m].isel({other: j, "gamma_phi": 1}).values,
                                          closed[m].values)
            np.testing.assert_array_equal(mixed[m].isel({other: j, "gamma_phi": [0, 2]}).values,
                                          opened[m].values)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "kwargs"), CASES[:4])
def test_reduce_on_open_points_matches_numpy_reductions_of_the_series(model, kwargs):
    t = np.linspace(0.0, 6.0, 61)
    stats = ("max", "argmax", "min", "argmin", "first_max")
    grid = Grid(model, t, **kwargs, gamma_phi=[0.0, 0.2, 0.9], gamma=[0.05, 0.0])
    series = grid.empty_output()
    grid.compute(series.reshape(len(grid.metrics), grid.n_points, t.size))
    for block_bytes in (None, 1):  # one block, and one point per block
        reduced, peaks = reduce_grid(grid, stats, ("ergotropy",), block_bytes=block_bytes)
        for i, name in enumerate(grid.metrics):
            want = reduce_stats(series[i], t, stats)
            for suffix, array in want.items():
                np.testing.assert_array_equal(reduced[name][suffix], array,
                                              err_msg=f"{name}_{suffix}")
        k = grid.metrics.index("ergotropy")
        flat = series[k].ravel()
        assert peaks[0, 0] == np.nanmax(flat) and peaks[0, 1] == np.nanargmax(flat)


def test_qb_parameters_recompute_an_open_point():
    ds = qbfast.sweep("cavity", T, n=2, gamma_phi=[0.0, 0.4], kappa=0.2, metrics=["energy"])
    kwargs = ds.qb.parameters(gamma_phi=0.4)
    assert kwargs["gamma_phi"] == 0.4 and kwargs["kappa"] == 0.2 and "gamma" not in kwargs
    assert "gamma_phi" not in ds.qb.parameters(gamma_phi=0.0)  # a closed point: no rates
    again = qbfast.sweep(**kwargs, t=T, metrics=["energy"])
    np.testing.assert_array_equal(again.energy.values, ds.energy.isel(gamma_phi=1).values)


def test_mixed_is_decided_from_the_rates_values_and_tables_have_the_kernels_columns():
    assert Grid("cavity", T, gamma_phi=[0.0, 0.3]).is_mixed
    assert not Grid("cavity", T, gamma_phi=[0.0, 0.3], gamma=0.1).is_mixed  # all open
    assert not Grid("cavity", T, gamma_phi=[0.1, 0.3]).is_mixed
    assert not Grid("cavity", T, gamma_phi=[0.0]).is_mixed                  # all closed
    mixed = Grid("cavity", T, gamma_phi=[0.0, 0.3], kappa=[0.0, 0.2])
    assert mixed.is_mixed and mixed.open_points().tolist() == [False, True, True, True]
    assert Grid("cavity", T, J2=[0.0, 1.0]).parameter_table().shape == (2, 6)  # as before
    assert Grid("cavity", T, J2=[0.0, 1.0], kappa=0.1).parameter_table().shape == (2, 10)
