"""Hand-coded eigensolver for small complex Hermitian matrices (cyclic Jacobi).

The cyclic Jacobi method annihilates one off-diagonal pair (p, q) at a time with a unitary
plane rotation G = D R, where D = diag(1, e^{-i phi}) removes the phase of a_pq = |a_pq| e^{i phi}
and R is the real Jacobi rotation [[c, s], [-s, c]] with

    theta = (a_qq - a_pp) / (2 |a_pq|),  t = sign(theta) / (|theta| + sqrt(theta^2 + 1)),
    c = 1 / sqrt(1 + t^2),  s = t c                 (Numerical Recipes, section 11.1).

A <- G^H A G and V <- V G. Sweeps repeat until the off-diagonal norm is below
1e-17 of the Frobenius norm (below one ulp) (or underflows); convergence is quadratic, so 4x4
matrices need about 4-6 sweeps. Jacobi is accurate to a few ulps of ||A|| for every eigenvalue
and is robust for exactly and nearly degenerate spectra.

Eigenvalues are returned in ascending order with the eigenvectors as the columns of ``v``.
"""

from __future__ import annotations

import numpy as np

from ._jit import routine

_MAX_SWEEPS = 50


@routine
def eigh_inplace(a, w, v):
    """Diagonalize the Hermitian matrix ``a`` (n x n complex128, overwritten).

    On return ``w`` (n, float64) holds the eigenvalues in ascending order and ``v`` (n x n
    complex128) the orthonormal eigenvectors as columns: a_orig @ v[:, k] = w[k] v[:, k].
    Only the upper triangle's Hermitian partner is assumed consistent; the input must be
    Hermitian.
    """
    n = a.shape[0]
    for i in range(n):
        for j in range(n):
            v[i, j] = 0.0
        v[i, i] = 1.0
    # Symmetrize the diagonal's imaginary rounding away.
    for i in range(n):
        a[i, i] = a[i, i].real

    frob = 0.0
    for i in range(n):
        for j in range(n):
            frob += a[i, j].real * a[i, j].real + a[i, j].imag * a[i, j].imag
    tiny = 1e-300

    for _sweep in range(_MAX_SWEEPS):
        off = 0.0
        for p in range(n - 1):
            for q in range(p + 1, n):
                off += a[p, q].real * a[p, q].real + a[p, q].imag * a[p, q].imag
        if off <= 1e-34 * frob or off < tiny:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = a[p, q]
                mag = abs(apq)
                if mag == 0.0:
                    continue
                app = a[p, p].real
                aqq = a[q, q].real
                phase = apq / mag  # e^{i phi}
                theta = (aqq - app) / (2.0 * mag)
                if theta >= 0.0:
                    t = 1.0 / (theta + np.sqrt(theta * theta + 1.0))
                else:
                    t = -1.0 / (-theta + np.sqrt(theta * theta + 1.0))
                c = 1.0 / np.sqrt(1.0 + t * t)
                s = t * c
                # G: G_pp = c, G_pq = s, G_qp = -s e^{-i phi}, G_qq = c e^{-i phi}
                ph_c = phase.conjugate()
                gqp = -s * ph_c
                gqq = c * ph_c
                # Columns: A <- A G
                for k in range(n):
                    akp = a[k, p]
                    akq = a[k, q]
                    a[k, p] = akp * c + akq * gqp
                    a[k, q] = akp * s + akq * gqq
                # Rows: A <- G^H A
                for k in range(n):
                    apk = a[p, k]
                    aqk = a[q, k]
                    a[p, k] = c * apk + gqp.conjugate() * aqk
                    a[q, k] = s * apk + gqq.conjugate() * aqk
                a[p, q] = 0.0
                a[q, p] = 0.0
                a[p, p] = a[p, p].real
                a[q, q] = a[q, q].real
                # Eigenvectors: V <- V G
                for k in range(n):
                    vkp = v[k, p]
                    vkq = v[k, q]
                    v[k, p] = vkp * c + vkq * gqp
                    v[k, q] = vkp * s + vkq * gqq

    for i in range(n):
        w[i] = a[i, i].real
    # Insertion sort (n is tiny), permuting eigenvector columns alongside.
    for i in range(1, n):
        j = i
        while j > 0 and w[j - 1] > w[j]:
            tmp = w[j - 1]
            w[j - 1] = w[j]
            w[j] = tmp
            for k in range(n):
                tv = v[k, j - 1]
                v[k, j - 1] = v[k, j]
                v[k, j] = tv
            j -= 1


@routine
def eigh(a):
    """Eigen-decomposition of a Hermitian matrix: returns (w ascending, v columns).

    Convenience wrapper around :func:`eigh_inplace` that copies its input.
    """
    n = a.shape[0]
    work = np.empty((n, n), dtype=np.complex128)
    for i in range(n):
        for j in range(n):
            work[i, j] = a[i, j]
    w = np.empty(n, dtype=np.float64)
    v = np.empty((n, n), dtype=np.complex128)
    eigh_inplace(work, w, v)
    return w, v
