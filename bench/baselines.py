"""Baseline implementations of qbfast's 15 metrics, for :mod:`bench.kernels`.

Every baseline takes a parameter table (P, n_params) in the model's parameter order (the same
flattening as ``qbfast.sweep``: swept parameters meshed with ``indexing="ij"``, the last swept
one fastest) and times t (T,), and writes the 15 metrics, in ``qbfast.params.METRIC_LIST``
order, into ``out`` of shape (15, P, T). ``tests/bench/test_baselines.py`` checks that the NumPy
baselines agree with ``qbfast.sweep`` to 1e-8 abs / 1e-6 rel, so the timings compare equal work.

Three families (physics: docs/physics.md sections 1-5):

1. ``*_numpy``: the strongest NumPy-vectorized version we could write.
   - cavity: one batched ``numpy.linalg.eigh`` of the 4x4 sector Hamiltonian per point, phases
     broadcast over t (relative to the lowest level, so 3 phases per point), the closed-form
     X state (populations + one coherence) and every metric in closed form with array ops;
   - field "drive": the closed-form product state |phi>|phi> of eq. 16 (Bloch vector
     (0, sin 2A1, -cos 2A1)); constant metrics (entropy_cell, purity, concurrence...) are filled;
   - field "full": a 4th-order Magnus integrator vectorized over parameter points (one batched
     ``eigh`` of the 4x4 exponent per step), then general pure-state metrics (no product-state
     assumption). Points are grouped by step size so that each group steps together.
   Trigonometry uses tan half-angles: NumPy's float64 ``tan`` is SIMD-vectorized but
   ``sin``/``cos`` are not (about 15x slower here), and the identities are exact to rounding.
   Work is chunked over parameter points (``chunk`` elements per temporary) to stay in cache;
   ``threads > 1`` runs chunks in a thread pool (NumPy releases the GIL in ufuncs).
2. ``*_eigh``: a plain density-matrix version: build rho_B (P, T, 4, 4) complex, batched
   ``eigh`` for its spectrum (ergotropy, entropy, purity) and sqrt (concurrence from singular
   values of sqrt(rho) (sy x sy) sqrt(rho)*, docs/physics.md "Numerical care"), partial traces and
   Pauli expectations with ``einsum``, batched ``eigvalsh`` of the cell states. The states come
   from the same propagation as 1.
3. ``qutip_*``: QuTiP 5 ``sesolve`` per parameter point, either returning the states only, or
   followed by QuTiP's metric functions per state (ptrace, expect, eigenenergies, entropy_vn,
   concurrence, purity). The cavity runs in the 4-state sector of eq. 24 with the "diag"
   integrator (exact for this time-independent H, QuTiP's fastest here); for the metrics its
   kets are embedded in Fock(n+1) x 2 x 2 and the cavity is traced out with ``ptrace``. The
   field model passes H(t) with a Python-function coefficient, "adams" at atol 1e-12,
   rtol 1e-10 (energy within ~1e-9 of qbfast, see the "max dev" column of the benchmark).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from qbfast.params import METRIC_INDEX, MODELS, N_METRICS

ENERGY = METRIC_INDEX["energy"]
ERGOTROPY = METRIC_INDEX["ergotropy"]
EFFICIENCY = METRIC_INDEX["efficiency"]
ERGOTROPY_LOCAL = METRIC_INDEX["ergotropy_local"]
ERGOTROPY_INCOHERENT_CELL = METRIC_INDEX["ergotropy_incoherent_cell"]
EFFICIENCY_INCOHERENT = METRIC_INDEX["efficiency_incoherent"]
ENTROPY_CELL = METRIC_INDEX["entropy_cell"]
ENTROPY_BATTERY = METRIC_INDEX["entropy_battery"]
ENTROPY_DIAG_CELL = METRIC_INDEX["entropy_diag_cell"]
PURITY_CELL = METRIC_INDEX["purity_cell"]
PURITY_BATTERY = METRIC_INDEX["purity_battery"]
CONCURRENCE = METRIC_INDEX["concurrence"]
STEERING_AB = METRIC_INDEX["steering_ab"]
STEERING_BA = METRIC_INDEX["steering_ba"]
POWER = METRIC_INDEX["power"]

TINY = 1e-300  # log2(TINY) is finite and 0 * log2(TINY) == 0
SQRT3 = math.sqrt(3.0)
CHUNK = 1 << 15  # elements per temporary array in the NumPy baselines

# Pauli matrices in the basis (|e>, |g>), sigma_z |e> = +|e> (docs/physics.md section 1)
SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)
PAULI = np.stack([SX, SY, SZ])
PAULI_PAIRS = np.stack([np.kron(s, s) for s in PAULI])  # sigma_i x sigma_i
SYSY = np.kron(SY, SY)
COLLECTIVE_X = (np.kron(SX, np.eye(2)) + np.kron(np.eye(2), SX)).real


# --------------------------------------------------------------------------------------------
# grids and battery Hamiltonians
# --------------------------------------------------------------------------------------------

def parameter_table(model: str, params: dict[str, Any]) -> tuple[np.ndarray, tuple[int, ...]]:
    """(P, n_params) table in the model's parameter order, flattened like ``qbfast.sweep``.

    ``params``: scalars are fixed, 1-D sequences are swept (dims in the dict's order); missing
    parameters take the model defaults. Returns (table, swept sizes).
    """
    m = MODELS[model]
    swept = {k: np.asarray(v, dtype=float) for k, v in params.items() if np.ndim(v) == 1}
    fixed = {**m.defaults, **{k: float(v) for k, v in params.items() if np.ndim(v) == 0}}
    mesh = dict(zip(swept, np.meshgrid(*swept.values(), indexing="ij"))) if swept else {}
    sizes = tuple(v.size for v in swept.values())
    n_points = int(np.prod(sizes, dtype=np.int64))
    table = np.empty((n_points, len(m.parameters)))
    for j, name in enumerate(m.parameter_names):
        table[:, j] = mesh[name].ravel() if name in mesh else fixed[name]
    return table, sizes


def battery_params(model: str, table: np.ndarray, bare: bool = False) -> tuple[np.ndarray, ...]:
    """(h_ee, h_eg, h_gg, h_x) per point (h_ge == h_eg) of the battery Hamiltonian used for the
    energies: the model's H_b, or H0 = (Delta/2)(s1z + s2z) when ``bare``."""
    delta = table[:, -1]
    zero = np.zeros_like(delta)
    if bare:
        return delta.copy(), zero, -delta, zero
    if model == "cavity":
        j1, j2 = table[:, 1], table[:, 2]
        return delta * (1.0 + j2), -j2 * delta, delta * (j2 - 1.0), 2.0 * j1 * delta
    g = table[:, 3]
    return delta + 0.25 * g, -0.25 * g, 0.25 * g - delta, 0.5 * g


def battery_matrix(hb: tuple[np.ndarray, ...]) -> np.ndarray:
    """(P, 4, 4) real matrices of the battery Hamiltonians."""
    h_ee, h_eg, h_gg, h_x = hb
    m = np.zeros((h_ee.size, 4, 4))
    m[:, 0, 0] = h_ee
    m[:, 1, 1] = m[:, 2, 2] = h_eg
    m[:, 3, 3] = h_gg
    m[:, 1, 2] = m[:, 2, 1] = h_x
    return m


def battery_spectrum(hb: tuple[np.ndarray, ...]) -> np.ndarray:
    """(P, 4) ascending eigenvalues of the battery Hamiltonians: h_ee, h_gg, h_eg +- h_x."""
    h_ee, h_eg, h_gg, h_x = hb
    return np.sort(np.stack([h_ee, h_gg, h_eg + h_x, h_eg - h_x], axis=1), axis=1)


def efficiency_threshold(delta: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    return 1e-12 * np.maximum(np.abs(delta), np.abs(spectrum).max(axis=1))


def cavity_sector_hamiltonian(table: np.ndarray) -> np.ndarray:
    """(P, 4, 4) real eq. 24 in (|n,gg>, |n-1,eg>, |n-1,ge>, |n-2,ee>), shifted by the global
    constant -(n-1) omega_a (as qbfast does)."""
    n, j1, j2, wg, wa, d = table.T
    h = np.zeros((table.shape[0], 4, 4))
    h[:, 0, 0] = wa + d * (j2 - 1.0)
    h[:, 1, 1] = h[:, 2, 2] = -j2 * d
    h[:, 3, 3] = -wa + d * (j2 + 1.0)
    a = wg * np.sqrt(n)
    b = wg * np.sqrt(np.maximum(n - 1.0, 0.0))
    h[:, 0, 1] = h[:, 1, 0] = h[:, 0, 2] = h[:, 2, 0] = a
    h[:, 1, 2] = h[:, 2, 1] = 2.0 * j1 * d
    h[:, 1, 3] = h[:, 3, 1] = h[:, 2, 3] = h[:, 3, 2] = b
    return h


def prepare_out(out: np.ndarray | None, n_points: int, n_t: int) -> np.ndarray:
    shape = (N_METRICS, n_points, n_t)
    if out is None:
        return np.empty(shape)
    if out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out: expected C-contiguous float64 {shape}, got {out.dtype} {out.shape}")
    return out


def _row_chunks(n_points: int, n_t: int, chunk: int) -> list[slice]:
    rows = max(1, chunk // max(n_t, 1))
    return [slice(p0, min(p0 + rows, n_points)) for p0 in range(0, n_points, rows)]


def _run_chunks(fn: Callable[[slice], None], slices: list[slice], threads: int) -> None:
    def quiet(sl: slice) -> None:
        with np.errstate(all="ignore"):  # errstate is per thread
            fn(sl)

    if threads <= 1 or len(slices) <= 1:
        for sl in slices:
            quiet(sl)
        return
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(quiet, slices):
            pass


# --------------------------------------------------------------------------------------------
# vectorized scalar helpers
# --------------------------------------------------------------------------------------------

def xlog2x(x: np.ndarray) -> np.ndarray:
    """x log2 x, negative x clipped to 0, 0 log 0 = 0."""
    y = np.maximum(x, 0.0)
    lg = np.maximum(y, TINY)
    np.log2(lg, out=lg)
    lg *= y
    return lg


def marginal(m: np.ndarray) -> np.ndarray:
    """(1/2) sum_(+-) (1 +- m) log2(1 +- m)."""
    r = xlog2x(1.0 + m)
    r += xlog2x(1.0 - m)
    r *= 0.5
    return r


def joint(m: np.ndarray, s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(1/4) sum_(a,b) q log2 q, q = 1 + a m + b s + a b c."""
    r = xlog2x(1.0 + m + s + c)
    r += xlog2x(1.0 + m - s - c)
    r += xlog2x(1.0 - m + s - c)
    r += xlog2x(1.0 - m - s + c)
    r *= 0.25
    return r


def cos_sin(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cos theta, sin theta) from tau = tan(theta/2): cos = (1 - tau^2)/(1 + tau^2),
    sin = 2 tau/(1 + tau^2). NumPy's float64 tan is SIMD, its sin/cos are not."""
    tau = np.multiply(theta, 0.5)
    np.tan(tau, out=tau)
    tau2 = tau * tau
    inv = 1.0 + tau2
    np.divide(1.0, inv, out=inv)
    cos = np.subtract(1.0, tau2, out=tau2)
    cos *= inv
    tau *= inv
    tau *= 2.0
    return cos, tau


def _nan_where(dst: np.ndarray, mask: np.ndarray) -> None:
    np.copyto(dst, np.nan, where=mask)


def _power(o_power: np.ndarray, energy: np.ndarray, t: np.ndarray) -> None:
    np.divide(energy, t, out=o_power)
    if t[0] == 0.0:
        o_power[..., t == 0.0] = np.nan


# --------------------------------------------------------------------------------------------
# 1. strongest NumPy: cavity
# --------------------------------------------------------------------------------------------

def cavity_numpy(table: np.ndarray, t: np.ndarray, out: np.ndarray | None = None, *,
                 bare: bool = False, chunk: int = CHUNK, threads: int = 1) -> np.ndarray:
    """Closed-form X state: batched eigh per point, 3 relative phases per (point, t)."""
    n_points, n_t = table.shape[0], t.size
    out = prepare_out(out, n_points, n_t)
    w, v = np.linalg.eigh(cavity_sector_hamiltonian(table))
    # c_k(t) = sum_m V_km V_0m exp(-i w_m t); drop the global phase exp(-i w_0 t)
    weights = v * v[:, :1, :]  # (P, 4 k, 4 m), real
    dw = w[:, 1:] - w[:, :1]  # (P, 3)
    hb = battery_params("cavity", table, bare)
    spec = battery_spectrum(hb)
    thr = efficiency_threshold(table[:, 5], spec)
    delta = table[:, 5]
    h_ee, h_eg, h_gg, h_x = hb

    def work(sl: slice) -> None:
        o = out[:, sl, :]
        col = lambda a: a[sl, None]  # noqa: E731  per-point scalar as a (Q, 1) column
        wts = weights[sl]
        cos, sin = cos_sin(dw[sl, :, None] * t)  # (Q, 3, T)
        # Re c_k = W_k0 + sum_m W_km cos, Im c_k = -sum_m W_km sin (m = 1..3)
        re = np.matmul(wts[:, :, 1:], cos)
        re += wts[:, :, :1]
        im = np.matmul(wts[:, :, 1:], sin)
        coh = re[:, 1] * re[:, 2]  # Re c2 c3*
        coh += im[:, 1] * im[:, 2]
        re *= re
        im *= im
        re += im  # populations (Q, 4, T), >= 0
        p_gg, p_eg, p_ge, p_ee = re[:, 0], re[:, 1], re[:, 2], re[:, 3]
        xp = np.maximum(re, TINY)  # x log2 x of the 4 populations in one pass
        np.log2(xp, out=xp)
        xp *= re
        x_gg, x_eg, x_ge, x_ee = xp[:, 0], xp[:, 1], xp[:, 2], xp[:, 3]
        r1 = p_eg + p_ge

        energy = o[ENERGY]
        np.multiply(col(h_ee), p_ee, out=energy)
        energy += col(h_eg) * r1
        energy += col(h_gg) * p_gg
        energy += col(2.0 * h_x) * coh  # energy == Tr[H_b rho_B] for now
        # passive energy: rho_B spectrum (p_gg, p_eg + p_ge, p_ee, 0), sorted descending
        hi = np.maximum(p_gg, p_ee)
        lo = np.minimum(p_gg, p_ee)
        mid = np.minimum(hi, r1)
        np.maximum(mid, lo, out=mid)
        np.maximum(hi, r1, out=hi)
        np.minimum(lo, r1, out=lo)
        ergo = o[ERGOTROPY]
        np.multiply(hi, col(spec[:, 0]), out=ergo)
        ergo += mid * col(spec[:, 1])
        ergo += lo * col(spec[:, 2])
        np.subtract(energy, ergo, out=ergo)
        energy -= col(h_gg)
        uncharged = energy <= col(thr)
        np.divide(ergo, energy, out=o[EFFICIENCY])
        _nan_where(o[EFFICIENCY], uncharged)

        nz = p_ee + p_eg
        nz -= p_ge
        nz -= p_gg
        sz = p_ee + p_ge
        sz -= p_eg
        sz -= p_gg
        d = col(delta)
        inc = o[ERGOTROPY_INCOHERENT_CELL]
        np.multiply(d, nz, out=inc)
        np.maximum(inc, 0.0, out=inc)
        loc = o[ERGOTROPY_LOCAL]
        np.multiply(d, sz, out=loc)
        np.maximum(loc, 0.0, out=loc)
        loc += inc
        eff_inc = o[EFFICIENCY_INCOHERENT]
        np.divide(inc, energy, out=eff_inc)
        eff_inc *= 2.0
        _nan_where(eff_inc, uncharged)

        marg_nz = marginal(nz)
        np.subtract(1.0, marg_nz, out=o[ENTROPY_DIAG_CELL])  # h((1 + nz)/2)
        o[ENTROPY_CELL] = o[ENTROPY_DIAG_CELL]  # rho_1 is diagonal: |n| = |nz|
        ent = o[ENTROPY_BATTERY]
        np.add(x_gg, x_ee, out=ent)
        ent += xlog2x(r1)
        np.negative(ent, out=ent)
        pc = o[PURITY_CELL]
        np.multiply(nz, nz, out=pc)
        pc += 1.0
        pc *= 0.5
        pb = o[PURITY_BATTERY]
        np.multiply(p_gg, p_gg, out=pb)
        pb += r1 * r1
        pb += p_ee * p_ee
        conc = o[CONCURRENCE]
        np.multiply(p_eg, p_ge, out=conc)
        np.sqrt(conc, out=conc)
        conc -= np.sqrt(p_gg * p_ee)
        np.maximum(conc, 0.0, out=conc)
        conc *= 2.0

        # steering: c_x = c_y = 2 Re rho_{eg,ge}, n_x = n_y = s_x = s_y = 0, so the x and y
        # joint terms are (1/2)(xlog(1 + c) + xlog(1 - c)); the z joint distribution is the
        # populations: (1/4) sum q log2 q with q = 4 p is sum xlog2x(p) + 2 sum p.
        coh *= 2.0
        jz = x_gg + x_ee
        jz += x_eg
        jz += x_ge
        jz += 2.0 * (p_gg + p_ee + r1)
        common = marginal(coh)
        common *= -2.0
        common -= jz
        common += 3.0
        np.add(common, marg_nz, out=o[STEERING_AB])
        common += marginal(sz)
        o[STEERING_BA] = common
        _power(o[POWER], energy, t)

    with np.errstate(all="ignore"):
        _run_chunks(work, _row_chunks(n_points, n_t, chunk), threads)
    return out


# --------------------------------------------------------------------------------------------
# 1. strongest NumPy: field "drive"
# --------------------------------------------------------------------------------------------

def drive_angle_2a1(table: np.ndarray, t: np.ndarray, cos_sin_fn=None) -> np.ndarray:
    """2 A1(t) = B t + (A/omega) sin(omega t) (omega = 0: (A + B) t), shape (P, T)."""
    a, b, omega = table[:, 0:1], table[:, 1:2], table[:, 2:3]
    static = omega == 0.0
    safe = np.where(static, 1.0, omega)
    amp = np.where(static, 0.0, a / safe)
    slope = np.where(static, a + b, b)
    if cos_sin_fn is None:
        s = np.sin(safe * t)
    else:
        s = cos_sin_fn(safe * t)[1]
    s *= amp
    s += slope * t
    return s


def field_drive_numpy(table: np.ndarray, t: np.ndarray, out: np.ndarray | None = None, *,
                      bare: bool = False, chunk: int = CHUNK, threads: int = 1) -> np.ndarray:
    """Closed-form product state |phi>|phi>, Bloch vector (0, sin 2A1, -cos 2A1)."""
    n_points, n_t = table.shape[0], t.size
    out = prepare_out(out, n_points, n_t)
    hb = battery_params("field", table, bare)
    spec = battery_spectrum(hb)
    thr = efficiency_threshold(table[:, 4], spec)
    delta = table[:, 4]
    h_ee, h_eg, h_gg, h_x = hb

    def work(sl: slice) -> None:
        o = out[:, sl, :]
        col = lambda a: a[sl, None]  # noqa: E731
        c2, s2 = cos_sin(drive_angle_2a1(table[sl], t, cos_sin))
        u = 1.0 - c2  # 2 sin^2 A1
        v = 1.0 + c2  # 2 cos^2 A1
        # <H_b> = h_ee s^4 + 2 (h_eg + h_x) s^2 c^2 + h_gg c^4
        energy = o[ENERGY]
        np.multiply(u, col(0.25 * h_ee), out=energy)
        energy *= u
        uv = u * v
        uv *= col(0.5 * (h_eg + h_x))
        energy += uv
        np.multiply(v, v, out=uv)
        uv *= col(0.25 * h_gg)
        energy += uv
        ergo = o[ERGOTROPY]
        np.subtract(energy, col(spec[:, 0]), out=ergo)  # pure: rho_B spectrum (1, 0, 0, 0)
        energy -= col(h_gg)
        uncharged = energy <= col(thr)
        np.divide(ergo, energy, out=o[EFFICIENCY])
        _nan_where(o[EFFICIENCY], uncharged)

        d = col(delta)
        inc = o[ERGOTROPY_INCOHERENT_CELL]
        np.multiply(c2, -d, out=inc)  # Delta n_z, n_z = -cos 2A1
        loc = o[ERGOTROPY_LOCAL]
        np.add(inc, np.abs(d), out=loc)  # 2 x (Delta n_z + |Delta| |n|)/2, |n| = 1
        np.maximum(inc, 0.0, out=inc)
        eff_inc = o[EFFICIENCY_INCOHERENT]
        np.divide(inc, energy, out=eff_inc)
        eff_inc *= 2.0
        _nan_where(eff_inc, uncharged)

        marg_z = marginal(c2)
        np.subtract(1.0, marg_z, out=o[ENTROPY_DIAG_CELL])
        o[ENTROPY_CELL] = 0.0
        o[ENTROPY_BATTERY] = 0.0
        o[PURITY_CELL] = 1.0
        o[PURITY_BATTERY] = 1.0
        o[CONCURRENCE] = 0.0
        # product state: H(sigma_i^b | sigma_i^a) = 1 - marginal(n_i), n = (0, s2, -c2)
        st = o[STEERING_AB]
        np.subtract(3.0, marg_z, out=st)
        st -= marginal(s2)
        o[STEERING_BA] = st
        _power(o[POWER], energy, t)

    with np.errstate(all="ignore"):
        _run_chunks(work, _row_chunks(n_points, n_t, chunk), threads)
    return out


# --------------------------------------------------------------------------------------------
# 1. strongest NumPy: field "full" (vectorized 4th-order Magnus)
# --------------------------------------------------------------------------------------------

def default_steps(table: np.ndarray) -> np.ndarray:
    """qbfast's default Magnus step bound per point (qbfast.core.default_max_step)."""
    from qbfast.core import default_max_step

    return default_max_step(*table.T)


def step_groups(max_step: np.ndarray, spread: float = 1.25,
                max_size: int = 4096) -> list[np.ndarray]:
    """Indices of points grouped so that max/min step within a group <= ``spread``."""
    order = np.argsort(max_step, kind="stable")
    groups, start = [], 0
    for i in range(1, order.size + 1):
        if (i == order.size or max_step[order[i]] > spread * max_step[order[start]]
                or i - start >= max_size):
            groups.append(order[start:i])
            start = i
    return groups


def magnus_states(table: np.ndarray, t: np.ndarray, max_step: np.ndarray | float | None = None,
                  ) -> np.ndarray:
    """psi(t) (P, T, 4) complex under H(t) = f(t) X + H_b from |gg>, 4th-order Magnus with
    Gauss-Legendre nodes, the exponential by batched eigh of the 4x4 exponent per step.

    Each group of points steps together with the smallest step bound in the group, the same
    subdivision rule as qbfast (n_sub = ceil(span / h_max) equal steps between output times).
    """
    n_points, n_t = table.shape[0], t.size
    if max_step is None:
        max_step = default_steps(table)
    max_step = np.broadcast_to(np.asarray(max_step, dtype=float), (n_points,))
    hb = battery_matrix(battery_params("field", table, bare=False))  # dynamics: model's H_b
    x = COLLECTIVE_X
    comm = -1j * (x @ hb - hb @ x)  # -i [X, H_b], Hermitian
    states = np.empty((n_points, n_t, 4), dtype=complex)
    c1, c2 = 0.5 - SQRT3 / 6.0, 0.5 + SQRT3 / 6.0
    for idx in step_groups(max_step):
        a, b, omega = table[idx, 0], table[idx, 1], table[idx, 2]
        h_max = max_step[idx].min()
        hbg = hb[idx]
        cg = comm[idx]
        psi = np.zeros((idx.size, 4), dtype=complex)
        psi[:, 3] = 1.0
        t_now = 0.0
        for k in range(n_t):
            span = t[k] - t_now
            if span > 0.0:
                n_sub = math.ceil(span / h_max)
                h = span / n_sub
                for s in range(n_sub):
                    t0 = t_now + s * h
                    f1 = 0.5 * (a * np.cos(omega * (t0 + c1 * h)) + b)
                    f2 = 0.5 * (a * np.cos(omega * (t0 + c2 * h)) + b)
                    cx = (0.5 * h) * (f1 + f2)
                    cc = (SQRT3 * h * h / 12.0) * (f2 - f1)
                    kmat = cc[:, None, None] * cg
                    kmat += cx[:, None, None] * x
                    kmat += h * hbg
                    w, v = np.linalg.eigh(kmat)
                    y = np.einsum("gim,gi->gm", v.conj(), psi)
                    y *= np.exp(-1j * w)
                    psi = np.einsum("gim,gm->gi", v, y)
                t_now = t[k]
                psi /= np.sqrt((psi.real ** 2 + psi.imag ** 2).sum(axis=1))[:, None]
            states[idx, k] = psi
    return states


def pure_metrics(o: np.ndarray, psi: np.ndarray, hb: tuple[np.ndarray, ...], spec: np.ndarray,
                 thr: np.ndarray, delta: np.ndarray, t: np.ndarray) -> None:
    """The 15 metrics of general pure states psi (Q, T, 4) into o (15, Q, T); per-point
    arrays are (Q,). rho_B = |psi><psi| has spectrum (|psi|^2, 0, 0, 0)."""
    col = lambda x: x[:, None]  # noqa: E731
    a, b, c, d = (np.ascontiguousarray(psi[..., i]) for i in range(4))
    pa, pb, pc, pd = ((z.real ** 2 + z.imag ** 2) for z in (a, b, c, d))
    bc = b * c.conj()
    ad = a * d.conj()
    h_ee, h_eg, h_gg, h_x = hb
    exp_h = col(h_ee) * pa + col(h_eg) * (pb + pc) + col(h_gg) * pd + col(2.0 * h_x) * bc.real
    rho1 = a * c.conj() + b * d.conj()
    rho2 = a * b.conj() + c * d.conj()
    nx, ny, nz = 2.0 * rho1.real, -2.0 * rho1.imag, pa + pb - pc - pd
    sx, sy, sz = 2.0 * rho2.real, -2.0 * rho2.imag, pa + pc - pb - pd
    cx, cy, cz = 2.0 * (bc.real + ad.real), 2.0 * (bc.real - ad.real), pa + pd - pb - pc
    norm = pa + pb + pc + pd
    energy = np.subtract(exp_h, col(h_gg), out=o[ENERGY])
    np.subtract(exp_h, norm * col(spec[:, 0]), out=o[ERGOTROPY])
    uncharged = energy <= col(thr)
    np.divide(o[ERGOTROPY], energy, out=o[EFFICIENCY])
    _nan_where(o[EFFICIENCY], uncharged)
    n_norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    s_norm = np.sqrt(sx * sx + sy * sy + sz * sz)
    dl, ad_ = col(delta), col(np.abs(delta))
    o[ERGOTROPY_LOCAL] = 0.5 * (dl * nz + ad_ * n_norm) + 0.5 * (dl * sz + ad_ * s_norm)
    inc = np.maximum(dl * nz, 0.0, out=o[ERGOTROPY_INCOHERENT_CELL])
    np.divide(inc, 0.5 * energy, out=o[EFFICIENCY_INCOHERENT])
    _nan_where(o[EFFICIENCY_INCOHERENT], uncharged)
    o[ENTROPY_CELL] = 1.0 - marginal(np.minimum(n_norm, 1.0))
    np.negative(xlog2x(norm), out=o[ENTROPY_BATTERY])
    o[ENTROPY_DIAG_CELL] = 1.0 - marginal(np.clip(nz, -1.0, 1.0))
    o[PURITY_CELL] = 0.5 * (1.0 + n_norm * n_norm)
    np.multiply(norm, norm, out=o[PURITY_BATTERY])
    o[CONCURRENCE] = 2.0 * np.abs(a * d - b * c)
    jnt = joint(nx, sx, cx) + joint(ny, sy, cy) + joint(nz, sz, cz)
    o[STEERING_AB] = 3.0 + marginal(nx) + marginal(ny) + marginal(nz) - jnt
    o[STEERING_BA] = 3.0 + marginal(sx) + marginal(sy) + marginal(sz) - jnt
    _power(o[POWER], energy, t)


def field_full_numpy(table: np.ndarray, t: np.ndarray, out: np.ndarray | None = None, *,
                     bare: bool = False, max_step=None, chunk: int = CHUNK) -> np.ndarray:
    """Vectorized Magnus states, then general pure-state metrics."""
    n_points, n_t = table.shape[0], t.size
    out = prepare_out(out, n_points, n_t)
    states = magnus_states(table, t, max_step)
    hb = battery_params("field", table, bare)
    spec = battery_spectrum(hb)
    thr = efficiency_threshold(table[:, 4], spec)
    with np.errstate(all="ignore"):
        for sl in _row_chunks(n_points, n_t, chunk):
            pure_metrics(out[:, sl, :], states[sl], tuple(h[sl] for h in hb), spec[sl], thr[sl],
                         table[sl, 4], t)
    return out


# --------------------------------------------------------------------------------------------
# 2. plain batched eigh on rho_B
# --------------------------------------------------------------------------------------------

def steering_from(n: np.ndarray, s: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(I_ab, I_ba) from Bloch vectors n, s and correlations c, each (3, ...)."""
    jnt = joint(n[0], s[0], c[0]) + joint(n[1], s[1], c[1]) + joint(n[2], s[2], c[2])
    i_ab = 3.0 + marginal(n[0]) + marginal(n[1]) + marginal(n[2]) - jnt
    i_ba = 3.0 + marginal(s[0]) + marginal(s[1]) + marginal(s[2]) - jnt
    return i_ab, i_ba


def density_metrics(o: np.ndarray, rho: np.ndarray, hbm: np.ndarray, thr: np.ndarray,
                    delta: np.ndarray, t: np.ndarray) -> None:
    """The 15 metrics from density matrices rho (Q, T, 4, 4) with battery Hamiltonians hbm
    (Q, 4, 4), by batched eigendecompositions."""
    col = lambda x: x[:, None]  # noqa: E731
    e_hb = np.linalg.eigvalsh(hbm)  # (Q, 4) ascending
    exp_h = np.einsum("qij,qtji->qt", hbm, rho).real
    energy = np.subtract(exp_h, col(hbm[:, 3, 3].real), out=o[ENERGY])
    r, vec = np.linalg.eigh(rho)  # ascending
    r = np.maximum(r, 0.0)
    np.subtract(exp_h, np.einsum("qtk,qk->qt", r[..., ::-1], e_hb), out=o[ERGOTROPY])
    uncharged = energy <= col(thr)
    np.divide(o[ERGOTROPY], energy, out=o[EFFICIENCY])
    _nan_where(o[EFFICIENCY], uncharged)

    r4 = rho.reshape(*rho.shape[:2], 2, 2, 2, 2)
    rho1 = np.einsum("qtajbj->qtab", r4)
    rho2 = np.einsum("qtiaib->qtab", r4)
    n = np.einsum("qtab,iba->iqt", rho1, PAULI).real
    s = np.einsum("qtab,iba->iqt", rho2, PAULI).real
    c = np.einsum("qtab,iba->iqt", rho, PAULI_PAIRS).real
    l1 = np.maximum(np.linalg.eigvalsh(rho1), 0.0)  # ascending
    l2 = np.maximum(np.linalg.eigvalsh(rho2), 0.0)
    # single-qubit ergotropy w.r.t. (Delta/2) sigma_z: <H> - (l_max (-|D|/2) + l_min |D|/2)
    half = col(0.5 * np.abs(delta))
    dl = col(0.5 * delta)
    local = dl * n[2] - half * (l1[..., 0] - l1[..., 1])
    local += dl * s[2] - half * (l2[..., 0] - l2[..., 1])
    o[ERGOTROPY_LOCAL] = local
    inc = np.maximum(2.0 * dl * n[2], 0.0, out=o[ERGOTROPY_INCOHERENT_CELL])
    np.divide(inc, 0.5 * energy, out=o[EFFICIENCY_INCOHERENT])
    _nan_where(o[EFFICIENCY_INCOHERENT], uncharged)
    o[ENTROPY_CELL] = -xlog2x(l1).sum(axis=-1)
    o[ENTROPY_BATTERY] = -xlog2x(r).sum(axis=-1)
    o[ENTROPY_DIAG_CELL] = -(xlog2x(rho1[..., 0, 0].real) + xlog2x(rho1[..., 1, 1].real))
    o[PURITY_CELL] = (l1 * l1).sum(axis=-1)
    o[PURITY_BATTERY] = (r * r).sum(axis=-1)
    # Wootters concurrence: singular values of sqrt(rho) (sy x sy) sqrt(rho)*
    sq = (vec * np.sqrt(r)[..., None, :]) @ vec.conj().swapaxes(-1, -2)
    sv = np.linalg.svd(sq @ SYSY @ sq.conj(), compute_uv=False)  # descending
    o[CONCURRENCE] = np.maximum(sv[..., 0] - sv[..., 1] - sv[..., 2] - sv[..., 3], 0.0)
    o[STEERING_AB], o[STEERING_BA] = steering_from(n, s, c)
    _power(o[POWER], energy, t)


def _eigh_chunk(chunk: int) -> int:
    """Elements per chunk for the 4x4-per-point baseline (16 complex numbers per element)."""
    return max(1, chunk // 8)


def cavity_eigh(table: np.ndarray, t: np.ndarray, out: np.ndarray | None = None, *,
                bare: bool = False, chunk: int = CHUNK) -> np.ndarray:
    """Sector amplitudes by eigen-propagation, rho_B = Tr_cavity as a 4x4 matrix per (p, t),
    then :func:`density_metrics`."""
    n_points, n_t = table.shape[0], t.size
    out = prepare_out(out, n_points, n_t)
    w, v = np.linalg.eigh(cavity_sector_hamiltonian(table))
    weights = v * v[:, :1, :]
    hb = battery_params("cavity", table, bare)
    hbm = battery_matrix(hb).astype(complex)
    thr = efficiency_threshold(table[:, 5], battery_spectrum(hb))
    with np.errstate(all="ignore"):
        for sl in _row_chunks(n_points, n_t, _eigh_chunk(chunk)):
            amp = np.matmul(weights[sl], np.exp(-1j * w[sl, :, None] * t))  # (Q, 4, T)
            c1, c2, c3, c4 = amp[:, 0], amp[:, 1], amp[:, 2], amp[:, 3]
            rho = np.zeros((amp.shape[0], n_t, 4, 4), dtype=complex)
            rho[..., 0, 0] = np.abs(c4) ** 2  # |ee><ee|: |n-2, ee>
            rho[..., 1, 1] = np.abs(c2) ** 2
            rho[..., 2, 2] = np.abs(c3) ** 2
            rho[..., 1, 2] = c2 * c3.conj()
            rho[..., 2, 1] = c3 * c2.conj()
            rho[..., 3, 3] = np.abs(c1) ** 2
            density_metrics(out[:, sl, :], rho, hbm[sl], thr[sl], table[sl, 5], t)
    return out


def _product_psi(table: np.ndarray, t: np.ndarray) -> np.ndarray:
    a1 = 0.5 * drive_angle_2a1(table, t)
    s, c = np.sin(a1), np.cos(a1)
    psi = np.empty((*a1.shape, 4), dtype=complex)
    psi[..., 0] = -s * s
    psi[..., 1] = psi[..., 2] = -1j * s * c
    psi[..., 3] = c * c
    return psi


def _pure_eigh(table: np.ndarray, t: np.ndarray, out: np.ndarray | None, bare: bool, chunk: int,
               states: Callable[[slice], np.ndarray]) -> np.ndarray:
    n_points, n_t = table.shape[0], t.size
    out = prepare_out(out, n_points, n_t)
    hb = battery_params("field", table, bare)
    hbm = battery_matrix(hb).astype(complex)
    thr = efficiency_threshold(table[:, 4], battery_spectrum(hb))
    with np.errstate(all="ignore"):
        for sl in _row_chunks(n_points, n_t, _eigh_chunk(chunk)):
            psi = states(sl)
            rho = psi[..., :, None] * psi[..., None, :].conj()
            density_metrics(out[:, sl, :], rho, hbm[sl], thr[sl], table[sl, 4], t)
    return out


def field_drive_eigh(table: np.ndarray, t: np.ndarray, out: np.ndarray | None = None, *,
                     bare: bool = False, chunk: int = CHUNK) -> np.ndarray:
    """Closed-form psi, rho_B = |psi><psi| per (p, t), then :func:`density_metrics`."""
    return _pure_eigh(table, t, out, bare, chunk, lambda sl: _product_psi(table[sl], t))


def field_full_eigh(table: np.ndarray, t: np.ndarray, out: np.ndarray | None = None, *,
                    bare: bool = False, max_step=None, chunk: int = CHUNK) -> np.ndarray:
    """Vectorized Magnus psi (as in :func:`field_full_numpy`), rho_B = |psi><psi|, then
    :func:`density_metrics`."""
    states = magnus_states(table, t, max_step)
    return _pure_eigh(table, t, out, bare, chunk, lambda sl: states[sl])


# --------------------------------------------------------------------------------------------
# 3. QuTiP
# --------------------------------------------------------------------------------------------

QUTIP_OPTIONS: dict[str, Any] = {"method": "adams", "atol": 1e-12, "rtol": 1e-10,
                                 "nsteps": 10**8, "progress_bar": False}
# the cavity H is time independent: QuTiP 5's "diag" integrator diagonalizes it once (exact)
QUTIP_CAVITY_METHOD = "diag"


def qutip_options(options: dict[str, Any] | None = None) -> dict[str, Any]:
    """QUTIP_OPTIONS updated with ``options``; the step options are dropped for "diag"."""
    opts = {**QUTIP_OPTIONS, **(options or {})}
    if opts["method"] == "diag":
        for key in ("atol", "rtol", "nsteps"):
            opts.pop(key, None)
    return opts


def _qutip_ops() -> dict[str, Any]:
    import qutip as qt

    i2 = qt.qeye(2)
    sig = [qt.sigmax(), qt.sigmay(), qt.sigmaz()]
    return {
        "sig": sig,
        "pairs": [qt.tensor(s, s) for s in sig],
        "X": qt.tensor(sig[0], i2) + qt.tensor(i2, sig[0]),
        "Z": qt.tensor(sig[2], i2) + qt.tensor(i2, sig[2]),
        "exch": qt.tensor(sig[0], sig[0]) + qt.tensor(sig[1], sig[1]),
        "gg": qt.tensor(qt.basis(2, 1), qt.basis(2, 1)),  # basis(2, 0) = |e> (sigma_z = +1)
    }


def qutip_battery(model: str, row: np.ndarray, bare: bool, ops: dict[str, Any]):
    """The battery Hamiltonian used for energies, as a two-qubit Qobj."""
    delta = row[-1]
    h = 0.5 * delta * ops["Z"]
    if bare:
        return h
    if model == "cavity":
        j1, j2 = row[1], row[2]
        return h + delta * (j1 * ops["exch"] + j2 * ops["pairs"][2])
    g = row[3]
    return h + 0.25 * g * (ops["exch"] + ops["pairs"][2])


def _field_coefficient(t: float, A: float, B: float, omega: float) -> float:
    return 0.5 * (A * math.cos(omega * t) + B)


def qutip_field_states(table: np.ndarray, t: np.ndarray, protocol: str,
                       options: dict[str, Any] | None = None) -> list[list[Any]]:
    """sesolve per parameter point, H(t) = f(t) X (+ H_b for "full"), from |gg>."""
    import qutip as qt

    ops = _qutip_ops()
    opts = qutip_options(options)
    result = []
    for row in table:
        a, b, omega = row[0], row[1], row[2]
        terms: list[Any] = [[ops["X"], _field_coefficient]]
        if protocol == "full":
            terms.insert(0, qutip_battery("field", row, False, ops))
        h = qt.QobjEvo(terms, args={"A": a, "B": b, "omega": omega})
        result.append(qt.sesolve(h, ops["gg"], t, options=opts).states)
    return result


def qutip_cavity_states(table: np.ndarray, t: np.ndarray,
                        options: dict[str, Any] | None = None) -> list[list[Any]]:
    """sesolve per parameter point in the 4-state sector (eq. 24, shifted by -(n-1) omega_a),
    from |n, g, g>; returns the sector kets. Default method "diag" (exact for this
    time-independent H, and QuTiP's fastest here); pass {"method": "adams", ...} for an ODE."""
    import qutip as qt

    opts = qutip_options({"method": QUTIP_CAVITY_METHOD, **(options or {})})
    hs = cavity_sector_hamiltonian(table)
    psi0 = qt.basis(4, 0)
    return [qt.sesolve(qt.Qobj(h), psi0, t, options=opts).states for h in hs]


def _cavity_embedding(n: int):
    """Isometry from the sector (|n,gg>, |n-1,eg>, |n-1,ge>, |n-2,ee>) into Fock(n+1) x 2 x 2."""
    import qutip as qt

    dim = n + 1
    emb = np.zeros((4 * dim, 4))
    emb[4 * n + 3, 0] = 1.0
    emb[4 * (n - 1) + 1, 1] = 1.0
    emb[4 * (n - 1) + 2, 2] = 1.0
    if n >= 2:
        emb[4 * (n - 2) + 0, 3] = 1.0
    return qt.Qobj(emb, dims=[[dim, 2, 2], [4]])


def _steering_scalar(n, s, c) -> tuple[float, float]:
    def xl(x: float) -> float:
        return x * math.log2(x) if x > 0.0 else 0.0

    def marg(m: float) -> float:
        return 0.5 * (xl(1.0 + m) + xl(1.0 - m))

    jnt = sum(0.25 * (xl(1 + m + q + cc) + xl(1 + m - q - cc) + xl(1 - m + q - cc)
                      + xl(1 - m - q + cc)) for m, q, cc in zip(n, s, c))
    return 3.0 + sum(marg(m) for m in n) - jnt, 3.0 + sum(marg(q) for q in s) - jnt


def qutip_metrics(model: str, table: np.ndarray, t: np.ndarray, states: list[list[Any]],
                  out: np.ndarray | None = None, *, bare: bool = False) -> np.ndarray:
    """The 15 metrics per state with QuTiP's functions (ptrace, expect, eigenenergies,
    entropy_vn, concurrence, purity). Cavity states are embedded into Fock(n+1) x 2 x 2 first
    and the cavity is traced out with ``ptrace``."""
    import qutip as qt

    ops = _qutip_ops()
    out = prepare_out(out, table.shape[0], t.size)
    for p, row in enumerate(table):
        emb = _cavity_embedding(int(row[0])) if model == "cavity" else None
        rhos = [(emb * psi).ptrace([1, 2]) if emb is not None else qt.ket2dm(psi)
                for psi in states[p]]
        qutip_rho_metrics(qutip_battery(model, row, bare, ops), row[-1], t, rhos, out[:, p],
                          ops)
    return out


def qutip_rho_metrics(hb: Any, delta: float, t: np.ndarray, rhos: list[Any], out: np.ndarray,
                      ops: dict[str, Any] | None = None) -> np.ndarray:
    """out[:, k] = the 15 metrics of the two-qubit density matrix rhos[k] (a Qobj) at t[k],
    with QuTiP's functions; ``hb`` the battery Hamiltonian (Qobj) of the accounting, rho_B(0)
    = |gg><gg|. Shared by the closed (:func:`qutip_metrics`) and open (``bench.open``) rows."""
    import qutip as qt

    ops = ops or _qutip_ops()
    e_hb = hb.eigenenergies()
    e_init = qt.expect(hb, ops["gg"])
    thr = 1e-12 * max(abs(delta), np.abs(e_hb).max())
    h1 = 0.5 * delta * ops["sig"][2]
    e_h1 = h1.eigenenergies()
    for k, rho in enumerate(rhos):
        exp_h = qt.expect(hb, rho)
        energy = exp_h - e_init
        ergo = exp_h - float(np.dot(rho.eigenenergies()[::-1], e_hb))
        rho1, rho2 = rho.ptrace(0), rho.ptrace(1)
        local = sum(qt.expect(h1, r) - float(np.dot(r.eigenenergies()[::-1], e_h1))
                    for r in (rho1, rho2))
        n = [qt.expect(s, rho1) for s in ops["sig"]]
        s = [qt.expect(s, rho2) for s in ops["sig"]]
        c = [qt.expect(s, rho) for s in ops["pairs"]]
        inc = max(0.0, delta * n[2])
        charged = energy > thr
        pops = np.clip(rho1.diag().real, 0.0, None)
        i_ab, i_ba = _steering_scalar(n, s, c)
        tk = t[k]
        out[:, k] = (
            energy, ergo, ergo / energy if charged else np.nan, local, inc,
            inc / (0.5 * energy) if charged else np.nan,
            qt.entropy_vn(rho1, base=2), qt.entropy_vn(rho, base=2),
            -sum(x * math.log2(x) for x in pops if x > 0.0),
            rho1.purity(), rho.purity(), qt.concurrence(rho), i_ab, i_ba,
            energy / tk if tk > 0.0 else np.nan,
        )
    return out


def qutip_energy(model: str, table: np.ndarray, states: list[list[Any]]) -> np.ndarray:
    """Energy (P, T) from QuTiP states (for the accuracy line of the states-only runs)."""
    hb = battery_params(model, table, bare=False)
    out = np.empty((table.shape[0], len(states[0])))
    for p, kets in enumerate(states):
        amp = np.array([k.full().ravel() for k in kets])
        pr = np.abs(amp) ** 2
        h_ee, h_eg, h_gg, h_x = (h[p] for h in hb)
        if model == "cavity":  # sector order (gg, eg, ge, ee)
            exp_h = (h_gg * pr[:, 0] + h_eg * (pr[:, 1] + pr[:, 2]) + h_ee * pr[:, 3]
                     + 2.0 * h_x * (amp[:, 1] * amp[:, 2].conj()).real)
        else:  # (ee, eg, ge, gg)
            exp_h = (h_ee * pr[:, 0] + h_eg * (pr[:, 1] + pr[:, 2]) + h_gg * pr[:, 3]
                     + 2.0 * h_x * (amp[:, 1] * amp[:, 2].conj()).real)
        out[p] = exp_h - h_gg
    return out
