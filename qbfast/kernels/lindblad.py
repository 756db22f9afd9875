"""The propagator of the open (GKSL) dynamics of both models (physics.md section 8), on the
swap-symmetric state.

Every term of both models' master equations (H, the jump operators summed over the two
qubits with equal rates) commutes with the swap of the qubits, and so does the initial state:
rho commutes with the swap at all times. In the basis (ee, T0, gg, S), T0 = (eg + ge)/sqrt2,
S = (eg - ge)/sqrt2, rho is the 3x3 Hermitian triplet block M plus the singlet population p_S:
10 real numbers, in the order of :data:`P_EE` .. :data:`P_S`
(p_ee, p_T, p_gg, Re/Im X_eT, Re/Im X_Tg, Re/Im X_eg, p_S; X_ab = M_ab).

The cavity adds the excitation number N = a^dag a + excited qubits: a block of sector N
(photon numbers N-2, N-1, N-1, N for ee, eg, ge, gg) is the same 10-vector, and jump operators
that lower N (sigma^-, their sum, a) move it to sector N - 1: a lower-triangular cascade. The
field model is the one-block case.

- :func:`fill_generators`: from a 4x4 Hamiltonian and jump operators (4x4, battery basis
  (ee, eg, ge, gg)), the 10x10 real generator within the block (``d``) and the 10x10 jump
  part to the block below (``jd``), by applying the GKSL terms to the 10 basis states.
- :func:`taylor_step`: one step of v' = sum over blocks of (D_s + f(t) G1) v_s + Jd_{s+1}
  v_{s+1}, f(t) = (A cos(omega t) + B)/2, by its Taylor series summed to 1e-17 of |v| (the
  time derivatives of f are exact): accurate to rounding for steps with h (|G| + |omega|)
  <= 1/2 (:func:`step_bound`), for any rates and any increasing t grid.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import kernel, routine

N_SWAP = 10
P_EE, P_T, P_GG, XET_R, XET_I, XTG_R, XTG_I, XEG_R, XEG_I, P_S = range(N_SWAP)

_SQRT_HALF = 0.7071067811865476
#: Most Taylor terms of one step (h |G| <= 1/2: the remainder after 40 terms is < 1e-60).
TAYLOR_TERMS = 40
_TAYLOR_TOL = 1e-17


@kernel
def swap_to_rho(v, rho):
    """The 4x4 rho (battery basis (ee, eg, ge, gg)) of the 10-vector ``v``."""
    xet = complex(v[XET_R], v[XET_I])
    xtg = complex(v[XTG_R], v[XTG_I])
    xeg = complex(v[XEG_R], v[XEG_I])
    half_t = 0.5 * v[P_T]
    half_s = 0.5 * v[P_S]
    for i in range(4):
        for j in range(4):
            rho[i, j] = 0.0
    rho[0, 0] = v[P_EE]
    rho[3, 3] = v[P_GG]
    rho[1, 1] = half_t + half_s
    rho[2, 2] = half_t + half_s
    rho[1, 2] = half_t - half_s
    rho[2, 1] = half_t - half_s
    # |ee><T0| X_eT, |T0><gg| X_Tg, |ee><gg| X_eg and their adjoints
    rho[0, 1] = rho[0, 2] = _SQRT_HALF * xet
    rho[1, 0] = rho[2, 0] = _SQRT_HALF * xet.conjugate()
    rho[1, 3] = rho[2, 3] = _SQRT_HALF * xtg
    rho[3, 1] = rho[3, 2] = _SQRT_HALF * xtg.conjugate()
    rho[0, 3] = xeg
    rho[3, 0] = xeg.conjugate()


@kernel
def rho_to_swap(rho, v, col):
    """v[:, col] = the 10 numbers of the swap-symmetric part of the 4x4 ``rho``
    (M_ab = <a|rho|b> for a, b in (ee, T0, gg), p_S = <S|rho|S>)."""
    v[P_EE, col] = rho[0, 0].real
    v[P_GG, col] = rho[3, 3].real
    v[P_T, col] = 0.5 * (rho[1, 1] + rho[2, 2] + rho[1, 2] + rho[2, 1]).real
    v[P_S, col] = 0.5 * (rho[1, 1] + rho[2, 2] - rho[1, 2] - rho[2, 1]).real
    xet = _SQRT_HALF * (rho[0, 1] + rho[0, 2])
    xtg = _SQRT_HALF * (rho[1, 3] + rho[2, 3])
    xeg = rho[0, 3]
    v[XET_R, col] = xet.real
    v[XET_I, col] = xet.imag
    v[XTG_R, col] = xtg.real
    v[XTG_I, col] = xtg.imag
    v[XEG_R, col] = xeg.real
    v[XEG_I, col] = xeg.imag


@kernel
def _matmul4(a, b, c):
    """c = a b (4x4 complex)."""
    for i in range(4):
        for j in range(4):
            acc = 0j
            for k in range(4):
                acc += a[i, k] * b[k, j]
            c[i, j] = acc


@kernel
def _matmul4_adj(a, b, c):
    """c = a b a^dag (4x4 complex)."""
    for i in range(4):
        for j in range(4):
            acc = 0j
            for k in range(4):
                for m in range(4):
                    acc += a[i, k] * b[k, m] * a[j, m].conjugate()
            c[i, j] = acc


@kernel
def fill_generators(h, ops, n_ops, lower, d, jd):
    """The generator of d rho/dt = -i [h, rho] + sum_k (L_k rho L_k^dag - {L_k^dag L_k, rho}/2)
    on the 10-vector: ``d`` (10x10) the part within the block, ``jd`` (10x10) the sandwich
    terms L_k rho L_k^dag of the operators with ``lower[k]`` (those that map the block to the
    one below; their anticommutator stays in ``d``). ``h`` 4x4 Hermitian, ``ops`` (n, 4, 4)
    complex, the rates already in the operators."""
    rho = np.empty((4, 4), dtype=np.complex128)
    out_in = np.empty((4, 4), dtype=np.complex128)
    out_lo = np.empty((4, 4), dtype=np.complex128)
    tmp = np.empty((4, 4), dtype=np.complex128)
    tmp2 = np.empty((4, 4), dtype=np.complex128)
    ldl = np.zeros((4, 4), dtype=np.complex128)
    for k in range(n_ops):
        for i in range(4):
            for j in range(4):
                acc = 0j
                for m in range(4):
                    acc += ops[k, m, i].conjugate() * ops[k, m, j]
                ldl[i, j] += acc
    v = np.zeros(N_SWAP)
    for col in range(N_SWAP):
        v[:] = 0.0
        v[col] = 1.0
        swap_to_rho(v, rho)
        # -i [h, rho] - {sum L^dag L, rho} / 2
        _matmul4(h, rho, tmp)
        _matmul4(ldl, rho, tmp2)
        for i in range(4):
            for j in range(4):
                out_in[i, j] = (-1j * (tmp[i, j] - tmp[j, i].conjugate())
                                - 0.5 * (tmp2[i, j] + tmp2[j, i].conjugate()))
                out_lo[i, j] = 0.0
        for k in range(n_ops):
            _matmul4_adj(ops[k], rho, tmp)
            target = out_lo if lower[k] else out_in
            for i in range(4):
                for j in range(4):
                    target[i, j] += tmp[i, j]
        rho_to_swap(out_in, d, col)
        rho_to_swap(out_lo, jd, col)


@kernel
def norm_inf(m):
    """Largest absolute row sum of the square matrix m."""
    best = 0.0
    for i in range(m.shape[0]):
        acc = 0.0
        for j in range(m.shape[1]):
            acc += abs(m[i, j])
        best = max(best, acc)
    return best


@kernel
def step_bound(norm, omega):
    """Largest Taylor step: h (|G| + |omega|) <= 1/2, |G| a bound on the generator's norm
    (inf for a zero generator: one step per output interval)."""
    rate = norm + abs(omega)
    return 0.5 / rate if rate > 0.0 else np.inf


@routine
def taylor_step(v, n_blk, d, jd, g1, g1_norm, h, t0, a, b, omega, driven, w, phi, conv):
    """Advance v (n_blk, 10) by h from t0, in place: v' = D_s v_s + Jd_{s+1} v_{s+1}
    (+ f(t) G1 v_s when ``driven``, one block), f(t) = (A cos(omega t) + B)/2.

    Taylor terms w_k = h^k v^(k)(t0) / k! from the recurrence
    w_{k+1} = h/(k+1) [D w_k + Jd w_k(next block) + G1 sum_{j<=k} phi_j w_{k-j}],
    phi_j = h^j f^(j)(t0) / j! (f^(j) = (A/2) omega^j cos(omega t0 + j pi/2), j >= 1), summed
    until two consecutive terms (and the drive's next phi) fall below 1e-17 |v|.
    ``w`` (TAYLOR_TERMS + 1, n_blk, 10), ``phi`` (TAYLOR_TERMS + 1,), ``conv`` (20,) scratch
    (the drive's convolution, then the derivative being summed)."""
    vmax = 0.0
    for s in range(n_blk):
        for i in range(N_SWAP):
            w[0, s, i] = v[s, i]
            vmax = max(vmax, abs(v[s, i]))
    if vmax == 0.0:
        return
    if driven:
        x = omega * t0
        phi[0] = 0.5 * (a * math.cos(x) + b)
        c = 1.0
        for j in range(1, TAYLOR_TERMS + 1):
            c *= h * omega / j
            phi[j] = 0.5 * a * c * math.cos(x + 0.5 * j * math.pi)
    tol = _TAYLOR_TOL * vmax
    small = 0
    for k in range(TAYLOR_TERMS):
        scale = h / (k + 1)
        biggest = 0.0
        for s in range(n_blk):
            if driven:
                for m in range(N_SWAP):
                    acc = 0.0
                    for j in range(k + 1):
                        acc += phi[j] * w[k - j, s, m]
                    conv[m] = acc
            # the derivative of every component at once, column by column: for each i the
            # same additions in the same order as a dot product per i (d, then jd, then G1,
            # each in ascending m), but independent across i, so that they vectorize
            for i in range(N_SWAP):
                conv[N_SWAP + i] = 0.0
            for m in range(N_SWAP):
                x = w[k, s, m]
                for i in range(N_SWAP):
                    conv[N_SWAP + i] += d[s, i, m] * x
            if s + 1 < n_blk:
                for m in range(N_SWAP):
                    x = w[k, s + 1, m]
                    for i in range(N_SWAP):
                        conv[N_SWAP + i] += jd[s + 1, i, m] * x
            if driven:
                for m in range(N_SWAP):
                    x = conv[m]
                    for i in range(N_SWAP):
                        conv[N_SWAP + i] += g1[i, m] * x
            for i in range(N_SWAP):
                term = scale * conv[N_SWAP + i]
                w[k + 1, s, i] = term
                v[s, i] += term
                biggest = max(biggest, abs(term))
        if biggest <= tol and (not driven or abs(phi[k + 1]) * h * g1_norm <= _TAYLOR_TOL):
            small += 1
            if small >= 2:
                break
        else:
            small = 0


@routine
def propagate(v, n_blk, d, jd, g1, g1_norm, t0, t1, h_max, a, b, omega, driven, w, phi,
              conv):
    """v(t0) -> v(t1) in equal Taylor steps of at most ``h_max``."""
    span = t1 - t0
    if span <= 0.0:
        return
    n_sub = 1 if h_max == np.inf else max(1, int(math.ceil(span / h_max)))
    h = span / n_sub
    for s in range(n_sub):
        taylor_step(v, n_blk, d, jd, g1, g1_norm, h, t0 + s * h, a, b, omega, driven, w, phi,
                    conv)
