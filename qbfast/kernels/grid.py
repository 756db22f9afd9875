"""Parallel kernels over a flat grid of parameter points times a time axis.

Shapes (P parameter points, T times, M requested metrics):
    params (P, n_params) float64, columns in the model's parameter order (qbfast.params);
    t (T,) float64, >= 0 and increasing;
    out (M, P, T) float64, metric ``m`` written to out[slot[m]] (slot[m] = -1: not requested);
    bare: 0 -> energies w.r.t. the model's H_b, 1 -> w.r.t. H0 = (Delta/2)(s1z + s2z).

The dynamics always uses the model's own Hamiltonian; ``bare`` only changes the accounting.
Parallelism: work items are (point, block of times), so that a single parameter point with a
long time axis still uses every thread (except field "full", which is sequential in t); they are
dealt round-robin to ``n_threads`` ``numba.prange`` workers that each allocate their scratch once.

Two routes per closed-form kernel, with the same formulas in the same order (so the same bits,
tests/kernels/test_grid.py): the staged route (``_cavity_block``, ``_drive_block``) writes a
block's state summary into scratch rows and then runs one loop per requested metric, computing
only what those need; the fused route (``_cavity_block_fused``, ``_drive_block_fused``) computes
all 15 metrics of a time in one loop, in registers, and stores them straight into their output
rows, so that the stores to memory overlap the arithmetic. Which is faster depends on how many
metrics are requested: the kernels take the route as an argument (:data:`ROUTES`, from the
strings "auto", "staged", "fused" by :func:`route_code`); "auto" picks by
:data:`CAVITY_FUSED_MIN_METRICS` / :data:`DRIVE_FUSED_MIN_METRICS`, measured by
``python -m bench.kernels --routes``.
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import kernel, parallel_kernel
from .eigh import eigh_inplace
from .fastmath import SIN_COS_MAX_ARG, fma, sin_cos
from .hamiltonians import (
    bare_battery,
    battery_spectrum,
    cavity_battery,
    efficiency_threshold,
    field_battery,
    fill_battery_matrix,
    fill_cavity_sector,
    fill_collective_x,
)
from .metrics import (
    CONCURRENCE,
    EFFICIENCY,
    EFFICIENCY_INCOHERENT,
    ENERGY,
    ENTROPY_BATTERY,
    ENTROPY_CELL,
    ENTROPY_DIAG_CELL,
    ERGOTROPY,
    ERGOTROPY_INCOHERENT_CELL,
    ERGOTROPY_LOCAL,
    N_METRICS,
    N_PSUMMARY,
    N_SUMMARY,
    N_XSUMMARY,
    POWER,
    PURITY_BATTERY,
    PURITY_CELL,
    STEERING_AB,
    STEERING_BA,
    concurrence_xstate,
    efficiency,
    efficiency_incoherent,
    energy,
    entropy_battery_xstate,
    entropy_cell_xstate,
    ergotropy,
    ergotropy_incoherent_cell,
    ergotropy_local,
    ergotropy_local_z,
    marginal_term,
    outcome_entropy,
    power,
    purity_battery,
    purity_cell,
    spectrum_offsets,
    steering_joint_xstate,
    steering_product,
    steering_xstate,
    write_block,
    write_block_product,
    write_block_xstate,
    xlog2x,
)
from .propagate import drive_angle, magnus4_step
from .states import (
    product_state_summary,
    pure_state_constant_rows,
    pure_state_summary,
    sector_amplitude,
    xstate_summary,
)

# Times per work item. The block's scratch rows (10 x 512 x 8 bytes for the cavity, plus phases
# and amplitudes) stay in the L1/L2 caches; 512 measured faster than 128, 256, 1024 and 2048
# (cavity and drive, 1024 x 2048 grids, in-process A/B).
T_BLOCK = 512


@kernel
def _fill_sin_cos(sin_out, cos_out, row, x0, x1, n, fast):
    """sin_out[row, j], cos_out[row, j] = sin, cos of x0 * x1[j] for j < n: the vectorizable
    :func:`.fastmath.sin_cos` when ``fast`` (all |x| < SIN_COS_MAX_ARG), libm otherwise."""
    if fast:
        for j in range(n):
            sin_out[row, j], cos_out[row, j] = sin_cos(x0 * x1[j])
    else:
        for j in range(n):
            sin_out[row, j] = np.sin(x0 * x1[j])
            cos_out[row, j] = np.cos(x0 * x1[j])


@kernel
def _blocks(n_points, n_t):
    return n_points * ((n_t + T_BLOCK - 1) // T_BLOCK), (n_t + T_BLOCK - 1) // T_BLOCK


@kernel
def _job_span(job, n_blocks, n_t):
    """Work item ``job``: its point p and its block of times start .. start + n."""
    start = (job % n_blocks) * T_BLOCK
    return job // n_blocks, start, min(T_BLOCK, n_t - start)


@kernel
def _accounting(hb, delta):
    """The spectrum (ascending) of the accounting Hamiltonian ``hb`` and the energy below
    which efficiencies are NaN."""
    spectrum = battery_spectrum(hb[0], hb[1], hb[2], hb[3], hb[4])
    return spectrum, efficiency_threshold(delta, spectrum[0], spectrum[3])


@kernel
def _cavity_block(job, n_blocks, n_t, t, t_max, params, bare, slot, out, energies, w_re, w_im,
                  rows, sn, cs, amp):
    """One (point, block of times) work item of :func:`cavity_grid`."""
    p, start, n = _job_span(job, n_blocks, n_t)
    delta = params[p, 5]
    hb = bare_battery(delta) if bare else cavity_battery(delta, params[p, 1], params[p, 2])
    spectrum, threshold = _accounting(hb, delta)
    e = energies[p]
    wr = w_re[p]
    wi = w_im[p]
    # phases relative to E_0 (a global phase): exp(-i (E_m - E_0) t), m = 1, 2
    fast = max(abs(e[1] - e[0]), abs(e[2] - e[0])) * t_max < SIN_COS_MAX_ARG
    tb = t[start:start + n]
    for m in range(1, 3):
        _fill_sin_cos(sn, cs, m, e[m] - e[0], tb, n, fast)
    # c_k(t) = sum_m w_km (cos - i sin)((E_m - E_0) t), one row per k = gg, T, ee (m = 0:
    # phase 1); the weights are hoisted into scalars so that the loop is a pure stream
    for k in range(3):
        w0r = wr[k, 0]
        w1r = wr[k, 1]
        w2r = wr[k, 2]
        w0i = wi[k, 0]
        w1i = wi[k, 1]
        w2i = wi[k, 2]
        re = amp[2 * k]
        im = amp[2 * k + 1]
        for j in range(n):
            re[j] = fma(w2i, sn[2, j], fma(w2r, cs[2, j], fma(w1i, sn[1, j], fma(
                w1r, cs[1, j], w0r))))
            im[j] = fma(-w2r, sn[2, j], fma(w2i, cs[2, j], fma(-w1r, sn[1, j], fma(
                w1i, cs[1, j], w0i))))
    for j in range(n):
        xstate_summary(rows, j, hb, amp[0, j], amp[1, j], amp[2, j], amp[3, j],
                       amp[4, j], amp[5, j])
    write_block_xstate(out, slot, p, start, t, rows, n, delta, threshold, hb[3], spectrum)


@kernel
def _cavity_weights(params, p, energies, w_re, w_im):
    """Diagonalize point p's sector Hamiltonian: energies[p] = the three eigenvalues of the
    symmetric ladder (ascending) and w_re/w_im[p, k, m] = V_km V_gg,m* for k = gg, T, ee."""
    h = np.empty((4, 4), dtype=np.complex128)
    w = np.empty(4)
    v = np.empty((4, 4), dtype=np.complex128)
    fill_cavity_sector(h, params[p, 0], params[p, 1], params[p, 2], params[p, 3],
                       params[p, 4], params[p, 5])
    eigh_inplace(h, w, v)
    # the singlet stays exactly decoupled (Jacobi never rotates a zero pair): its
    # eigenvector is the basis vector 3; keep the other three, ascending
    singlet = 0
    for m in range(1, 4):
        if abs(v[3, m]) > abs(v[3, singlet]):
            singlet = m
    i = 0
    for m in range(4):
        if m == singlet:
            continue
        energies[p, i] = w[m]
        for kk in range(3):
            z = v[kk, m] * v[0, m].conjugate()
            w_re[p, kk, i] = z.real
            w_im[p, kk, i] = z.imag
        i += 1


#: Metrics that need the logarithms (entropies, steering).
LOG_METRICS = (ENTROPY_CELL, ENTROPY_BATTERY, ENTROPY_DIAG_CELL, STEERING_AB, STEERING_BA)
#: Route codes of the grid kernels (Numba takes an integer): ``ROUTE_AUTO`` picks by the
#: thresholds below, ``ROUTE_STAGED`` always takes the staged route, ``ROUTE_FUSED`` the fused
#: route wherever it applies (a point whose phases exceed SIN_COS_MAX_ARG by t_max takes the
#: staged route with libm's sin/cos in every route). Every route gives the same bits.
ROUTE_AUTO = 0
ROUTE_STAGED = 1
ROUTE_FUSED = 2
#: The route names accepted by :func:`route_code` and their codes.
ROUTES = {"auto": ROUTE_AUTO, "staged": ROUTE_STAGED, "fused": ROUTE_FUSED}


def route_code(route: str) -> int:
    """The kernels' integer code of ``route`` ("auto", "staged" or "fused"); any other value
    raises a one-line ValueError naming the allowed values."""
    if not isinstance(route, str) or route not in ROUTES:
        allowed = ", ".join(repr(name) for name in ROUTES)
        raise ValueError(f"route: must be one of {allowed}, got {route!r}")
    return ROUTES[route]


#: The fused routes (:func:`_cavity_block_fused`, :func:`_drive_block_fused`) compute all 15
#: metrics of a time in one loop and store the requested ones straight into their rows; the
#: staged routes compute only what the requested metrics need, one loop per metric. With
#: ``route="auto"`` the fused route is taken from this many requested metrics on (cavity: only
#: with a log metric among them, :data:`LOG_METRICS`). Measured by
#: ``python -m bench.kernels --routes`` (fused/staged points/s per metric count, both routes
#: on the same grid, interleaved); first set from an in-process A/B, 2 threads, 2026-11-25:
#: cavity 5 metrics 0.86x, 6: 1.11x, 8: 1.26x, 15: 1.41x; drive 8: 0.93x, 11: 1.13x,
#: 15: 1.29-1.40x; energy + ergotropy 0.4x.
CAVITY_FUSED_MIN_METRICS = 6
DRIVE_FUSED_MIN_METRICS = 10


@kernel
def _n_requested(slot):
    """How many metrics ``slot`` requests."""
    n = 0
    for k in range(slot.shape[0]):
        if slot[k] >= 0:
            n += 1
    return n


@kernel
def _output_row(out, slot, k, p, start, n, sink):
    """Where metric ``k`` of point ``p``, times start .. start + n, goes: its row of ``out``, or
    its own row of the thread's ``sink`` (N_METRICS, T_BLOCK) when it is not requested."""
    s = slot[k]
    if s >= 0:
        return out[s, p, start:start + n]
    return sink[k, :n]


@kernel
def _output_rows(out, slot, p, start, n, sink):
    """:func:`_output_row` of every metric, in slot order (ENERGY .. POWER)."""
    return (_output_row(out, slot, ENERGY, p, start, n, sink),
            _output_row(out, slot, ERGOTROPY, p, start, n, sink),
            _output_row(out, slot, EFFICIENCY, p, start, n, sink),
            _output_row(out, slot, ERGOTROPY_LOCAL, p, start, n, sink),
            _output_row(out, slot, ERGOTROPY_INCOHERENT_CELL, p, start, n, sink),
            _output_row(out, slot, EFFICIENCY_INCOHERENT, p, start, n, sink),
            _output_row(out, slot, ENTROPY_CELL, p, start, n, sink),
            _output_row(out, slot, ENTROPY_BATTERY, p, start, n, sink),
            _output_row(out, slot, ENTROPY_DIAG_CELL, p, start, n, sink),
            _output_row(out, slot, PURITY_CELL, p, start, n, sink),
            _output_row(out, slot, PURITY_BATTERY, p, start, n, sink),
            _output_row(out, slot, CONCURRENCE, p, start, n, sink),
            _output_row(out, slot, STEERING_AB, p, start, n, sink),
            _output_row(out, slot, STEERING_BA, p, start, n, sink),
            _output_row(out, slot, POWER, p, start, n, sink))


@kernel
def _cavity_block_fused(job, n_blocks, n_t, t, params, bare, slot, out, energies, w_re, w_im,
                        sink):
    """One work item of :func:`cavity_grid`, all 15 metrics in one loop over the times: the
    phases, amplitudes, populations, the 7 logarithms and every metric of a time are computed
    in registers and stored straight into the 15 output rows. The same formulas as
    :func:`_cavity_block` (``xstate_summary`` then ``write_block_xstate``) in the same order,
    so the same bits; but no scratch rows, whose stores otherwise queue behind the output's
    and keep the arithmetic from overlapping the memory traffic (all 15 metrics on
    bench.kernels' 252 MB grid: 1.4x). Requires |phase| < SIN_COS_MAX_ARG."""
    p, start, n = _job_span(job, n_blocks, n_t)
    delta = params[p, 5]
    hb = bare_battery(delta) if bare else cavity_battery(delta, params[p, 1], params[p, 2])
    spectrum, threshold = _accounting(hb, delta)
    d0, d1, d2, d3 = spectrum_offsets(spectrum, hb[3])
    e = energies[p]
    f1 = e[1] - e[0]
    f2 = e[2] - e[0]
    wr = w_re[p]
    wi = w_im[p]
    # weights of c_k = sum_m w_km exp(-i (E_m - E_0) t) for k = gg (g*), T (b*), ee (c*)
    g0r, g1r, g2r, g0i, g1i, g2i = wr[0, 0], wr[0, 1], wr[0, 2], wi[0, 0], wi[0, 1], wi[0, 2]
    b0r, b1r, b2r, b0i, b1i, b2i = wr[1, 0], wr[1, 1], wr[1, 2], wi[1, 0], wi[1, 1], wi[1, 2]
    c0r, c1r, c2r, c0i, c1i, c2i = wr[2, 0], wr[2, 1], wr[2, 2], wi[2, 0], wi[2, 1], wi[2, 2]
    tb = t[start:start + n]
    (o_energy, o_ergotropy, o_efficiency, o_local, o_incoherent, o_eff_incoherent, o_s_cell,
     o_s_battery, o_s_diag, o_p_cell, o_p_battery, o_concurrence, o_steer_ab, o_steer_ba,
     o_power) = _output_rows(out, slot, p, start, n, sink)
    for j in range(n):
        s1, k1 = sin_cos(f1 * tb[j])
        s2, k2 = sin_cos(f2 * tb[j])
        gr, gi = sector_amplitude(g0r, g0i, g1r, g1i, g2r, g2i, k1, s1, k2, s2)
        tr, ti = sector_amplitude(b0r, b0i, b1r, b1i, b2r, b2i, k1, s1, k2, s2)
        er, ei = sector_amplitude(c0r, c0i, c1r, c1i, c2r, c2i, k1, s1, k2, s2)
        # as xstate_summary
        p_gg = gr * gr + gi * gi
        p_t = tr * tr + ti * ti
        p_ee = er * er + ei * ei
        half = 0.5 * p_t
        stored = energy(hb, p_ee, half, half, half)
        nz = p_ee - p_gg
        # as write_block_xstate
        l_gg = xlog2x(p_gg)
        l_t = xlog2x(p_t)
        l_ee = xlog2x(p_ee)
        joint = steering_joint_xstate(l_gg, l_t, l_ee, p_t)
        m_nz = marginal_term(nz)
        work = ergotropy(stored, p_gg, p_t, p_ee, 0.0, d0, d1, d2, d3)
        incoherent = ergotropy_incoherent_cell(delta, nz)
        steer = steering_xstate(joint, m_nz)
        o_energy[j] = stored
        o_ergotropy[j] = work
        o_efficiency[j] = efficiency(work, stored, threshold)
        o_local[j] = ergotropy_local_z(delta, nz, nz)
        o_incoherent[j] = incoherent
        o_eff_incoherent[j] = efficiency_incoherent(incoherent, stored, threshold)
        o_s_cell[j] = entropy_cell_xstate(m_nz)
        o_s_battery[j] = entropy_battery_xstate(l_gg, l_t, l_ee)
        o_s_diag[j] = entropy_cell_xstate(m_nz)
        o_p_cell[j] = purity_cell(0.0, 0.0, nz)
        o_p_battery[j] = purity_battery(p_gg, p_t, p_ee, 0.0)
        o_concurrence[j] = concurrence_xstate(p_gg, p_t, p_ee)
        o_steer_ab[j] = steer
        o_steer_ba[j] = steer
        o_power[j] = power(stored, tb[j])


@kernel
def _cavity_fused(slot, route):
    """Whether :func:`cavity_grid` takes the fused route (where the phases allow it)."""
    if route == ROUTE_STAGED:
        return False
    if route == ROUTE_FUSED:
        return True
    fused = False
    for k in LOG_METRICS:
        fused = fused or slot[k] >= 0
    return fused and _n_requested(slot) >= CAVITY_FUSED_MIN_METRICS


@kernel
def _drive_fused(slot, route):
    """Whether :func:`field_drive_grid` takes the fused route (where the phases allow it)."""
    if route == ROUTE_STAGED:
        return False
    if route == ROUTE_FUSED:
        return True
    return _n_requested(slot) >= DRIVE_FUSED_MIN_METRICS


@parallel_kernel
def cavity_grid(params, t, bare, slot, out, n_threads, route):
    """Cavity model: one diagonalization of the sector Hamiltonian (eq. 24, in the
    exchange-symmetric basis of :func:`.hamiltonians.fill_cavity_sector`) per point, then
    c_k(t) = sum_m V_km V_gg,m* exp(-i E_m t) at every time (exact), k = gg, T, ee and m over
    the three eigenstates of the symmetric ladder (the decoupled singlet has weight 0).
    ``route``: a code of :data:`ROUTES` (:func:`route_code`)."""
    n_points = params.shape[0]
    n_t = t.shape[0]
    energies = np.empty((n_points, 3))
    w_re = np.empty((n_points, 3, 3))
    w_im = np.empty((n_points, 3, 3))
    for p in numba.prange(n_points):
        _cavity_weights(params, p, energies, w_re, w_im)

    n_jobs, n_blocks = _blocks(n_points, n_t)
    t_max = t[n_t - 1]
    fused = _cavity_fused(slot, route)
    n_workers = max(1, min(n_threads, n_jobs))
    for worker in numba.prange(n_workers):
        # scratch once per thread; jobs dealt round-robin (they all cost the same)
        rows = np.empty((N_XSUMMARY, T_BLOCK))
        sn = np.empty((3, T_BLOCK))  # rows 1-2 used: the phase of E_0 is a global phase
        cs = np.empty((3, T_BLOCK))
        amp = np.empty((6, T_BLOCK))
        sink = np.empty((N_METRICS, T_BLOCK))
        for job in range(worker, n_jobs, n_workers):
            e = energies[job // n_blocks]
            if fused and max(abs(e[1] - e[0]), abs(e[2] - e[0])) * t_max < SIN_COS_MAX_ARG:
                _cavity_block_fused(job, n_blocks, n_t, t, params, bare, slot, out, energies,
                                    w_re, w_im, sink)
            else:
                _cavity_block(job, n_blocks, n_t, t, t_max, params, bare, slot, out,
                              energies, w_re, w_im, rows, sn, cs, amp)


@kernel
def _drive_fast(params, p, t_max):
    """Whether point p's drive phases (omega t and A1(t), |A1| <= (|A| + |B|) t / 2) stay in
    the range of the fast sin_cos up to t_max."""
    a = params[p, 0]
    b = params[p, 1]
    omega = params[p, 2]
    return abs(omega) * t_max < SIN_COS_MAX_ARG and (abs(a) + abs(b)) * t_max < SIN_COS_MAX_ARG


@kernel
def _drive_block(job, n_blocks, n_t, t, t_max, params, bare, slot, out, rows, sn, cs):
    """One (point, block of times) work item of :func:`field_drive_grid`."""
    p, start, n = _job_span(job, n_blocks, n_t)
    a = params[p, 0]
    b = params[p, 1]
    omega = params[p, 2]
    delta = params[p, 4]
    hb = bare_battery(delta) if bare else field_battery(delta, params[p, 3])
    spectrum, threshold = _accounting(hb, delta)
    fast = _drive_fast(params, p, t_max)
    tb = t[start:start + n]
    _fill_sin_cos(sn, cs, 0, omega, tb, n, fast)
    for j in range(n):
        sn[1, j] = drive_angle(tb[j], a, b, omega, sn[0, j])
    _fill_sin_cos(sn, cs, 2, 1.0, sn[1], n, fast)
    for j in range(n):
        product_state_summary(rows, j, hb, sn[2, j], cs[2, j])
    write_block_product(out, slot, p, start, t, rows, n, delta, threshold, hb[3], spectrum)


@kernel
def _drive_block_fused(job, n_blocks, n_t, t, params, bare, slot, out, sink):
    """One work item of :func:`field_drive_grid` with every metric of a time computed in one
    loop and stored straight into its row (as :func:`_cavity_block_fused`; the same formulas
    and order as :func:`_drive_block`, so the same bits). Requires :func:`_drive_fast`."""
    p, start, n = _job_span(job, n_blocks, n_t)
    a = params[p, 0]
    b = params[p, 1]
    omega = params[p, 2]
    delta = params[p, 4]
    hb = bare_battery(delta) if bare else field_battery(delta, params[p, 3])
    spectrum, threshold = _accounting(hb, delta)
    d0, d1, d2, d3 = spectrum_offsets(spectrum, hb[3])
    tb = t[start:start + n]
    (o_energy, o_ergotropy, o_efficiency, o_local, o_incoherent, o_eff_incoherent, o_s_cell,
     o_s_battery, o_s_diag, o_p_cell, o_p_battery, o_concurrence, o_steer_ab, o_steer_ba,
     o_power) = _output_rows(out, slot, p, start, n, sink)
    for j in range(n):
        sin_wt = sin_cos(omega * tb[j])[0]
        s, c = sin_cos(1.0 * drive_angle(tb[j], a, b, omega, sin_wt))
        # as product_state_summary
        p_e = s * s
        p_g = c * c
        mixed = p_e * p_g
        stored = energy(hb, p_e * p_e, mixed, mixed, mixed)
        ny = 2.0 * s * c
        # as write_block_product
        h_z = outcome_entropy(p_e, p_g)
        h_y = outcome_entropy(0.5 * (1.0 + ny), 0.5 * (1.0 - ny))
        nz = p_e - p_g
        work = ergotropy(stored, 1.0, 0.0, 0.0, 0.0, d0, d1, d2, d3)
        incoherent = ergotropy_incoherent_cell(delta, nz)
        steer = steering_product(1.0, h_y, h_z)
        o_energy[j] = stored
        o_ergotropy[j] = work
        o_efficiency[j] = efficiency(work, stored, threshold)
        o_local[j] = ergotropy_local(delta, 0.0, ny, nz, 0.0, ny, nz)
        o_incoherent[j] = incoherent
        o_eff_incoherent[j] = efficiency_incoherent(incoherent, stored, threshold)
        o_s_cell[j] = 0.0
        o_s_battery[j] = 0.0
        o_s_diag[j] = h_z
        o_p_cell[j] = 1.0
        o_p_battery[j] = 1.0
        o_concurrence[j] = 0.0
        o_steer_ab[j] = steer
        o_steer_ba[j] = steer
        o_power[j] = power(stored, tb[j])


@parallel_kernel
def field_drive_grid(params, t, bare, slot, out, n_threads, route):
    """Field model, protocol "drive": the closed-form product state of eq. 16,
    |phi>|phi> with |phi> = cos A1 |g> - i sin A1 |e>, at every time. ``route``: a code of
    :data:`ROUTES` (:func:`route_code`)."""
    n_t = t.shape[0]
    n_jobs, n_blocks = _blocks(params.shape[0], n_t)
    t_max = t[n_t - 1]
    n_workers = max(1, min(n_threads, n_jobs))
    fused = _drive_fused(slot, route)
    for worker in numba.prange(n_workers):
        rows = np.empty((N_PSUMMARY, T_BLOCK))
        sn = np.empty((3, T_BLOCK))
        cs = np.empty((3, T_BLOCK))
        sink = np.empty((N_METRICS, T_BLOCK))
        for job in range(worker, n_jobs, n_workers):
            if fused and _drive_fast(params, job // n_blocks, t_max):
                _drive_block_fused(job, n_blocks, n_t, t, params, bare, slot, out, sink)
            else:
                _drive_block(job, n_blocks, n_t, t, t_max, params, bare, slot, out, rows, sn,
                             cs)


@parallel_kernel
def field_full_grid(params, t, bare, slot, out, max_step):
    """Field model, protocol "full": psi(t) under H(t) = H_a(t) + H_b from |gg>, by
    :func:`.propagate.magnus4_step` with steps of at most ``max_step[p]`` between output times."""
    n_points = params.shape[0]
    n_t = t.shape[0]
    for p in numba.prange(n_points):
        a = params[p, 0]
        b = params[p, 1]
        omega = params[p, 2]
        g = params[p, 3]
        delta = params[p, 4]
        hb_dyn = field_battery(delta, g)
        hb = bare_battery(delta) if bare else hb_dyn
        spectrum, threshold = _accounting(hb, delta)
        summary = np.empty((N_SUMMARY, T_BLOCK))
        pure_state_constant_rows(summary)
        stored = np.empty(T_BLOCK)
        shared = np.empty(T_BLOCK)

        x = np.empty((4, 4))
        hbm = np.empty((4, 4))
        comm = np.empty((4, 4))
        psi = np.zeros(4, dtype=np.complex128)
        fill_collective_x(x)
        fill_battery_matrix(hbm, hb_dyn[0], hb_dyn[1], hb_dyn[2], hb_dyn[3], hb_dyn[4])
        # comm = [X, H_b] (real antisymmetric)
        for i in range(4):
            for j in range(4):
                acc = 0.0
                for m in range(4):
                    acc += x[i, m] * hbm[m, j] - hbm[i, m] * x[m, j]
                comm[i, j] = acc
        psi[3] = 1.0
        t_now = 0.0
        h_max = max_step[p]
        block_start = 0
        for k in range(n_t):
            span = t[k] - t_now
            if span > 0.0:
                n_sub = int(np.ceil(span / h_max))
                h = span / n_sub
                for s in range(n_sub):
                    magnus4_step(psi, h, t_now + s * h, a, b, omega, x, hbm, comm)
                t_now = t[k]
                # unitary steps preserve the norm; remove the rounding drift
                norm = np.sqrt(psi[0].real ** 2 + psi[0].imag ** 2 + psi[1].real ** 2
                               + psi[1].imag ** 2 + psi[2].real ** 2 + psi[2].imag ** 2
                               + psi[3].real ** 2 + psi[3].imag ** 2)
                for i in range(4):
                    psi[i] /= norm
            pure_state_summary(summary, k - block_start, hb,
                               psi[0].real, psi[0].imag, psi[1].real, psi[1].imag,
                               psi[2].real, psi[2].imag, psi[3].real, psi[3].imag)
            if k - block_start + 1 == T_BLOCK or k == n_t - 1:
                write_block(out, slot, p, block_start, t, summary, k - block_start + 1, delta,
                            threshold, hb[3], spectrum, stored, shared)
                block_start = k + 1
