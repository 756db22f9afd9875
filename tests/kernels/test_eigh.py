"""The hand-coded Jacobi eigensolver against numpy.linalg.eigh on 4x4 Hermitian matrices."""

from __future__ import annotations

import numpy as np
import pytest

from qbfast.kernels.eigh import eigh

RTOL = 1e-13  # relative to ||A|| (Frobenius)


def random_unitary(rng: np.random.Generator, n: int = 4) -> np.ndarray:
    z = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / np.abs(np.diag(r)))


def random_hermitian(rng: np.random.Generator, n: int = 4) -> np.ndarray:
    z = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    return 0.5 * (z + z.conj().T)


def with_spectrum(rng: np.random.Generator, spectrum) -> np.ndarray:
    q = random_unitary(rng, len(spectrum))
    a = q @ np.diag(np.asarray(spectrum, dtype=float)) @ q.conj().T
    return 0.5 * (a + a.conj().T)  # exactly Hermitian


def check(a: np.ndarray) -> None:
    w, v = eigh(a)
    w_np = np.linalg.eigvalsh(a)
    scale = max(np.linalg.norm(a), 1e-300)
    n = a.shape[0]
    assert w.shape == (n,) and v.shape == (n, n)
    assert np.all(np.diff(w) >= 0), f"not ascending: {w}"
    # eigenvalues agree with LAPACK
    assert np.max(np.abs(w - w_np)) <= RTOL * scale + 1e-300, (w, w_np)
    # residual ||A V - V diag(w)|| relative to ||A||
    resid = np.linalg.norm(a @ v - v * w[None, :])
    assert resid <= RTOL * scale + 1e-300, resid / scale
    # orthonormal columns
    assert np.linalg.norm(v.conj().T @ v - np.eye(n)) <= 1e-13


def test_random_complex_hermitian():
    rng = np.random.default_rng(20240601)
    for _ in range(300):
        a = random_hermitian(rng) * 10.0 ** rng.uniform(-3, 3)
        check(a)


@pytest.mark.parametrize("spectrum", [
    [2.0, 2.0, 2.0, -1.0],           # triple degenerate
    [1.0, 1.0, -1.0, -1.0],          # two degenerate pairs
    [3.0, 3.0, 3.0, 3.0],            # multiple of the identity (after rotation)
    [0.0, 0.0, 0.0, 1.0],            # rank one
    [1.0, 1.0 + 1e-10, 1.0 + 2e-10, -3.0],   # nearly degenerate
    [1.0, 1.0 + 1e-14, 5.0, 5.0 + 1e-13],    # degenerate to a few ulps
    [1e-8, -1e-8, 1.0, 2.0],         # eigenvalues near zero
    [1e6, 1e6 * (1 + 1e-12), -1e6, 1.0],  # wide dynamic range
])
def test_degenerate_and_nearly_degenerate(spectrum):
    rng = np.random.default_rng(abs(hash(tuple(spectrum))) % 2**32)
    for _ in range(25):
        check(with_spectrum(rng, spectrum))


def test_zero_matrix():
    a = np.zeros((4, 4), dtype=complex)
    w, v = eigh(a)
    assert np.all(w == 0.0)
    np.testing.assert_allclose(v.conj().T @ v, np.eye(4), atol=1e-15)


def test_diagonal_matrix():
    d = np.array([3.0, -1.0, 2.5, -7.0])
    w, v = eigh(np.diag(d).astype(complex))
    np.testing.assert_array_equal(w, np.sort(d))
    # eigenvectors are unit vectors (up to phase), in sorted order
    np.testing.assert_allclose(np.abs(v), np.eye(4)[:, np.argsort(d)], atol=0)


def test_real_symmetric():
    rng = np.random.default_rng(7)
    for _ in range(100):
        z = rng.normal(size=(4, 4))
        a = 0.5 * (z + z.T)
        check(a.astype(complex))


def test_input_is_not_modified():
    rng = np.random.default_rng(3)
    a = random_hermitian(rng)
    a_copy = a.copy()
    eigh(a)
    np.testing.assert_array_equal(a, a_copy)
