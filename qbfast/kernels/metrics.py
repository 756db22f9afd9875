"""Every metric of docs/physics.md section 4, in one place.

All metrics are functions of a small *summary* of the two-qubit battery state rho_B, which each
state route (:mod:`.states`: pure state, cavity X state) computes from its amplitudes. The
summary is stored row-wise in a (N_SUMMARY, block) array, one column per time:

- ``ENERGY_ROW``: the stored energy Tr[H_b rho_B] - <gg|H_b|gg>, from :func:`energy`;
- ``R0..R3``: eigenvalues of rho_B (any order);
- ``NX, NY, NZ``: Bloch vector of cell a, n_i = <s_i x 1>;
- ``SX, SY, SZ``: Bloch vector of cell b, s_i = <1 x s_i>;
- ``CX, CY, CZ``: diagonal correlations c_i = <s_i x s_i>;
- ``CONC``: Wootters concurrence of rho_B (computed by the route, which knows the state's
  structure and gets it to ~1e-15, see docs/physics.md section 4 "Numerical care").

The cavity model's X state has its own, smaller summary (rows ``XS_*``, written by
:func:`.states.xstate_summary`) and its own writer :func:`write_block_xstate`: with populations
and one coherence, every entropy becomes a sum of x log x over populations, which it shares
between metrics (7 logarithms per point; see the ``*_xstate`` functions).

The field model's "drive" state is a product of two equal pure qubit states; it also has its
own summary (rows ``PS_*``, :func:`.states.product_state_summary`) and writer
:func:`write_block_product` (4 logarithms per point).

Besides the summary, a metric may need the battery Hamiltonian's ascending eigenvalues
e0..e3, its value in the initial state e_init = <gg|H_b|gg>, Delta, and the time t.

Logarithms are base 2 (the vectorizable :func:`.fastmath.log2`); x log x is 0 at x = 0 and
tiny negative eigenvalues or probabilities are clipped to 0 first.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel, leaf
from .fastmath import log2

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
N_METRICS = 15

# Rows of the state summary.
ENERGY_ROW, R0, R1, R2, R3, NX, NY, NZ, SX, SY, SZ, CX, CY, CZ, CONC = range(15)
N_SUMMARY = 15

_TINY = 1e-300  # normal, log2(_TINY) is finite, and 0 * log2(_TINY) == 0


# --- building blocks ---------------------------------------------------------------------------

@leaf
def xlog2x(x):
    """x log2 x, with negative x clipped to 0 and 0 log 0 = 0 (branch-free)."""
    x = max(x, 0.0)
    return x * log2(max(x, _TINY))


@leaf
def outcome_entropy(p_plus, p_minus):
    """Shannon entropy -p_+ log2 p_+ - p_- log2 p_-, bits, of a two-outcome distribution given
    both probabilities (each computed directly, so that neither is a difference near 0)."""
    return -(xlog2x(p_plus) + xlog2x(p_minus))


@leaf
def binary_entropy(p):
    """h(p) = -p log2 p - (1 - p) log2(1 - p), bits."""
    return outcome_entropy(p, 1.0 - p)


@leaf
def marginal_term(m):
    """(1/2) sum_(+-) (1 +- m) log2(1 +- m): the marginal part of H(sigma_i^b | sigma_i^a)."""
    return 0.5 * (xlog2x(1.0 + m) + xlog2x(1.0 - m))


@leaf
def joint_term(m, s, c):
    """(1/4) sum_(a,b = +-1) q log2 q, q = 1 + a m + b s + a b c: the joint part."""
    return 0.25 * (
        xlog2x(1.0 + m + s + c)
        + xlog2x(1.0 + m - s - c)
        + xlog2x(1.0 - m + s - c)
        + xlog2x(1.0 - m - s + c)
    )


@kernel
def spectrum_offsets(spectrum, e_init):
    """d_k = e_k - e_init for the ascending battery spectrum (e0, e1, e2, e3): the passive
    energy relative to <gg|H_b|gg>, as :func:`ergotropy` takes it."""
    return (spectrum[0] - e_init, spectrum[1] - e_init, spectrum[2] - e_init,
            spectrum[3] - e_init)


@kernel
def passive_energy(r0, r1, r2, r3, e0, e1, e2, e3):
    """sum_k r_k e_k with r sorted descending and e ascending (e0 <= e1 <= e2 <= e3 given).

    The r are sorted with a branch-free min/max network.
    """
    a = max(r0, r1)
    b = min(r0, r1)
    c = max(r2, r3)
    d = min(r2, r3)
    hi = max(a, c)
    m1 = min(a, c)
    m2 = max(b, d)
    lo = min(b, d)
    return hi * e0 + max(m1, m2) * e1 + min(m1, m2) * e2 + lo * e3


# --- the metrics -------------------------------------------------------------------------------

@kernel
def energy(hb, p_ee, p_eg, p_ge, re_eg_ge):
    """Stored energy E = Tr[H_b rho_B(t)] - Tr[H_b rho_B(0)] (paper eq. 1), rho_B(0) = |gg><gg|.

    With H_b = (h_ee, h_eg, h_ge, h_gg, h_x) (see :mod:`.hamiltonians`) and Tr rho_B = 1,
    E = sum_{k != gg} (h_kk - h_gg) rho_kk + 2 h_x Re rho_{eg,ge}: written without the
    population of |gg>, so a small E keeps its full relative precision (no cancellation).
    """
    return ((hb[0] - hb[3]) * p_ee + (hb[1] - hb[3]) * p_eg + (hb[2] - hb[3]) * p_ge
            + 2.0 * hb[4] * re_eg_ge)


@kernel
def ergotropy(stored, r0, r1, r2, r3, d0, d1, d2, d3):
    """Ergotropy Tr[H_b rho_B] - sum_k r_k e_k, r descending, e ascending (paper eq. 2).

    Evaluated relative to e_init = <gg|H_b|gg>, without cancellation at small energies:
    Tr[H_b rho_B] = E + e_init (``stored`` = E) and, as sum_k r_k = 1,
    sum_k r_k e_k = e_init + sum_k r_k d_k with d_k = e_k - e_init (ascending), so
    ergotropy = E - sum_k r_k d_k.
    """
    return stored - passive_energy(r0, r1, r2, r3, d0, d1, d2, d3)


@kernel
def efficiency(work, stored, threshold):
    """Efficiency ergotropy / energy; NaN where energy <= threshold, the threshold being
    1e-12 max(|Delta|, max |eig H_b|) (docs/physics.md section 4)."""
    return work / stored if stored > threshold else np.nan


@kernel
def efficiency_incoherent(work, stored, threshold):
    """ergotropy_incoherent_cell / (energy / 2) (paper eq. 21; energy / 2 is one cell's share),
    with the same NaN rule as :func:`efficiency`: NaN where energy <= threshold."""
    return work / (0.5 * stored) if stored > threshold else np.nan


@kernel
def ergotropy_local(delta, nx, ny, nz, sx, sy, sz):
    """Sum over both cells of the single-qubit ergotropy w.r.t. (Delta/2) sigma_z:
    (Delta r_z + |Delta| |r|) / 2 for each cell's Bloch vector r."""
    n_norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    s_norm = np.sqrt(sx * sx + sy * sy + sz * sz)
    return 0.5 * (delta * (nz + sz) + abs(delta) * (n_norm + s_norm))


@kernel
def ergotropy_incoherent_cell(delta, nz):
    """Ergotropy of cell 1 dephased in the sigma_z basis: max(0, Delta <sigma_z>_1) (eq. 20)."""
    return max(0.0, delta * nz)


@leaf
def entropy_cell(nx, ny, nz):
    """von Neumann entropy of cell 1, S(rho_1) = h((1 + |n|)/2), bits."""
    n_norm = min(np.sqrt(nx * nx + ny * ny + nz * nz), 1.0)
    return binary_entropy(0.5 * (1.0 + n_norm))


@leaf
def entropy_battery(r0, r1, r2, r3):
    """von Neumann entropy of the battery, S(rho_B) = -sum_k r_k log2 r_k, bits."""
    return -(xlog2x(r0) + xlog2x(r1) + xlog2x(r2) + xlog2x(r3))


@leaf
def entropy_diag_cell(nz):
    """Shannon entropy of cell 1's populations, h((1 + n_z)/2), bits (paper eq. 19)."""
    return binary_entropy(0.5 * (1.0 + max(-1.0, min(1.0, nz))))


@kernel
def purity_cell(nx, ny, nz):
    """Tr rho_1^2 = (1 + |n|^2) / 2."""
    return 0.5 * (1.0 + nx * nx + ny * ny + nz * nz)


@kernel
def purity_battery(r0, r1, r2, r3):
    """Tr rho_B^2 = sum_k r_k^2."""
    return r0 * r0 + r1 * r1 + r2 * r2 + r3 * r3


@leaf
def steering_joint(nx, ny, nz, sx, sy, sz, cx, cy, cz):
    """sum_{i=x,y,z} joint_term(n_i, s_i, c_i): the part of I_ab and I_ba they share."""
    return joint_term(nx, sx, cx) + joint_term(ny, sy, cy) + joint_term(nz, sz, cz)


@leaf
def steering(joint, mx, my, mz):
    """Entropic steering sum, bits (docs/physics.md section 4, corrected eqs. 11/12):

    H(sigma_i^b | sigma_i^a) = 1 + (1/2) sum_(+-) (1 +- n_i) log2(1 +- n_i)
                                 - (1/4) sum_(a,b) q log2 q,  q = 1 + a n_i + b s_i + a b c_i,
    I_ab = sum_{i=x,y,z} H(sigma_i^b | sigma_i^a) = 3 + sum_i marginal_term(n_i) - joint,
    with joint = :func:`steering_joint`. I_ba uses s_i as (mx, my, mz) instead of n_i.
    a steers b iff I_ab < 2.
    """
    return 3.0 + marginal_term(mx) + marginal_term(my) + marginal_term(mz) - joint


@leaf
def steering_pair(nx, ny, nz, sx, sy, sz, cx, cy, cz):
    """(I_ab, I_ba) of a two-qubit state from its Bloch vectors and correlations."""
    joint = steering_joint(nx, ny, nz, sx, sy, sz, cx, cy, cz)
    return steering(joint, nx, ny, nz), steering(joint, sx, sy, sz)


@kernel
def power(stored, t):
    """Average charging power E / t; NaN at t = 0."""
    return stored / t if t > 0.0 else np.nan


# --- writing a block of times ------------------------------------------------------------------

@kernel
def write_block(out, slot, p, start, t, summary, n, delta, threshold, e_init, spectrum,
                stored, shared):
    """Compute the requested metrics for ``n`` consecutive times and store them.

    out[slot[m], p, start + j] receives metric m at time t[start + j] from summary[:, j]
    (j < n); slot[m] = -1 skips metric m. ``spectrum`` = (e0, e1, e2, e3) ascending eigenvalues
    of H_b, ``threshold`` the efficiency NaN threshold, ``stored`` and ``shared`` scratch rows
    (>= n). Each metric is its own loop over j, so every loop is straight-line code that LLVM
    vectorizes. Any two-qubit state; the cavity's X state has the faster
    :func:`write_block_xstate`.
    """
    d0, d1, d2, d3 = spectrum_offsets(spectrum, e_init)
    s = summary
    for j in range(n):
        stored[j] = s[ENERGY_ROW, j]
    if slot[ENERGY] >= 0:
        o = out[slot[ENERGY], p]
        for j in range(n):
            o[start + j] = stored[j]
    if slot[ERGOTROPY] >= 0:
        o = out[slot[ERGOTROPY], p]
        for j in range(n):
            o[start + j] = ergotropy(stored[j], s[R0, j], s[R1, j], s[R2, j], s[R3, j],
                                     d0, d1, d2, d3)
    if slot[EFFICIENCY] >= 0:
        o = out[slot[EFFICIENCY], p]
        for j in range(n):
            work = ergotropy(stored[j], s[R0, j], s[R1, j], s[R2, j], s[R3, j],
                             d0, d1, d2, d3)
            o[start + j] = efficiency(work, stored[j], threshold)
    if slot[ERGOTROPY_LOCAL] >= 0:
        o = out[slot[ERGOTROPY_LOCAL], p]
        for j in range(n):
            o[start + j] = ergotropy_local(delta, s[NX, j], s[NY, j], s[NZ, j],
                                           s[SX, j], s[SY, j], s[SZ, j])
    if slot[ERGOTROPY_INCOHERENT_CELL] >= 0:
        o = out[slot[ERGOTROPY_INCOHERENT_CELL], p]
        for j in range(n):
            o[start + j] = ergotropy_incoherent_cell(delta, s[NZ, j])
    if slot[EFFICIENCY_INCOHERENT] >= 0:
        o = out[slot[EFFICIENCY_INCOHERENT], p]
        for j in range(n):
            o[start + j] = efficiency_incoherent(ergotropy_incoherent_cell(delta, s[NZ, j]),
                                                 stored[j], threshold)
    if slot[ENTROPY_CELL] >= 0:
        o = out[slot[ENTROPY_CELL], p]
        for j in range(n):
            o[start + j] = entropy_cell(s[NX, j], s[NY, j], s[NZ, j])
    if slot[ENTROPY_DIAG_CELL] >= 0:
        o = out[slot[ENTROPY_DIAG_CELL], p]
        for j in range(n):
            o[start + j] = entropy_diag_cell(s[NZ, j])
    if slot[ENTROPY_BATTERY] >= 0:
        o = out[slot[ENTROPY_BATTERY], p]
        for j in range(n):
            o[start + j] = entropy_battery(s[R0, j], s[R1, j], s[R2, j], s[R3, j])
    if slot[PURITY_CELL] >= 0:
        o = out[slot[PURITY_CELL], p]
        for j in range(n):
            o[start + j] = purity_cell(s[NX, j], s[NY, j], s[NZ, j])
    if slot[PURITY_BATTERY] >= 0:
        o = out[slot[PURITY_BATTERY], p]
        for j in range(n):
            o[start + j] = purity_battery(s[R0, j], s[R1, j], s[R2, j], s[R3, j])
    if slot[CONCURRENCE] >= 0:
        o = out[slot[CONCURRENCE], p]
        for j in range(n):
            o[start + j] = s[CONC, j]
    if slot[STEERING_AB] >= 0 or slot[STEERING_BA] >= 0:
        joint = shared
        for j in range(n):
            joint[j] = steering_joint(s[NX, j], s[NY, j], s[NZ, j], s[SX, j], s[SY, j],
                                      s[SZ, j], s[CX, j], s[CY, j], s[CZ, j])
        if slot[STEERING_AB] >= 0:
            o = out[slot[STEERING_AB], p]
            for j in range(n):
                o[start + j] = steering(joint[j], s[NX, j], s[NY, j], s[NZ, j])
        if slot[STEERING_BA] >= 0:
            o = out[slot[STEERING_BA], p]
            for j in range(n):
                o[start + j] = steering(joint[j], s[SX, j], s[SY, j], s[SZ, j])
    if slot[POWER] >= 0:
        o = out[slot[POWER], p]
        for j in range(n):
            o[start + j] = power(stored[j], t[start + j])


# --- the cavity model's X state ----------------------------------------------------------------
#
# rho_B = diag(p_ee, [[p_eg, coh], [coh*, p_ge]], p_gg) (docs/physics.md section 3). The model is
# symmetric under exchanging the qubits and starts in |n,gg>, so c_eg = c_ge at all times
# (.hamiltonians.fill_cavity_sector): p_eg = p_ge = coh = p_T / 2 with p_T = p_eg + p_ge, the
# triplet population. Spectrum (p_gg, p_T, p_ee, 0); Bloch vectors (0, 0, n_z) for both cells
# with n_z = s_z = p_ee - p_gg; correlations c_x = c_y = 2 Re coh = p_T, c_z = 1 - 2 p_T.
# Rows XS_ENERGY .. XS_NZ are written by .states.xstate_summary; rows XS_L_GG .. XS_JOINT are
# scratch of write_block_xstate.
XS_ENERGY, XS_GG, XS_T, XS_EE, XS_NZ = range(5)
XS_L_GG, XS_L_T, XS_L_EE, XS_M_NZ, XS_JOINT = range(5, 10)
N_XSUMMARY = 10


@kernel
def concurrence_xstate(p_gg, p_t, p_ee):
    """Wootters concurrence of the X state, 2 max(0, |coh| - sqrt(p_gg p_ee)) (docs/physics.md
    section 4) with |coh| = p_T / 2: max(0, p_T - 2 sqrt(p_gg p_ee))."""
    return max(0.0, p_t - 2.0 * np.sqrt(p_gg * p_ee))


@kernel
def ergotropy_local_z(delta, nz, sz):
    """:func:`ergotropy_local` for Bloch vectors along z: |r| = |r_z|, so
    (Delta (n_z + s_z) + |Delta| (|n_z| + |s_z|)) / 2."""
    return 0.5 * (delta * (nz + sz) + abs(delta) * (abs(nz) + abs(sz)))


@leaf
def entropy_cell_xstate(m_nz):
    """S(rho_1) = h((1 + n_z)/2) (= :func:`entropy_diag_cell`: rho_1 is diagonal) from
    m_nz = :func:`marginal_term` (n_z): with q = (1 + n_z)/2,
    q log2 q + (1 - q) log2(1 - q) = marginal_term(n_z) - 1, so h = 1 - m_nz."""
    return 1.0 - m_nz


@leaf
def entropy_battery_xstate(l_gg, l_t, l_ee):
    """S(rho_B) = -sum_k r_k log2 r_k over the spectrum (p_gg, p_T, p_ee, 0), from
    l_gg = xlog2x(p_gg), l_t = xlog2x(p_T), l_ee = xlog2x(p_ee)."""
    return -(l_gg + l_t + l_ee)


@leaf
def steering_joint_xstate(l_gg, l_t, l_ee, p_t):
    """:func:`steering_joint` of the X state from l_k = xlog2x(p_k) and p_T.

    x and y: n_i = s_i = 0, c_i = c_perp = p_T, and joint_term(0, 0, c) = marginal_term(c).
    z: q = 1 + a n_z + b s_z + a b c_z = 4 p_k, one population per sign pair (a, b), so
    joint_term(n_z, s_z, c_z) = (1/4) sum_k 4 p_k log2(4 p_k) = sum_k xlog2x(p_k) + 2
    (sum_k p_k = 1), where the two triplet halves give 2 xlog2x(p_T / 2) = l_t - p_T.
    Together: 2 marginal_term(p_T) + l_gg + l_t - p_T + l_ee + 2.
    """
    return 2.0 * marginal_term(p_t) + (l_gg + (l_t - p_t) + l_ee) + 2.0


@leaf
def steering_xstate(joint, m_z):
    """:func:`steering` for Bloch vectors along z: marginal_term(0) = 0 for x and y, so
    I = 3 + m_z - joint with m_z = marginal_term(n_z) (I_ab; I_ba = I_ab as s_z = n_z)."""
    return 3.0 + m_z - joint


@kernel
def write_block_xstate(out, slot, p, start, t, rows, n, delta, threshold, e_init, spectrum):
    """:func:`write_block` for the cavity's X state, from the summary rows XS_* (rows 0-4
    filled for columns j < n; rows 5-9 are scratch). Shared terms (x log x of the populations,
    the marginal term of n_z, the steering joint part: 7 logarithms per point) are computed
    once, each only if a requested metric needs it; then every metric is one vectorizable
    loop."""
    d0, d1, d2, d3 = spectrum_offsets(spectrum, e_init)
    r = rows
    steer = slot[STEERING_AB] >= 0 or slot[STEERING_BA] >= 0
    if steer or slot[ENTROPY_BATTERY] >= 0:
        for j in range(n):
            r[XS_L_GG, j] = xlog2x(r[XS_GG, j])
        for j in range(n):
            r[XS_L_T, j] = xlog2x(r[XS_T, j])
        for j in range(n):
            r[XS_L_EE, j] = xlog2x(r[XS_EE, j])
    if steer:
        for j in range(n):
            r[XS_JOINT, j] = steering_joint_xstate(r[XS_L_GG, j], r[XS_L_T, j], r[XS_L_EE, j],
                                                   r[XS_T, j])
    if steer or slot[ENTROPY_CELL] >= 0 or slot[ENTROPY_DIAG_CELL] >= 0:
        for j in range(n):
            r[XS_M_NZ, j] = marginal_term(r[XS_NZ, j])

    if slot[ENERGY] >= 0:
        o = out[slot[ENERGY], p, start:start + n]
        for j in range(n):
            o[j] = r[XS_ENERGY, j]
    if slot[ERGOTROPY] >= 0:
        o = out[slot[ERGOTROPY], p, start:start + n]
        for j in range(n):
            o[j] = ergotropy(r[XS_ENERGY, j], r[XS_GG, j], r[XS_T, j], r[XS_EE, j], 0.0,
                             d0, d1, d2, d3)
    if slot[EFFICIENCY] >= 0:
        o = out[slot[EFFICIENCY], p, start:start + n]
        for j in range(n):
            work = ergotropy(r[XS_ENERGY, j], r[XS_GG, j], r[XS_T, j], r[XS_EE, j], 0.0,
                             d0, d1, d2, d3)
            o[j] = efficiency(work, r[XS_ENERGY, j], threshold)
    if slot[ERGOTROPY_LOCAL] >= 0:
        o = out[slot[ERGOTROPY_LOCAL], p, start:start + n]
        for j in range(n):
            o[j] = ergotropy_local_z(delta, r[XS_NZ, j], r[XS_NZ, j])
    if slot[ERGOTROPY_INCOHERENT_CELL] >= 0:
        o = out[slot[ERGOTROPY_INCOHERENT_CELL], p, start:start + n]
        for j in range(n):
            o[j] = ergotropy_incoherent_cell(delta, r[XS_NZ, j])
    if slot[EFFICIENCY_INCOHERENT] >= 0:
        o = out[slot[EFFICIENCY_INCOHERENT], p, start:start + n]
        for j in range(n):
            o[j] = efficiency_incoherent(ergotropy_incoherent_cell(delta, r[XS_NZ, j]),
                                         r[XS_ENERGY, j], threshold)
    if slot[ENTROPY_CELL] >= 0:
        o = out[slot[ENTROPY_CELL], p, start:start + n]
        for j in range(n):
            o[j] = entropy_cell_xstate(r[XS_M_NZ, j])
    if slot[ENTROPY_BATTERY] >= 0:
        o = out[slot[ENTROPY_BATTERY], p, start:start + n]
        for j in range(n):
            o[j] = entropy_battery_xstate(r[XS_L_GG, j], r[XS_L_T, j], r[XS_L_EE, j])
    if slot[ENTROPY_DIAG_CELL] >= 0:
        o = out[slot[ENTROPY_DIAG_CELL], p, start:start + n]
        for j in range(n):
            o[j] = entropy_cell_xstate(r[XS_M_NZ, j])
    if slot[PURITY_CELL] >= 0:
        o = out[slot[PURITY_CELL], p, start:start + n]
        for j in range(n):
            o[j] = purity_cell(0.0, 0.0, r[XS_NZ, j])
    if slot[PURITY_BATTERY] >= 0:
        o = out[slot[PURITY_BATTERY], p, start:start + n]
        for j in range(n):
            o[j] = purity_battery(r[XS_GG, j], r[XS_T, j], r[XS_EE, j], 0.0)
    if slot[CONCURRENCE] >= 0:
        o = out[slot[CONCURRENCE], p, start:start + n]
        for j in range(n):
            o[j] = concurrence_xstate(r[XS_GG, j], r[XS_T, j], r[XS_EE, j])
    for k in (STEERING_AB, STEERING_BA):  # equal: both cells have the same n_z
        if slot[k] >= 0:
            o = out[slot[k], p, start:start + n]
            for j in range(n):
                o[j] = steering_xstate(r[XS_JOINT, j], r[XS_M_NZ, j])
    if slot[POWER] >= 0:
        o = out[slot[POWER], p, start:start + n]
        tb = t[start:start + n]
        for j in range(n):
            o[j] = power(r[XS_ENERGY, j], tb[j])


# --- the field model's product state (protocol "drive") ----------------------------------------
#
# psi = phi x phi with phi = cos A1 |g> - i sin A1 |e> (paper eq. 16). Each cell is pure with
# Bloch vector (0, n_y, n_z), n_y = sin 2 A1, n_z = sin^2 A1 - cos^2 A1; rho_B is pure and
# unentangled. Rows PS_ENERGY .. PS_NY are written by .states.product_state_summary; PS_H_Y and
# PS_H_Z are scratch of write_block_product.
PS_ENERGY, PS_PE, PS_PG, PS_NY = range(4)
PS_H_Y, PS_H_Z = range(4, 6)
N_PSUMMARY = 6


@leaf
def steering_product(h_x, h_y, h_z):
    """Entropic steering sum of a product state, bits: the outcomes of sigma_i^a and sigma_i^b
    are independent, so H(sigma_i^b | sigma_i^a) = H(sigma_i^b) = h((1 + s_i)/2) and
    I = sum_i h((1 + s_i)/2) (= docs/physics.md section 4 with c_i = n_i s_i); equal for a->b and
    b->a when both cells are in the same state. ``h_i`` = h((1 + s_i)/2)."""
    return h_x + h_y + h_z


@kernel
def write_block_product(out, slot, p, start, t, rows, n, delta, threshold, e_init, spectrum):
    """:func:`write_block` for the drive protocol's pure product state phi x phi, from the
    summary rows PS_* (rows 0-3 filled for columns j < n; rows 4-5 are scratch).

    Exact for this state: rho_B and each cell are pure, so the von Neumann entropies and the
    concurrence are 0 and the purities 1; the spectrum of rho_B is (1, 0, 0, 0); the steering
    sum is :func:`steering_product` with h_x = h(1/2) = 1. The logarithms left are those of
    h((1 + n_y)/2) and h((1 + n_z)/2) = h(p_e), shared by steering and entropy_diag_cell.
    """
    d0, d1, d2, d3 = spectrum_offsets(spectrum, e_init)
    r = rows
    steer = slot[STEERING_AB] >= 0 or slot[STEERING_BA] >= 0
    if steer or slot[ENTROPY_DIAG_CELL] >= 0:
        for j in range(n):
            r[PS_H_Z, j] = outcome_entropy(r[PS_PE, j], r[PS_PG, j])
    if steer:
        for j in range(n):
            r[PS_H_Y, j] = outcome_entropy(0.5 * (1.0 + r[PS_NY, j]), 0.5 * (1.0 - r[PS_NY, j]))

    if slot[ENERGY] >= 0:
        o = out[slot[ENERGY], p, start:start + n]
        for j in range(n):
            o[j] = r[PS_ENERGY, j]
    if slot[ERGOTROPY] >= 0:
        o = out[slot[ERGOTROPY], p, start:start + n]
        for j in range(n):
            o[j] = ergotropy(r[PS_ENERGY, j], 1.0, 0.0, 0.0, 0.0, d0, d1, d2, d3)
    if slot[EFFICIENCY] >= 0:
        o = out[slot[EFFICIENCY], p, start:start + n]
        for j in range(n):
            work = ergotropy(r[PS_ENERGY, j], 1.0, 0.0, 0.0, 0.0, d0, d1, d2, d3)
            o[j] = efficiency(work, r[PS_ENERGY, j], threshold)
    if slot[ERGOTROPY_LOCAL] >= 0:
        o = out[slot[ERGOTROPY_LOCAL], p, start:start + n]
        for j in range(n):
            nz = r[PS_PE, j] - r[PS_PG, j]
            o[j] = ergotropy_local(delta, 0.0, r[PS_NY, j], nz, 0.0, r[PS_NY, j], nz)
    if slot[ERGOTROPY_INCOHERENT_CELL] >= 0:
        o = out[slot[ERGOTROPY_INCOHERENT_CELL], p, start:start + n]
        for j in range(n):
            o[j] = ergotropy_incoherent_cell(delta, r[PS_PE, j] - r[PS_PG, j])
    if slot[EFFICIENCY_INCOHERENT] >= 0:
        o = out[slot[EFFICIENCY_INCOHERENT], p, start:start + n]
        for j in range(n):
            work = ergotropy_incoherent_cell(delta, r[PS_PE, j] - r[PS_PG, j])
            o[j] = efficiency_incoherent(work, r[PS_ENERGY, j], threshold)
    if slot[ENTROPY_CELL] >= 0:  # a pure cell
        out[slot[ENTROPY_CELL], p, start:start + n] = 0.0
    if slot[ENTROPY_BATTERY] >= 0:  # a pure rho_B
        out[slot[ENTROPY_BATTERY], p, start:start + n] = 0.0
    if slot[ENTROPY_DIAG_CELL] >= 0:
        o = out[slot[ENTROPY_DIAG_CELL], p, start:start + n]
        for j in range(n):
            o[j] = r[PS_H_Z, j]
    if slot[PURITY_CELL] >= 0:
        out[slot[PURITY_CELL], p, start:start + n] = 1.0
    if slot[PURITY_BATTERY] >= 0:
        out[slot[PURITY_BATTERY], p, start:start + n] = 1.0
    if slot[CONCURRENCE] >= 0:  # a product state
        out[slot[CONCURRENCE], p, start:start + n] = 0.0
    if steer:
        for k in (STEERING_AB, STEERING_BA):
            if slot[k] >= 0:
                o = out[slot[k], p, start:start + n]
                for j in range(n):
                    o[j] = steering_product(1.0, r[PS_H_Y, j], r[PS_H_Z, j])
    if slot[POWER] >= 0:
        o = out[slot[POWER], p, start:start + n]
        tb = t[start:start + n]
        for j in range(n):
            o[j] = power(r[PS_ENERGY, j], tb[j])
