"""From battery state amplitudes to the state summary that :mod:`.metrics` consumes.

Two routes, each exact for the states the models produce. Each writes column ``j`` of a
summary array (rows :data:`.metrics.ENERGY_ROW` ... :data:`.metrics.CONC`).

- :func:`pure_state_summary`: a pure two-qubit state psi = (psi_ee, psi_eg, psi_ge, psi_gg)
  (field model, both protocols). rho_B = |psi><psi| has spectrum (|psi|^2, 0, 0, 0);
  concurrence C = 2 |psi_ee psi_gg - psi_eg psi_ge|.
- :func:`product_state_summary`: the field drive state phi x phi, phi = c |g> - i s |e>
  (c = cos A1, s = sin A1, paper eq. 16); summary rows ``PS_*`` for
  :func:`.metrics.write_block_product`.
- :func:`xstate_summary`: the cavity model's sector amplitudes (c1, c2, c3, c4) of
  (|n,gg>, |n-1,eg>, |n-1,ge>, |n-2,ee>). Tracing out the cavity gives the X state
  rho_B = diag(|c4|^2, [[|c2|^2, c2 c3*], [c3 c2*, |c3|^2]], |c1|^2); exchange symmetry
  makes c2 = c3, so it is fixed by three populations; it has its own summary rows (``XS_*``)
  and metric writer (:func:`.metrics.write_block_xstate`).

Pauli conventions: basis (|e>, |g>), sigma_z|e> = +|e>; <sigma_x> = 2 Re rho_eg,
<sigma_y> = -2 Im rho_eg, <sigma_z> = rho_ee - rho_gg. Complex amplitudes are passed as
(real, imaginary) pairs so that the loops calling these vectorize.

``hb`` = (h_ee, h_eg, h_ge, h_gg, h_x) is the battery Hamiltonian used for energies
(see :mod:`.hamiltonians`).
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel, leaf
from .fastmath import fma
from .metrics import (
    CONC,
    CX,
    CY,
    CZ,
    ENERGY_ROW,
    NX,
    NY,
    NZ,
    PS_ENERGY,
    PS_NY,
    PS_PE,
    PS_PG,
    R0,
    R1,
    R2,
    R3,
    SX,
    SY,
    SZ,
    XS_EE,
    XS_ENERGY,
    XS_GG,
    XS_NZ,
    XS_T,
    energy,
)


@kernel
def pure_state_constant_rows(summary):
    """The rows that are 0 for every pure state (rho_B's spectrum beyond |psi|^2). Set once
    per scratch array: writing constants inside the per-time loop stops LLVM vectorizing it."""
    summary[R1, :] = 0.0
    summary[R2, :] = 0.0
    summary[R3, :] = 0.0


@leaf
def pure_state_summary(summary, j, hb, ar, ai, br, bi, cr, ci, dr, di):
    """Summary of the pure state a|ee> + b|eg> + c|ge> + d|gg> into summary[:, j]
    (the rows of :func:`pure_state_constant_rows` must have been set)."""
    pa = ar * ar + ai * ai
    pb = br * br + bi * bi
    pc = cr * cr + ci * ci
    pd = dr * dr + di * di
    # rho_{eg,ge} = b c*, rho_{ee,gg} = a d*
    bc_re = br * cr + bi * ci
    ad_re = ar * dr + ai * di
    summary[ENERGY_ROW, j] = energy(hb, pa, pb, pc, bc_re)
    # cell a: rho1_eg = sum_b psi[e b] psi[g b]* = a c* + b d*
    r1_re = ar * cr + ai * ci + br * dr + bi * di
    r1_im = ai * cr - ar * ci + bi * dr - br * di
    # cell b: rho2_eg = sum_a psi[a e] psi[a g]* = a b* + c d*
    r2_re = ar * br + ai * bi + cr * dr + ci * di
    r2_im = ai * br - ar * bi + ci * dr - cr * di
    summary[NX, j] = 2.0 * r1_re
    summary[NY, j] = -2.0 * r1_im
    summary[NZ, j] = pa + pb - pc - pd
    summary[SX, j] = 2.0 * r2_re
    summary[SY, j] = -2.0 * r2_im
    summary[SZ, j] = pa + pc - pb - pd
    summary[CX, j] = 2.0 * (bc_re + ad_re)
    summary[CY, j] = 2.0 * (bc_re - ad_re)
    summary[CZ, j] = pa + pd - pb - pc
    # a d - b c
    det_re = ar * dr - ai * di - (br * cr - bi * ci)
    det_im = ar * di + ai * dr - (br * ci + bi * cr)
    summary[CONC, j] = 2.0 * np.sqrt(det_re * det_re + det_im * det_im)
    summary[R0, j] = pa + pb + pc + pd


@leaf
def xstate_summary(rows, j, hb, c1r, c1i, ctr, cti, c4r, c4i):
    """The cavity X state's summary rows (:data:`.metrics.XS_ENERGY` .. :data:`.metrics.XS_NZ`)
    into rows[:, j] from the amplitudes c1 of |n,gg>, c_T of the triplet
    (|n-1,eg> + |n-1,ge>)/sqrt(2) and c4 of |n-2,ee> (the state never has a singlet part, see
    :func:`.hamiltonians.fill_cavity_sector`): energy, the populations p_gg, p_T = p_eg + p_ge,
    p_ee and n_z = s_z = p_ee - p_gg. With c_eg = c_ge = c_T/sqrt(2):
    p_eg = p_ge = Re rho_{eg,ge} = p_T / 2."""
    xstate_rows(rows, j, hb, c1r * c1r + c1i * c1i, ctr * ctr + cti * cti,
                c4r * c4r + c4i * c4i)


@leaf
def xstate_rows(rows, j, hb, p_gg, p_t, p_ee):
    """The X state's summary rows (as :func:`xstate_summary`) from its populations p_gg,
    p_T = p_eg + p_ge and p_ee (p_eg = p_ge = Re rho_{eg,ge} = p_T / 2)."""
    half = 0.5 * p_t
    rows[XS_ENERGY, j] = energy(hb, p_ee, half, half, half)
    rows[XS_GG, j] = p_gg
    rows[XS_T, j] = p_t
    rows[XS_EE, j] = p_ee
    rows[XS_NZ, j] = p_ee - p_gg


@leaf
def sector_amplitude(w0r, w0i, w1r, w1i, w2r, w2i, k1, s1, k2, s2):
    """(re, im) of sum_m w_m e^{-i phi_m} with phi_0 = 0 and (sin, cos) phi_m = (s_m, k_m):
    one amplitude of a cavity sector in phases relative to its first eigenvalue
    (re = w0r + sum w_mr k_m + w_mi s_m, im = w0i + sum w_mi k_m - w_mr s_m, fused
    multiply-adds in this order)."""
    re = fma(w2i, s2, fma(w2r, k2, fma(w1i, s1, fma(w1r, k1, w0r))))
    im = fma(-w2r, s2, fma(w2i, k2, fma(-w1r, s1, fma(w1i, k1, w0i))))
    return re, im


@leaf
def sector_amplitude3(w0r, w0i, w1r, w1i, w2r, w2i, k0, s0, k1, s1, k2, s2):
    """As :func:`sector_amplitude` with the phase of the first eigenvalue kept,
    (sin, cos) phi_0 = (s0, k0): the absolute phases that coherences between sectors see."""
    re = fma(w2i, s2, fma(w2r, k2, fma(w1i, s1, fma(w1r, k1, fma(w0i, s0, w0r * k0)))))
    im = fma(-w2r, s2, fma(w2i, k2, fma(-w1r, s1, fma(w1i, k1, fma(-w0r, s0, w0i * k0)))))
    return re, im


@leaf
def product_state_summary(rows, j, hb, s, c):
    """The drive state's summary rows (:data:`.metrics.PS_ENERGY` .. :data:`.metrics.PS_NY`)
    into rows[:, j], for phi = c |g> - i s |e> in both cells: energy, the cell populations
    p_e = s^2, p_g = c^2 and n_y = <sigma_y> = -2 Im rho_eg = 2 s c.

    psi = phi x phi = (-s^2, -i s c, -i s c, c^2): p_ee = s^4, p_eg = p_ge = s^2 c^2 and
    Re rho_{eg,ge} = s^2 c^2."""
    p_e = s * s
    p_g = c * c
    mixed = p_e * p_g
    rows[PS_ENERGY, j] = energy(hb, p_e * p_e, mixed, mixed, mixed)
    rows[PS_PE, j] = p_e
    rows[PS_PG, j] = p_g
    rows[PS_NY, j] = 2.0 * s * c
