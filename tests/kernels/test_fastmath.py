"""The vectorizable log2 and sin/cos against numpy (libm) over their documented ranges."""

from __future__ import annotations

import numba
import numpy as np

from qbfast.kernels.fastmath import SIN_COS_MAX_ARG, log2, sin_cos


@numba.njit
def _log2_all(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = log2(x[i])
    return out


@numba.njit
def _sin_cos_all(x):
    s = np.empty_like(x)
    c = np.empty_like(x)
    for i in range(x.size):
        s[i], c[i] = sin_cos(x[i])
    return s, c


def test_log2_matches_numpy_on_all_normal_numbers():
    rng = np.random.default_rng(1)
    x = np.concatenate([
        10.0 ** rng.uniform(-300, 300, 200_000),
        rng.uniform(0.0, 4.0, 200_000) + 1e-300,
        1.0 + rng.normal(size=100_000) * 1e-9,
        [1e-300, 0.5, 1.0, 2.0, 4.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2.0),
         np.finfo(float).tiny, np.finfo(float).max],
    ])
    got = _log2_all(x)
    ref = np.log2(x)
    np.testing.assert_allclose(got, ref, rtol=4e-16, atol=2e-16)
    assert got[np.flatnonzero(x == 1.0)[0]] == 0.0
    assert got[np.flatnonzero(x == 2.0)[0]] == 1.0


def test_sin_cos_matches_numpy_within_range():
    rng = np.random.default_rng(2)
    x = np.concatenate([
        rng.uniform(-10, 10, 200_000),
        rng.uniform(-SIN_COS_MAX_ARG, SIN_COS_MAX_ARG, 200_000),
        np.arange(-4000, 4000) * (np.pi / 4),  # octant boundaries
        [0.0, -0.0, 1e-300, np.pi / 2, np.pi, 3 * np.pi / 2],
    ])
    s, c = _sin_cos_all(x)
    np.testing.assert_allclose(s, np.sin(x), rtol=0, atol=4e-16)
    np.testing.assert_allclose(c, np.cos(x), rtol=0, atol=4e-16)
    np.testing.assert_allclose(s * s + c * c, 1.0, atol=4e-16)
