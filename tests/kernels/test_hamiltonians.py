"""The cavity sector Hamiltonian in the exchange-symmetric basis is physics.md's eq. 24, rotated.

Eq. 24 is built here from physics.md section 3 in (|n,gg>, |n-1,eg>, |n-1,ge>, |n-2,ee>);
``fill_cavity_sector`` must equal U^T H24 U for the basis change U to (|n,gg>, |T>, |n-2,ee>,
|S>), with the singlet |S> decoupled, and the dynamics from |n,gg> must keep c_eg = c_ge.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from qbfast.kernels.hamiltonians import fill_cavity_sector


def eq24(n, j1, j2, omega_g, omega_a, delta):
    """physics.md eq. 24 (shifted by -(n-1) omega_a, a global phase)."""
    h = np.diag([omega_a + delta * (j2 - 1), -j2 * delta, -j2 * delta,
                 -omega_a + delta * (j2 + 1)])
    a, b = omega_g * np.sqrt(n), omega_g * np.sqrt(n - 1)
    h[0, 1] = h[1, 0] = h[0, 2] = h[2, 0] = a
    h[1, 2] = h[2, 1] = 2 * j1 * delta
    h[1, 3] = h[3, 1] = h[2, 3] = h[3, 2] = b
    return h


S = np.sqrt(0.5)
# columns: |n,gg>, |T>, |n-2,ee>, |S> in the basis of eq. 24
U = np.array([[1, 0, 0, 0], [0, S, 0, S], [0, S, 0, -S], [0, 0, 1, 0]])


@numba.njit
def _filled(n, j1, j2, omega_g, omega_a, delta):
    h = np.empty((4, 4), dtype=np.complex128)
    fill_cavity_sector(h, n, j1, j2, omega_g, omega_a, delta)
    return h


@pytest.mark.parametrize("seed", range(5))
def test_symmetric_basis_is_eq24_rotated(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 12))
    p = (n, *rng.uniform(-2, 2, 5))
    np.testing.assert_allclose(_filled(*p), U.T @ eq24(*p) @ U, rtol=0, atol=1e-14)


def test_state_from_gg_stays_exchange_symmetric():
    rng = np.random.default_rng(9)
    h = eq24(5, *rng.uniform(-2, 2, 5))
    w, v = np.linalg.eigh(h)
    for t in (0.3, 2.0, 17.0):
        c = v @ (np.exp(-1j * w * t) * v[0].conj())  # exp(-iHt) |n,gg>
        assert abs(c[1] - c[2]) < 1e-13
