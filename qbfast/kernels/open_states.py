"""The reducer of the open dynamics: from a swap-symmetric rho_B to the state summary of
:mod:`.metrics` (rows ENERGY_ROW .. CONC), for the general :func:`.metrics.write_block`.

rho_B commutes with the swap of the qubits (:mod:`.lindblad`): in (ee, T0, gg, S) it is the
triplet block M (populations p_ee, p_T, p_gg; coherences X_eT, X_Tg, X_eg) plus the singlet
population p_S. In (ee, eg, ge, gg): rho_eg,eg = rho_ge,ge = (p_T + p_S)/2,
rho_eg,ge = (p_T - p_S)/2, rho_ee,eg = rho_ee,ge = X_eT/sqrt2, rho_eg,gg = rho_ge,gg =
X_Tg/sqrt2, rho_ee,gg = X_eg. Both cells have rho_eg = (X_eT + X_Tg)/sqrt2 and
n_z = p_ee - p_gg; c_x = p_T - p_S + 2 Re X_eg, c_y = p_T - p_S - 2 Re X_eg,
c_z = p_ee + p_gg - p_T - p_S. Spectrum: the triplet block's three eigenvalues and p_S.

Concurrence (Wootters): in this basis sy x sy = -(|ee><gg| + |gg><ee|) + |T0><T0| - |S><S|,
so tau = F^T (sy x sy) F is block diagonal and its singular values are the triplet block's
(l1, l2, l3) (:func:`.chargers.triplet_tau_singular_values`) and p_S:
C = max(0, 2 max(l1, p_S) - l1 - l2 - l3 - p_S). The cavity's rho_B (no coherence between
sectors survives the trace over the cavity) has no triplet coherences: an X state, spectrum
(p_ee, p_T, p_gg, p_S) and C = max(0, |p_T - p_S| - 2 sqrt(p_ee p_gg)) (Yu-Eberly with
rho_14 = 0, rho_23 = (p_T - p_S)/2) (``xstate``).
"""

from __future__ import annotations

import math

from ._jit import kernel
from .chargers import hermitian3_spectrum, triplet_tau_singular_values
from .metrics import CONC, CX, CY, CZ, ENERGY_ROW, NX, NY, NZ, R0, R1, R2, R3, SX, SY, SZ, energy

_SQRT_HALF = 0.7071067811865476


@kernel
def swap_summary(summary, j, hb, p_ee, p_t, p_gg, xet, xtg, xeg, p_s, xstate, m, f):
    """Summary column j of the swap-symmetric rho_B (module docstring); ``xet``, ``xtg``,
    ``xeg`` complex; ``xstate``: the coherences are 0 (cavity); ``m``, ``f`` 3x3 complex
    scratch."""
    summary[ENERGY_ROW, j] = energy(hb, p_ee, 0.5 * (p_t + p_s), 0.5 * (p_t + p_s),
                                    0.5 * (p_t - p_s))
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
    summary[CX, j] = p_t - p_s + 2.0 * xeg.real
    summary[CY, j] = p_t - p_s - 2.0 * xeg.real
    summary[CZ, j] = p_ee + p_gg - p_t - p_s
    summary[R3, j] = p_s
    if xstate:
        summary[R0, j] = p_ee
        summary[R1, j] = p_t
        summary[R2, j] = p_gg
        summary[CONC, j] = max(0.0, abs(p_t - p_s) - 2.0 * math.sqrt(max(p_ee * p_gg, 0.0)))
        return
    r0, r1, r2 = hermitian3_spectrum(p_ee, p_t, p_gg, xet, xeg, xtg)
    summary[R0, j] = r0
    summary[R1, j] = r1
    summary[R2, j] = r2
    m[0, 0] = p_ee
    m[1, 1] = p_t
    m[2, 2] = p_gg
    m[0, 1] = xet
    m[1, 0] = xet.conjugate()
    m[1, 2] = xtg
    m[2, 1] = xtg.conjugate()
    m[0, 2] = xeg
    m[2, 0] = xeg.conjugate()
    lam1, rest = triplet_tau_singular_values(m, f)
    if lam1 >= p_s:
        summary[CONC, j] = max(0.0, lam1 - rest - p_s)
    else:
        summary[CONC, j] = max(0.0, p_s - lam1 - rest)
