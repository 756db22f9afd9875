"""Coherent and thermal cavity chargers against a 50-digit reference (``mp_reference``: the sector
sum of physics.md section 7 in mpmath, sectors kept until the omitted weight is < 1e-40, all 15
metrics by definition in mp precision). The float64 QuTiP brute force
(test_chargers_reference.py) cannot resolve 1e-12 at nbar ~ 1e-7 or nbar ~ 300; this one can.

- The mp reference is checked first: against the QuTiP brute force at moderate nbar (states to
  1e-12), against the J1 = J2, omega_a = Delta ladder closed form of section 7 (to 1e-40), and
  for trace, Hermiticity and the empty singlet.
- Then qbfast.sweep at 1e-9 absolute + 1e-6 relative on every metric (no propagated tolerance
  for the efficiencies), NaN exactly where the reference is NaN, on a seeded random spread:
  nbar in {1e-7, 1e-5, 1e-3, 0.3, 3, 30, 100, 300} (thermal to 100), both chargers, both accountings, J1 = 0,
  J2 = 2, negative Delta, off-resonant omega_a, t from 0 to 50 and small t where the energy is
  ~1e-12..1e-9 (efficiency ill-conditioned).
"""

from __future__ import annotations

import mp_reference as mr  # tests/ is on pytest's pythonpath
import mpmath as mp
import numpy as np
import pytest

import qbfast

ATOL = 1e-9
RTOL = 1e-6
T = np.array([0.0, 1e-3, 0.3, 1.7, 6.1, 50.0])
T_SMALL = np.array([0.0, 3e-3, 1e-2, 3e-2, 0.1, 0.3])
NBARS = (1e-7, 1e-5, 1e-3, 0.3, 3.0, 30.0, 100.0, 300.0)
#: thermal to nbar = 100 (~9200 sectors in mp); its reference at 300 (~28000 sectors) alone took
#: 90-100 s of the suite on 2 cores, and the coherent charger still covers nbar = 300
THERMAL_NBAR_MAX = 100.0


def _cases():
    rng = np.random.default_rng(20261202)
    cases = {}
    for charger in ("coherent", "thermal"):
        for i, nbar in enumerate(NBARS):
            if charger == "thermal" and nbar > THERMAL_NBAR_MAX:
                continue
            p = dict(nbar=nbar, J1=float(rng.uniform(-1, 1.5)), J2=float(rng.uniform(-1.5, 2.0)),
                     omega_g=float(rng.uniform(0.2, 1.5)), omega_a=float(rng.uniform(0.3, 2.0)),
                     Delta=float(rng.uniform(0.5, 1.5)))
            if i % 4 == 0:
                p["J1"] = 0.0
            elif i % 4 == 1:
                p["J2"] = 2.0
            elif i % 4 == 2:
                p["Delta"] = -p["Delta"]
            cases[f"{charger} nbar={nbar:g}"] = (charger, p)
    return cases


CASES = _cases()
# mp reference cost (2 cores): thermal needs (U + 1) = 92 / log1p(1/nbar) sectors (~28000 at 300);
# the states are computed once for both accountings (mp_reference._states)
HEAVY = {"coherent nbar=300", "thermal nbar=30", "thermal nbar=100"}
SMALL_ENERGY_CASES = {
    "resonant, singlet above gg": dict(nbar=1e-7, J1=0.1, J2=0.2, omega_g=1.0, omega_a=1.0,
                                       Delta=1.0),
    "singlet below gg": dict(nbar=1e-7, J1=0.4, J2=0.5, omega_g=0.8, omega_a=1.3, Delta=0.9),
    "J2=2, negative Delta": dict(nbar=1e-5, J1=0.0, J2=2.0, omega_g=0.5, omega_a=1.3,
                                 Delta=-0.9),
}


def mismatches(ds, refs, t):
    """[(metric, t, qbfast, mp)] where |qbfast - mp| > ATOL + RTOL |mp| or NaN-ness differs."""
    bad = []
    for name in mr.METRIC_NAMES:
        got = np.asarray(ds[name].values, dtype=float)
        for j, tj in enumerate(t):
            g, e = float(got[j]), refs[j][name]
            if np.isnan(g) and np.isnan(e):
                continue
            if np.isnan(g) != np.isnan(e) or not abs(g - e) <= ATOL + RTOL * abs(e):
                bad.append((name, float(tj), g, e))
    return bad


def _compare(charger, params, t, battery_hamiltonian):
    refs, _ = mr.reference(charger, params, t, battery_hamiltonian)
    ds = qbfast.sweep("cavity", t, charger=charger, battery_hamiltonian=battery_hamiltonian,
                      **params)
    bad = mismatches(ds, refs, t)
    assert not bad, f"{charger} {battery_hamiltonian} {params}: {bad}"


# ----------------------------------------------------------------------------- the reference
def test_mp_ladder_matches_the_resonant_closed_form():
    """J1 = J2 = J, omega_a = Delta: section 7's closed-form amplitudes, to 1e-40."""
    p = dict(nbar=1.0, J1=0.35, J2=0.35, omega_g=0.7, omega_a=1.1, Delta=1.1)
    with mp.workdps(mr.DPS):
        t = mp.mpf("2.3")
        wg, d, j = mp.mpf(p["omega_g"]), mp.mpf(p["Delta"]), mp.mpf(p["J1"])
        for n in range(1, 7):
            gg, t0, ee = mr._amplitudes(n, p, t)
            a, b, lam = mp.sqrt(2 * n), mp.sqrt(2 * (n - 1)), mp.sqrt(4 * n - 2)
            ph = mp.expj(-(n - 1 + j) * d * t)
            assert abs(gg - ph * (b**2 + a**2 * mp.cos(lam * wg * t)) / lam**2) < 1e-40
            assert abs(t0 - (-1j) * ph * (a / lam) * mp.sin(lam * wg * t)) < 1e-40
            assert abs(ee - ph * (a * b / lam**2) * (mp.cos(lam * wg * t) - 1)) < 1e-40


@pytest.mark.parametrize("charger", ["coherent", "thermal"])
def test_mp_state_is_a_density_matrix(charger):
    _, p = CASES[f"{charger} nbar=3"]
    with mp.workdps(mr.DPS):
        for tk in (0.0, 1.7, 50.0):
            rho = mr.mp_state(charger, p, tk)
            assert abs(mr.trace(rho) - 1) < 1e-40
            assert max(abs(rho[i, k] - mp.conj(rho[k, i])) for i in range(4)
                       for k in range(4)) < 1e-45
            singlet = (rho[1, 1] + rho[2, 2] - rho[1, 2] - rho[2, 1]) / 2
            assert abs(singlet) < 1e-45
            assert min(mr.spectrum(rho)) > -1e-45
            if tk == 0.0:  # |gg><gg|
                assert abs(rho[3, 3] - 1) < 1e-40


def _concurrence_textbook(rho):
    """sqrt of the eigenvalues of rho (sy x sy) rho* (sy x sy), descending: l1 - l2 - l3 - l4.
    Loses half the digits near 0 (sqrt of round-off): ~1e-25 at 50 digits, enough here."""
    _, sy, _ = mr._pauli()
    ss = mr.kron(sy, sy)
    rho_conj = mp.matrix([[mp.conj(rho[i, k]) for k in range(4)] for i in range(4)])
    ev = mp.eig(rho * ss * rho_conj * ss, left=False, right=False)
    lam = sorted((mp.sqrt(max(mp.re(x), mp.mpf(0))) for x in ev), reverse=True)
    return max(mp.mpf(0), lam[0] - lam[1] - lam[2] - lam[3])


def _steering_closed_form(rho):
    """physics.md section 4 closed form from n_i, s_i, c_i (the Bloch summary)."""
    paulis = mr._pauli()
    i2 = mp.eye(2)

    def plogp(x):
        return x * mp.log(x, 2) if x > 0 else mp.mpf(0)

    i_ab = i_ba = mp.mpf(0)
    for s in paulis:
        n = mp.re(mr.trace(rho * mr.kron(s, i2)))
        m = mp.re(mr.trace(rho * mr.kron(i2, s)))
        c = mp.re(mr.trace(rho * mr.kron(s, s)))
        joint = sum(plogp(1 + a * n + b * m + a * b * c) for a in (1, -1) for b in (1, -1))
        i_ab += 1 + (plogp(1 + n) + plogp(1 - n)) / 2 - joint / 4
        i_ba += 1 + (plogp(1 + m) + plogp(1 - m)) / 2 - joint / 4
    return i_ab, i_ba


@pytest.mark.parametrize("charger", ["coherent", "thermal"])
def test_mp_concurrence_and_steering_routes_agree(charger):
    """The SVD concurrence against the textbook eigenvalue route (and, thermal, the X-state
    closed form); the outcome-probability steering against the section 4 closed form."""
    for nbar in (1e-7, 3.0):
        p = dict(nbar=nbar, J1=0.7, J2=-0.3, omega_g=0.9, omega_a=1.2, Delta=1.1)
        with mp.workdps(mr.DPS):
            for tk in (0.4, 6.1):
                rho = mr.mp_state(charger, p, tk)
                conc = mr.concurrence(rho)
                assert abs(conc - _concurrence_textbook(rho)) < 1e-20
                if charger == "thermal":
                    x = 2 * max(mp.mpf(0), abs(rho[1, 2]) - mp.sqrt(mp.re(rho[0, 0] * rho[3, 3])),
                                abs(rho[0, 3]) - mp.sqrt(mp.re(rho[1, 1] * rho[2, 2])))
                    assert abs(conc - x) < 1e-40
                for a, b in zip(mr.steering(rho), _steering_closed_form(rho)):
                    assert abs(a - b) < 1e-30


@pytest.mark.parametrize("charger,nbar", [("coherent", 4.0), ("thermal", 0.6)])
def test_mp_reference_matches_qutip_brute_force(charger, nbar):
    """The mp sector sum and the float64 QuTiP brute force (full Tavis-Cummings Hamiltonian,
    converged Fock cutoff, partial trace) agree: states to 1e-12, metrics to 1e-9 + 1e-6."""
    from test_chargers_reference import converged_states, reference

    p = dict(nbar=nbar, J1=0.4, J2=0.6, omega_g=0.7, omega_a=1.7, Delta=-0.8)
    t = np.array([0.0, 0.4, 2.3])
    for acc in ("interacting", "bare"):
        refs, states = mr.reference(charger, p, t, acc)
        brute, _ = converged_states(charger, nbar, p["J1"], p["J2"], p["omega_g"],
                                    p["omega_a"], p["Delta"], tuple(float(x) for x in t))
        for rho, rho_q in zip(states, brute):
            assert np.max(np.abs(np.array(rho.tolist(), dtype=complex) - rho_q)) < 1e-12
        qrefs, _, _ = reference(charger, p, t, acc)
        for r, q in zip(refs, qrefs):
            for name in mr.METRIC_NAMES:
                np.testing.assert_allclose(r[name], q[name], atol=ATOL, rtol=RTOL,
                                           err_msg=f"{charger} {acc} {name}")


# ----------------------------------------------------------------------------- qbfast against it
def _case_params():
    return [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name
            for name in CASES]


@pytest.mark.parametrize("battery_hamiltonian", ["interacting", "bare"])
@pytest.mark.parametrize("case", _case_params())
def test_qbfast_matches_mp_reference(case, battery_hamiltonian):
    charger, params = CASES[case]
    _compare(charger, params, T, battery_hamiltonian)


@pytest.mark.parametrize("battery_hamiltonian", ["interacting", "bare"])
@pytest.mark.parametrize("charger", ["coherent", "thermal"])
@pytest.mark.parametrize("case", list(SMALL_ENERGY_CASES))
def test_qbfast_matches_mp_reference_at_tiny_energy(case, charger, battery_hamiltonian):
    """nbar ~ 1e-7, t ~ 1e-3..0.3: energies 1e-13..1e-8, around the efficiency NaN threshold
    and where ergotropy / energy divides two numbers of round-off size in float64."""
    _compare(charger, SMALL_ENERGY_CASES[case], T_SMALL, battery_hamiltonian)


def _random_cases(charger, count, seed, nbar_max):
    """nbar log-uniform in [1e-8, nbar_max], J1 = 0 or J2 = 2 half the time, omega_g and
    omega_a of either sign, Delta of either sign; t = 0 and 7 log-uniform times in [1e-3, 100]."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        p = dict(nbar=float(10 ** rng.uniform(-8, np.log10(nbar_max))),
                 J1=float(rng.choice([0.0, rng.uniform(-1, 1.5)])),
                 J2=float(rng.choice([2.0, rng.uniform(-1.5, 2.0)])),
                 omega_g=float(rng.uniform(-1.5, 1.5)), omega_a=float(rng.uniform(-2, 2.0)),
                 Delta=float(rng.choice([-1, 1]) * rng.uniform(0.3, 1.5)))
        t = np.concatenate([[0.0], np.sort(10 ** rng.uniform(-3, 2, 7))])
        out.append(pytest.param(charger, p, t, id=f"{charger}-nbar={p['nbar']:.3g}"))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("battery_hamiltonian", ["interacting", "bare"])
@pytest.mark.parametrize("charger,params,t", _random_cases("coherent", 12, 1, 300.0)
                         + _random_cases("thermal", 6, 2, 30.0))
def test_qbfast_matches_mp_reference_random(charger, params, t, battery_hamiltonian):
    _compare(charger, params, t, battery_hamiltonian)


# ----------------------------------------------------------------------------- a kernel defect
SPECTRA = {
    "degenerate top pair": [1e-9, 0.5 - 0.5e-9, 0.5 - 0.5e-9],
    "top pair 1e-7 apart": [1e-9, 0.5 - 0.5e-9 - 5e-8, 0.5 - 0.5e-9 + 5e-8],
    "degenerate bottom pair": [1e-9, 1e-9, 1.0 - 2e-9],
    "bottom pair zero": [0.0, 0.0, 1.0],
    "all equal": [1 / 3, 1 / 3, 1 / 3],
    "pure": [0.0, 1e-300, 1.0],
    "spread": [1e-12, 0.3, 0.7 - 1e-12],
}


@pytest.mark.parametrize("name", list(SPECTRA))
def test_density3_spectrum_near_degeneracies(name):
    """density3_spectrum (the coherent charger's spectrum route) at 1e-12 absolute against 50
    digits, on random rotations of spectra with degenerate or nearly degenerate pairs (the
    trigonometric cubic alone loses ~sqrt(eps) on the members of such a pair: 4e-9 here)."""
    from qbfast.kernels.chargers import density3_spectrum

    ev = np.array(SPECTRA[name])
    for seed in range(12):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3)))
        m = (q * ev) @ q.conj().T
        m = 0.5 * (m + m.conj().T)
        with mp.workdps(mr.DPS):
            exact = sorted(float(mp.re(x)) for x in mp.eighe(
                mp.matrix([[mp.mpc(complex(m[i, k])) for k in range(3)] for i in range(3)]),
                eigvals_only=True))
        got = np.array(density3_spectrum(m))
        np.testing.assert_allclose(got, exact, rtol=0, atol=1e-12, err_msg=f"seed {seed}")
