"""Cavity model with the GKSL channels of physics.md section 8, Fock and thermal chargers:
propagator (:mod:`.lindblad`: the excitation-number cascade of swap-symmetric sector blocks)
-> reducer (the trace over the cavity, then :func:`.open_states.swap_summary`) -> metric
block (:func:`.metrics.write_block`).

Sector N (N = a^dag a + excited qubits) holds (|N-2,ee>, |N-1,eg>, |N-1,ge>, |N,gg>), the
battery basis with photon numbers N-2, N-1, N-1, N; its block of rho is the 10-vector of
:mod:`.lindblad`. H (the lab-frame Hamiltonian of section 3, omega_a a^dag a included) and
sigma_z keep N; sigma^-, sigma_1^- + sigma_2^- and a lower it by one, so the blocks obey
d rho_N/dt = L_N rho_N + J_{N+1}(rho_{N+1}). Within a sector the Hamiltonian is shifted by
-(N-1) omega_a (a multiple of the identity there: it drops out of the commutator; a Fock or
thermal start never has coherences between sectors). States with a negative photon number
(N < 2) start empty and stay empty (their couplings have a factor sqrt(0)).

- Fock start |n,gg>: sectors 0..n, or only n when gamma = gamma_c = kappa = 0 (each sector is
  then closed: one constant generator).
- thermal start: all sectors 0..U of section 7's window (:func:`.chargers.thermal_window`,
  trace-norm error <= :data:`.chargers.TRUNCATION_DELTA`) as one cascade, block N starting at
  p_N |N,gg><N,gg|.
- rho_B = sum_N Tr_cavity rho_N: the cavity trace keeps each sector's populations
  (p_ee, p_T, p_gg, p_S) and drops its coherences (between different photon numbers), so
  rho_B is an X state.

Parameter table columns (:data:`OPEN_CAVITY_COLUMNS`): n (Fock) or nbar (thermal), J1, J2,
omega_g, omega_a, Delta, then the rates gamma, gamma_phi, gamma_c, kappa (>= 0).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._jit import kernel, leaf, parallel_kernel
from .chargers import TRUNCATION_DELTA, thermal_window, weight
from .grid import T_BLOCK, _accounting
from .hamiltonians import bare_battery, cavity_battery
from .lindblad import (
    N_SWAP,
    P_EE,
    P_GG,
    P_S,
    P_T,
    TAYLOR_TERMS,
    fill_generators,
    norm_inf,
    propagate,
    step_bound,
)
from .metrics import N_SUMMARY, write_block
from .open_field import fill_qubit_ops
from .open_states import swap_summary

OPEN_CAVITY_COLUMNS = ("n", "J1", "J2", "omega_g", "omega_a", "Delta", "gamma", "gamma_phi",
                       "gamma_c", "kappa")
N_CAVITY_OPS = 6


@kernel
def cavity_sectors(params, p, thermal):
    """(lowest sector, number of sectors) of point p."""
    lossy = params[p, 6] > 0.0 or params[p, 8] > 0.0 or params[p, 9] > 0.0
    if thermal:
        return 0, thermal_window(params[p, 0], TRUNCATION_DELTA)[1] + 1
    n = int(params[p, 0])
    if lossy:
        return 0, n + 1
    return n, 1


@kernel
def fill_sector_hamiltonian(h, sector, j1, j2, omega_g, omega_a, delta):
    """Sector N's Hamiltonian (eq. 24 with n -> N) in (ee, eg, ge, gg), shifted by
    -(N-1) omega_a."""
    for i in range(4):
        for j in range(4):
            h[i, j] = 0.0
    h[0, 0] = -omega_a + delta * (j2 + 1.0)
    h[1, 1] = -j2 * delta
    h[2, 2] = -j2 * delta
    h[3, 3] = omega_a + delta * (j2 - 1.0)
    h[1, 2] = h[2, 1] = 2.0 * j1 * delta
    top = math.sqrt(max(sector, 0.0)) * omega_g
    low = math.sqrt(max(sector - 1.0, 0.0)) * omega_g
    h[3, 1] = h[1, 3] = h[3, 2] = h[2, 3] = top
    h[0, 1] = h[1, 0] = h[0, 2] = h[2, 0] = low


@kernel
def cavity_generators(params, p, lo, n_sec, d, jd, ops, lower, h4):
    """d[s], jd[s] of sectors lo + s (jd[s]: the jumps from sector lo + s to the one below);
    returns the largest Taylor step."""
    gamma = math.sqrt(params[p, 6])
    deph = math.sqrt(0.5 * params[p, 7])
    coll = math.sqrt(params[p, 8])
    kappa = math.sqrt(params[p, 9])
    fill_qubit_ops(ops, 0, gamma, 0.0, 0.0, 0.0, 0.0, 0.0)
    fill_qubit_ops(ops, 1, 0.0, gamma, 0.0, 0.0, 0.0, 0.0)
    fill_qubit_ops(ops, 2, 0.0, 0.0, 0.0, 0.0, deph, 0.0)
    fill_qubit_ops(ops, 3, 0.0, 0.0, 0.0, 0.0, 0.0, deph)
    fill_qubit_ops(ops, 4, coll, coll, 0.0, 0.0, 0.0, 0.0)
    lower[0] = lower[1] = lower[4] = lower[5] = True
    lower[2] = lower[3] = False
    for s in range(n_sec):
        sector = float(lo + s)
        fill_qubit_ops(ops, 5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        ops[5, 0, 0] = kappa * math.sqrt(max(sector - 2.0, 0.0))
        ops[5, 1, 1] = kappa * math.sqrt(max(sector - 1.0, 0.0))
        ops[5, 2, 2] = ops[5, 1, 1]
        ops[5, 3, 3] = kappa * math.sqrt(sector)
        fill_sector_hamiltonian(h4, sector, params[p, 1], params[p, 2], params[p, 3],
                                params[p, 4], params[p, 5])
        fill_generators(h4, ops, N_CAVITY_OPS, lower, d[s], jd[s])
    norm = 0.0
    for s in range(n_sec):
        row = norm_inf(d[s]) + (norm_inf(jd[s + 1]) if s + 1 < n_sec else 0.0)
        norm = max(norm, row)
    return step_bound(norm, 0.0)


@kernel
def cavity_start(params, p, thermal, lo, n_sec, v):
    """The initial blocks: |n,gg> (Fock) or p_N |N,gg> for every sector (thermal)."""
    for s in range(n_sec):
        for i in range(N_SWAP):
            v[s, i] = 0.0
    if thermal:
        for s in range(n_sec):
            v[s, P_GG] = weight(True, params[p, 0], lo + s)
    else:
        v[int(params[p, 0]) - lo, P_GG] = 1.0


@kernel
def cavity_trace(v, n_sec):
    """rho_B's (p_ee, p_T, p_gg, p_S): the populations summed over the sectors."""
    p_ee = 0.0
    p_t = 0.0
    p_gg = 0.0
    p_s = 0.0
    for s in range(n_sec):
        p_ee += v[s, P_EE]
        p_t += v[s, P_T]
        p_gg += v[s, P_GG]
        p_s += v[s, P_S]
    return p_ee, p_t, p_gg, p_s


#: Most sectors below its own that a column of the cached step matrix reaches (:func:`step_band`);
#: a step needing more takes the Taylor propagator.
BAND_MAX = 31
#: Numbers of one thread's cached step matrix, at most (8 MB): the band shrinks for long cascades.
STEP_MATRIX_SIZE = 1_000_000
#: Bound on the norm of the step-matrix part dropped below the band (per step, per unit |v|).
BAND_TOL = 1e-18
_SAME_SPAN = 1e-12


@kernel
def generator_norms(d, jd, n_sec):
    """(|D|, |J|): the largest induced inf-norms of the in-sector generators d[s] and of the
    jumps jd[s] (s >= 1) to the sector below: the block-diagonal and block-off-diagonal parts
    of the cascade's generator G = D + J."""
    d_norm = 0.0
    j_norm = 0.0
    for s in range(n_sec):
        d_norm = max(d_norm, norm_inf(d[s]))
        if s >= 1:
            j_norm = max(j_norm, norm_inf(jd[s]))
    return d_norm, j_norm


@kernel
def step_band(d_norm, j_norm, span, n_sec, band_max):
    """The band B of exp(G span): the part that moves a block k >= B + 1 sectors down is
    dropped. In the Dyson series of exp((D + J) span) in powers of J, the k-th term moves
    exactly k sectors down and has norm <= e^{|D| span} x^k / k!, x = |J| span; the dropped
    tail sum_{k > B} is <= e^{|D| span} x^(B+1)/(B+1)! / (1 - x/(B+2)), kept below
    :data:`BAND_TOL`. B = n_sec - 1 drops nothing; -1: B would exceed ``band_max``."""
    x = j_norm * span
    if x == 0.0:
        return 0
    term = math.exp(d_norm * span)
    for k in range(1, n_sec):
        term *= x / k
        if x < k + 1 and term / (1.0 - x / (k + 1)) <= BAND_TOL:
            return k - 1 if k - 1 <= band_max else -1
    return n_sec - 1 if n_sec - 1 <= band_max else -1


@kernel
def equal_span_runs(t, runs):
    """runs[k]: how many consecutive output intervals, from the one ending at t[k], have the
    same span (to 1e-12 relative); the first interval runs from 0."""
    n_t = t.shape[0]
    for k in range(n_t - 1, -1, -1):
        span = t[k] - (t[k - 1] if k > 0 else 0.0)
        runs[k] = 1
        if k + 1 < n_t:
            nxt = t[k + 1] - t[k]
            if abs(nxt - span) <= _SAME_SPAN * abs(span):
                runs[k] = runs[k + 1] + 1


@kernel
def build_step_matrix(n_sec, d, jd, h_max, span, band, pm, col, w, phi, conv):
    """pm[c, k, m] = sector c - k of exp(G span) applied to basis vector m of sector c
    (k <= band): each column propagated by the Taylor propagator on the sectors c - band .. c
    only (the cascade never feeds a sector from below, and what it moves further down is
    dropped, :func:`step_band`)."""
    for c in range(n_sec):
        low = max(0, c - band)
        n_blk = c - low + 1
        for m in range(N_SWAP):
            for s in range(n_blk):
                for i in range(N_SWAP):
                    col[s, i] = 0.0
            col[n_blk - 1, m] = 1.0
            propagate(col, n_blk, d[low:c + 1], jd[low:c + 1], d[0], 0.0, 0.0, span, h_max,
                      0.0, 0.0, 0.0, False, w, phi, conv)
            for k in range(n_blk):
                for i in range(N_SWAP):
                    pm[c, k, m, i] = col[n_blk - 1 - k, i]


@leaf
def apply_step_matrix(v, n_sec, band, pm, nv):
    """v <- exp(G span) v from the banded step matrix of :func:`build_step_matrix`: for every
    target component the products over source sectors in ascending order, then ascending m
    (fixed-size 10 x 10 blocks: unrolled and vectorized). Inlined (it runs once per time)."""
    for s in range(n_sec):
        for i in range(N_SWAP):
            nv[s, i] = 0.0
    for c in range(n_sec):
        for k in range(min(band, c) + 1):
            r = c - k
            block = pm[c, k]
            for m in range(N_SWAP):
                x = v[c, m]
                for i in range(N_SWAP):
                    nv[r, i] += block[m, i] * x
    for s in range(n_sec):
        for i in range(N_SWAP):
            v[s, i] = nv[s, i]


@kernel
def step_matrix_band_max(max_sec):
    """The widest band one thread's step matrix holds (:data:`STEP_MATRIX_SIZE`)."""
    return min(BAND_MAX, max_sec - 1, max(0, STEP_MATRIX_SIZE // (max_sec * N_SWAP * N_SWAP) - 1))


@leaf
def step_cached(v, n_sec, span, cache, pm, nv):
    """v <- exp(G span) v if the cached step matrix (``cache`` = (its span, its band)) has
    this span; False (v untouched) otherwise. Inlined into the time loops: the common step
    of a uniform grid makes no call (a call passing :func:`advance`'s 15 arguments cost
    about twice the product itself)."""
    if span > 0.0 and cache[0] > 0.0 and abs(span - cache[0]) <= _SAME_SPAN * span:
        apply_step_matrix(v, n_sec, int(cache[1]), pm, nv)
        return True
    return False


@kernel
def advance(v, n_sec, d, jd, norms, h_max, span, run, cache, pm, col, nv, w, phi, conv):
    """v(t) -> v(t + span) for the constant cavity generator, where :func:`step_cached`
    (tried first by the caller) did not apply. The step matrix exp(G span) (banded,
    :func:`build_step_matrix`) is built when ``run`` intervals of this span follow (``run``
    >= 10 (B + 1): its cost in Taylor steps, about) and reused by :func:`step_cached` while
    the spans stay equal (uniform grids: a banded matrix-vector product per time); otherwise
    the Taylor propagator. ``norms`` = (|D|, |J|)
    (:func:`generator_norms`); ``cache`` = (the matrix's span, its band), span 0 for none;
    ``pm`` (max_sec, band_max + 1, 10, 10)."""
    if span <= 0.0:
        return
    band = step_band(norms[0], norms[1], span, n_sec, pm.shape[1] - 1)
    if band < 0 or run < 10 * (band + 1):
        propagate(v, n_sec, d, jd, d[0], 0.0, 0.0, span, h_max, 0.0, 0.0, 0.0, False, w, phi,
                  conv)
        return
    build_step_matrix(n_sec, d, jd, h_max, span, band, pm, col, w, phi, conv)
    cache[0] = span
    cache[1] = band
    apply_step_matrix(v, n_sec, band, pm, nv)


@kernel
def _max_sectors(params, thermal):
    best = 1
    for p in range(params.shape[0]):
        best = max(best, cavity_sectors(params, p, thermal)[1])
    return best


@kernel
def cavity_scratch(max_sec):
    """One thread's arrays for points of at most ``max_sec`` sectors: (d, jd, ops, lower, h4,
    v, w, phi, conv, col, nv, pm, cache, norms), as :func:`cavity_generators`,
    :func:`advance` and :func:`.lindblad.propagate` take them."""
    return (np.empty((max_sec, N_SWAP, N_SWAP)), np.empty((max_sec, N_SWAP, N_SWAP)),
            np.empty((N_CAVITY_OPS, 4, 4), dtype=np.complex128),
            np.zeros(N_CAVITY_OPS, dtype=np.bool_), np.empty((4, 4), dtype=np.complex128),
            np.empty((max_sec, N_SWAP)), np.empty((TAYLOR_TERMS + 1, max_sec, N_SWAP)),
            np.empty(TAYLOR_TERMS + 1), np.empty(2 * N_SWAP), np.empty((max_sec, N_SWAP)),
            np.empty((max_sec, N_SWAP)),
            np.empty((max_sec, step_matrix_band_max(max_sec) + 1, N_SWAP, N_SWAP)),
            np.zeros(2), np.empty(2))


@kernel
def cavity_point(params, p, thermal, d, jd, ops, lower, h4, v, cache, norms):
    """Point p's generators (d, jd) and their norms, its initial blocks v and an empty step
    cache; returns (its sectors, the Taylor propagator's largest step)."""
    lo, n_sec = cavity_sectors(params, p, thermal)
    h_max = cavity_generators(params, p, lo, n_sec, d, jd, ops, lower, h4)
    norms[0], norms[1] = generator_norms(d, jd, n_sec)
    cavity_start(params, p, thermal, lo, n_sec, v)
    cache[:] = 0.0
    return n_sec, h_max


@kernel
def open_cavity_states(params, t, thermal, states):
    """states[p, k] = (p_ee, p_T, p_gg, p_S) of rho_B (an X state, rho_eg,ge = (p_T - p_S)/2)
    of point p at t[k] (for tests and the reducer's callers)."""
    max_sec = _max_sectors(params, thermal)
    runs = np.empty(t.shape[0], dtype=np.int64)
    equal_span_runs(t, runs)
    d, jd, ops, lower, h4, v, w, phi, conv, col, nv, pm, cache, norms = cavity_scratch(max_sec)
    for p in range(params.shape[0]):
        n_sec, h_max = cavity_point(params, p, thermal, d, jd, ops, lower, h4, v, cache, norms)
        t_now = 0.0
        for k in range(t.shape[0]):
            if not step_cached(v, n_sec, t[k] - t_now, cache, pm, nv):
                advance(v, n_sec, d, jd, norms, h_max, t[k] - t_now, runs[k], cache, pm, col,
                        nv, w, phi, conv)
            t_now = max(t_now, t[k])
            states[p, k, 0], states[p, k, 1], states[p, k, 2], states[p, k, 3] = \
                cavity_trace(v, n_sec)


@parallel_kernel
def open_cavity_grid(params, t, thermal, bare, slot, out, n_threads):
    """Cavity model, Fock (``thermal`` False: column 0 is n) or thermal (column 0 is nbar)
    charger, with the rates of physics.md section 8: rho_B(t) at every time of the increasing
    ``t`` (>= 0), then the metrics. params columns :data:`OPEN_CAVITY_COLUMNS`; out, slot,
    bare as for :func:`.grid.cavity_grid`."""
    n_points = params.shape[0]
    n_t = t.shape[0]
    max_sec = _max_sectors(params, thermal)
    runs = np.empty(n_t, dtype=np.int64)
    equal_span_runs(t, runs)
    n_workers = max(1, min(n_threads, n_points))
    for worker in numba.prange(n_workers):
        d, jd, ops, lower, h4, v, w, phi, conv, col, nv, pm, cache, norms = \
            cavity_scratch(max_sec)
        summary = np.empty((N_SUMMARY, T_BLOCK))
        stored = np.empty(T_BLOCK)
        shared = np.empty(T_BLOCK)
        m3 = np.empty((3, 3), dtype=np.complex128)
        f3 = np.empty((3, 3), dtype=np.complex128)
        for p in range(worker, n_points, n_workers):
            delta = params[p, 5]
            hb = bare_battery(delta) if bare else cavity_battery(delta, params[p, 1],
                                                                 params[p, 2])
            spectrum, threshold = _accounting(hb, delta)
            n_sec, h_max = cavity_point(params, p, thermal, d, jd, ops, lower, h4, v, cache,
                                        norms)
            t_now = 0.0
            block_start = 0
            for k in range(n_t):
                if not step_cached(v, n_sec, t[k] - t_now, cache, pm, nv):
                    advance(v, n_sec, d, jd, norms, h_max, t[k] - t_now, runs[k], cache, pm,
                            col, nv, w, phi, conv)
                t_now = max(t_now, t[k])
                p_ee, p_t, p_gg, p_s = cavity_trace(v, n_sec)
                swap_summary(summary, k - block_start, hb, p_ee, p_t, p_gg, 0j, 0j, 0j, p_s,
                             True, m3, f3)
                if k - block_start + 1 == T_BLOCK or k == n_t - 1:
                    write_block(out, slot, p, block_start, t, summary, k - block_start + 1,
                                delta, threshold, hb[3], spectrum, stored, shared)
                    block_start = k + 1
