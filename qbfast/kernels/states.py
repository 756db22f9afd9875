"""From battery state amplitudes to the state summary that :mod:`.metrics` consumes.

Two routes, each exact for the states the models produce:

- :func:`pure_state_metrics`: a pure two-qubit state psi = (psi_ee, psi_eg, psi_ge, psi_gg)
  (field model, both protocols). rho_B = |psi><psi| has spectrum (1, 0, 0, 0); concurrence
  C = 2 |psi_ee psi_gg - psi_eg psi_ge|.
- :func:`cavity_state_metrics`: the cavity model's sector amplitudes
  (c1, c2, c3, c4) of (|n,gg>, |n-1,eg>, |n-1,ge>, |n-2,ee>). Tracing out the cavity gives the
  X state rho_B = diag(|c4|^2, [[|c2|^2, c2 c3*], [c3 c2*, |c3|^2]], |c1|^2) with spectrum
  (|c1|^2, |c2|^2 + |c3|^2, |c4|^2, 0) and concurrence 2 max(0, |c2||c3| - |c1||c4|).

Pauli conventions: basis (|e>, |g>), sigma_z|e> = +|e>; <sigma_x> = 2 Re rho_eg,
<sigma_y> = -2 Im rho_eg, <sigma_z> = rho_ee - rho_gg.
"""

from __future__ import annotations

from ._jit import kernel
from .metrics import write_metrics


@kernel
def _abs2(z):
    return z.real * z.real + z.imag * z.imag


@kernel
def pure_state_metrics(out, slot, p, k, t, delta, threshold, hb, spectrum, e_init,
                       a, b, c, d):
    """Metrics of the pure state a|ee> + b|eg> + c|ge> + d|gg>, written to out[:, p, k].

    ``hb`` = (h_ee, h_eg, h_ge, h_gg, h_x) is the battery Hamiltonian used for energies,
    ``spectrum`` its ascending eigenvalues, ``e_init`` = h_gg.
    """
    pa = _abs2(a)
    pb = _abs2(b)
    pc = _abs2(c)
    pd = _abs2(d)
    bc = b * c.conjugate()  # <ge|rho|eg> ... rho_{eg,ge} = b c*
    ad = a * d.conjugate()  # rho_{ee,gg}
    expH = hb[0] * pa + hb[1] * pb + hb[2] * pc + hb[3] * pd + 2.0 * hb[4] * bc.real
    # cell a: rho1_eg = sum_b psi[e b] psi[g b]* = a c* + b d*
    rho1_eg = a * c.conjugate() + b * d.conjugate()
    # cell b: rho2_eg = sum_a psi[a e] psi[a g]* = a b* + c d*
    rho2_eg = a * b.conjugate() + c * d.conjugate()
    nx = 2.0 * rho1_eg.real
    ny = -2.0 * rho1_eg.imag
    nz = pa + pb - pc - pd
    sx = 2.0 * rho2_eg.real
    sy = -2.0 * rho2_eg.imag
    sz = pa + pc - pb - pd
    cx = 2.0 * (bc.real + ad.real)
    cy = 2.0 * (bc.real - ad.real)
    cz = pa + pd - pb - pc
    concurrence = 2.0 * abs(a * d - b * c)
    norm = pa + pb + pc + pd
    write_metrics(out, slot, p, k, t, delta, threshold,
                  expH, e_init, spectrum[0], spectrum[1], spectrum[2], spectrum[3],
                  norm, 0.0, 0.0, 0.0,
                  nx, ny, nz, sx, sy, sz, cx, cy, cz, concurrence)


@kernel
def cavity_state_metrics(out, slot, p, k, t, delta, threshold, hb, spectrum, e_init,
                         c1, c2, c3, c4):
    """Metrics of the cavity model's battery X state (see module docstring)."""
    p_gg = _abs2(c1)
    p_eg = _abs2(c2)
    p_ge = _abs2(c3)
    p_ee = _abs2(c4)
    coh = c2 * c3.conjugate()  # rho_{eg,ge}
    expH = hb[0] * p_ee + hb[1] * p_eg + hb[2] * p_ge + hb[3] * p_gg + 2.0 * hb[4] * coh.real
    nz = p_ee + p_eg - p_ge - p_gg
    sz = p_ee + p_ge - p_eg - p_gg
    cz = p_ee + p_gg - p_eg - p_ge
    cx = 2.0 * coh.real
    concurrence = 2.0 * max(0.0, abs(coh) - (abs(c1) * abs(c4)))
    write_metrics(out, slot, p, k, t, delta, threshold,
                  expH, e_init, spectrum[0], spectrum[1], spectrum[2], spectrum[3],
                  p_gg, p_eg + p_ge, p_ee, 0.0,
                  0.0, 0.0, nz, 0.0, 0.0, sz, cx, cx, cz, concurrence)
