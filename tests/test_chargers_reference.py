"""Coherent and thermal cavity chargers (physics.md section 7) against an independent brute
force: the FULL Tavis-Cummings Hamiltonian on (cavity Fock space, cutoff M) x 2 qubits built
from QuTiP operators, one LAPACK diagonalization, the cavity traced out with ``ptrace``; the
cutoff M is increased until rho_B(t) changes by less than 1e-12 at every time. The initial
charger state is QuTiP's ``coherent`` (pure, alpha = +sqrt(nbar)) or ``thermal_dm``.
Metrics by definition (``independent_reference.metrics_from_rho``), the concurrence from the
singular values of F^T (sy x sy) F (rho = F F^dag, LAPACK SVD), cross-checked against
``qutip.concurrence``. All 15 metrics at 1e-9 absolute + 1e-6 relative, both accountings,
t = 0 included.
"""

from __future__ import annotations

import functools

import independent_reference as ref  # tests/ is on pytest's pythonpath
import numpy as np
import pytest
import qutip
from test_reference_qutip import assert_metrics_match, check_rho

import qbfast

KET_G = qutip.basis(2, 1)
SYSY = np.kron(ref.SY, ref.SY)
T_REF = np.array([0.0, 0.05, 0.4, 1.1, 2.3, 4.7])
CONVERGED = 1e-12


def concurrence_svd(rho: np.ndarray) -> float:
    """Wootters concurrence from the singular values of F^T (sy x sy) F, rho = F F^dag."""
    w, v = np.linalg.eigh(rho)
    f = v * np.sqrt(np.clip(w, 0.0, None))
    s = np.linalg.svd(f.T @ SYSY @ f, compute_uv=False)
    return float(max(0.0, s[0] - s[1:].sum()))


def _states_at_cutoff(charger, nbar, J1, J2, omega_g, omega_a, Delta, t, dim):
    iq = qutip.qeye(2)
    a = qutip.tensor(qutip.destroy(dim), iq, iq)
    sp1 = qutip.tensor(qutip.qeye(dim), qutip.sigmap(), iq)
    sp2 = qutip.tensor(qutip.qeye(dim), iq, qutip.sigmap())
    sz1 = qutip.tensor(qutip.qeye(dim), qutip.sigmaz(), iq)
    sz2 = qutip.tensor(qutip.qeye(dim), iq, qutip.sigmaz())
    sx1, sy1 = (qutip.tensor(qutip.qeye(dim), op, iq) for op in (qutip.sigmax(), qutip.sigmay()))
    sx2, sy2 = (qutip.tensor(qutip.qeye(dim), iq, op) for op in (qutip.sigmax(), qutip.sigmay()))
    h_b = (Delta / 2) * (sz1 + sz2) + Delta * (J1 * (sx1 * sx2 + sy1 * sy2) + J2 * sz1 * sz2)
    h = (omega_a * a.dag() * a
         + omega_g * (sp1 * a + sp1.dag() * a.dag() + sp2 * a + sp2.dag() * a.dag()) + h_b)
    energies, vecs = np.linalg.eigh(h.full())
    gg = qutip.tensor(KET_G, KET_G)
    if charger == "coherent":
        cav = qutip.coherent(dim, np.sqrt(nbar), method="analytic")
        kets = [qutip.tensor(cav, gg).full().ravel()]
        probs = [1.0]
    else:
        pn = np.diag(qutip.thermal_dm(dim, nbar, method="analytic").full()).real
        kets = [qutip.tensor(qutip.basis(dim, k), gg).full().ravel() for k in range(dim)]
        probs = list(pn)
    coeffs = [vecs.conj().T @ k for k in kets]
    states = []
    for tk in t:
        rho = np.zeros((4, 4), dtype=complex)
        phase = np.exp(-1j * energies * tk)
        for p, c in zip(probs, coeffs):
            if p < 1e-30:
                continue
            psi = qutip.Qobj((vecs @ (phase * c)).reshape(-1, 1), dims=[[dim, 2, 2], [1, 1, 1]])
            rho += p * psi.ptrace([1, 2]).full()
        states.append(rho)
    return np.array(states)


@functools.lru_cache(maxsize=64)
def converged_states(charger, nbar, J1, J2, omega_g, omega_a, Delta, t):
    """rho_B(t) with the cutoff raised until it changes by < CONVERGED; returns (states, M)."""
    dim = max(6, int(nbar + 6 * np.sqrt(nbar) + 6)) if charger == "coherent" else \
        max(6, int(8 * nbar + 6))
    prev = _states_at_cutoff(charger, nbar, J1, J2, omega_g, omega_a, Delta, t, dim)
    while True:
        dim_next = dim + max(4, dim // 4)
        cur = _states_at_cutoff(charger, nbar, J1, J2, omega_g, omega_a, Delta, t, dim_next)
        if np.max(np.abs(cur - prev)) < CONVERGED:
            return cur, dim_next
        prev, dim = cur, dim_next


def reference(charger, params, t, battery_hamiltonian):
    hb = (ref.cavity_battery_h(params["Delta"], params["J1"], params["J2"])
          if battery_hamiltonian == "interacting" else ref.bare_h(params["Delta"]))
    states, _ = converged_states(charger, params["nbar"], params["J1"], params["J2"],
                                 params["omega_g"], params["omega_a"], params["Delta"],
                                 tuple(float(x) for x in t))
    refs = []
    for tk, rho in zip(t, states):
        check_rho(rho)
        # thermal: rho_B is an X state, whose closed form (Yu-Eberly) is well conditioned;
        # the spectral routes (SVD, qutip) take square roots of eigenvalues that round-off
        # makes ~1e-16 when the state is nearly pure (nbar ~ 1e-7): errors ~1e-8
        conc = ref.concurrence_x(rho) if charger == "thermal" else concurrence_svd(rho)
        assert abs(conc - qutip.concurrence(qutip.Qobj(rho, dims=[[2, 2], [2, 2]]))) < 1e-6
        refs.append(ref.metrics_from_rho(rho, hb, params["Delta"], tk, conc))
    return refs, hb, states


def _random(count, seed, nbars):
    rng = np.random.default_rng(seed)
    return [dict(nbar=float(nbars[i % len(nbars)]), J1=float(rng.uniform(-1, 1.5)),
                 J2=float(rng.uniform(-1.5, 2.0)), omega_g=float(rng.uniform(0.2, 1.5)),
                 omega_a=float(rng.uniform(0.3, 2.0)), Delta=float(rng.uniform(0.5, 1.5)))
            for i in range(count)]


COHERENT_CASES = {
    "fig3 nbar=7": dict(nbar=7.0, J1=1.0, J2=1.0, omega_g=1.0, omega_a=1.0, Delta=1.0),
    "nbar=1e-6": dict(nbar=1e-6, J1=0.8, J2=0.2, omega_g=1.0, omega_a=1.0, Delta=1.0),
    "nbar=50": dict(nbar=50.0, J1=0.8, J2=0.2, omega_g=0.3, omega_a=1.0, Delta=1.0),
    "J1=0 J2=2": dict(nbar=2.0, J1=0.0, J2=2.0, omega_g=0.9, omega_a=1.0, Delta=1.0),
    "off-resonant": dict(nbar=3.0, J1=0.4, J2=0.6, omega_g=0.7, omega_a=1.7, Delta=0.8),
    "nbar=0": dict(nbar=0.0, J1=0.5, J2=0.3, omega_g=1.0, omega_a=1.0, Delta=1.0),
    "negative Delta": dict(nbar=1.5, J1=0.5, J2=0.3, omega_g=0.8, omega_a=-1.0, Delta=-1.0),
    **{f"random-{i}": p for i, p in enumerate(_random(4, 2026, [0.02, 0.7, 4.0, 12.0]))},
}
THERMAL_CASES = {
    "fig3 nbar=2": dict(nbar=2.0, J1=1.0, J2=1.0, omega_g=1.0, omega_a=1.0, Delta=1.0),
    "nbar=1e-6": dict(nbar=1e-6, J1=0.8, J2=0.2, omega_g=1.0, omega_a=1.0, Delta=1.0),
    "J1=0 J2=2": dict(nbar=1.0, J1=0.0, J2=2.0, omega_g=0.9, omega_a=1.0, Delta=1.0),
    "off-resonant": dict(nbar=3.0, J1=0.4, J2=0.6, omega_g=0.7, omega_a=1.7, Delta=0.8),
    **{f"random-{i}": p for i, p in enumerate(_random(3, 77, [0.05, 0.6, 4.0]))},
}


@pytest.mark.parametrize("battery_hamiltonian", ["interacting", "bare"])
@pytest.mark.parametrize("case", list(COHERENT_CASES))
def test_coherent_matches_brute_force(case, battery_hamiltonian):
    params = COHERENT_CASES[case]
    refs, hb, _ = reference("coherent", params, T_REF, battery_hamiltonian)
    ds = qbfast.sweep("cavity", T_REF, charger="coherent",
                      battery_hamiltonian=battery_hamiltonian, **params)
    assert_metrics_match(ds, refs, T_REF, hb, params["Delta"], f"coherent {case}")


@pytest.mark.parametrize("battery_hamiltonian", ["interacting", "bare"])
@pytest.mark.parametrize("case", list(THERMAL_CASES))
def test_thermal_matches_brute_force(case, battery_hamiltonian):
    params = THERMAL_CASES[case]
    refs, hb, states = reference("thermal", params, T_REF, battery_hamiltonian)
    for rho in states:
        ref.assert_x_state(rho, atol=1e-12)
    ds = qbfast.sweep("cavity", T_REF, charger="thermal",
                      battery_hamiltonian=battery_hamiltonian, **params)
    assert_metrics_match(ds, refs, T_REF, hb, params["Delta"], f"thermal {case}")


def test_coherent_state_is_not_an_x_state():
    """The brute force itself shows why the coherent charger needs the general route."""
    p = COHERENT_CASES["off-resonant"]
    _, _, states = reference("coherent", p, T_REF, "interacting")
    assert abs(states[2][0, 1]) > 1e-2 and abs(states[2][0, 3]) > 1e-2


def test_swept_grid_matches_brute_force():
    """nbar, J2 swept together in one call (the per-point windows differ) agree with the
    brute force at every grid point."""
    nbars = [1e-7, 0.5, 20.0]
    j2s = [-0.5, 1.2]
    base = dict(J1=0.6, omega_g=0.5, omega_a=1.3, Delta=0.9)
    for charger in ("coherent", "thermal"):
        ns = nbars if charger == "coherent" else nbars[:2]
        ds = qbfast.sweep("cavity", T_REF, charger=charger, nbar=ns, J2=j2s, **base)
        for i, nb in enumerate(ns):
            for k, j2 in enumerate(j2s):
                params = dict(base, nbar=nb, J2=j2)
                refs, hb, _ = reference(charger, params, T_REF, "interacting")
                assert_metrics_match(ds.isel(nbar=i, J2=k), refs, T_REF, hb, base["Delta"],
                                     f"{charger} nbar={nb} J2={j2}")
