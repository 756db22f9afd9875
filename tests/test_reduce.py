"""Reductions along t against plain-Python references (hypothesis) and hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qbfast.reduce import first_local_maximum, maximum, minimum, reduce_stats, reduce_t


def _ref_extreme(x, t, sign):
    best = None
    for k, v in enumerate(x):
        if math.isnan(v):
            continue
        if best is None or sign * v > sign * x[best]:
            best = k
    return (math.nan, math.nan) if best is None else (x[best], t[best])


def _ref_first_max(x, t):
    for k in range(1, len(x) - 1):
        if x[k] > x[k - 1] and x[k] >= x[k + 1]:
            return x[k], t[k]
    return math.nan, math.nan


values = st.one_of(st.floats(-3, 3, allow_nan=False), st.just(math.nan), st.sampled_from([0.0, 1.0]))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 12)), elements=values))
def test_reductions_match_python_reference(x):
    t = np.arange(x.shape[-1]) * 0.5
    for fn, ref in ((maximum, lambda r: _ref_extreme(r, t, 1)),
                    (minimum, lambda r: _ref_extreme(r, t, -1)),
                    (first_local_maximum, lambda r: _ref_first_max(r, t))):
        value, time = fn(x, t)
        assert value.shape == time.shape == x.shape[:-1]
        for i, row in enumerate(x):
            rv, rt = ref(list(row))
            np.testing.assert_equal((value[i], time[i]), (rv, rt))


def test_first_max_of_a_cosine_and_nan_rows():
    t = np.linspace(0, 10, 1001)
    x = np.stack([1 - np.cos(2 * t), t, np.full_like(t, np.nan)])
    value, time = first_local_maximum(x, t)
    assert value[0] == pytest.approx(2.0, abs=1e-4) and time[0] == pytest.approx(np.pi / 2, abs=0.01)
    assert np.isnan(value[1:]).all() and np.isnan(time[1:]).all()  # monotonic, all NaN
    v, tm = maximum(x, t)
    assert tm[1] == 10.0 and np.isnan(v[2]) and np.isnan(tm[2])


def test_reduce_t_dispatch():
    t = np.array([0.0, 1.0, 2.0])
    x = np.array([[0.0, 2.0, 1.0]])
    assert reduce_t(x, t, "max")[0].tolist() == [2.0]
    assert reduce_t(x, t, "argmax")[0].tolist() == [1.0]
    assert reduce_t(x, t, "min")[0].tolist() == [0.0]
    assert reduce_t(x, t, "argmin")[0].tolist() == [0.0]
    assert [a.tolist() for a in reduce_t(x, t, "first_max")] == [[2.0], [1.0]]
    with pytest.raises(ValueError, match="stat: unknown statistic 'mean'"):
        reduce_t(x, t, "mean")


def test_reduce_stats_agrees_with_reduce_t():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 17)
    x = rng.normal(size=(3, 4, 17))
    x[0, 0, 3] = np.nan
    got = reduce_stats(x, t, ["max", "argmax", "min", "argmin", "first_max"])
    assert set(got) == {"max", "t_max", "min", "t_min", "first_max", "t_first_max"}
    np.testing.assert_array_equal(got["t_max"], reduce_t(x, t, "argmax")[0])
    np.testing.assert_array_equal(got["min"], reduce_t(x, t, "min")[0])
    np.testing.assert_array_equal(got["t_first_max"], reduce_t(x, t, "first_max")[1])
    assert set(reduce_stats(x, t, ["argmin"])) == {"min", "t_min"}


def test_long_rows_with_nan_ties_signed_zeros_and_infinities():
    """Rows long enough for NumPy's SIMD argmax/argmin (the fast route), with NaN anywhere,
    repeated extremes, -0.0 next to 0.0 and infinities: the same indices as the NaN-skipping
    one-pass loop (the reference route) and the plain-Python reference."""
    from qbfast.kernels.reductions import extreme_index_rows

    rng = np.random.default_rng(1)
    n_t = 997
    x = np.round(rng.normal(size=(40, n_t)), 1)  # many ties
    x[1, :] = np.nan
    x[2, 500:] = np.nan
    x[3, ::7] = np.nan
    x[4, 0] = np.nan
    x[5, :] = 0.0
    x[5, 3] = -0.0
    x[6, :] = -0.0
    x[6, 900] = 0.0
    x[7, :] = -np.inf
    x[8, 10] = np.inf
    x[8, 20] = np.inf
    x[9, :] = np.nan
    x[9, 600] = -np.inf
    x[10, -1] = 99.0
    t = np.arange(n_t) * 0.25
    for fn, sign in ((maximum, 1.0), (minimum, -1.0)):
        value, time = fn(x, t)
        idx = extreme_index_rows(x, sign)
        found = idx >= 0
        np.testing.assert_array_equal(time, np.where(found, t[np.maximum(idx, 0)], np.nan))
        for i, row in enumerate(x):
            rv, rt = _ref_extreme(list(row), t, sign)
            np.testing.assert_equal((value[i], time[i]), (rv, rt))
            if found[i]:
                assert np.signbit(value[i]) == np.signbit(row[idx[i]])


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 40)), elements=st.one_of(
    values, st.sampled_from([-0.0, math.inf, -math.inf]))))
def test_fused_row_reductions_match_python_reference(x):
    """The kernel of the fused route (8 running extremes, then the first index attaining
    them) against the plain-Python references, rows of any length (tails of < 8 values)."""
    from qbfast.kernels.reductions import first_extreme_index, first_peak_index

    t = np.arange(x.shape[-1]) * 0.5
    lanes = np.empty(8)
    for row in x:
        for sign in (1.0, -1.0):
            k = first_extreme_index(row, sign, lanes)
            got = (math.nan, math.nan) if k < 0 else (row[k], t[k])
            np.testing.assert_equal(got, _ref_extreme(list(row), t, sign))
        k = first_peak_index(row)
        got = (math.nan, math.nan) if k < 0 else (row[k], t[k])
        np.testing.assert_equal(got, _ref_first_max(list(row), t))


@pytest.mark.parametrize("model, params", [
    ("cavity", dict(n=[1, 4], J1=[0.0, 1.0], J2=[-0.5, 2.0])),
    ("field", dict(protocol="drive", A=[0.0, 1.0, 2.0], g=[0.0, 1.0])),  # A = 0: constant rows
    ("field", dict(protocol="full", A=[0.0, 1.5], B=[0.5, 2.0])),
])
def test_reduce_grid_equals_reducing_the_stored_series(model, params):
    """The fused route (compute and reduce in blocks, series never stored) gives the bits of
    the NumPy route on the full series, for every metric (efficiency and power carry NaNs),
    every block size, and the grid's peak of energy and ergotropy (first in C order)."""
    from qbfast.core import Grid
    from qbfast.reduce import reduce_grid

    stats = ["max", "argmax", "min", "argmin", "first_max"]
    grid = Grid(model, np.linspace(0.0, 6.0, 61), **params)
    series = grid.empty_output()
    grid.compute(series.reshape(len(grid.metrics), grid.n_points, grid.t.size))
    row_bytes = 8 * len(grid.metrics) * grid.t.size
    for block_bytes in (1, 3 * row_bytes, 1 << 30):
        reduced, peaks = reduce_grid(grid, stats, ("energy", "ergotropy"), block_bytes)
        assert list(reduced) == list(grid.metrics)
        for i, name in enumerate(grid.metrics):
            expected = reduce_stats(series[i], grid.t, stats)
            assert reduced[name].keys() == expected.keys()
            for key, value in expected.items():
                np.testing.assert_array_equal(reduced[name][key], value, err_msg=f"{name} {key}")
        for j, name in enumerate(("energy", "ergotropy")):
            x = series[grid.metrics.index(name)]
            k = int(np.nanargmax(x))
            assert (peaks[j, 0], peaks[j, 1]) == (x.flat[k], k)
