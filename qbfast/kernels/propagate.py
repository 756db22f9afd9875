"""Propagation of the battery state: closed form (field "drive"), exact eigen-propagation
(cavity) and a 4th-order Magnus integrator (field "full").
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel, routine
from .eigh import eigh_inplace
from .fastmath import SIN_COS_MAX_ARG, sin_cos

SQRT3 = np.sqrt(3.0)


@kernel
def drive_angle(t, a, b, omega, sin_omega_t):
    """A1(t) = (B t + (A/omega) sin(omega t)) / 2 (paper eq. 16), given sin(omega t);
    omega = 0 is a static field of strength A + B, A1 = (A + B) t / 2."""
    return 0.5 * (b * t + (a * sin_omega_t / omega if omega != 0.0 else a * t))


@kernel
def field_amplitude(t, a, b, omega):
    """f(t) = (A cos(omega t) + B) / 2, the coefficient of (s1x + s2x) in H_a(t)."""
    x = omega * t
    cos_x = sin_cos(x)[1] if abs(x) < SIN_COS_MAX_ARG else np.cos(x)
    return 0.5 * (a * cos_x + b)


@kernel
def magnus4_coefficients(h, t0, a, b, omega):
    """4th-order Magnus generator of the step t0 -> t0 + h under H(t) = f(t) X + H_b:

        U = exp(-i K),  K = cx X + h H_b + cc C,  C = -i [X, H_b] (Hermitian),
        cx = h (f1 + f2) / 2,  cc = (sqrt(3) h^2 / 12) (f2 - f1),

    with f at the Gauss-Legendre nodes t_{1,2} = t0 + h (1/2 -+ sqrt(3)/6); this is
    Omega = h/2 (A1 + A2) + (sqrt(3) h^2/12) [A2, A1] for A = -i H, since
    [H(t2), H(t1)] = (f2 - f1)[X, H_b]. Local error O(h^5). Returns (cx, cc).
    """
    f1 = field_amplitude(t0 + h * (0.5 - SQRT3 / 6.0), a, b, omega)
    f2 = field_amplitude(t0 + h * (0.5 + SQRT3 / 6.0), a, b, omega)
    return 0.5 * h * (f1 + f2), SQRT3 * h * h / 12.0 * (f2 - f1)


_TAYLOR_TOL = 1e-18
_TAYLOR_MAX_TERMS = 60


@routine
def magnus4_step(psi, h, t0, a, b, omega, x, hb, comm, rm, am, work):
    """Advance psi (4, complex) by one Magnus step (:func:`magnus4_coefficients`), in place.

    exp(-i K) psi is summed as the Taylor series sum_k (-i K)^k psi / k! on the vector, until
    a term falls below 1e-18 of |psi| (about 8-12 terms for the default |K| <~ 0.05). With
    x, hb real symmetric and comm = [X, H_b] real antisymmetric (all float64 4x4),
    -i K = A - i R with R = cx X + h H_b and A = -cc [X, H_b], so everything is real:
    (A - i R)(u + i v) = (A u + R v) + i (A v - R u).
    ``rm``, ``am`` (4x4) and ``work`` (6, 4) are scratch.
    """
    cx, cc = magnus4_coefficients(h, t0, a, b, omega)
    for i in range(4):
        for j in range(4):
            rm[i, j] = cx * x[i, j] + h * hb[i, j]
            am[i, j] = -cc * comm[i, j]
    u = work[0]
    v = work[1]
    tu = work[2]
    tv = work[3]
    acc_re = work[4]
    acc_im = work[5]
    for i in range(4):
        u[i] = psi[i].real
        v[i] = psi[i].imag
        acc_re[i] = u[i]
        acc_im[i] = v[i]
    for k in range(1, _TAYLOR_MAX_TERMS):
        biggest = 0.0
        for i in range(4):
            re = 0.0
            im = 0.0
            for j in range(4):
                re += am[i, j] * u[j] + rm[i, j] * v[j]
                im += am[i, j] * v[j] - rm[i, j] * u[j]
            tu[i] = re / k
            tv[i] = im / k
            biggest = max(biggest, abs(tu[i]) + abs(tv[i]))
        for i in range(4):
            u[i] = tu[i]
            v[i] = tv[i]
            acc_re[i] += tu[i]
            acc_im[i] += tv[i]
        if biggest < _TAYLOR_TOL:
            break
    for i in range(4):
        psi[i] = complex(acc_re[i], acc_im[i])


@routine
def magnus4_step_eigh(psi, h, t0, a, b, omega, x, hb, comm, k_work, w, v, tmp):
    """The same step as :func:`magnus4_step`, with exp(-i K) from the Jacobi eigensolver,
    K = V diag(w) V^H (slower; kept as an independent cross-check of the Taylor sum).
    ``x``, ``hb`` real 4x4, ``comm`` = [X, H_b] real; K = cx X + h H_b - i cc [X, H_b]."""
    cx, cc = magnus4_coefficients(h, t0, a, b, omega)
    for i in range(4):
        for j in range(4):
            k_work[i, j] = complex(cx * x[i, j] + h * hb[i, j], -cc * comm[i, j])
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
