"""``qbfast.sweep`` against the closed forms and exact facts of physics.md section 5, and the
invariants every state must satisfy. Expected values come from formulas evaluated here (or a
separate scipy ODE for one qubit), never from qbfast's output.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar

import qbfast

ATOL = 1e-9
RTOL = 1e-6


def h2(p):
    """Binary entropy in bits, elementwise, 0 log 0 = 0."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    out = np.zeros_like(p)
    for q in (p, 1.0 - p):
        pos = q > 0
        out[pos] -= q[pos] * np.log2(q[pos])
    return out


def drive_angle(t, A, B, omega):
    """A1(t) of eq. 16, computed here: (B t + (A/omega) sin(omega t))/2; static (A + B) t / 2."""
    if omega == 0:
        return 0.5 * (A + B) * t
    return 0.5 * (B * t + A * np.sin(omega * t) / omega)


# ----------------------------------------------------------------------------- field, drive
FIELD_DRIVE_CASES = [
    dict(A=1.0, B=2.0, omega=1.0, g=0.0, Delta=1.0),
    dict(A=0.0, B=1.3, omega=0.7, g=0.5, Delta=1.2),          # A = 0
    dict(A=1.5, B=0.4, omega=0.0, g=1.0, Delta=1.0),          # static field, g = Delta
    dict(A=-2.0, B=0.8, omega=2.5, g=-1.0, Delta=0.8),        # negative g
    dict(A=1.7, B=-0.6, omega=3.1, g=0.9, Delta=1.4),
    dict(A=0.0, B=0.0, omega=1.0, g=0.3, Delta=1.0),          # no drive at all
]


@pytest.mark.parametrize("battery_hamiltonian", ["interacting", "bare"])
@pytest.mark.parametrize("case", range(len(FIELD_DRIVE_CASES)))
def test_field_drive_closed_forms(case, battery_hamiltonian):
    p = FIELD_DRIVE_CASES[case]
    t = np.linspace(0.0, 8.0, 161)
    ds = qbfast.sweep("field", t, protocol="drive", battery_hamiltonian=battery_hamiltonian, **p)
    d = p["Delta"]
    a1 = drive_angle(t, p["A"], p["B"], p["omega"])
    c2, s2 = np.cos(2 * a1), np.sin(2 * a1)
    energy = d * (1 - c2)                                               # eq. 17
    close = dict(rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(ds.energy, energy, **close)
    np.testing.assert_allclose(ds.entropy_diag_cell, h2((1 - c2) / 2), rtol=RTOL, atol=1e-11)
    np.testing.assert_allclose(ds.ergotropy_incoherent_cell, np.maximum(0, -d * c2), **close)
    np.testing.assert_allclose(ds.entropy_cell, 0, atol=1e-12)
    np.testing.assert_allclose(ds.entropy_battery, 0, atol=1e-12)
    np.testing.assert_allclose(ds.concurrence, 0, atol=1e-12)
    np.testing.assert_allclose(ds.purity_cell, 1, atol=1e-12, rtol=0)
    np.testing.assert_allclose(ds.purity_battery, 1, atol=1e-12, rtol=0)
    # both cells are pure with Bloch vector (0, sin 2A1, -cos 2A1): local ergotropy is the energy
    np.testing.assert_allclose(ds.ergotropy_local, energy, **close)
    # product state: H(sigma_i^b | sigma_i^a) = H(sigma_i^b) = h((1 + s_i)/2), s = (0, sin, -cos)
    steering = 1.0 + h2((1 + s2) / 2) + h2((1 - c2) / 2)
    np.testing.assert_allclose(ds.steering_ab, steering, rtol=RTOL, atol=1e-11)
    np.testing.assert_array_equal(ds.steering_ab, ds.steering_ba)
    assert np.all(ds.steering_ab >= 2 - 1e-12)
    if battery_hamiltonian == "bare" or p["g"] <= d:
        np.testing.assert_allclose(ds.ergotropy, energy, **close)        # |gg> is the ground state
    else:
        np.testing.assert_allclose(ds.ergotropy, energy + p["g"] - d, **close)  # singlet below
    np.testing.assert_allclose(ds.power[1:], energy[1:] / t[1:], **close)
    assert np.isnan(ds.power[0])
    charged = energy > 1e-9
    np.testing.assert_allclose(ds.efficiency_incoherent[charged],
                               np.maximum(0, -d * c2[charged]) / (energy[charged] / 2), **close)
    assert np.all(np.isnan(ds.efficiency[energy == 0])), "efficiency must be NaN at zero energy"
    if battery_hamiltonian == "bare" or p["g"] <= d:
        np.testing.assert_allclose(ds.efficiency[charged], 1.0, rtol=1e-9)


def test_efficiency_nan_threshold():
    """NaN iff energy <= 1e-12 max(|Delta|, max |eig H_b|): energy ~ Delta B^2 t^2 / 2 for A = 0
    at small t. With g = 40 the largest |eigenvalue| of H_b is 3g/4 = 30, so the threshold is
    3e-11 there, 1e-12 for g = 0 or for the bare H0 (eigenvalues +-Delta, 0)."""
    t_of = {e: np.sqrt(2 * e) for e in (1e-10, 1e-11, 1e-13)}  # Delta = B = 1
    t = np.array([0.0, t_of[1e-13], t_of[1e-11], t_of[1e-10]])
    expected_energy = 2 * np.sin(t / 2) ** 2  # 1 - cos 2A1 with A1 = t/2, without cancellation
    nan = {}
    for g, bh in [(0.0, "interacting"), (40.0, "interacting"), (40.0, "bare")]:
        ds = qbfast.sweep("field", t, A=0.0, B=1.0, omega=1.0, g=g, Delta=1.0,
                          battery_hamiltonian=bh)
        np.testing.assert_allclose(ds.energy, expected_energy, rtol=1e-4, atol=1e-15)
        nan[g, bh] = (tuple(np.isnan(ds.efficiency.values)),
                      tuple(np.isnan(ds.efficiency_incoherent.values)))
    assert nan[0.0, "interacting"] == ((True, True, False, False),) * 2
    assert nan[40.0, "interacting"] == ((True, True, True, False),) * 2
    assert nan[40.0, "bare"] == ((True, True, False, False),) * 2


def test_field_drive_static_field_is_limit_of_omega_to_zero():
    """omega = 0 is a static field of strength A + B (and continuous in omega)."""
    t = np.linspace(0.0, 5.0, 21)
    static = qbfast.sweep("field", t, A=0.7, B=0.5, omega=0.0, metrics=["energy"]).energy
    tiny = qbfast.sweep("field", t, A=0.7, B=0.5, omega=1e-7, metrics=["energy"]).energy
    np.testing.assert_allclose(static, 1 - np.cos(1.2 * t), atol=1e-12)
    np.testing.assert_allclose(tiny, static, atol=1e-9)


# ----------------------------------------------------------------------------- field, full
def single_qubit_energy(A, B, omega, Delta, t):
    """The product state |phi>|phi> of protocol 'full': phi evolves under
    (Delta/2) sigma_z + f(t) sigma_x with f = (A cos(omega t) + B)/2; energy = Delta (<sz> + 1).
    A 2-dimensional ODE solved with scipy's DOP853 (independent of qutip and qbfast)."""
    def rhs(tt, y):
        phi = y[:2] + 1j * y[2:]
        f = 0.5 * (A * np.cos(omega * tt) + B)
        dphi = -1j * np.array([0.5 * Delta * phi[0] + f * phi[1],
                               f * phi[0] - 0.5 * Delta * phi[1]])
        return np.concatenate([dphi.real, dphi.imag])

    sol = solve_ivp(rhs, (0.0, t[-1]), [0.0, 1.0, 0.0, 0.0], t_eval=t, method="DOP853",
                    rtol=1e-13, atol=1e-14)
    phi = sol.y[:2] + 1j * sol.y[2:]
    sz = np.abs(phi[0]) ** 2 - np.abs(phi[1]) ** 2
    return Delta * (sz + 1.0)


@pytest.mark.parametrize("params", [
    dict(A=1.0, B=2.0, omega=1.0, Delta=1.0),
    dict(A=2.3, B=-0.7, omega=2.2, Delta=0.6),
    dict(A=0.5, B=0.9, omega=0.0, Delta=1.3),
])
def test_field_full_energy_independent_of_g_and_no_entanglement(params):
    t = np.linspace(0.0, 6.0, 25)
    gs = [-1.5, 0.0, 0.5, 1.0, 2.0, 3.5]
    ds = qbfast.sweep("field", t, protocol="full", g=gs, **params)
    expected = single_qubit_energy(t=t, **params)
    for g in gs:
        sl = ds.sel(g=g)
        np.testing.assert_allclose(sl.energy, expected, rtol=RTOL, atol=ATOL, err_msg=f"g={g}")
        np.testing.assert_allclose(sl.concurrence, 0, atol=1e-12)
        np.testing.assert_allclose(sl.entropy_cell, 0, atol=1e-12)
        np.testing.assert_allclose(sl.purity_battery, 1, atol=1e-12, rtol=0)
        np.testing.assert_allclose(sl.purity_cell, 1, atol=1e-12, rtol=0)
        assert np.all(sl.steering_ab >= 2 - 1e-12)
        # ergotropy: the triplet state is pure; the passive energy is the ground level
        d = params["Delta"]
        ground = min(g / 4 - d, -3 * g / 4)  # lowest level of H_b (Delta > 0)
        np.testing.assert_allclose(sl.ergotropy, sl.energy + (g / 4 - d) - ground,
                                   rtol=RTOL, atol=ATOL)
    spread = ds.energy.max("g") - ds.energy.min("g")
    assert float(spread.max()) < 1e-9


# ----------------------------------------------------------------------------- cavity, ladder
def ladder_energy(t, n, omega_g, delta):
    """J1 = J2, omega_a = Delta: the symmetric sector (|n,gg>, |n-1,T0>, |n-2,ee>) is a resonant
    3-level ladder with couplings a = omega_g sqrt(2n), b = omega_g sqrt(2(n-1)); with
    Omega^2 = a^2 + b^2, P_T0 = (a/Omega)^2 sin^2(Omega t),
    P_ee = (ab/Omega^2)^2 (1 - cos Omega t)^2
    and E = Delta (P_T0 + 2 P_ee)."""
    a2, b2 = 2 * n * omega_g**2, 2 * (n - 1) * omega_g**2
    om2 = a2 + b2
    om = np.sqrt(om2)
    return delta * (a2 / om2 * np.sin(om * t) ** 2
                    + 2 * a2 * b2 / om2**2 * (1 - np.cos(om * t)) ** 2)


@pytest.mark.parametrize("n", [2, 3, 7, 20])
def test_cavity_resonant_ladder_maximum(n):
    rng = np.random.default_rng(n)
    for _ in range(3):
        j = float(rng.uniform(-1, 2))
        omega_g = float(rng.uniform(0.3, 2.0))
        delta = float(rng.uniform(0.5, 2.0))
        params = dict(n=n, J1=j, J2=j, omega_g=omega_g, omega_a=delta, Delta=delta)
        e_max = 8 * n * (n - 1) * delta / (2 * n - 1) ** 2
        t_star = np.pi / (omega_g * np.sqrt(4 * n - 2))
        at_star = qbfast.sweep("cavity", [t_star], metrics=["energy"], **params).energy
        np.testing.assert_allclose(at_star, e_max, rtol=0, atol=1e-12)
        # the whole curve, and its maximum over a dense grid of two periods
        t = np.linspace(0.0, 4 * t_star, 4001)
        energy = qbfast.sweep("cavity", t, metrics=["energy"], **params).energy.values
        np.testing.assert_allclose(energy, ladder_energy(t, n, omega_g, delta), rtol=0,
                                   atol=1e-11)
        assert energy.max() <= e_max + 1e-12
        assert abs(t[np.argmax(energy)] % (2 * t_star) - t_star) <= t[1]


def test_fig3_maximum():
    t_star = np.pi / np.sqrt(26)
    ds = qbfast.sweep("cavity", [t_star], n=7, J1=1, J2=1, omega_g=1, omega_a=1, Delta=1)
    np.testing.assert_allclose(ds.energy, 1344 / 676, rtol=0, atol=1e-12)
    assert abs(t_star - 0.616117) < 1e-6 and abs(1344 / 676 - 1.988166) < 1e-6


def first_maximum(f, t_max=3.0, n_grid=3001):
    t = np.linspace(0.0, t_max, n_grid)
    y = f(t)
    k = next(i for i in range(1, len(t) - 1) if y[i - 1] < y[i] >= y[i + 1])
    res = minimize_scalar(lambda s: -float(f(np.array([s]))[0]), bounds=(t[k - 1], t[k + 1]),
                          method="bounded", options={"xatol": 1e-12})
    return -res.fun


@pytest.mark.parametrize("j2, expected", [(0.0, 1.811944), (0.5, 1.941810), (1.0, 1.988166)])
def test_fig3_bare_first_maxima(j2, expected):
    def energy(t):
        return qbfast.sweep("cavity", t, battery_hamiltonian="bare", metrics=["energy"], n=7,
                            J1=1, J2=j2, omega_g=1, omega_a=1, Delta=1).energy.values

    assert abs(first_maximum(energy) - expected) < 1e-6


# ----------------------------------------------------------------------------- cavity facts
@pytest.mark.parametrize("j1, j2", [(1.0, 1.0), (0.4, 0.3), (0.8, -0.1), (0.1, 0.45), (0.2, 0.1),
                                    (0.0, 0.0), (0.6, 1.7)])
def test_cavity_ergotropy_at_t0(j1, j2):
    """rho_B(0) = |gg>: ergotropy Delta (2 J1 + 2 J2 - 1) when the singlet is below |gg>."""
    delta = 1.3
    ds = qbfast.sweep("cavity", [0.0, 0.5], n=5, J1=j1, J2=j2, omega_g=0.7, omega_a=1.1,
                      Delta=delta)
    expected = delta * (2 * j1 + 2 * j2 - 1) if 2 * (j1 + j2) > 1 else 0.0
    np.testing.assert_allclose(ds.ergotropy[0], expected, atol=1e-12, rtol=0)
    np.testing.assert_allclose(ds.energy[0], 0, atol=1e-12)
    assert np.isnan(ds.efficiency[0]) and np.isnan(ds.power[0])
    assert np.isnan(ds.efficiency_incoherent[0])
    np.testing.assert_allclose(ds.steering_ab[0], 2, atol=1e-12, rtol=0)
    np.testing.assert_allclose(ds.concurrence[0], 0, atol=1e-12)
    np.testing.assert_allclose(ds.entropy_battery[0], 0, atol=1e-12)
    np.testing.assert_allclose(ds.purity_battery[0], 1, atol=1e-12, rtol=0)


def test_cavity_energy_sign_and_range_facts():
    t = np.linspace(0.0, 20.0, 4001)
    # 2 J2 > 1 + 2 J1: the energy goes negative (and efficiency is then NaN)
    ds = qbfast.sweep("cavity", t, n=7, J1=0.1, J2=1.5, omega_g=1, omega_a=1, Delta=1)
    assert float(ds.energy.min()) < -1e-3
    assert np.all(np.isnan(ds.efficiency.values[ds.energy.values < 0]))
    # J2 = 0, J1 = 1: the energy exceeds 2 Delta
    ds = qbfast.sweep("cavity", t, n=7, J1=1, J2=0, omega_g=1, omega_a=1, Delta=1)
    assert float(ds.energy.max()) > 2.0
    # 2 (J1 + J2) > 1: efficiency exceeds 1 somewhere
    assert float(ds.efficiency.max()) > 1.0


@pytest.mark.parametrize("n", [1, 2, 6])
def test_cavity_symmetric_state_metrics(n):
    """No singlet population and c2 = c3: the two cells are identical, so steering_ab equals
    steering_ba, and for n = 1 |ee> is never reached (energy <= max over the single-excitation
    states, measured with H0 it is at most Delta)."""
    t = np.linspace(0.0, 10.0, 201)
    ds = qbfast.sweep("cavity", t, battery_hamiltonian="bare", n=n, J1=0.3, J2=0.7, omega_g=0.9,
                      omega_a=1.2, Delta=1.0)
    np.testing.assert_allclose(ds.steering_ab, ds.steering_ba, atol=1e-12)
    if n == 1:
        assert float(ds.energy.max()) <= 1.0 + 1e-12


# ----------------------------------------------------------------------------- invariants
def invariant_checks(ds, label):
    v = {name: ds[name].values for name in ds.data_vars}
    tol = 1e-12
    assert np.all(v["purity_battery"] <= 1 + tol), label
    assert np.all(v["purity_battery"] >= 0.25 - tol), label
    assert np.all(v["purity_cell"] <= 1 + tol) and np.all(v["purity_cell"] >= 0.5 - tol), label
    for name, top in [("entropy_cell", 1), ("entropy_battery", 2), ("entropy_diag_cell", 1)]:
        assert np.all(v[name] >= -tol) and np.all(v[name] <= top + tol), (label, name)
    # dephasing cannot lower the entropy of a cell
    assert np.all(v["entropy_diag_cell"] >= v["entropy_cell"] - 1e-9), label
    assert np.all(v["concurrence"] >= 0) and np.all(v["concurrence"] <= 1 + tol), label
    for name in ("steering_ab", "steering_ba"):
        assert np.all(v[name] >= -tol) and np.all(v[name] <= 3 + tol), (label, name)
    assert np.all(v["ergotropy"] >= -1e-12), label
    assert np.all(v["ergotropy_local"] >= -1e-12), label
    assert np.all(v["ergotropy_incoherent_cell"] >= 0), label
    # purity and entropy agree on purity: S = 0 iff Tr rho^2 = 1 (pure battery states)
    pure = v["purity_battery"] > 1 - 1e-14
    assert np.all(v["entropy_battery"][pure] < 1e-9), label
    # the cell's purity from its entropy: both come from |n|; h((1+r)/2) with r^2 = 2P - 1
    r = np.sqrt(np.clip(2 * v["purity_cell"] - 1, 0, 1))
    np.testing.assert_allclose(v["entropy_cell"], h2((1 + r) / 2), atol=1e-6, err_msg=label)


def test_invariants_cavity():
    rng = np.random.default_rng(2024)
    t = np.linspace(0.0, 12.0, 121)
    ds = qbfast.sweep("cavity", t, n=[1, 2, 4, 9], J1=list(rng.uniform(-1, 2, 3)),
                      J2=list(rng.uniform(-1.5, 1.5, 3)), omega_g=0.8, omega_a=1.1, Delta=0.9)
    invariant_checks(ds, "cavity")
    # pure global state, so S(rho_B) = S(cavity) <= log2(3): rank of rho_B is at most 3
    assert float(ds.entropy_battery.max()) <= np.log2(3) + 1e-12
    # an X state with zero singlet population: concurrence 2 max(0, |rho_23| - sqrt(r11 r44))
    # is bounded by the population of the eg/ge block, 1 - p_gg - p_ee <= 1
    assert float(ds.concurrence.max()) <= 1.0


@pytest.mark.parametrize("protocol", ["drive", "full"])
def test_invariants_field(protocol):
    rng = np.random.default_rng(99)
    t = np.linspace(0.0, 6.0, 61)
    ds = qbfast.sweep("field", t, protocol=protocol, A=list(rng.uniform(-2, 2, 3)),
                      B=list(rng.uniform(-2, 2, 2)), omega=[0.0, 1.7], g=[-0.5, 1.0, 2.5],
                      Delta=1.0)
    invariant_checks(ds, f"field {protocol}")
    np.testing.assert_allclose(ds.purity_battery, 1, atol=1e-12, rtol=0)
    np.testing.assert_allclose(ds.entropy_battery, 0, atol=1e-12)
