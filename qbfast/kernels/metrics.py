"""Every metric of physics.md section 4, in one place.

All metrics are functions of a small *summary* of the two-qubit battery state rho_B, which each
state route (pure state, cavity X state) computes from its amplitudes:

- ``expH``: Tr[H_b rho_B];  ``e_init``: Tr[H_b rho_B(0)] = <gg|H_b|gg>;
- ``e0..e3``: eigenvalues of H_b in ascending order;
- ``r0..r3``: eigenvalues of rho_B (any order);
- ``n = (nx, ny, nz)``: Bloch vector of cell a, n_i = <s_i x 1>;
- ``s = (sx, sy, sz)``: Bloch vector of cell b, s_i = <1 x s_i>;
- ``c = (cx, cy, cz)``: diagonal correlations c_i = <s_i x s_i>;
- ``concurrence``: Wootters concurrence of rho_B (computed by the route, which knows the
  state's structure and can do it to ~1e-15, see physics.md section 4 "Numerical care").

Logarithms are base 2; x log x is taken as 0 at x = 0 and tiny negative eigenvalues or
probabilities are clipped to 0 first.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel

# Slots of the metrics in kernel order (must match qbfast.params.METRIC_LIST).
ENERGY = 0
ERGOTROPY = 1
EFFICIENCY = 2
ERGOTROPY_LOCAL = 3
ERGOTROPY_INCOHERENT_CELL = 4
EFFICIENCY_INCOHERENT = 5
ENTROPY_CELL = 6
ENTROPY_BATTERY = 7
ENTROPY_DIAG_CELL = 8
PURITY_CELL = 9
PURITY_BATTERY = 10
CONCURRENCE = 11
STEERING_AB = 12
STEERING_BA = 13
POWER = 14

_TINY = 1e-300  # log2(_TINY) is finite, and 0 * log2(_TINY) == 0


@kernel
def xlog2x(x):
    """x log2 x, with negative x clipped to 0 and 0 log 0 = 0 (branch-free)."""
    x = max(x, 0.0)
    return x * np.log2(max(x, _TINY))


@kernel
def binary_entropy(p):
    """h(p) = -p log2 p - (1 - p) log2(1 - p), bits."""
    return -xlog2x(p) - xlog2x(1.0 - p)


@kernel
def qubit_entropy(bloch_norm):
    """von Neumann entropy of a qubit with Bloch vector length |r|: h((1 + |r|)/2), bits."""
    return binary_entropy(0.5 * (1.0 + min(bloch_norm, 1.0)))


@kernel
def marginal_term(m):
    """(1/2) sum_(+-) (1 +- m) log2(1 +- m): the marginal part of H(sigma_i^b | sigma_i^a)."""
    return 0.5 * (xlog2x(1.0 + m) + xlog2x(1.0 - m))


@kernel
def joint_term(m, s, c):
    """(1/4) sum_(a,b = +-1) q log2 q, q = 1 + a m + b s + a b c: the joint part."""
    return 0.25 * (
        xlog2x(1.0 + m + s + c)
        + xlog2x(1.0 + m - s - c)
        + xlog2x(1.0 - m + s - c)
        + xlog2x(1.0 - m - s + c)
    )


@kernel
def steering_pair(nx, ny, nz, sx, sy, sz, cx, cy, cz):
    """Entropic steering sums (I_ab, I_ba), bits (physics.md section 4, corrected eqs. 11/12).

    H(sigma_i^b | sigma_i^a) = 1 + (1/2) sum_(+-) (1 +- n_i) log2(1 +- n_i)
                                 - (1/4) sum_(a,b) q log2 q,  q = 1 + a n_i + b s_i + a b c_i,
    I_ab = sum_{i=x,y,z} H(sigma_i^b | sigma_i^a); I_ba uses s_i in the marginal term.
    a steers b iff I_ab < 2.
    """
    jx = joint_term(nx, sx, cx)
    jy = joint_term(ny, sy, cy)
    jz = joint_term(nz, sz, cz)
    joint = jx + jy + jz
    i_ab = 3.0 + marginal_term(nx) + marginal_term(ny) + marginal_term(nz) - joint
    i_ba = 3.0 + marginal_term(sx) + marginal_term(sy) + marginal_term(sz) - joint
    return i_ab, i_ba


@kernel
def passive_energy(r0, r1, r2, r3, e0, e1, e2, e3):
    """sum_k r_k e_k with r sorted descending and e ascending (e0 <= e1 <= e2 <= e3 given).

    The r are sorted with a branch-free min/max network.
    """
    # sorting network for 4 values, descending
    a = max(r0, r1)
    b = min(r0, r1)
    c = max(r2, r3)
    d = min(r2, r3)
    hi = max(a, c)
    m1 = min(a, c)
    m2 = max(b, d)
    lo = min(b, d)
    mid_hi = max(m1, m2)
    mid_lo = min(m1, m2)
    return hi * e0 + mid_hi * e1 + mid_lo * e2 + lo * e3


@kernel
def store(out, slot, metric, p, k, value):
    """Write ``value`` to out[slot[metric], p, k] when that metric was requested."""
    s = slot[metric]
    if s >= 0:
        out[s, p, k] = value


@kernel
def write_metrics(out, slot, p, k, t, delta, threshold,
                  expH, e_init, e0, e1, e2, e3, r0, r1, r2, r3,
                  nx, ny, nz, sx, sy, sz, cx, cy, cz, concurrence):
    """Compute the 15 metrics of physics.md section 4 from the state summary and store them.

    energy            E = Tr[H_b rho_B(t)] - Tr[H_b rho_B(0)]                      (eq. 1)
    ergotropy         Tr[H_b rho_B] - sum_k r_k(desc) e_k(asc)                     (eq. 2)
    efficiency        ergotropy / E, NaN where E <= threshold
    ergotropy_local   sum_{cells} (Delta z + |Delta| |r|) / 2, (r Bloch vector, z its z part)
    ergotropy_incoherent_cell   max(0, Delta n_z)                                  (eq. 20)
    efficiency_incoherent       ergotropy_incoherent_cell / (E / 2), same NaN rule (eq. 21)
    entropy_cell      S(rho_1) = h((1 + |n|)/2)
    entropy_battery   S(rho_B) = -sum_k r_k log2 r_k
    entropy_diag_cell h((1 + n_z)/2)                                               (eq. 19)
    purity_cell       Tr rho_1^2 = (1 + |n|^2) / 2
    purity_battery    Tr rho_B^2 = sum_k r_k^2
    concurrence       as given by the state route
    steering_ab/_ba   see :func:`steering_pair`
    power             E / t, NaN at t = 0

    ``threshold`` is 1e-12 max(|Delta|, max_k |e_k|) (the efficiency NaN rule).
    """
    energy = expH - e_init
    ergotropy = expH - passive_energy(r0, r1, r2, r3, e0, e1, e2, e3)
    charged = energy > threshold
    store(out, slot, ENERGY, p, k, energy)
    store(out, slot, ERGOTROPY, p, k, ergotropy)
    store(out, slot, EFFICIENCY, p, k, ergotropy / energy if charged else np.nan)

    n_norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    s_norm = np.sqrt(sx * sx + sy * sy + sz * sz)
    abs_delta = abs(delta)
    store(out, slot, ERGOTROPY_LOCAL, p, k,
          0.5 * (delta * nz + abs_delta * n_norm) + 0.5 * (delta * sz + abs_delta * s_norm))
    incoherent = max(0.0, delta * nz)
    store(out, slot, ERGOTROPY_INCOHERENT_CELL, p, k, incoherent)
    store(out, slot, EFFICIENCY_INCOHERENT, p, k, incoherent / (0.5 * energy) if charged else np.nan)

    store(out, slot, ENTROPY_CELL, p, k, qubit_entropy(n_norm))
    store(out, slot, ENTROPY_BATTERY, p, k, -(xlog2x(r0) + xlog2x(r1) + xlog2x(r2) + xlog2x(r3)))
    store(out, slot, ENTROPY_DIAG_CELL, p, k, binary_entropy(0.5 * (1.0 + max(-1.0, min(1.0, nz)))))
    store(out, slot, PURITY_CELL, p, k, 0.5 * (1.0 + n_norm * n_norm))
    store(out, slot, PURITY_BATTERY, p, k, r0 * r0 + r1 * r1 + r2 * r2 + r3 * r3)
    store(out, slot, CONCURRENCE, p, k, concurrence)

    if slot[STEERING_AB] >= 0 or slot[STEERING_BA] >= 0:
        i_ab, i_ba = steering_pair(nx, ny, nz, sx, sy, sz, cx, cy, cz)
        store(out, slot, STEERING_AB, p, k, i_ab)
        store(out, slot, STEERING_BA, p, k, i_ba)

    store(out, slot, POWER, p, k, energy / t if t > 0.0 else np.nan)
