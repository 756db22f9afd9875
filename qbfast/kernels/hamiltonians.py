"""Hamiltonians of both models (docs/physics.md sections 2 and 3), basis (|ee>, |eg>, |ge>, |gg>).

Both battery Hamiltonians, and the bare H0, have the form

    H = diag(h_ee, h_eg, h_ge, h_gg) + h_x (|eg><ge| + |ge><eg|),  h_eg == h_ge,

so they are passed around as the five numbers (h_ee, h_eg, h_ge, h_gg, h_x). Their eigenvalues
are h_ee, h_gg and h_eg +- h_x.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel


@kernel
def field_battery(delta, g):
    """Field model H_b = (Delta/2)(s1z + s2z) + (g/4) s1.s2:
    diag(Delta + g/4, -g/4, -g/4, g/4 - Delta), g/2 between |eg> and |ge>."""
    return (delta + 0.25 * g, -0.25 * g, -0.25 * g, 0.25 * g - delta, 0.5 * g)


@kernel
def cavity_battery(delta, j1, j2):
    """Cavity model H_b = (Delta/2)(s1z + s2z) + Delta [J1 (s1x s2x + s1y s2y) + J2 s1z s2z]:
    diag(Delta (1 + J2), -J2 Delta, -J2 Delta, Delta (J2 - 1)), 2 J1 Delta between |eg>, |ge>."""
    return (delta * (1.0 + j2), -j2 * delta, -j2 * delta, delta * (j2 - 1.0), 2.0 * j1 * delta)


@kernel
def bare_battery(delta):
    """Bare qubits H0 = (Delta/2)(s1z + s2z) = diag(Delta, 0, 0, -Delta)."""
    return (delta, 0.0, 0.0, -delta, 0.0)


@kernel
def battery_spectrum(h_ee, h_eg, h_ge, h_gg, h_x):
    """Eigenvalues (ascending) of the battery Hamiltonian (h_eg == h_ge assumed)."""
    a = h_ee
    b = h_gg
    c = h_eg + h_x
    d = h_eg - h_x
    lo1 = min(a, b)
    hi1 = max(a, b)
    lo2 = min(c, d)
    hi2 = max(c, d)
    e0 = min(lo1, lo2)
    e3 = max(hi1, hi2)
    mid1 = max(lo1, lo2)
    mid2 = min(hi1, hi2)
    return e0, min(mid1, mid2), max(mid1, mid2), e3


@kernel
def efficiency_threshold(delta, e0, e3):
    """1e-12 max(|Delta|, largest |eigenvalue of H_b|): energies at or below are 'uncharged'."""
    return 1e-12 * max(abs(delta), max(abs(e0), abs(e3)))


@kernel
def fill_collective_x(x):
    """X = s1x + s2x in the two-qubit basis (flips one qubit at a time)."""
    for i in range(4):
        for j in range(4):
            x[i, j] = 0.0
    # s1x: ee<->ge (0,2), eg<->gg (1,3); s2x: ee<->eg (0,1), ge<->gg (2,3)
    x[0, 2] = x[2, 0] = 1.0
    x[1, 3] = x[3, 1] = 1.0
    x[0, 1] = x[1, 0] = 1.0
    x[2, 3] = x[3, 2] = 1.0


@kernel
def fill_battery_matrix(hb, h_ee, h_eg, h_ge, h_gg, h_x):
    """The 4x4 matrix of a battery Hamiltonian given by its five numbers."""
    for i in range(4):
        for j in range(4):
            hb[i, j] = 0.0
    hb[0, 0] = h_ee
    hb[1, 1] = h_eg
    hb[2, 2] = h_ge
    hb[3, 3] = h_gg
    hb[1, 2] = h_x
    hb[2, 1] = h_x


@kernel
def fill_cavity_sector(h, n, j1, j2, omega_g, omega_a, delta):
    """The paper's eq. 24 in the exchange-symmetric basis (|n,gg>, |T>, |n-2,ee>, |S>),
    |T> = (|n-1,eg> + |n-1,ge>)/sqrt(2) and |S> = (|n-1,eg> - |n-1,ge>)/sqrt(2), shifted by
    -(n-1) omega_a (a global phase) to keep the phases small at large n.

    Eq. 24 in (|n,gg>, |n-1,eg>, |n-1,ge>, |n-2,ee>) is
    diag(omega_a + Delta (J2 - 1), -J2 Delta, -J2 Delta, -omega_a + Delta (J2 + 1)) with
    omega_g sqrt(n) coupling 1-2 and 1-3, 2 J1 Delta coupling 2-3 and omega_g sqrt(n-1)
    coupling 2-4 and 3-4: symmetric under exchanging the qubits. So in the new basis the
    singlet |S> is decoupled (energy -J2 Delta - 2 J1 Delta), and |gg>, |T>, |ee> form the
    ladder diag(omega_a + Delta (J2 - 1), -J2 Delta + 2 J1 Delta, -omega_a + Delta (J2 + 1))
    with sqrt(2) omega_g sqrt(n) coupling gg-T and sqrt(2) omega_g sqrt(n-1) coupling T-ee.
    The initial |n,gg> has no singlet component, so the state stays in the ladder.
    """
    for i in range(4):
        for j in range(4):
            h[i, j] = 0.0
    h[0, 0] = omega_a + delta * (j2 - 1.0)
    h[1, 1] = -j2 * delta + 2.0 * j1 * delta
    h[2, 2] = -omega_a + delta * (j2 + 1.0)
    h[3, 3] = -j2 * delta - 2.0 * j1 * delta
    h[0, 1] = h[1, 0] = np.sqrt(2.0 * n) * omega_g
    h[1, 2] = h[2, 1] = np.sqrt(2.0 * max(n - 1.0, 0.0)) * omega_g
