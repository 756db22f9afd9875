"""Extrema along t: closed forms (Fig. 3, field drive), the kernel against a plain-numpy
reference, NaN and flat series, laziness, and the accessors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import brentq

import qbfast
import qbfast.analysis as qa
from qbfast.analysis import _kernels
from qbfast.analysis.extrema import EXTREMA_SUFFIXES, METHODS

FIG3_T = math.pi / math.sqrt(26.0)  # physics.md section 5
FIG3_E = 1344.0 / 676.0


# --- closed forms ----------------------------------------------------------------------------

def test_fig3_first_maximum_parabolic(cavity_store):
    ext = qa.extrema(cavity_store, "energy").sel(J2=1.0, n=7).compute()
    # grid step 0.01: the parabola through the top three samples is good to ~1e-5
    assert abs(float(ext["energy_t_first_max_refined"]) - FIG3_T) < 1e-4
    assert abs(float(ext["energy_first_max_refined"]) - FIG3_E) < 1e-6
    assert float(ext["energy_max_refined"]) == pytest.approx(FIG3_E, abs=1e-6)  # periodic here
    assert float(ext["energy_min_refined"]) == pytest.approx(0.0, abs=1e-12)
    assert float(ext["energy_t_min_refined"]) == 0.0
    # the sample values: the grid time nearest the closed form (step 0.01), no refinement
    t = cavity_store.t.values
    assert float(ext["energy_t_first_max"]) == t[np.argmin(np.abs(t - FIG3_T))]
    assert ext["energy_t_first_max"].attrs["method"] == METHODS["sample"]
    assert ext["energy_t_first_max_refined"].attrs["method"] == \
        METHODS["parabolic"]


def test_fig3_first_maximum_kernel_refined(cavity_store):
    point = qa.select(cavity_store, {"J2": 1.0, "n": 7})
    ext = qa.extrema(point, "energy", refine="kernel")
    assert abs(float(ext["energy_t_first_max_refined"]) - FIG3_T) < 1e-9
    assert abs(float(ext["energy_first_max_refined"]) - FIG3_E) < 1e-12
    # the energy returns to 0 at t = 2 pi / sqrt(26): the first local minimum
    assert abs(float(ext["energy_t_first_min_refined"]) - 2 * FIG3_T) < 1e-9
    assert abs(float(ext["energy_first_min_refined"])) < 1e-12


def test_ladder_maximum_for_other_n_with_kernel():
    # J1 = J2, omega_a = Delta: max 8 n (n-1) Delta / (2n-1)^2 at pi / (omega_g sqrt(4n - 2))
    t = np.linspace(0.0, 3.0, 151)
    ds = qbfast.sweep("cavity", t, n=[2, 4], omega_g=0.7, J1=0.5, J2=0.5)
    ext = qa.extrema(ds, "energy", refine="kernel")
    for n in (2, 4):
        e = ext.sel(n=n)
        t_max = math.pi / (0.7 * math.sqrt(4 * n - 2))
        assert float(e["energy_t_first_max_refined"]) == pytest.approx(t_max, abs=1e-9)
        e_max = 8 * n * (n - 1) / (2 * n - 1) ** 2
        assert float(e["energy_first_max_refined"]) == pytest.approx(e_max, abs=1e-12)


def _a1(t, a, b, omega):
    return (b * t + (a / omega) * np.sin(omega * t)) / 2


@pytest.mark.parametrize("a, b", [(1.0, 2.0), (0.0, 2.0)])
def test_field_drive_energy_maxima_at_a1_pi_half(field_store, a, b):
    # E = Delta (1 - cos 2 A1): maxima 2 Delta where A1 = pi/2 + k pi
    t_star = brentq(lambda t: _a1(t, a, b, 1.0) - math.pi / 2, 1e-6, 3.0)
    ext = qa.extrema(field_store, "energy").sel(A=a, B=b).compute()
    assert float(ext["energy_t_first_max_refined"]) == pytest.approx(t_star, abs=1e-4)
    assert float(ext["energy_first_max_refined"]) == pytest.approx(2.0, abs=1e-6)
    refined = qa.extrema(qa.select(field_store, {"A": a, "B": b}), "energy", refine="kernel")
    assert float(refined["energy_t_first_max_refined"]) == pytest.approx(t_star, abs=1e-9)
    assert float(refined["energy_first_max_refined"]) == pytest.approx(2.0, abs=1e-12)
    assert float(refined["energy_max_refined"]) == pytest.approx(2.0, abs=1e-12)
    # every maximum in the window, not only the first, sits at A1 = pi/2 + k pi
    k = round(_a1(float(refined["energy_t_max_refined"]), a, b, 1.0) / math.pi - 0.5)
    a1 = _a1(float(refined["energy_t_max_refined"]), a, b, 1.0)
    assert a1 == pytest.approx(math.pi / 2 + k * math.pi, abs=1e-9)


def test_field_harmonic_drive_maximum_where_sin_t_is_one(field_store):
    # A = 2, B = 0, omega = 1: A1 = sin t never reaches pi/2; E = 1 - cos(2 sin t) peaks at
    # t = pi/2 with 1 - cos 2
    ext = qa.extrema(qa.select(field_store, {"A": 2.0, "B": 0.0}), "energy", refine="kernel")
    assert float(ext["energy_t_first_max_refined"]) == pytest.approx(math.pi / 2, abs=1e-9)
    assert float(ext["energy_first_max_refined"]) == pytest.approx(1 - math.cos(2.0), abs=1e-12)


# --- the kernel against an independent numpy reference --------------------------------------

def _reference_first_max(y, t):
    """First strict interior local maximum, refined with numpy's quadratic fit."""
    for i in range(1, y.size - 1):
        if y[i - 1] < y[i] > y[i + 1]:
            c2, c1, c0 = np.polyfit(t[i - 1:i + 2], y[i - 1:i + 2], 2)
            tv = -c1 / (2 * c2)
            return np.polyval([c2, c1, c0], tv), tv
    return np.nan, np.nan


def test_kernel_matches_numpy_reference_on_random_rows():
    rng = np.random.default_rng(7)
    t = np.sort(rng.uniform(0, 10, 40))
    y = rng.normal(size=(200, 40))
    out = _kernels.refined_extrema_rows(y, t, 0.0, 0.0)
    for r in range(y.shape[0]):
        i = int(np.argmax(y[r]))
        assert out[r, 0] >= y[r, i]  # the parabola only ever improves on the sample
        if 0 < i < 39:
            c2, c1, c0 = np.polyfit(t[i - 1:i + 2], y[r, i - 1:i + 2], 2)
            np.testing.assert_allclose(out[r, 1], -c1 / (2 * c2), rtol=1e-9)
            np.testing.assert_allclose(out[r, 0], np.polyval([c2, c1, c0], -c1 / (2 * c2)),
                                       rtol=1e-9)
        np.testing.assert_allclose(out[r, 4:6], _reference_first_max(y[r], t), rtol=1e-9)
        fm, ftm = _reference_first_max(-y[r], t)
        np.testing.assert_allclose(out[r, 6:8], (-fm, ftm), rtol=1e-9)


def test_nan_rows_and_nan_samples():
    t = np.linspace(0, 1, 6)
    y = np.array([[np.nan] * 6,
                  [np.nan, 1.0, 3.0, 2.0, np.nan, 5.0],
                  [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    out = _kernels.refined_extrema_rows(y, t, 1e-9, 1e-12)
    assert np.isnan(out[0]).all()
    assert out[1, 0] == 5.0 and out[1, 1] == 1.0  # global max at the end: not refined
    assert out[1, 4] > 3.0 and 0.2 < out[1, 5] < 0.6  # local max at sample 2
    assert np.isnan(out[2, 4:]).all()  # monotonic: no interior local extremum
    assert (out[2, 2], out[2, 3]) == (0.0, 0.0)


def test_flat_tops_and_rounding_noise():
    t = np.linspace(0, 1, 9)
    plateau = np.array([[0.0, 1.0, 2.0, 2.0, 2.0, 1.0, 0.0, 0.0, 0.0]])
    out = _kernels.refined_extrema_rows(plateau, t, 1e-9, 1e-12)
    assert out[0, 4] == 2.0 and out[0, 5] == pytest.approx(t[3])  # middle of the flat top
    noise = np.random.default_rng(1).normal(scale=1e-15, size=(1, 9))
    out = _kernels.refined_extrema_rows(noise, t, 1e-9, 1e-12)
    assert np.isnan(out[0, 4:]).all()  # an exactly-zero metric has no local extrema


# --- laziness, labels, accessors -------------------------------------------------------------

def test_lazy_on_a_store_and_equal_to_eager(cavity_store, cavity_path):
    lazy = qa.extrema(cavity_store, "concurrence")
    assert lazy["concurrence_t_first_max"].chunks is not None  # nothing computed yet
    assert lazy["concurrence_max"].chunks == cavity_store.concurrence.isel(t=0).chunks
    eager = qa.extrema(cavity_store.load(), "concurrence")
    xr.testing.assert_identical(lazy.compute(), eager)
    assert lazy["concurrence_t_max"].attrs == {
        "long_name": "time of the maximum over t of concurrence of the battery",
        "units": "1/Delta", "method": METHODS["sample"]}
    assert lazy["concurrence_t_max_refined"].attrs["long_name"] == (
        "time of the maximum over t of concurrence of the battery (refined: parabolic)")
    assert lazy["concurrence_max"].attrs["units"] == "1"
    assert lazy.attrs["model"] == "cavity" and lazy.attrs["metric"] == "concurrence"


def test_refine_none_gives_the_sample_extrema_only(cavity_store):
    ext = qa.extrema(cavity_store, "energy", refine="none").compute()
    full = qa.extrema(cavity_store, "energy").compute()
    assert sorted(ext.data_vars) == sorted(f"energy_{s}" for s in EXTREMA_SUFFIXES)
    xr.testing.assert_identical(ext.drop_attrs(), full[list(ext.data_vars)].drop_attrs())


def test_first_min_is_first_max_of_the_negated_series():
    t = np.linspace(0, 1, 7)
    y = xr.DataArray(np.array([[3.0, 2.0, 2.0, 5.0, 1.0, 4.0, 0.0]]), dims=("p", "t"),
                     coords={"t": t}, name="y")
    ext = qa.extrema(y, refine="none")
    # first k with y[k-1] > y[k] <= y[k+1]: the plateau 2, 2 counts at its first sample
    assert float(ext.y_first_min[0]) == 2.0 and float(ext.y_t_first_min[0]) == t[1]
    assert float(ext.y_first_max[0]) == 5.0 and float(ext.y_t_first_max[0]) == t[3]
    assert float(ext.y_min[0]) == 0.0 and float(ext.y_t_min[0]) == t[6]


def test_store_chunked_along_t_is_rechunked(cavity_store):
    split = cavity_store.chunk({"t": 100})
    xr.testing.assert_allclose(qa.extrema(split, "energy").compute(),
                               qa.extrema(cavity_store, "energy").compute())


def test_accessors(cavity_store):
    via_ds = cavity_store.qb.extrema("purity_battery").compute()
    via_da = cavity_store.purity_battery.qb.extrema().compute()
    xr.testing.assert_allclose(via_ds, via_da)
    assert cavity_store.qb.metrics[:2] == ["energy", "ergotropy"]
    params = cavity_store.qb.parameters(J2=0.5, n=7)
    assert params == {"model": "cavity", "battery_hamiltonian": "interacting", "n": 7,
                      "J1": 1.0, "J2": 0.5, "omega_g": 1.0, "omega_a": 1.0, "Delta": 1.0}
    recomputed = qbfast.sweep(params.pop("model"), np.array(cavity_store.t), **params)
    np.testing.assert_allclose(recomputed.energy.values,
                               cavity_store.energy.sel(J2=0.5, n=7).values, rtol=0, atol=1e-15)


def test_bad_input(cavity_store):
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        qa.extrema(cavity_store, "nope")
    with pytest.raises(ValueError, match="refine: expected one of 'none', 'parabolic', "
                                         "'kernel', got 'cubic'"):
        qa.extrema(cavity_store, "energy", refine="cubic")
    with pytest.raises(ValueError, match="name the variable"):
        qa.extrema(cavity_store)
    with pytest.raises(ValueError, match="Dataset"):
        qa.extrema(cavity_store.energy, refine="kernel")
    with pytest.raises(ValueError, match="select at most 5 points first .this has 6."):
        qa.extrema(cavity_store, "energy", refine="kernel", max_points=5)
