"""Field model with the GKSL channels of physics.md section 8: propagator (:mod:`.lindblad`,
the swap-symmetric 10-vector under the exact drive f(t) = (A cos(omega t) + B)/2) -> reducer
(:func:`.open_states.swap_summary`) -> metric block (:func:`.metrics.write_block`).

Parameter table columns (:data:`OPEN_FIELD_COLUMNS`): the closed field model's A, B, omega, g,
Delta, then the rates gamma, n_th, gamma_phi, gamma_c (all >= 0; the caller validates).
Jump operators (i = 1, 2): sqrt(gamma (1 + n_th)) sigma_i^-, sqrt(gamma n_th) sigma_i^+,
sqrt(gamma_phi / 2) sigma_z,i, sqrt(gamma_c) (sigma_1^- + sigma_2^-).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._jit import kernel, parallel_kernel
from .grid import T_BLOCK, _accounting
from .hamiltonians import bare_battery, field_battery, fill_battery_matrix, fill_collective_x
from .lindblad import (
    N_SWAP,
    P_EE,
    P_GG,
    P_S,
    P_T,
    TAYLOR_TERMS,
    XEG_I,
    XEG_R,
    XET_I,
    XET_R,
    XTG_I,
    XTG_R,
    fill_generators,
    norm_inf,
    propagate,
    step_bound,
)
from .metrics import N_SUMMARY, write_block
from .open_states import swap_summary

OPEN_FIELD_COLUMNS = ("A", "B", "omega", "g", "Delta", "gamma", "n_th", "gamma_phi", "gamma_c")
N_FIELD_OPS = 7


@kernel
def fill_qubit_ops(ops, k, c_minus1, c_minus2, c_plus1, c_plus2, c_z1, c_z2):
    """ops[k] = c_minus1 sigma_1^- + c_minus2 sigma_2^- + c_plus1 sigma_1^+ + c_plus2 sigma_2^+
    + c_z1 sigma_z,1 + c_z2 sigma_z,2 in the battery basis (ee, eg, ge, gg)
    (sigma_1^-: ee -> ge, eg -> gg; sigma_2^-: ee -> eg, ge -> gg)."""
    for i in range(4):
        for j in range(4):
            ops[k, i, j] = 0.0
    ops[k, 2, 0] += c_minus1
    ops[k, 3, 1] += c_minus1
    ops[k, 1, 0] += c_minus2
    ops[k, 3, 2] += c_minus2
    ops[k, 0, 2] += c_plus1
    ops[k, 1, 3] += c_plus1
    ops[k, 0, 1] += c_plus2
    ops[k, 2, 3] += c_plus2
    ops[k, 0, 0] += c_z1 + c_z2
    ops[k, 1, 1] += c_z1 - c_z2
    ops[k, 2, 2] += -c_z1 + c_z2
    ops[k, 3, 3] += -c_z1 - c_z2


@kernel
def field_generators(params, p, full, d, jd, g1, ops, lower, h4):
    """Point p's generators: d[0] the constant part (H_b if ``full``, and the dissipators),
    g1 = -i [s1x + s2x, .] (times f(t)); jd unused (one block). Returns (|g1|, the largest
    Taylor step)."""
    g = params[p, 3]
    delta = params[p, 4]
    gamma = params[p, 5]
    n_th = params[p, 6]
    gamma_phi = params[p, 7]
    gamma_c = params[p, 8]
    down = math.sqrt(gamma * (1.0 + n_th))
    up = math.sqrt(gamma * n_th)
    deph = math.sqrt(0.5 * gamma_phi)
    coll = math.sqrt(gamma_c)
    fill_qubit_ops(ops, 0, down, 0.0, 0.0, 0.0, 0.0, 0.0)
    fill_qubit_ops(ops, 1, 0.0, down, 0.0, 0.0, 0.0, 0.0)
    fill_qubit_ops(ops, 2, 0.0, 0.0, up, 0.0, 0.0, 0.0)
    fill_qubit_ops(ops, 3, 0.0, 0.0, 0.0, up, 0.0, 0.0)
    fill_qubit_ops(ops, 4, 0.0, 0.0, 0.0, 0.0, deph, 0.0)
    fill_qubit_ops(ops, 5, 0.0, 0.0, 0.0, 0.0, 0.0, deph)
    fill_qubit_ops(ops, 6, coll, coll, 0.0, 0.0, 0.0, 0.0)
    lower[:] = False
    hb = field_battery(delta, g)
    real4 = np.zeros((4, 4))
    if full:
        fill_battery_matrix(real4, hb[0], hb[1], hb[2], hb[3], hb[4])
    for i in range(4):
        for j in range(4):
            h4[i, j] = real4[i, j]
    fill_generators(h4, ops, N_FIELD_OPS, lower, d[0], jd[0])
    fill_collective_x(real4)
    for i in range(4):
        for j in range(4):
            h4[i, j] = real4[i, j]
    fill_generators(h4, ops, 0, lower, g1, jd[0])
    g1_norm = norm_inf(g1)
    h_max = step_bound(norm_inf(d[0]) + 0.5 * (abs(params[p, 0]) + abs(params[p, 1])) * g1_norm,
                       params[p, 2])
    return g1_norm, h_max


@kernel
def field_scratch():
    """One thread's arrays: (d, jd, g1, ops, lower, h4, v, w, phi, conv), as
    :func:`field_generators` and :func:`.lindblad.propagate` take them."""
    return (np.empty((1, N_SWAP, N_SWAP)), np.empty((1, N_SWAP, N_SWAP)),
            np.empty((N_SWAP, N_SWAP)), np.empty((N_FIELD_OPS, 4, 4), dtype=np.complex128),
            np.zeros(N_FIELD_OPS, dtype=np.bool_), np.empty((4, 4), dtype=np.complex128),
            np.empty((1, N_SWAP)), np.empty((TAYLOR_TERMS + 1, 1, N_SWAP)),
            np.empty(TAYLOR_TERMS + 1), np.empty(2 * N_SWAP))


@kernel
def open_field_states(params, t, full, states):
    """The propagated 10-vector (:mod:`.lindblad`) of every point and time:
    states[p, k] = v of point p at t[k] (for tests and the reducer's callers)."""
    d, jd, g1, ops, lower, h4, v, w, phi, conv = field_scratch()
    for p in range(params.shape[0]):
        g1_norm, h_max = field_generators(params, p, full, d, jd, g1, ops, lower, h4)
        v[:] = 0.0
        v[0, P_GG] = 1.0
        t_now = 0.0
        for k in range(t.shape[0]):
            propagate(v, 1, d, jd, g1, g1_norm, t_now, t[k], h_max, params[p, 0],
                      params[p, 1], params[p, 2], True, w, phi, conv)
            t_now = max(t_now, t[k])
            states[p, k] = v[0]


@parallel_kernel
def open_field_grid(params, t, full, bare, slot, out, n_threads):
    """Field model, protocol "full" (``full``: H_a(t) + H_b) or "drive" (H_a(t) alone), with
    the rates of physics.md section 8: rho_B(t) from |gg><gg| at every time of the increasing
    ``t`` (>= 0), then the metrics. params columns :data:`OPEN_FIELD_COLUMNS`; out, slot, bare
    as for :func:`.grid.field_full_grid`."""
    n_points = params.shape[0]
    n_t = t.shape[0]
    n_workers = max(1, min(n_threads, n_points))
    for worker in numba.prange(n_workers):
        d, jd, g1, ops, lower, h4, v, w, phi, conv = field_scratch()
        summary = np.empty((N_SUMMARY, T_BLOCK))
        stored = np.empty(T_BLOCK)
        shared = np.empty(T_BLOCK)
        m3 = np.empty((3, 3), dtype=np.complex128)
        f3 = np.empty((3, 3), dtype=np.complex128)
        for p in range(worker, n_points, n_workers):
            a = params[p, 0]
            b = params[p, 1]
            omega = params[p, 2]
            delta = params[p, 4]
            hb = bare_battery(delta) if bare else field_battery(delta, params[p, 3])
            spectrum, threshold = _accounting(hb, delta)
            g1_norm, h_max = field_generators(params, p, full, d, jd, g1, ops, lower, h4)
            v[:] = 0.0
            v[0, P_GG] = 1.0
            t_now = 0.0
            block_start = 0
            for k in range(n_t):
                propagate(v, 1, d, jd, g1, g1_norm, t_now, t[k], h_max, a, b, omega, True,
                          w, phi, conv)
                t_now = max(t_now, t[k])
                x = v[0]
                swap_summary(summary, k - block_start, hb, x[P_EE], x[P_T], x[P_GG],
                             complex(x[XET_R], x[XET_I]), complex(x[XTG_R], x[XTG_I]),
                             complex(x[XEG_R], x[XEG_I]), x[P_S], False, m3, f3)
                if k - block_start + 1 == T_BLOCK or k == n_t - 1:
                    write_block(out, slot, p, block_start, t, summary, k - block_start + 1,
                                delta, threshold, hb[3], spectrum, stored, shared)
                    block_start = k + 1
