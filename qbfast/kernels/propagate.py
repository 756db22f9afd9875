"""Propagation of the battery state: closed form (field "drive"), exact eigen-propagation
(cavity) and a 4th-order Magnus integrator (field "full").
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel, routine
from .eigh import eigh_inplace
from .fastmath import SIN_COS_MAX_ARG, fma, sin_cos

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
def magnus4_step(psi, h, t0, a, b, omega, x, hb, comm):
    """Advance psi (4, complex) by one Magnus step (:func:`magnus4_coefficients`), in place.

    exp(-i K) psi is summed as the Taylor series sum_k (-i K)^k psi / k! on the vector, until
    a term falls below 1e-18 of |psi| (about 8-12 terms for the default |K| <~ 0.05). With
    x, hb real symmetric and comm = [X, H_b] real antisymmetric (all float64 4x4),
    -i K = A - i R with R = cx X + h H_b and A = -cc [X, H_b], so everything is real:
    (A - i R)(u + i v) = (A u + R v) + i (A v - R u). The 4x4 matrices and vectors are held
    in scalar locals (registers), written out explicitly.
    """
    cx, cc = magnus4_coefficients(h, t0, a, b, omega)
    r00 = cx * x[0, 0] + h * hb[0, 0]
    r01 = cx * x[0, 1] + h * hb[0, 1]
    r02 = cx * x[0, 2] + h * hb[0, 2]
    r03 = cx * x[0, 3] + h * hb[0, 3]
    r10 = cx * x[1, 0] + h * hb[1, 0]
    r11 = cx * x[1, 1] + h * hb[1, 1]
    r12 = cx * x[1, 2] + h * hb[1, 2]
    r13 = cx * x[1, 3] + h * hb[1, 3]
    r20 = cx * x[2, 0] + h * hb[2, 0]
    r21 = cx * x[2, 1] + h * hb[2, 1]
    r22 = cx * x[2, 2] + h * hb[2, 2]
    r23 = cx * x[2, 3] + h * hb[2, 3]
    r30 = cx * x[3, 0] + h * hb[3, 0]
    r31 = cx * x[3, 1] + h * hb[3, 1]
    r32 = cx * x[3, 2] + h * hb[3, 2]
    r33 = cx * x[3, 3] + h * hb[3, 3]
    a00 = -cc * comm[0, 0]
    a01 = -cc * comm[0, 1]
    a02 = -cc * comm[0, 2]
    a03 = -cc * comm[0, 3]
    a10 = -cc * comm[1, 0]
    a11 = -cc * comm[1, 1]
    a12 = -cc * comm[1, 2]
    a13 = -cc * comm[1, 3]
    a20 = -cc * comm[2, 0]
    a21 = -cc * comm[2, 1]
    a22 = -cc * comm[2, 2]
    a23 = -cc * comm[2, 3]
    a30 = -cc * comm[3, 0]
    a31 = -cc * comm[3, 1]
    a32 = -cc * comm[3, 2]
    a33 = -cc * comm[3, 3]
    u0 = psi[0].real
    v0 = psi[0].imag
    u1 = psi[1].real
    v1 = psi[1].imag
    u2 = psi[2].real
    v2 = psi[2].imag
    u3 = psi[3].real
    v3 = psi[3].imag
    su0 = u0
    sv0 = v0
    su1 = u1
    sv1 = v1
    su2 = u2
    sv2 = v2
    su3 = u3
    sv3 = v3
    for k in range(1, _TAYLOR_MAX_TERMS):
        inv = 1.0 / k
        tu0 = fma(a00, u0, fma(r00, v0, fma(a01, u1, fma(r01, v1,
            fma(a02, u2, fma(r02, v2, fma(a03, u3, r03 * v3))))))) * inv
        tv0 = fma(a00, v0, fma(-r00, u0, fma(a01, v1, fma(-r01, u1,
            fma(a02, v2, fma(-r02, u2, fma(a03, v3, -r03 * u3))))))) * inv
        tu1 = fma(a10, u0, fma(r10, v0, fma(a11, u1, fma(r11, v1,
            fma(a12, u2, fma(r12, v2, fma(a13, u3, r13 * v3))))))) * inv
        tv1 = fma(a10, v0, fma(-r10, u0, fma(a11, v1, fma(-r11, u1,
            fma(a12, v2, fma(-r12, u2, fma(a13, v3, -r13 * u3))))))) * inv
        tu2 = fma(a20, u0, fma(r20, v0, fma(a21, u1, fma(r21, v1,
            fma(a22, u2, fma(r22, v2, fma(a23, u3, r23 * v3))))))) * inv
        tv2 = fma(a20, v0, fma(-r20, u0, fma(a21, v1, fma(-r21, u1,
            fma(a22, v2, fma(-r22, u2, fma(a23, v3, -r23 * u3))))))) * inv
        tu3 = fma(a30, u0, fma(r30, v0, fma(a31, u1, fma(r31, v1,
            fma(a32, u2, fma(r32, v2, fma(a33, u3, r33 * v3))))))) * inv
        tv3 = fma(a30, v0, fma(-r30, u0, fma(a31, v1, fma(-r31, u1,
            fma(a32, v2, fma(-r32, u2, fma(a33, v3, -r33 * u3))))))) * inv
        u0 = tu0
        v0 = tv0
        su0 += tu0
        sv0 += tv0
        u1 = tu1
        v1 = tv1
        su1 += tu1
        sv1 += tv1
        u2 = tu2
        v2 = tv2
        su2 += tu2
        sv2 += tv2
        u3 = tu3
        v3 = tv3
        su3 += tu3
        sv3 += tv3
        biggest = max(max(abs(u0) + abs(v0), abs(u1) + abs(v1)),
                      max(abs(u2) + abs(v2), abs(u3) + abs(v3)))
        if biggest < _TAYLOR_TOL:
            break
    psi[0] = complex(su0, sv0)
    psi[1] = complex(su1, sv1)
    psi[2] = complex(su2, sv2)
    psi[3] = complex(su3, sv3)


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
