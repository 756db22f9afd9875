"""Correlations against scipy, their summary against numpy, coincidence of extrema."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

import qbfast.analysis as qa
from qbfast.analysis import _kernels


def _dataset(a, b, t, dims=("p",)):
    coords = {d: np.arange(n) for d, n in zip(dims, a.shape[:-1])}
    coords["t"] = t
    return xr.Dataset({"energy": ((*dims, "t"), a), "ergotropy": ((*dims, "t"), b)},
                      coords=coords)


def test_pearson_and_spearman_match_scipy_with_ties_and_nans():
    rng = np.random.default_rng(3)
    t = np.linspace(0, 1, 30)
    a = rng.normal(size=(25, 30))
    b = 0.5 * a + rng.normal(size=(25, 30))
    b[::3] = np.round(b[::3])  # ties for the ranks
    a[1, [0, 5]] = np.nan  # NaN samples are skipped pairwise
    b[2, 7] = np.nan
    out = qa.correlation(_dataset(a, b, t).chunk({"p": 7}), "energy", "ergotropy").compute()
    for r in range(25):
        ok = np.isfinite(a[r]) & np.isfinite(b[r])
        assert int(out["count"][r]) == ok.sum()
        np.testing.assert_allclose(float(out.pearson[r]), stats.pearsonr(a[r, ok], b[r, ok])[0],
                                   rtol=1e-12)
        np.testing.assert_allclose(float(out.spearman[r]),
                                   stats.spearmanr(a[r, ok], b[r, ok])[0], rtol=1e-12)


def test_constant_series_and_too_few_samples_give_nan():
    t = np.linspace(0, 1, 4)
    x = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [np.nan, np.nan, np.nan, 1.0]])
    y = np.array([[2.0, 2.0, 2.0, 2.0], [4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    out = _kernels.correlation_rows(x, y, t)
    assert np.isnan(out[0, :2]).all() and out[0, 2] == 4
    np.testing.assert_allclose(out[1, :2], [-1.0, -1.0])
    assert np.isnan(out[2, :2]).all() and out[2, 2] == 1


def test_summary_matches_numpy():
    rng = np.random.default_rng(5)
    t = np.linspace(0, 1, 20)
    a = rng.normal(size=(4, 6, 20))
    b = a + rng.normal(size=(4, 6, 20))
    b[0, 0] = 1.0  # one undefined coefficient
    corr = qa.correlation(_dataset(a, b, t, dims=("p", "q")), "energy", "ergotropy")
    summary = qa.correlation_summary(corr)
    values = corr.pearson.values.ravel()
    ok = values[np.isfinite(values)]
    got = summary.pearson.sel(stat=["points", "defined", "mean", "std", "min", "median", "max"])
    np.testing.assert_allclose(got.values, [24, 23, ok.mean(), ok.std(), ok.min(),
                                            np.median(ok), ok.max()], rtol=1e-12)
    assert float(summary.spearman.sel(stat="positive")) == np.mean(
        corr.spearman.values[np.isfinite(corr.spearman.values)] > 0)


def test_accessor_on_a_store(cavity_store):
    corr = cavity_store.qb.corr("energy", "entropy_battery")
    assert corr.pearson.chunks is not None
    e = cavity_store.energy.sel(J2=0.5, n=7).values
    s = cavity_store.entropy_battery.sel(J2=0.5, n=7).values
    assert float(corr.pearson.sel(J2=0.5, n=7)) == pytest.approx(np.corrcoef(e, s)[0, 1],
                                                                 rel=1e-12)
    assert cavity_store.qb.corr_summary("energy", "ergotropy").sizes["stat"] == 8


# --- coincidence -----------------------------------------------------------------------------

def test_coincidence_of_shifted_waves():
    t = np.linspace(0, 20, 2001)
    shifts = np.array([0.0, 0.3, -0.5])
    a = np.broadcast_to(np.sin(t), (3, t.size))
    b = np.sin(t[None, :] - shifts[:, None])
    out = qa.coincidence(_dataset(a, b, t), "energy", "ergotropy", kind_a="max", kind_b="max")
    np.testing.assert_allclose(out.t_a, np.pi / 2, atol=1e-6)
    np.testing.assert_allclose(out.dt, shifts, atol=1e-6)
    np.testing.assert_allclose(out.dt_worst, np.abs(shifts), atol=1e-6)
    np.testing.assert_array_equal(out.count_a, 3)  # maxima at pi/2 + 2 pi k in [0, 20]
    mins = qa.coincidence(_dataset(a, b, t), "energy", "ergotropy", kind_a="max", kind_b="min")
    np.testing.assert_allclose(mins.dt, np.pi + shifts, atol=1e-6)  # the next minimum


def test_flat_partner_coincides_and_missing_extremum_is_nan():
    t = np.linspace(0, 10, 501)
    a = np.sin(t)[None, :].repeat(2, 0)
    b = np.stack([np.zeros_like(t) + 1e-16 * np.cos(7 * t), t])  # flat; monotonic
    out = qa.coincidence(_dataset(a, b, t), "energy", "ergotropy", kind_b="min")
    assert float(out.dt[0]) == 0.0 and float(out.dt_worst[0]) == 0.0
    assert np.isnan(float(out.dt[1]))


def test_coincidence_bad_kind(cavity_store):
    with pytest.raises(ValueError, match="kind_b"):
        qa.coincidence(cavity_store, "energy", "concurrence", kind_b="maximum")
