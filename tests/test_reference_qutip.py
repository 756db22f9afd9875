"""Every metric of ``qbfast.sweep`` against an independent QuTiP route, both models, both field
protocols, both battery Hamiltonians.

- cavity: the FULL Tavis-Cummings Hamiltonian in a truncated Fock space (dim n + 3) (x) two
  qubits built from QuTiP operators, evolved exactly through one LAPACK diagonalization of the
  full matrix, cavity traced out with ``ptrace``;
- field "drive": ``qutip.sesolve`` under H_a(t) alone; field "full": ``qutip.sesolve`` under
  H_a(t) + H_b (tight tolerances);
- metrics from rho_B by definition (``independent_reference.metrics_from_rho``): QuTiP entropies,
  ergotropy from sorted spectra, steering from outcome probabilities, concurrence from the
  pure-state formula (field) or the X-state formula after checking rho_B *is* an X state
  (cavity), cross-checked against ``qutip.concurrence``.

Tolerance: 1e-9 absolute + 1e-6 relative; efficiencies and power get the absolute tolerance
propagated through the division. The documented NaN rules are checked at every point.
"""

from __future__ import annotations

import functools

import independent_reference as ref  # tests/ is on pytest's pythonpath
import numpy as np
import pytest
import qutip

import qbfast

pytestmark = pytest.mark.slow  # QuTiP references

GG, METRIC_NAMES, SZ, I2 = ref.GG, ref.METRIC_NAMES, ref.SZ, ref.I2
assert_x_state, bare_h, cavity_battery_h = ref.assert_x_state, ref.bare_h, ref.cavity_battery_h
concurrence_pure, concurrence_x = ref.concurrence_pure, ref.concurrence_x
field_battery_h, metrics_from_rho = ref.field_battery_h, ref.metrics_from_rho

ATOL = 1e-9
RTOL = 1e-6
# A reference energy this close to 0 makes "charged or not" ambiguous at ATOL; skip those.
AMBIGUOUS = 1e-7

KET_E = qutip.basis(2, 0)  # sigma_z |e> = +|e>
KET_G = qutip.basis(2, 1)
SESOLVE_OPTIONS = {"atol": 1e-13, "rtol": 1e-12, "nsteps": 10**7, "method": "adams",
                   "progress_bar": False}

T_FIELD = np.linspace(0.0, 5.0, 11)
T_CAVITY = np.concatenate([np.linspace(0.0, 6.0, 13), [0.123, 9.87]])
T_CAVITY.sort()


# ----------------------------------------------------------------------------- conventions
def test_basis_conventions_match_physics_md():
    """The Hamiltonians used below are the matrices printed in physics.md sections 2 and 3,
    and QuTiP's qubit operators agree with the (ee, eg, ge, gg) / sigma_z|e> = +|e> basis."""
    d, g = 1.3, 0.7
    expected = np.diag([d + g / 4, -g / 4, -g / 4, g / 4 - d]).astype(complex)
    expected[1, 2] = expected[2, 1] = g / 2
    np.testing.assert_allclose(field_battery_h(d, g), expected, atol=1e-15)
    j1, j2 = 0.4, -0.9
    expected = np.diag([d * (1 + j2), -j2 * d, -j2 * d, d * (j2 - 1)]).astype(complex)
    expected[1, 2] = expected[2, 1] = 2 * j1 * d
    np.testing.assert_allclose(cavity_battery_h(d, j1, j2), expected, atol=1e-15)
    np.testing.assert_allclose(bare_h(d), np.diag([d, 0, 0, -d]), atol=1e-15)
    assert qutip.expect(qutip.sigmaz(), KET_E) == 1.0
    np.testing.assert_array_equal(qutip.tensor(qutip.sigmaz(), qutip.qeye(2)).full(),
                                  np.kron(SZ, I2))
    np.testing.assert_array_equal(qutip.tensor(KET_G, KET_G).full().ravel(), np.eye(4)[GG])
    # sigma^+ raises |g> to |e>
    np.testing.assert_array_equal((qutip.sigmap() * KET_G).full(), KET_E.full())


# ----------------------------------------------------------------------------- comparison
def assert_close_pointwise(got: np.ndarray, expected: np.ndarray, atol: np.ndarray,
                           label: str) -> None:
    """|got - expected| <= atol + RTOL |expected| with a per-point atol; no NaN allowed."""
    assert np.all(np.isfinite(got)), f"{label}: unexpected NaN/inf in {got}"
    bad = ~(np.abs(got - expected) <= atol + RTOL * np.abs(expected))
    assert not np.any(bad), (f"{label}: mismatch at {np.flatnonzero(bad)}: got {got[bad]}, "
                             f"expected {expected[bad]}")


def assert_metrics_match(ds, refs: list[dict], t: np.ndarray, hb: np.ndarray, delta: float,
                         label: str) -> None:
    """Compare a 1-D (time) slice of a qbfast Dataset with reference metric dicts."""
    expected = {name: np.array([r[name] for r in refs]) for name in METRIC_NAMES}
    got = {name: np.asarray(ds[name].values, dtype=float) for name in METRIC_NAMES}
    e_ref = expected["energy"]
    for name in METRIC_NAMES:
        if name in ("efficiency", "efficiency_incoherent", "power"):
            continue
        np.testing.assert_allclose(got[name], expected[name], rtol=RTOL, atol=ATOL,
                                   equal_nan=False, err_msg=f"{label}: {name}")

    # efficiency NaN rule, stated on qbfast's own energy: NaN iff energy <= threshold
    threshold = 1e-12 * max(abs(delta), float(np.max(np.abs(np.linalg.eigvalsh(hb)))))
    for name in ("efficiency", "efficiency_incoherent"):
        np.testing.assert_array_equal(np.isnan(got[name]), got["energy"] <= threshold,
                                      err_msg=f"{label}: {name} NaN rule")
        # and against the reference: NaN where the energy is surely not positive
        must_nan = (t == 0) | (e_ref == 0.0) | (e_ref < -AMBIGUOUS)
        assert np.all(np.isnan(got[name][must_nan])), f"{label}: {name} should be NaN"
        ok = e_ref > AMBIGUOUS
        exp = expected[name][ok]
        # the absolute tolerance of ergotropy and energy, propagated through the division
        atol = ATOL + 2 * ATOL * (1 + np.abs(exp)) / e_ref[ok]
        assert_close_pointwise(got[name][ok], exp, atol, f"{label}: {name}")

    # power: NaN at t = 0, energy / t elsewhere
    assert np.all(np.isnan(got["power"][t == 0])), f"{label}: power at t=0"
    pos = t > 0
    assert not np.any(np.isnan(got["power"][pos])), f"{label}: power NaN at t>0"
    assert_close_pointwise(got["power"][pos], expected["power"][pos], ATOL / t[pos],
                           f"{label}: power")


def check_rho(rho: np.ndarray) -> None:
    """The reference state is a density matrix (trace 1, Hermitian, positive)."""
    assert abs(np.trace(rho) - 1) < 1e-12
    np.testing.assert_allclose(rho, rho.conj().T, atol=1e-14)
    assert np.min(np.linalg.eigvalsh(rho)) > -1e-13


# ----------------------------------------------------------------------------- cavity
def cavity_states(n: int, J1: float, J2: float, omega_g: float, omega_a: float, Delta: float,
                  t: np.ndarray) -> list[np.ndarray]:
    """rho_B(t) from the full Tavis-Cummings Hamiltonian (Fock dim n + 3), cavity traced out."""
    return _cavity_states(n, J1, J2, omega_g, omega_a, Delta, tuple(float(x) for x in t))


@functools.lru_cache(maxsize=64)
def _cavity_states(n, J1, J2, omega_g, omega_a, Delta, t):
    dim = n + 3
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
         + omega_g * (sp1 * a + sp1.dag() * a.dag() + sp2 * a + sp2.dag() * a.dag())
         + h_b)
    psi0 = qutip.tensor(qutip.basis(dim, n), KET_G, KET_G)
    # H is time independent: psi(t) = V exp(-i E t) V^dag psi0 from one full diagonalization
    energies, vecs = np.linalg.eigh(h.full())
    weights = vecs.conj().T @ psi0.full().ravel()
    photon_number = (a.dag() * a).full()
    excitations = photon_number + 0.5 * (sz1 + sz2).full()
    states = []
    for tk in t:
        vec = vecs @ (np.exp(-1j * energies * tk) * weights)
        psi = qutip.Qobj(vec.reshape(-1, 1), dims=[[dim, 2, 2], [1, 1, 1]])
        # excitations are conserved: only photon numbers n, n-1, n-2 are ever populated
        pops = np.abs(vec.reshape(dim, 4)) ** 2
        assert pops[: max(n - 2, 0)].sum() + pops[n + 1:].sum() < 1e-24
        assert abs(np.real(vec.conj() @ excitations @ vec) - (n - 1)) < 1e-10
        states.append(psi.ptrace([1, 2]).full())
    return tuple(states)


def cavity_reference(params: dict, t: np.ndarray, battery_hamiltonian: str):
    hb = (cavity_battery_h(params["Delta"], params["J1"], params["J2"])
          if battery_hamiltonian == "interacting" else bare_h(params["Delta"]))
    refs = []
    for tk, rho in zip(t, cavity_states(t=t, **params)):
        check_rho(rho)
        assert_x_state(rho)
        conc = concurrence_x(rho)
        assert abs(conc - qutip.concurrence(qutip.Qobj(rho, dims=[[2, 2], [2, 2]]))) < 1e-6
        refs.append(metrics_from_rho(rho, hb, params["Delta"], tk, conc))
    return refs, hb


def _random_cavity_cases(count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [dict(n=int(rng.integers(1, 9)), J1=float(rng.uniform(-1, 1.5)),
                 J2=float(rng.uniform(-1.5, 1.5)), omega_g=float(rng.uniform(0.2, 1.5)),
                 omega_a=float(rng.uniform(0.5, 1.5)), Delta=float(rng.uniform(0.5, 1.5)))
            for _ in range(count)]


CAVITY_CASES = {
    "fig3": dict(n=7, J1=1.0, J2=1.0, omega_g=1.0, omega_a=1.0, Delta=1.0),
    "n=1": dict(n=1, J1=0.6, J2=0.3, omega_g=0.9, omega_a=1.2, Delta=1.1),
    "n=2": dict(n=2, J1=0.2, J2=0.5, omega_g=1.3, omega_a=0.8, Delta=0.9),
    "J1=0": dict(n=4, J1=0.0, J2=0.4, omega_g=0.7, omega_a=1.0, Delta=1.0),
    "J1=J2=0": dict(n=3, J1=0.0, J2=0.0, omega_g=1.0, omega_a=1.0, Delta=1.0),
    "negative J2": dict(n=5, J1=0.5, J2=-0.8, omega_g=0.6, omega_a=1.1, Delta=1.2),
    "negative energy 2J2>1+2J1": dict(n=3, J1=0.1, J2=1.5, omega_g=0.8, omega_a=0.9,
                                      Delta=1.0),
    "detuned": dict(n=6, J1=0.3, J2=0.2, omega_g=0.5, omega_a=2.0, Delta=0.7),
    "negative J1": dict(n=3, J1=-0.7, J2=0.1, omega_g=1.1, omega_a=1.0, Delta=1.0),
    "negative Delta": dict(n=4, J1=0.5, J2=0.3, omega_g=0.8, omega_a=-1.0, Delta=-1.0),
    "negative omega_g": dict(n=2, J1=0.3, J2=-0.2, omega_g=-0.9, omega_a=1.0, Delta=1.0),
    "omega_g=0": dict(n=3, J1=0.8, J2=0.6, omega_g=0.0, omega_a=1.0, Delta=1.0),
    "large n": dict(n=40, J1=0.9, J2=0.4, omega_g=0.3, omega_a=1.0, Delta=1.0),
    **{f"random-{i}": p for i, p in enumerate(_random_cavity_cases(10, seed=12345))},
}


@pytest.mark.parametrize("battery_hamiltonian", ["interacting", "bare"])
@pytest.mark.parametrize("case", list(CAVITY_CASES))
def test_cavity_against_full_tavis_cummings(case, battery_hamiltonian):
    params = CAVITY_CASES[case]
    refs, hb = cavity_reference(params, T_CAVITY, battery_hamiltonian)
    ds = qbfast.sweep("cavity", T_CAVITY, battery_hamiltonian=battery_hamiltonian, **params)
    assert ds["energy"].dims == ("t",)
    assert_metrics_match(ds, refs, T_CAVITY, hb, params["Delta"],
                         f"cavity {case} {battery_hamiltonian} {params}")


def test_cavity_singlet_population_zero_and_x_structure():
    """The reference rho_B never populates the singlet and is an X state with c2 = c3."""
    singlet = np.array([0, 1, -1, 0]) / np.sqrt(2)
    for params in list(CAVITY_CASES.values())[:6]:
        for rho in cavity_states(t=np.linspace(0.0, 7.0, 8), **params):
            assert_x_state(rho)
            assert abs(singlet @ rho @ singlet) < 1e-13
            assert abs(rho[1, 1] - rho[2, 2]) < 1e-13 and abs(rho[1, 2] - rho[1, 1]) < 1e-13
            assert abs(rho[0, 3]) < 1e-14


def test_cavity_swept_grid_slices():
    """A multi-dimensional sweep: every (n, J2) slice equals its own reference."""
    base = dict(J1=0.4, omega_g=0.9, omega_a=1.05, Delta=1.0)
    ns, j2s = [1, 2, 5], [-0.5, 0.8]
    t = np.linspace(0.0, 4.0, 9)
    ds = qbfast.sweep("cavity", t, n=ns, J2=j2s, **base)
    assert ds["energy"].dims == ("n", "J2", "t")
    for n in ns:
        for j2 in j2s:
            params = dict(base, n=n, J2=j2)
            refs, hb = cavity_reference(params, t, "interacting")
            assert_metrics_match(ds.sel(n=n, J2=j2), refs, t, hb, 1.0, f"cavity grid {params}")


# ----------------------------------------------------------------------------- field
def field_states(A: float, B: float, omega: float, g: float, Delta: float, t: np.ndarray,
                 protocol: str) -> list[np.ndarray]:
    """Pure states psi(t) (4-vectors) from qutip.sesolve, |gg> at t = 0."""
    iq = qutip.qeye(2)
    x = qutip.tensor(qutip.sigmax(), iq) + qutip.tensor(iq, qutip.sigmax())

    def f(tt):
        return 0.5 * (A * np.cos(omega * tt) + B)

    h = [[x, f]]
    if protocol == "full":
        sz = qutip.tensor(qutip.sigmaz(), iq) + qutip.tensor(iq, qutip.sigmaz())
        s1s2 = sum(qutip.tensor(op, op) for op in (qutip.sigmax(), qutip.sigmay(),
                                                     qutip.sigmaz()))
        h = [(Delta / 2) * sz + (g / 4) * s1s2, [x, f]]
    res = qutip.sesolve(h, qutip.tensor(KET_G, KET_G), t, options=SESOLVE_OPTIONS)
    out = []
    for state in res.states:
        psi = state.full().ravel()
        assert abs(np.linalg.norm(psi) - 1) < 1e-10
        out.append(psi / np.linalg.norm(psi))
    return out


def field_reference(params: dict, t: np.ndarray, protocol: str, battery_hamiltonian: str):
    hb = (field_battery_h(params["Delta"], params["g"]) if battery_hamiltonian == "interacting"
          else bare_h(params["Delta"]))
    refs = []
    for tk, psi in zip(t, field_states(t=t, protocol=protocol, **params)):
        rho = np.outer(psi, psi.conj())
        conc = concurrence_pure(psi)
        assert abs(conc - qutip.concurrence(qutip.Qobj(rho, dims=[[2, 2], [2, 2]]))) < 1e-6
        refs.append(metrics_from_rho(rho, hb, params["Delta"], tk, conc))
    return refs, hb


def _random_field_cases(count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [dict(A=float(rng.uniform(-2, 2)), B=float(rng.uniform(-2, 2)),
                 omega=float(rng.uniform(0.2, 3)), g=float(rng.uniform(-1.5, 3)),
                 Delta=float(rng.uniform(0.5, 1.5)))
            for _ in range(count)]


FIELD_CASES = {
    "defaults": dict(A=1.0, B=2.0, omega=1.0, g=0.0, Delta=1.0),
    "A=B=0": dict(A=0.0, B=0.0, omega=1.3, g=0.5, Delta=1.0),
    "A=0": dict(A=0.0, B=1.5, omega=1.0, g=0.3, Delta=0.8),
    "static omega=0": dict(A=0.8, B=0.6, omega=0.0, g=0.3, Delta=1.2),
    "g=Delta": dict(A=1.1, B=0.9, omega=2.0, g=1.0, Delta=1.0),
    "g>Delta": dict(A=0.9, B=1.4, omega=0.7, g=2.5, Delta=1.0),
    "negative g": dict(A=1.2, B=-0.4, omega=1.5, g=-1.2, Delta=0.9),
    "negative Delta": dict(A=1.0, B=0.5, omega=1.2, g=0.4, Delta=-0.8),
    "negative omega": dict(A=0.7, B=0.9, omega=-1.4, g=0.2, Delta=1.0),
    "strong drive": dict(A=6.0, B=-3.0, omega=4.0, g=1.5, Delta=1.0),
    **{f"random-{i}": p for i, p in enumerate(_random_field_cases(8, seed=54321))},
}


@pytest.mark.parametrize("battery_hamiltonian", ["interacting", "bare"])
@pytest.mark.parametrize("protocol", ["drive", "full"])
@pytest.mark.parametrize("case", list(FIELD_CASES))
def test_field_against_sesolve(case, protocol, battery_hamiltonian):
    params = FIELD_CASES[case]
    refs, hb = field_reference(params, T_FIELD, protocol, battery_hamiltonian)
    ds = qbfast.sweep("field", T_FIELD, protocol=protocol,
                      battery_hamiltonian=battery_hamiltonian, **params)
    assert_metrics_match(ds, refs, T_FIELD, hb, params["Delta"],
                         f"field {protocol} {case} {battery_hamiltonian} {params}")


@pytest.mark.parametrize("protocol", ["drive", "full"])
def test_field_swept_grid_slices(protocol):
    base = dict(omega=1.3, Delta=1.0)
    gs, amps = [0.0, 1.5], [0.5, -1.0, 2.0]
    t = np.linspace(0.0, 4.0, 9)
    ds = qbfast.sweep("field", t, protocol=protocol, g=gs, A=amps, B=0.7, **base)
    assert ds["energy"].dims == ("g", "A", "t")
    for g in gs:
        for a in amps:
            params = dict(base, g=g, A=a, B=0.7)
            refs, hb = field_reference(params, t, protocol, "interacting")
            assert_metrics_match(ds.sel(g=g, A=a), refs, t, hb, 1.0,
                                 f"field {protocol} grid {params}")


def test_field_full_non_grid_times():
    """Irregular output times (and a repeated sub-step structure) in protocol 'full'."""
    params = dict(A=1.7, B=-0.3, omega=2.3, g=0.8, Delta=1.1)
    t = np.array([0.0, 1e-3, 0.05, 0.051, 0.7, 2.2, 2.21, 6.5])
    refs, hb = field_reference(params, t, "full", "interacting")
    ds = qbfast.sweep("field", t, protocol="full", **params)
    assert_metrics_match(ds, refs, t, hb, params["Delta"], f"field full irregular {params}")
