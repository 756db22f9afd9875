"""Parallel kernels over a flat grid of parameter points times a time axis.

Shapes (P parameter points, T times, M requested metrics):
    params (P, n_params) float64, columns in the model's parameter order (qbfast.params);
    t (T,) float64, >= 0 and increasing;
    out (M, P, T) float64, metric ``m`` written to out[slot[m]] (slot[m] = -1: not requested);
    bare: 0 -> energies w.r.t. the model's H_b, 1 -> w.r.t. H0 = (Delta/2)(s1z + s2z).

The dynamics always uses the model's own Hamiltonian; ``bare`` only changes the accounting.
Parallelism: ``numba.prange`` over (point, block of times) so that a single parameter point with
a long time axis still uses every thread (except field "full", which is sequential in t).
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import parallel_kernel
from .eigh import eigh_inplace
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
from .propagate import drive_angle, drive_product_state, magnus4_step
from .states import cavity_state_metrics, pure_state_metrics

T_BLOCK = 256  # times per parallel work item


@parallel_kernel
def cavity_grid(params, t, bare, slot, out):
    """Cavity model: one diagonalization of the sector Hamiltonian (eq. 24) per point, then
    c_k(t) = sum_m V_km V_1m* exp(-i E_m t) at every time (exact)."""
    n_points = params.shape[0]
    n_t = t.shape[0]
    energies = np.empty((n_points, 4))
    weights = np.empty((n_points, 4, 4), dtype=np.complex128)
    for p in numba.prange(n_points):
        h = np.empty((4, 4), dtype=np.complex128)
        w = np.empty(4)
        v = np.empty((4, 4), dtype=np.complex128)
        fill_cavity_sector(h, params[p, 0], params[p, 1], params[p, 2], params[p, 3],
                           params[p, 4], params[p, 5])
        eigh_inplace(h, w, v)
        for m in range(4):
            energies[p, m] = w[m]
            for kk in range(4):
                weights[p, kk, m] = v[kk, m] * v[0, m].conjugate()

    n_blocks = (n_t + T_BLOCK - 1) // T_BLOCK
    for job in numba.prange(n_points * n_blocks):
        p = job // n_blocks
        start = (job % n_blocks) * T_BLOCK
        stop = min(start + T_BLOCK, n_t)
        j1 = params[p, 1]
        j2 = params[p, 2]
        delta = params[p, 5]
        hb = bare_battery(delta) if bare else cavity_battery(delta, j1, j2)
        spectrum = battery_spectrum(hb[0], hb[1], hb[2], hb[3], hb[4])
        threshold = efficiency_threshold(delta, spectrum[0], spectrum[3])
        e0 = energies[p, 0]
        e1 = energies[p, 1]
        e2 = energies[p, 2]
        e3 = energies[p, 3]
        for k in range(start, stop):
            tk = t[k]
            ph0 = np.exp(-1j * (e0 * tk))
            ph1 = np.exp(-1j * (e1 * tk))
            ph2 = np.exp(-1j * (e2 * tk))
            ph3 = np.exp(-1j * (e3 * tk))
            c1 = weights[p, 0, 0] * ph0 + weights[p, 0, 1] * ph1 + weights[p, 0, 2] * ph2 + weights[p, 0, 3] * ph3
            c2 = weights[p, 1, 0] * ph0 + weights[p, 1, 1] * ph1 + weights[p, 1, 2] * ph2 + weights[p, 1, 3] * ph3
            c3 = weights[p, 2, 0] * ph0 + weights[p, 2, 1] * ph1 + weights[p, 2, 2] * ph2 + weights[p, 2, 3] * ph3
            c4 = weights[p, 3, 0] * ph0 + weights[p, 3, 1] * ph1 + weights[p, 3, 2] * ph2 + weights[p, 3, 3] * ph3
            cavity_state_metrics(out, slot, p, k, tk, delta, threshold, hb, spectrum, hb[3],
                                 c1, c2, c3, c4)


@parallel_kernel
def field_drive_grid(params, t, bare, slot, out):
    """Field model, protocol "drive": the closed-form product state of eq. 16 at every time."""
    n_points = params.shape[0]
    n_t = t.shape[0]
    n_blocks = (n_t + T_BLOCK - 1) // T_BLOCK
    for job in numba.prange(n_points * n_blocks):
        p = job // n_blocks
        start = (job % n_blocks) * T_BLOCK
        stop = min(start + T_BLOCK, n_t)
        a = params[p, 0]
        b = params[p, 1]
        omega = params[p, 2]
        g = params[p, 3]
        delta = params[p, 4]
        hb = bare_battery(delta) if bare else field_battery(delta, g)
        spectrum = battery_spectrum(hb[0], hb[1], hb[2], hb[3], hb[4])
        threshold = efficiency_threshold(delta, spectrum[0], spectrum[3])
        for k in range(start, stop):
            tk = t[k]
            psi_ee, psi_eg, psi_ge, psi_gg = drive_product_state(drive_angle(tk, a, b, omega))
            pure_state_metrics(out, slot, p, k, tk, delta, threshold, hb, spectrum, hb[3],
                               psi_ee, psi_eg, psi_ge, psi_gg)


@parallel_kernel
def field_full_grid(params, t, bare, slot, out, max_step):
    """Field model, protocol "full": psi(t) under H(t) = H_a(t) + H_b from |gg>, by
    :func:`magnus4_step` with steps of at most ``max_step[p]`` between output times."""
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
        spectrum = battery_spectrum(hb[0], hb[1], hb[2], hb[3], hb[4])
        threshold = efficiency_threshold(delta, spectrum[0], spectrum[3])

        x = np.empty((4, 4), dtype=np.complex128)
        hbm = np.empty((4, 4), dtype=np.complex128)
        comm = np.empty((4, 4), dtype=np.complex128)
        k_work = np.empty((4, 4), dtype=np.complex128)
        v = np.empty((4, 4), dtype=np.complex128)
        w = np.empty(4)
        tmp = np.empty(4, dtype=np.complex128)
        psi = np.zeros(4, dtype=np.complex128)
        fill_collective_x(x)
        fill_battery_matrix(hbm, hb_dyn[0], hb_dyn[1], hb_dyn[2], hb_dyn[3], hb_dyn[4])
        # comm = -i [X, H_b]
        for i in range(4):
            for j in range(4):
                acc = 0j
                for m in range(4):
                    acc += x[i, m] * hbm[m, j] - hbm[i, m] * x[m, j]
                comm[i, j] = -1j * acc
        psi[3] = 1.0
        t_now = 0.0
        h_max = max_step[p]
        for k in range(n_t):
            span = t[k] - t_now
            if span > 0.0:
                n_sub = int(np.ceil(span / h_max))
                h = span / n_sub
                for s in range(n_sub):
                    magnus4_step(psi, h, t_now + s * h, a, b, omega, x, hbm, comm,
                                 k_work, w, v, tmp)
                t_now = t[k]
                # unitary steps preserve the norm; remove the rounding drift
                norm = np.sqrt(psi[0].real ** 2 + psi[0].imag ** 2 + psi[1].real ** 2
                               + psi[1].imag ** 2 + psi[2].real ** 2 + psi[2].imag ** 2
                               + psi[3].real ** 2 + psi[3].imag ** 2)
                for i in range(4):
                    psi[i] /= norm
            pure_state_metrics(out, slot, p, k, t[k], delta, threshold, hb, spectrum, hb[3],
                               psi[0], psi[1], psi[2], psi[3])
