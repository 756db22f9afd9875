"""Cavity chargers in coherent and thermal states: exact sums over excitation sectors
(physics.md section 7).

The excitation number N = a^dag a + (excited qubits) is conserved. Sector N is the ladder
(|N,gg>, |N-1,T0>, |N-2,ee>), T0 = (|eg> + |ge>)/sqrt(2), of the paper's eq. 24 with n -> N
(:func:`.hamiltonians.fill_cavity_sector`, which shifts it by -(N-1) omega_a; the singlet is
decoupled and empty). c^(N)(t) = exp(-i H_N t) e_gg. With the charger's photon distribution p_N
(coherent: Poisson, p_N = e^-nbar nbar^N / N!; thermal: p_N = nbar^N / (1 + nbar)^(N+1)) and
A_{N,k} = sqrt(p_N) c_k^(N):

- thermal: rho_B = sum_N p_N rho^(N), the X state with populations
  P_k = sum_N |A_{N,k}|^2 (k = gg, T0, ee): the X-state metric route
  (:func:`.metrics.write_block_xstate`);
- coherent (alpha = +sqrt(nbar)): rho_B = sum_m phi_m phi_m^dag with
  phi_m = (A_{m+2,ee}, A_{m+1,T0}, A_{m,gg}) in the triplet basis (ee, T0, gg), i.e. the
  populations above and the coherences between neighbouring sectors
  X_eT = sum_N A_{N,ee} A_{N-1,T0}*, X_Tg = sum_N A_{N,T0} A_{N-1,gg}*,
  X_eg = sum_N A_{N,ee} A_{N-2,gg}*. Not an X state (and NOT the Poisson mixture of Fock
  states): the general route, a 3x3 Hermitian eigensolver per time for the spectrum
  (closed form with deflation, :func:`density3_spectrum`) and the
  Wootters concurrence from the singular values of F^T (sy x sy) F, rho_B = F F^dag
  (:func:`concurrence_symmetric`), then :func:`.metrics.write_block`.

Phases: the kernels use H_N - (N-1) omega_a, so c^(N) = e^{-i (N-1) omega_a t} c'^(N); a
coherence between sectors N and N - d then carries e^{-i d omega_a t} (d = 1 for X_eT, X_Tg;
2 for X_eg), restored exactly per time (only the steering sums see it).

Truncation (sectors L..U, no renormalisation; delta = trace-norm error of rho_B, physics.md
section 7): thermal delta = (nbar / (1 + nbar))^(U+1), L = 0; coherent
delta <= eps_lo + eps_hi + 2 sqrt((p_{U-1} + p_U)(p_{U+1} + p_{U+2}))
         + 2 sqrt((p_L + p_{L+1})(p_{L-1} + p_{L-2})),
eps_lo/eps_hi the omitted weights below L / above U, each bounded by a geometric series.
Every point's window is chosen for delta <= :data:`TRUNCATION_DELTA`.

Parameter table columns (qbfast.params, charger "coherent"/"thermal"): nbar, J1, J2, omega_g,
omega_a, Delta. Work items: one parameter point (its sector eigen-decompositions and weights are
computed once) times a piece of its time axis (pieces only when there are fewer points than
threads).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._jit import kernel, leaf, parallel_kernel
from .eigh import eigh_inplace
from .fastmath import SIN_COS_MAX_ARG, sin_cos
from .grid import T_BLOCK, _accounting, _fill_sin_cos
from .hamiltonians import bare_battery, cavity_battery, fill_cavity_sector
from .metrics import (
    CONC,
    CX,
    CY,
    CZ,
    ENERGY_ROW,
    N_SUMMARY,
    N_XSUMMARY,
    NX,
    NY,
    NZ,
    R0,
    R1,
    R2,
    R3,
    SX,
    SY,
    SZ,
    energy,
    write_block,
    write_block_xstate,
)
from .states import sector_amplitude, sector_amplitude3, xstate_rows

#: Trace-norm error bound of every point's truncated rho_B (physics.md section 7). Energy errs
#: by <= ||H|| delta, ergotropy by <= 2 ||H|| delta, purities by <= 2 delta, entropies by
#: <= (delta/2) log2 3 + h(delta/2), but the concurrence only by <= 2 sqrt(delta): with the
#: issue's delta = 1e-13 that is 6e-7, and it is reached (thermal, nbar = 1e-7: the sector
#: N = 2 of weight 1e-14 carries the sqrt(rho_ee rho_gg) ~ 1e-7 that decides the concurrence,
#: tests/test_chargers_reference.py). So the windows are chosen for delta = 2.5e-21, the
#: concurrence guarantee 1e-10 (every other metric ~1e-20): ~1.3x the sectors of delta = 1e-13
#: for the coherent charger, ~1.6x for the thermal one (docs/chargers.md).
TRUNCATION_DELTA = 2.5e-21

_SQRT_HALF = 0.7071067811865476


# --- weights and windows -------------------------------------------------------------------------

@kernel
def log_weight(thermal, nbar, n):
    """log p_n for nbar > 0: coherent (Poisson) -nbar + n log nbar - lgamma(n + 1); thermal
    n log(nbar / (1 + nbar)) - log(1 + nbar) = -n log1p(1/nbar) - log1p(nbar)."""
    if thermal:
        return -n * math.log1p(1.0 / nbar) - math.log1p(nbar)
    return -nbar + n * math.log(nbar) - math.lgamma(n + 1.0)


@kernel
def weight(thermal, nbar, n):
    """p_n (0 for n < 0; nbar = 0 is the vacuum, p_0 = 1), from its logarithm."""
    if n < 0:
        return 0.0
    if nbar == 0.0:
        return 1.0 if n == 0 else 0.0
    return math.exp(log_weight(thermal, nbar, n))


@kernel
def thermal_window(nbar, delta):
    """Sectors 0..U of the thermal charger: the smallest U with (nbar/(1+nbar))^(U+1) <= delta
    (the omitted weight is the trace-norm error: rho_B is a mixture)."""
    if nbar == 0.0:
        return 0, 0
    log_r = -math.log1p(1.0 / nbar)
    u = max(0, math.ceil(math.log(delta) / log_r) - 1)
    while u > 0 and (u * log_r) <= math.log(delta):
        u -= 1
    while (u + 1) * log_r > math.log(delta):
        u += 1
    return 0, u


@kernel
def coherent_upper_error(nbar, u):
    """The part of the coherent bound above U: eps_hi + 2 sqrt((p_{U-1}+p_U)(p_{U+1}+p_{U+2})),
    eps_hi = sum_{N>U} p_N <= p_{U+1} / (1 - nbar/(U+2)) (p_{N+1}/p_N = nbar/(N+1)); needs
    U + 2 > nbar."""
    tail = weight(False, nbar, u + 1) / (1.0 - nbar / (u + 2.0))
    return tail + 2.0 * math.sqrt((weight(False, nbar, u - 1) + weight(False, nbar, u))
                                  * (weight(False, nbar, u + 1) + weight(False, nbar, u + 2)))


@kernel
def coherent_lower_error(nbar, lo):
    """The part of the coherent bound below L: eps_lo + 2 sqrt((p_L+p_{L+1})(p_{L-1}+p_{L-2})),
    eps_lo = sum_{N<L} p_N <= p_{L-1} / (1 - (L-1)/nbar) (p_{N-1}/p_N = N/nbar); 0 at L = 0;
    needs L - 1 < nbar."""
    if lo == 0:
        return 0.0
    tail = weight(False, nbar, lo - 1) / (1.0 - (lo - 1.0) / nbar)
    return tail + 2.0 * math.sqrt((weight(False, nbar, lo) + weight(False, nbar, lo + 1))
                                  * (weight(False, nbar, lo - 1) + weight(False, nbar, lo - 2)))


@kernel
def coherent_window(nbar, delta):
    """Sectors L..U of the coherent charger with the section-7 bound <= delta: grown from
    N = floor(nbar) one sector at a time on the side whose part of the bound is larger."""
    if nbar == 0.0:
        return 0, 0
    lo = math.floor(nbar)
    hi = lo
    while True:
        up = coherent_upper_error(nbar, hi)
        down = coherent_lower_error(nbar, lo)
        if up + down <= delta:
            return lo, hi
        if down > up:
            lo -= 1
        else:
            hi += 1


@kernel
def charger_window(thermal, nbar, delta):
    """(L, U) for either charger."""
    if thermal:
        return thermal_window(nbar, delta)
    return coherent_window(nbar, delta)


# --- per point: the sectors ---------------------------------------------------------------

@kernel
def charger_sectors(params, p, thermal, lo, n_sec, en, wr, wi, h4, h3, w3, v3):
    """Sectors lo .. lo + n_sec - 1 of point p: en[s, m] the eigenvalues (ascending) of
    H_N - (N-1) omega_a on the ladder (gg, T0, ee), and wr + i wi [s, k, m] =
    sqrt(p_N) V_km V_gg,m*, so that A_{N,k}(t) = sum_m (wr + i wi)[s, k, m] e^{-i en[s, m] t}
    (up to the phase e^{-i (N-1) omega_a t}). sqrt(p_N) = exp(log p_N / 2)."""
    nbar = params[p, 0]
    for s in range(n_sec):
        sector = lo + s
        if nbar == 0.0:
            amp = 1.0 if sector == 0 else 0.0
        else:
            amp = math.exp(0.5 * log_weight(thermal, nbar, sector))
        fill_cavity_sector(h4, float(sector), params[p, 1], params[p, 2], params[p, 3],
                           params[p, 4], params[p, 5])
        for a in range(3):
            for b in range(3):
                h3[a, b] = h4[a, b]
        eigh_inplace(h3, w3, v3)
        for m in range(3):
            en[s, m] = w3[m]
            for k in range(3):
                z = amp * v3[k, m] * v3[0, m].conjugate()
                wr[s, k, m] = z.real
                wi[s, k, m] = z.imag


@kernel
def _windows(params, thermal, lo, n_sec):
    n_points = params.shape[0]
    for p in range(n_points):
        a, b = charger_window(thermal, params[p, 0], TRUNCATION_DELTA)
        lo[p] = a
        n_sec[p] = b - a + 1


@kernel
def _pieces(n_points, n_t, n_threads):
    """Time pieces per point: 1, or enough to give every thread work when there are fewer
    points than threads (each piece recomputes its point's sectors)."""
    n_blocks = (n_t + T_BLOCK - 1) // T_BLOCK
    if n_points >= n_threads:
        return 1, n_blocks
    return max(1, min(n_blocks, (n_threads + n_points - 1) // n_points)), n_blocks


# --- thermal: X state ----------------------------------------------------------------------------

@leaf
def _sector_row(wr, wi, s, k):
    """Row k of sector s's weights as the scalars (w0r, w0i, w1r, w1i, w2r, w2i), hoisted
    out of the time loops."""
    return (wr[s, k, 0], wi[s, k, 0], wr[s, k, 1], wi[s, k, 1], wr[s, k, 2], wi[s, k, 2])


@leaf
def _thermal_step(acc, j, g, b, c, k1, s1, k2, s2):
    """acc[0..2, j] += |A_gg|^2, |A_T|^2, |A_ee|^2 of one sector at one time: weights
    g, b, c (:func:`_sector_row`), phases (cos, sin) of (E_m - E_0) t, m = 1, 2."""
    gr, gi = sector_amplitude(g[0], g[1], g[2], g[3], g[4], g[5], k1, s1, k2, s2)
    tr, ti = sector_amplitude(b[0], b[1], b[2], b[3], b[4], b[5], k1, s1, k2, s2)
    er, ei = sector_amplitude(c[0], c[1], c[2], c[3], c[4], c[5], k1, s1, k2, s2)
    acc[0, j] += gr * gr + gi * gi
    acc[1, j] += tr * tr + ti * ti
    acc[2, j] += er * er + ei * ei


@kernel
def _thermal_block(p, start, n, t, params, bare, slot, out, n_sec, en, wr, wi, acc, rows):
    """Times start .. start + n of point p: P_k = sum_N |A_{N,k}|^2 (phases relative to each
    sector's first eigenvalue suffice: each sector enters on its own), then the X-state
    metrics. One pass per sector over the times, its phases computed in the same loop (no
    phase rows to store and reload), so that the loop is one SIMD stream."""
    delta = params[p, 5]
    hb = bare_battery(delta) if bare else cavity_battery(delta, params[p, 1], params[p, 2])
    spectrum, threshold = _accounting(hb, delta)
    tb = t[start:start + n]
    t_max = tb[n - 1]
    for r in range(3):
        for j in range(n):
            acc[r, j] = 0.0
    for s in range(n_sec):
        f1 = en[s, 1] - en[s, 0]
        f2 = en[s, 2] - en[s, 0]
        fast = max(abs(f1), abs(f2)) * t_max < SIN_COS_MAX_ARG
        g = _sector_row(wr, wi, s, 0)
        b = _sector_row(wr, wi, s, 1)
        c = _sector_row(wr, wi, s, 2)
        # the branch outside the loops: a branch inside stops LLVM vectorizing them
        if fast:
            for j in range(n):
                s1, k1 = sin_cos(f1 * tb[j])
                s2, k2 = sin_cos(f2 * tb[j])
                _thermal_step(acc, j, g, b, c, k1, s1, k2, s2)
        else:
            for j in range(n):
                x = tb[j]
                _thermal_step(acc, j, g, b, c, math.cos(f1 * x), math.sin(f1 * x),
                              math.cos(f2 * x), math.sin(f2 * x))
    for j in range(n):
        xstate_rows(rows, j, hb, acc[0, j], acc[1, j], acc[2, j])
    write_block_xstate(out, slot, p, start, t, rows, n, delta, threshold, hb[3], spectrum)


@parallel_kernel
def thermal_grid(params, t, bare, slot, out, n_threads):
    """Cavity model, thermal charger (module docstring): params columns nbar, J1, J2,
    omega_g, omega_a, Delta; out, slot, bare as for :func:`.grid.cavity_grid`."""
    n_points = params.shape[0]
    n_t = t.shape[0]
    lo = np.empty(n_points, dtype=np.int64)
    n_sec = np.empty(n_points, dtype=np.int64)
    _windows(params, True, lo, n_sec)
    max_sec = n_sec.max()
    n_pieces, n_blocks = _pieces(n_points, n_t, n_threads)
    n_jobs = n_points * n_pieces
    n_workers = max(1, min(n_threads, n_jobs))
    for worker in numba.prange(n_workers):
        en = np.empty((max_sec, 3))
        wr = np.empty((max_sec, 3, 3))
        wi = np.empty((max_sec, 3, 3))
        h4 = np.empty((4, 4), dtype=np.complex128)
        h3 = np.empty((3, 3), dtype=np.complex128)
        w3 = np.empty(3)
        v3 = np.empty((3, 3), dtype=np.complex128)
        acc = np.empty((3, T_BLOCK))
        rows = np.empty((N_XSUMMARY, T_BLOCK))
        for job in range(worker, n_jobs, n_workers):
            p = job // n_pieces
            piece = job % n_pieces
            charger_sectors(params, p, True, lo[p], n_sec[p], en, wr, wi, h4, h3, w3, v3)
            for blk in range(piece, n_blocks, n_pieces):
                start = blk * T_BLOCK
                n = min(T_BLOCK, n_t - start)
                _thermal_block(p, start, n, t, params, bare, slot, out, n_sec[p], en, wr, wi,
                               acc, rows)


# --- coherent: the general (rank <= 3) state ------------------------------------------------------

@leaf
def abs2(z):
    """|z|^2."""
    return z.real * z.real + z.imag * z.imag


@kernel
def hermitian3_eigenvalues(a00, a11, a22, a01, a02, a12):
    """Eigenvalues (ascending) of the 3x3 Hermitian matrix with diagonal a00, a11, a22 and
    upper entries a01, a02, a12, in closed form (trigonometric solution of the
    characteristic cubic): with q = tr A / 3, p = sqrt(tr (A - q)^2 / 6) and
    r = det((A - q) / p) / 2, the eigenvalues are q + 2 p cos(acos(r)/3 + 2 pi k / 3).
    Absolute error ~ eps ||A|| for an eigenvalue isolated at an end of the spectrum where the
    other two are the closer pair; ~ sqrt(eps) ||A|| for the members of a nearly degenerate
    pair (acos near r = +-1): :func:`density3_spectrum` is the accurate route."""
    q = (a00 + a11 + a22) / 3.0
    b00 = a00 - q
    b11 = a11 - q
    b22 = a22 - q
    n01 = a01.real * a01.real + a01.imag * a01.imag
    n02 = a02.real * a02.real + a02.imag * a02.imag
    n12 = a12.real * a12.real + a12.imag * a12.imag
    p2 = b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * (n01 + n02 + n12)
    if p2 <= 1e-300:
        return q, q, q
    p = math.sqrt(p2 / 6.0)
    triple = a01 * a12 * a02.conjugate()
    det = b00 * b11 * b22 + 2.0 * triple.real - b00 * n12 - b11 * n02 - b22 * n01
    r = 0.5 * det / (p * p * p)
    r = min(1.0, max(-1.0, r))
    phi = math.acos(r) / 3.0
    e_max = q + 2.0 * p * math.cos(phi)
    e_min = q + 2.0 * p * math.cos(phi + 2.0943951023931957)
    return e_min, 3.0 * q - e_max - e_min, e_max


@kernel
def _deflated_pair(a00, a11, a22, a01, a02, a12, lam):
    """The two other eigenvalues (lo <= hi) of the 3x3 Hermitian m (diagonal a00, a11, a22,
    upper entries a01, a02, a12) given its eigenvalue
    ``lam``: lam's eigenvector v as the longest cross product of two rows of m - lam
    (bilinear: row_i . (row_a x row_b) = 0), then the 2x2 Hermitian block of m on v's
    orthogonal complement in closed form (mean +- sqrt(half-difference^2 + |off|^2), the
    smaller one as det / larger when that avoids a cancellation). Third value: True where lam
    is degenerate to within 5e-11 ||m - lam|| (v is then ill-defined; lo and hi are not
    computed)."""
    r00 = a00 - lam
    r11 = a11 - lam
    r22 = a22 - lam
    scale = (r00 * r00 + r11 * r11 + r22 * r22
             + 2.0 * (abs2(a01) + abs2(a02) + abs2(a12)))
    # rows of m - top: (r00, a01, a02), (a01*, r11, a12), (a02*, a12*, r22)
    b0 = complex(r00, 0.0)
    b1 = complex(r11, 0.0)
    b2 = complex(r22, 0.0)
    c10 = a01.conjugate()
    c20 = a02.conjugate()
    c21 = a12.conjugate()
    # row0 x row1, row0 x row2, row1 x row2
    x0 = a01 * a12 - a02 * b1
    x1 = a02 * c10 - b0 * a12
    x2 = b0 * b1 - a01 * c10
    y0 = a01 * b2 - a02 * c21
    y1 = a02 * c20 - b0 * b2
    y2 = b0 * c21 - a01 * c20
    z0 = b1 * b2 - a12 * c21
    z1 = a12 * c20 - c10 * b2
    z2 = c10 * c21 - b1 * c20
    nx = abs2(x0) + abs2(x1) + abs2(x2)
    ny = abs2(y0) + abs2(y1) + abs2(y2)
    nz = abs2(z0) + abs2(z1) + abs2(z2)
    v0, v1, v2, nv = x0, x1, x2, nx
    if ny > nv:
        v0, v1, v2, nv = y0, y1, y2, ny
    if nz > nv:
        v0, v1, v2, nv = z0, z1, z2, nz
    if nv <= 2.5e-21 * scale * scale or nv < 1e-300:
        return 0.0, 0.0, True
    inv = 1.0 / math.sqrt(nv)
    v0 *= inv
    v1 *= inv
    v2 *= inv
    # u1: the basis vector least along v, minus its v part; u2 = conj(v x u1)
    w0 = abs2(v0)
    w1 = abs2(v1)
    w2 = abs2(v2)
    if w0 <= w1 and w0 <= w2:
        u0, u1, u2 = 1.0 - v0 * v0.conjugate(), -v1 * v0.conjugate(), -v2 * v0.conjugate()
    elif w1 <= w2:
        u0, u1, u2 = -v0 * v1.conjugate(), 1.0 - v1 * v1.conjugate(), -v2 * v1.conjugate()
    else:
        u0, u1, u2 = -v0 * v2.conjugate(), -v1 * v2.conjugate(), 1.0 - v2 * v2.conjugate()
    inv = 1.0 / math.sqrt(abs2(u0) + abs2(u1) + abs2(u2))
    u0 *= inv
    u1 *= inv
    u2 *= inv
    q0 = (v1 * u2 - v2 * u1).conjugate()
    q1 = (v2 * u0 - v0 * u2).conjugate()
    q2 = (v0 * u1 - v1 * u0).conjugate()
    inv = 1.0 / math.sqrt(abs2(q0) + abs2(q1) + abs2(q2))
    q0 *= inv
    q1 *= inv
    q2 *= inv
    # m u and m q
    mu0 = a00 * u0 + a01 * u1 + a02 * u2
    mu1 = c10 * u0 + a11 * u1 + a12 * u2
    mu2 = c20 * u0 + c21 * u1 + a22 * u2
    mq0 = a00 * q0 + a01 * q1 + a02 * q2
    mq1 = c10 * q0 + a11 * q1 + a12 * q2
    mq2 = c20 * q0 + c21 * q1 + a22 * q2
    buu = (u0.conjugate() * mu0 + u1.conjugate() * mu1 + u2.conjugate() * mu2).real
    bqq = (q0.conjugate() * mq0 + q1.conjugate() * mq1 + q2.conjugate() * mq2).real
    buq = u0.conjugate() * mq0 + u1.conjugate() * mq1 + u2.conjugate() * mq2
    mean = 0.5 * (buu + bqq)
    half = 0.5 * (buu - bqq)
    rad = math.sqrt(half * half + abs2(buq))
    lo = mean - rad
    hi = mean + rad
    # the small eigenvalue without cancellation: lo = det / hi when hi dominates
    if mean > 0.0:
        lo = (buu * bqq - abs2(buq)) / hi
    return lo, hi, False




@kernel
def density3_spectrum(m):
    """Eigenvalues (ascending) of the 3x3 Hermitian ``m`` with absolute errors ~1e-16 also
    for small and degenerate ones (entropies take x log x of them). The trigonometric
    solution (:func:`hermitian3_eigenvalues`) is accurate for an eigenvalue that is isolated
    at the end of the spectrum where acos(r) is flat (the largest when the two smaller are
    the closer pair, the smallest when the two larger are), and loses ~sqrt(eps) ||m|| on the
    others near a degeneracy (r -> +-1). So that isolated eigenvalue is taken from it and the
    other two from the 2x2 block on its eigenvector's complement (:func:`_deflated_pair`).
    Where the pair is degenerate to within 5e-11 ||m - lambda|| the spectrum is
    (lambda, (tr - lambda) / 2, (tr - lambda) / 2) in order: both branches err by <~ 1e-10
    at the switch."""
    return hermitian3_spectrum(m[0, 0].real, m[1, 1].real, m[2, 2].real, m[0, 1], m[0, 2],
                               m[1, 2])


@kernel
def hermitian3_spectrum(a00, a11, a22, a01, a02, a12):
    """:func:`density3_spectrum` of the 3x3 Hermitian matrix given by its diagonal and upper
    entries."""
    e_min, e_mid, e_max = hermitian3_eigenvalues(a00, a11, a22, a01, a02, a12)
    trace = a00 + a11 + a22
    if e_max - e_mid >= e_mid - e_min:  # the largest is the isolated one
        lo, hi, degenerate = _deflated_pair(a00, a11, a22, a01, a02, a12, e_max)
        if degenerate:
            return trace - 2.0 * e_max, e_max, e_max
        return lo, hi, e_max
    lo, hi, degenerate = _deflated_pair(a00, a11, a22, a01, a02, a12, e_min)  # the smallest
    if degenerate:
        return e_min, e_min, trace - 2.0 * e_min
    return e_min, lo, hi


@kernel
def concurrence_symmetric(m, f):
    """Wootters concurrence of a two-qubit state with an empty singlet, rho given in the
    triplet basis (ee, T0, gg) as the 3x3 Hermitian ``m``; ``f`` is 3x3 complex scratch:
    max(0, l1 - (l2 + l3)) from :func:`triplet_tau_singular_values`."""
    lam1, rest = triplet_tau_singular_values(m, f)
    return max(0.0, lam1 - rest)


@kernel
def triplet_tau_singular_values(m, f):
    """(l1, l2 + l3): the largest singular value of Wootters' tau for the triplet block ``m``
    (basis (ee, T0, gg), 3x3 Hermitian) and the sum of the other two; ``f`` is 3x3 complex
    scratch. A state with a singlet population p_S adds the singular value p_S
    (:mod:`.open_states`).

    Wootters: C = max(0, l1 - l2 - l3 (- l4 = 0)), the l's the singular values of
    tau = F^T (sy x sy) F for any F with rho = F F^dag; in this basis sy x sy is
    -(|ee><gg| + |gg><ee|) + |T0><T0|, so tau_ij = F_Ti F_Tj - F_ei F_gj - F_gi F_ej.
    F: Cholesky with diagonal pivoting (largest remaining pivot first; a pivot <= 0 gives a
    zero column), so that F F^dag = rho up to rounding of rho's own size (no square roots of
    eigenvalues). The l's without squaring away the small ones: l1^2 = the largest eigenvalue
    of tau^dag tau (:func:`hermitian3_spectrum`: accurate also when l1 ~ l2), and with
    e2 = sum of the squared 2x2 minors of tau (= l1^2 l2^2 + l1^2 l3^2 + l2^2 l3^2) and
    d = |det tau| = l1 l2 l3, (l2 + l3)^2 = (e2 - d^2 / l1^2) / l1^2 + 2 d / l1."""
    d0 = m[0, 0].real
    d1 = m[1, 1].real
    d2 = m[2, 2].real
    i0 = 0
    if d1 > d0 and d1 >= d2:
        i0 = 1
    elif d2 > d0 and d2 > d1:
        i0 = 2
    j = (i0 + 1) % 3
    k = (i0 + 2) % 3
    for a in range(3):
        for b in range(3):
            f[a, b] = 0.0
    piv = m[i0, i0].real
    if piv <= 0.0:
        return 0.0, 0.0
    l0 = math.sqrt(piv)
    for a in range(3):
        f[a, 0] = m[a, i0] / l0
    f[i0, 0] = l0
    sj = m[j, j].real - (f[j, 0].real ** 2 + f[j, 0].imag ** 2)
    sk = m[k, k].real - (f[k, 0].real ** 2 + f[k, 0].imag ** 2)
    i1 = j
    i2 = k
    s1 = sj
    if sk > sj:
        i1 = k
        i2 = j
        s1 = sk
    if s1 > 0.0:
        l1 = math.sqrt(s1)
        f[i1, 1] = l1
        f[i2, 1] = (m[i2, i1] - f[i2, 0] * f[i1, 0].conjugate()) / l1
    s2 = (m[i2, i2].real - (f[i2, 0].real ** 2 + f[i2, 0].imag ** 2)
          - (f[i2, 1].real ** 2 + f[i2, 1].imag ** 2))
    if s2 > 0.0:
        f[i2, 2] = math.sqrt(s2)
    # tau = F^T S F (symmetric), rows of F: 0 = ee, 1 = T0, 2 = gg
    t00 = f[1, 0] * f[1, 0] - 2.0 * f[0, 0] * f[2, 0]
    t11 = f[1, 1] * f[1, 1] - 2.0 * f[0, 1] * f[2, 1]
    t22 = f[1, 2] * f[1, 2] - 2.0 * f[0, 2] * f[2, 2]
    t01 = f[1, 0] * f[1, 1] - f[0, 0] * f[2, 1] - f[2, 0] * f[0, 1]
    t02 = f[1, 0] * f[1, 2] - f[0, 0] * f[2, 2] - f[2, 0] * f[0, 2]
    t12 = f[1, 1] * f[1, 2] - f[0, 1] * f[2, 2] - f[2, 1] * f[0, 2]
    # K = tau^dag tau (Hermitian; tau symmetric, so K_ab = sum_c conj(tau_ca) tau_cb)
    k00 = abs2(t00) + abs2(t01) + abs2(t02)
    k11 = abs2(t01) + abs2(t11) + abs2(t12)
    k22 = abs2(t02) + abs2(t12) + abs2(t22)
    k01 = t00.conjugate() * t01 + t01.conjugate() * t11 + t02.conjugate() * t12
    k02 = t00.conjugate() * t02 + t01.conjugate() * t12 + t02.conjugate() * t22
    k12 = t01.conjugate() * t02 + t11.conjugate() * t12 + t12.conjugate() * t22
    top = hermitian3_spectrum(k00, k11, k22, k01, k02, k12)[2]
    if top <= 0.0:
        return 0.0, 0.0
    l1sq = top
    lam1 = math.sqrt(l1sq)
    # 2x2 minors of the symmetric tau: rows (a, b), columns (c, d)
    m01_01 = t00 * t11 - t01 * t01
    m01_02 = t00 * t12 - t02 * t01
    m01_12 = t01 * t12 - t02 * t11
    m02_02 = t00 * t22 - t02 * t02
    m02_12 = t01 * t22 - t02 * t12
    m12_12 = t11 * t22 - t12 * t12
    # tau is symmetric: minor(rows R, cols C) = minor(C, R), so the 9 minors are these 6
    e2 = (abs2(m01_01) + abs2(m02_02) + abs2(m12_12)
          + 2.0 * (abs2(m01_02) + abs2(m01_12) + abs2(m02_12)))
    det = abs(t00 * m12_12 - t01 * (t01 * t22 - t12 * t02) + t02 * (t01 * t12 - t11 * t02))
    rest = (e2 - det * det / l1sq) / l1sq + 2.0 * det / lam1
    return lam1, math.sqrt(max(rest, 0.0))


@kernel
def _triplet_summary(summary, j, hb, p_gg, p_t, p_ee, xet, xtg, xeg, m, f):
    """The state summary of :mod:`.metrics` (rows ENERGY_ROW .. CONC) into summary[:, j] from
    rho_B in the triplet basis (ee, T0, gg): populations p_ee, p_T, p_gg, coherences X_eT,
    X_Tg, X_eg (complex; the singlet is empty). In (ee, eg, ge, gg): rho_eg,eg = rho_ge,ge =
    rho_eg,ge = p_T / 2, rho_ee,eg = rho_ee,ge = X_eT / sqrt2, rho_eg,gg = rho_ge,gg =
    X_Tg / sqrt2, rho_ee,gg = X_eg. So both cells have rho_eg = (X_eT + X_Tg) / sqrt2,
    n_z = p_ee - p_gg; c_x = p_T + 2 Re X_eg, c_y = p_T - 2 Re X_eg, c_z = p_ee + p_gg - p_T.
    Spectrum: the three eigenvalues of the triplet block and 0 (the singlet)."""
    half = 0.5 * p_t
    summary[ENERGY_ROW, j] = energy(hb, p_ee, half, half, half)
    cell = _SQRT_HALF * (xet + xtg)
    nx = 2.0 * cell.real
    ny = -2.0 * cell.imag
    nz = p_ee - p_gg
    summary[NX, j] = nx
    summary[NY, j] = ny
    summary[NZ, j] = nz
    summary[SX, j] = nx
    summary[SY, j] = ny
    summary[SZ, j] = nz
    summary[CX, j] = p_t + 2.0 * xeg.real
    summary[CY, j] = p_t - 2.0 * xeg.real
    summary[CZ, j] = p_ee + p_gg - p_t
    m[0, 0] = p_ee
    m[1, 1] = p_t
    m[2, 2] = p_gg
    m[0, 1] = xet
    m[1, 0] = xet.conjugate()
    m[1, 2] = xtg
    m[2, 1] = xtg.conjugate()
    m[0, 2] = xeg
    m[2, 0] = xeg.conjugate()
    r0, r1, r2 = density3_spectrum(m)
    summary[R0, j] = r0
    summary[R1, j] = r1
    summary[R2, j] = r2
    summary[R3, j] = 0.0
    summary[CONC, j] = concurrence_symmetric(m, f)


# rows of the coherent accumulator
_PGG, _PT, _PEE, _XET_R, _XET_I, _XTG_R, _XTG_I, _XEG_R, _XEG_I = range(9)
_G1_R, _G1_I, _T1_R, _T1_I, _G2_R, _G2_I = range(9, 15)
_N_ACC = 15


@leaf
def _coherent_step(acc, j, a, b, c, k0, s0, k1, s1, k2, s2):
    """One sector at one time: its amplitudes A_gg, A_T, A_ee (weights a, b, c of
    :func:`_sector_row`, phases (cos, sin) of E_m t) into the populations and the coherences
    with the previous two sectors' amplitudes (rows _G1/_T1/_G2), which it then shifts."""
    gr, gi = sector_amplitude3(a[0], a[1], a[2], a[3], a[4], a[5], k0, s0, k1, s1, k2, s2)
    tr, ti = sector_amplitude3(b[0], b[1], b[2], b[3], b[4], b[5], k0, s0, k1, s1, k2, s2)
    er, ei = sector_amplitude3(c[0], c[1], c[2], c[3], c[4], c[5], k0, s0, k1, s1, k2, s2)
    t1r = acc[_T1_R, j]
    t1i = acc[_T1_I, j]
    g1r = acc[_G1_R, j]
    g1i = acc[_G1_I, j]
    g2r = acc[_G2_R, j]
    g2i = acc[_G2_I, j]
    acc[_PGG, j] += gr * gr + gi * gi
    acc[_PT, j] += tr * tr + ti * ti
    acc[_PEE, j] += er * er + ei * ei
    # X_eT += A_ee conj(A_{N-1,T}); X_Tg += A_T conj(A_{N-1,gg});
    # X_eg += A_ee conj(A_{N-2,gg})
    acc[_XET_R, j] += er * t1r + ei * t1i
    acc[_XET_I, j] += ei * t1r - er * t1i
    acc[_XTG_R, j] += tr * g1r + ti * g1i
    acc[_XTG_I, j] += ti * g1r - tr * g1i
    acc[_XEG_R, j] += er * g2r + ei * g2i
    acc[_XEG_I, j] += ei * g2r - er * g2i
    acc[_G2_R, j] = g1r
    acc[_G2_I, j] = g1i
    acc[_G1_R, j] = gr
    acc[_G1_I, j] = gi
    acc[_T1_R, j] = tr
    acc[_T1_I, j] = ti


@kernel
def _coherent_block(p, start, n, t, params, bare, slot, out, n_sec, en, wr, wi, acc, sn, cs,
                    summary, stored, shared, mat, tau):
    """Times start .. start + n of point p: the populations and the neighbouring-sector
    coherences of rho_B summed over the sectors (the amplitudes of the previous two sectors
    kept in rows _G1/_T1/_G2), the phases e^{-i d omega_a t} restored, then the general
    metric route."""
    delta = params[p, 5]
    omega_a = params[p, 4]
    hb = bare_battery(delta) if bare else cavity_battery(delta, params[p, 1], params[p, 2])
    spectrum, threshold = _accounting(hb, delta)
    tb = t[start:start + n]
    t_max = tb[n - 1]
    for r in range(_N_ACC):
        for j in range(n):
            acc[r, j] = 0.0
    for s in range(n_sec):
        e0, e1, e2 = en[s, 0], en[s, 1], en[s, 2]
        fast = max(abs(e0), max(abs(e1), abs(e2))) * t_max < SIN_COS_MAX_ARG
        a = _sector_row(wr, wi, s, 0)
        b = _sector_row(wr, wi, s, 1)
        c = _sector_row(wr, wi, s, 2)
        # one pass over the times per sector, the phases computed in the loop: one SIMD
        # stream (the branch outside the loops: a branch inside stops LLVM vectorizing them)
        if fast:
            for j in range(n):
                x = tb[j]
                s0, k0 = sin_cos(e0 * x)
                s1, k1 = sin_cos(e1 * x)
                s2, k2 = sin_cos(e2 * x)
                _coherent_step(acc, j, a, b, c, k0, s0, k1, s1, k2, s2)
        else:
            for j in range(n):
                x = tb[j]
                _coherent_step(acc, j, a, b, c, math.cos(e0 * x), math.sin(e0 * x),
                               math.cos(e1 * x), math.sin(e1 * x), math.cos(e2 * x),
                               math.sin(e2 * x))
    fast = abs(omega_a) * 2.0 * t_max < SIN_COS_MAX_ARG
    _fill_sin_cos(sn, cs, 0, omega_a, tb, n, fast)
    _fill_sin_cos(sn, cs, 1, 2.0 * omega_a, tb, n, fast)
    for j in range(n):
        # X *= e^{-i d omega_a t}: (x_r + i x_i)(cos - i sin)
        k1 = cs[0, j]
        s1 = sn[0, j]
        k2 = cs[1, j]
        s2 = sn[1, j]
        a_r = acc[_XET_R, j] * k1 + acc[_XET_I, j] * s1
        a_i = acc[_XET_I, j] * k1 - acc[_XET_R, j] * s1
        b_r = acc[_XTG_R, j] * k1 + acc[_XTG_I, j] * s1
        b_i = acc[_XTG_I, j] * k1 - acc[_XTG_R, j] * s1
        c_r = acc[_XEG_R, j] * k2 + acc[_XEG_I, j] * s2
        c_i = acc[_XEG_I, j] * k2 - acc[_XEG_R, j] * s2
        _triplet_summary(summary, j, hb, acc[_PGG, j], acc[_PT, j], acc[_PEE, j], complex(a_r, a_i),
                         complex(b_r, b_i), complex(c_r, c_i), mat, tau)
    write_block(out, slot, p, start, t, summary, n, delta, threshold, hb[3], spectrum, stored,
                shared)


@parallel_kernel
def coherent_grid(params, t, bare, slot, out, n_threads):
    """Cavity model, coherent charger (module docstring): params columns nbar, J1, J2,
    omega_g, omega_a, Delta; out, slot, bare as for :func:`.grid.cavity_grid`."""
    n_points = params.shape[0]
    n_t = t.shape[0]
    lo = np.empty(n_points, dtype=np.int64)
    n_sec = np.empty(n_points, dtype=np.int64)
    _windows(params, False, lo, n_sec)
    max_sec = n_sec.max()
    n_pieces, n_blocks = _pieces(n_points, n_t, n_threads)
    n_jobs = n_points * n_pieces
    n_workers = max(1, min(n_threads, n_jobs))
    for worker in numba.prange(n_workers):
        en = np.empty((max_sec, 3))
        wr = np.empty((max_sec, 3, 3))
        wi = np.empty((max_sec, 3, 3))
        h4 = np.empty((4, 4), dtype=np.complex128)
        h3 = np.empty((3, 3), dtype=np.complex128)
        w3 = np.empty(3)
        v3 = np.empty((3, 3), dtype=np.complex128)
        mat = np.empty((3, 3), dtype=np.complex128)
        tau = np.empty((3, 3), dtype=np.complex128)
        acc = np.empty((_N_ACC, T_BLOCK))
        sn = np.empty((3, T_BLOCK))
        cs = np.empty((3, T_BLOCK))
        summary = np.empty((N_SUMMARY, T_BLOCK))
        stored = np.empty(T_BLOCK)
        shared = np.empty(T_BLOCK)
        for job in range(worker, n_jobs, n_workers):
            p = job // n_pieces
            piece = job % n_pieces
            charger_sectors(params, p, False, lo[p], n_sec[p], en, wr, wi, h4, h3, w3, v3)
            for blk in range(piece, n_blocks, n_pieces):
                start = blk * T_BLOCK
                n = min(T_BLOCK, n_t - start)
                _coherent_block(p, start, n, t, params, bare, slot, out, n_sec[p], en, wr, wi,
                                acc, sn, cs, summary, stored, shared, mat, tau)


@kernel
def sector_window(thermal, nbar):
    """(L, U) of the kernels for one nbar (for tests, documentation and task sizing)."""
    return charger_window(thermal, nbar, TRUNCATION_DELTA)
