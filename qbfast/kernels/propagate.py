"""Propagation of the battery state: closed form (field "drive"), exact eigen-propagation
(cavity) and a 4th-order Magnus integrator (field "full").
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel
from .eigh import eigh_inplace

SQRT3 = np.sqrt(3.0)


@kernel
def drive_angle(t, a, b, omega):
    """A1(t) = (B t + (A/omega) sin(omega t)) / 2 (paper eq. 16); omega = 0 is a static
    field of strength A + B, A1 = (A + B) t / 2."""
    if omega == 0.0:
        return 0.5 * (b + a) * t
    return 0.5 * (b * t + a * np.sin(omega * t) / omega)


@kernel
def drive_product_state(a1):
    """|phi>|phi> with |phi> = cos A1 |g> - i sin A1 |e>, as (psi_ee, psi_eg, psi_ge, psi_gg)."""
    s = np.sin(a1)
    c = np.cos(a1)
    pe = -1j * s
    return pe * pe, pe * c, pe * c, complex(c * c)


@kernel
def field_amplitude(t, a, b, omega):
    """f(t) = (A cos(omega t) + B) / 2, the coefficient of (s1x + s2x) in H_a(t)."""
    return 0.5 * (a * np.cos(omega * t) + b)


@kernel
def magnus4_step(psi, h, t0, a, b, omega, x, hb, comm, k_work, w, v, tmp):
    """Advance psi (4, complex) from t0 to t0 + h under H(t) = f(t) X + H_b, in place.

    4th-order Magnus with two Gauss-Legendre nodes t_{1,2} = t0 + h (1/2 -+ sqrt(3)/6):

        psi <- exp(-i K) psi,   K = h (f1 + f2)/2 X + h H_b + (sqrt(3) h^2 / 12)(f2 - f1) C,

    where C = -i [X, H_b] (Hermitian), since [H(t2), H(t1)] = (f2 - f1)[X, H_b]. The
    exponential uses the Jacobi eigendecomposition K = V diag(w) V^H. Local error O(h^5).
    """
    f1 = field_amplitude(t0 + h * (0.5 - SQRT3 / 6.0), a, b, omega)
    f2 = field_amplitude(t0 + h * (0.5 + SQRT3 / 6.0), a, b, omega)
    cx = 0.5 * h * (f1 + f2)
    cc = SQRT3 * h * h / 12.0 * (f2 - f1)
    for i in range(4):
        for j in range(4):
            k_work[i, j] = cx * x[i, j] + h * hb[i, j] + cc * comm[i, j]
    eigh_inplace(k_work, w, v)
    # tmp = diag(e^{-i w}) V^H psi
    for m in range(4):
        acc = 0j
        for i in range(4):
            acc += v[i, m].conjugate() * psi[i]
        tmp[m] = acc * np.exp(-1j * w[m])
    for i in range(4):
        acc = 0j
        for m in range(4):
            acc += v[i, m] * tmp[m]
        psi[i] = acc
