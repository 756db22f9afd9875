"""The coherent and thermal chargers (qbfast.kernels.chargers) against the facts of
physics.md section 7, the Fock charger's bits, the validation messages and the truncation
windows. The brute-force comparison is tests/test_chargers_reference.py."""

from __future__ import annotations

import math

import independent_reference as ref  # tests/ is on pytest's pythonpath
import numba
import numpy as np
import pytest
from test_reference_qutip import cavity_states

import qbfast
from qbfast.core import Grid
from qbfast.kernels.chargers import (
    TRUNCATION_DELTA,
    coherent_window,
    sector_window,
    thermal_window,
)
from qbfast.kernels.grid import ROUTE_AUTO, cavity_grid
from qbfast.runner.spec import SpecError, parse_spec

T = np.array([0.0, 0.03, 0.4, 1.3, 2.9, 6.1])
CHARGERS = ("coherent", "thermal")


def poisson(nbar, n):
    return math.exp(-nbar + n * math.log(nbar) - math.lgamma(n + 1)) if nbar > 0 else float(n == 0)


def thermal_p(nbar, n):
    return nbar ** n / (1 + nbar) ** (n + 1)


# ---- the Fock charger is today's model, bit for bit -------------------------------------------
def test_fock_charger_is_todays_kernel_bit_for_bit():
    kw = dict(n=[1, 2, 7], J2=[0.0, 0.5, 1.3], J1=0.8)
    t = np.linspace(0, 7, 97)
    default = qbfast.sweep("cavity", t, **kw)
    explicit = qbfast.sweep("cavity", t, charger="fock", **kw)
    g = Grid("cavity", t, **kw)
    table, bare, slot, _ = g.kernel_inputs()
    assert table.shape[1] == 6  # n, J1, J2, omega_g, omega_a, Delta: today's columns
    out = np.empty((15, g.n_points, t.size))
    cavity_grid(table, t, bare, slot, out, numba.get_num_threads(), ROUTE_AUTO)
    for i, name in enumerate(qbfast.METRICS):
        a = default[name].values.reshape(g.n_points, t.size)
        np.testing.assert_array_equal(a, out[i])
        np.testing.assert_array_equal(explicit[name].values, default[name].values)
    assert default.attrs["charger"] == "fock" and "nbar" not in default.attrs
    assert qbfast.sweep("field", t[:3]).attrs["charger"] == "none"


# ---- API and validation ---------------------------------------------------------------------
def test_nbar_is_a_parameter_with_coordinate_and_attrs():
    ds = qbfast.sweep("cavity", T, charger="coherent", nbar=[0.5, 2.0], J2=0.3)
    assert ds.attrs["charger"] == "coherent"
    assert ds.nbar.attrs["units"] == "1" and "photon" in ds.nbar.attrs["long_name"]
    assert ds.energy.dims == ("nbar", "t") and "n" not in ds.attrs
    fixed = qbfast.sweep("cavity", T, charger="thermal", nbar=3.0)
    assert fixed.attrs["nbar"] == 3.0 and fixed.attrs["charger"] == "thermal"
    default = qbfast.sweep("cavity", T, charger="coherent")
    assert default.attrs["nbar"] == qbfast.MODELS["cavity"].parameter("nbar").default


@pytest.mark.parametrize("kwargs, message", [
    (dict(model="field", charger="coherent"), "charger: the 'field' model has no charger"),
    (dict(model="cavity", charger="squeezed"), "charger: unknown charger 'squeezed' for model "
                                               "'cavity'; allowed: 'fock', 'coherent', 'thermal'"),
    (dict(model="cavity", charger=3), "charger: unknown charger 3"),
    (dict(model="cavity", nbar=2.0), "nbar: belongs to charger 'coherent', 'thermal' of model "
                                     "'cavity', not to charger 'fock'"),
    (dict(model="cavity", charger="fock", nbar=[1.0]), "nbar: belongs to charger"),
    (dict(model="cavity", charger="coherent", n=3), "n: belongs to charger 'fock' of model "
                                                    "'cavity', not to charger 'coherent'"),
    (dict(model="cavity", charger="thermal", n=[1, 2]), "n: belongs to charger 'fock'"),
    (dict(model="cavity", charger="coherent", nbar=-0.1), "nbar: expected a finite number >= 0.0"),
    (dict(model="cavity", charger="thermal", nbar=[1.0, float("nan")]), "nbar[1]: expected"),
    (dict(model="field", nbar=1.0), "nbar: unknown parameter for model 'field'"),
])
def test_bad_charger_input_is_one_clear_error(kwargs, message):
    model = kwargs.pop("model")
    with pytest.raises(ValueError) as e:
        qbfast.sweep(model, T, **kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)


SPEC = """
model = "cavity"
{charger}
[params]
{param}
t = {{ start = 0.0, stop = 2.0, num = 5 }}
"""


def test_spec_charger_key():
    spec = parse_spec(SPEC.format(charger='charger = "coherent"', param="nbar = [1.0, 4.0]"))
    assert spec.grid.charger == "coherent" and spec.dims == ("nbar", "t")
    assert spec.canonical()["charger"] == "coherent"
    fock = parse_spec(SPEC.format(charger="", param="n = [1, 4]"))
    assert "charger" not in fock.canonical()  # existing specs keep their hash
    assert fock.hash == parse_spec(SPEC.format(charger='charger = "fock"',
                                               param="n = [1, 4]")).hash
    chunk = spec.chunk_grid_request(spec.chunk_indices()[0])
    assert chunk.charger == "coherent"
    for charger, param, message in [
        ('charger = "laser"', "nbar = 1.0", "charger: unknown charger 'laser'"),
        ('charger = "coherent"', "n = 3", "params.n: belongs to charger 'fock'"),
        ("", "nbar = 2.0", "params.nbar: belongs to charger 'coherent', 'thermal'"),
        ("charger = 1", "nbar = 2.0", "charger: expected a string"),
    ]:
        with pytest.raises(SpecError, match=message):
            parse_spec(SPEC.format(charger=charger, param=param))


# ---- truncation windows -----------------------------------------------------------------------
def coherent_bound(nbar, lo, hi):
    """physics.md section 7's bound with the omitted weights summed exactly (to 1e-300)."""
    p = lambda n: poisson(nbar, n) if n >= 0 else 0.0  # noqa: E731
    eps_lo = sum(p(n) for n in range(lo))
    eps_hi = 1.0 - sum(p(n) for n in range(hi + 1))
    tail = 0.0
    n = hi + 1
    while True:  # the upper tail summed directly (1 - sum loses it below 1e-16)
        tail += p(n)
        if p(n) < 1e-300 or (n > nbar and p(n) < 1e-40 * tail):
            break
        n += 1
    eps_hi = tail
    return (eps_lo + eps_hi + 2 * math.sqrt((p(hi - 1) + p(hi)) * (p(hi + 1) + p(hi + 2)))
            + 2 * math.sqrt((p(lo) + p(lo + 1)) * (p(lo - 1) + p(lo - 2))))


@pytest.mark.parametrize("nbar", [1e-7, 1e-3, 0.4, 1.0, 10.0, 37.5, 100.0, 400.0])
def test_windows_meet_the_section7_bound(nbar):
    for delta in (1e-13, TRUNCATION_DELTA):
        lo, hi = coherent_window(nbar, delta)
        assert coherent_bound(nbar, lo, hi) <= delta
        lo, hi = thermal_window(nbar, delta)
        r = nbar / (1 + nbar)
        assert lo == 0 and r ** (hi + 1) <= delta < r ** hi


def test_window_sizes_match_physics_md_at_1e_13():
    """physics.md section 7: 17, 44, 152, 477 (coherent) and 44, 315, 3009, 29949 (thermal)
    sectors at delta = 1e-13; the coherent windows here are grown greedily, never larger."""
    for nbar, coh, th in [(1, 17, 44), (10, 44, 315), (100, 152, 3009), (1000, 477, 29949)]:
        lo, hi = coherent_window(float(nbar), 1e-13)
        assert coh - 1 <= hi - lo + 1 <= coh
        lo, hi = thermal_window(float(nbar), 1e-13)
        assert hi - lo + 1 == th
    assert sector_window(False, 0.0) == (0, 0) and sector_window(True, 0.0) == (0, 0)


# ---- section 7 facts --------------------------------------------------------------------------
@pytest.mark.parametrize("bh", ["interacting", "bare"])
@pytest.mark.parametrize("charger", CHARGERS)
def test_energy_sum_rule(charger, bh):
    """E(t) = sum_N p_N E_fock(N)(t) exactly, both accountings (E_fock(0) = 0)."""
    nbar = 2.5
    kw = dict(J1=0.7, J2=0.3, omega_g=0.8, omega_a=1.2, Delta=1.0, battery_hamiltonian=bh)
    lo, hi = sector_window(charger == "thermal", nbar)
    ns = list(range(1, hi + 1))
    fock = qbfast.sweep("cavity", T, n=ns, **kw).energy.values
    weight = poisson if charger == "coherent" else thermal_p
    expected = sum(weight(nbar, n) * fock[i] for i, n in enumerate(ns))
    got = qbfast.sweep("cavity", T, charger=charger, nbar=nbar, **kw).energy.values
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("bh", ["interacting", "bare"])
@pytest.mark.parametrize("charger", CHARGERS)
def test_short_time_energy(charger, bh):
    """E = 2 wg^2 nbar Delta (1 + 2J1 - 2J2) t^2 + O(t^4) (bare: without 2J1 - 2J2)."""
    nbar, wg, j1, j2, delta = 3.0, 0.7, 0.4, 0.3, 1.1
    t = np.array([0.0, 1e-4, 2e-4])
    ds = qbfast.sweep("cavity", t, charger=charger, nbar=nbar, omega_g=wg, J1=j1, J2=j2,
                      Delta=delta, battery_hamiltonian=bh)
    factor = 1 + 2 * j1 - 2 * j2 if bh == "interacting" else 1.0
    expected = 2 * wg ** 2 * nbar * delta * factor * t ** 2
    np.testing.assert_allclose(ds.energy.values, expected, rtol=1e-6, atol=1e-20)


@pytest.mark.parametrize("charger", CHARGERS)
def test_t0_is_gg_for_every_charger(charger):
    ds = qbfast.sweep("cavity", [0.0, 1.0], charger=charger, nbar=[0.0, 0.3, 7.0, 60.0],
                      J1=0.2, J2=0.1)
    at0 = ds.isel(t=0)
    for name, value in [("energy", 0.0), ("ergotropy", 0.0), ("concurrence", 0.0),
                        ("purity_battery", 1.0), ("entropy_battery", 0.0),
                        ("steering_ab", 2.0), ("ergotropy_local", 0.0)]:
        np.testing.assert_allclose(at0[name].values, value, atol=1e-12, err_msg=name)
    assert np.all(np.isnan(at0.efficiency.values)) and np.all(np.isnan(at0.power.values))
    vacuum = ds.sel(nbar=0.0)  # nothing charges
    np.testing.assert_allclose(vacuum.energy.values, 0.0, atol=1e-15)


@pytest.mark.parametrize("charger", CHARGERS)
def test_small_nbar_limit(charger):
    """nbar -> 0: E / nbar -> E_fock(n=1)(t); coherent coherences ~ sqrt(nbar), thermal 0."""
    kw = dict(J1=0.6, J2=0.2, omega_g=0.9, omega_a=1.1, Delta=1.0)
    e1 = qbfast.sweep("cavity", T, n=1, **kw).energy.values
    nbar = 1e-8
    ds = qbfast.sweep("cavity", T, charger=charger, nbar=nbar, **kw)
    np.testing.assert_allclose(ds.energy.values / nbar, e1, rtol=1e-6, atol=1e-10)
    # the cells' transverse Bloch vector, from the coherences (X_eT + X_Tg) / sqrt2 ~ sqrt(nbar),
    # adds ~ |n_perp|^2 ~ nbar to the local ergotropy: only for the coherent charger
    local_gap = ds.ergotropy_local.values - 2 * ds.ergotropy_incoherent_cell.values
    if charger == "thermal":
        np.testing.assert_allclose(local_gap, 0.0, atol=1e-15)
    else:
        assert np.all(local_gap >= 0) and np.max(local_gap) > 0.1 * nbar


def test_symmetries_and_inequalities():
    kw = dict(nbar=[0.4, 5.0], J1=0.8, J2=0.2, omega_g=0.6, omega_a=1.4, Delta=1.0)
    t = np.linspace(0, 8, 81)
    for charger in CHARGERS:
        ds = qbfast.sweep("cavity", t, charger=charger, **kw)
        np.testing.assert_array_equal(ds.steering_ab.values, ds.steering_ba.values)
        local = ds.ergotropy_local.values
        inc = 2 * ds.ergotropy_incoherent_cell.values
        if charger == "thermal":
            np.testing.assert_allclose(local, inc, atol=1e-14)
            np.testing.assert_allclose(ds.entropy_cell.values, ds.entropy_diag_cell.values,
                                       atol=1e-14)
        else:
            assert np.all(local >= inc - 1e-14)
            assert np.all(ds.entropy_cell.values <= ds.entropy_diag_cell.values + 1e-14)
            assert np.max(local - inc) > 1e-2
        # the populations stay in [0, 1]: entropies and purities in range
        assert np.all(ds.purity_battery.values <= 1 + 1e-12)
        assert np.all(ds.purity_battery.values >= 1 / 3 - 1e-12)  # rank <= 3 (no singlet)
        assert np.all(ds.concurrence.values >= 0)


def ladder_amplitudes(n_exc, j, wg, delta, t):
    """physics.md section 7, J1 = J2 = J, omega_a = Delta: the sector-N ladder in closed form
    (c_gg, c_T0, c_ee), including the phase e^{-i E_d t}, E_d = (N - 1 + J) Delta."""
    a = math.sqrt(2 * n_exc)
    b = math.sqrt(2 * max(n_exc - 1, 0))
    lam = math.sqrt(4 * n_exc - 2) if n_exc > 0 else 1.0
    ph = np.exp(-1j * (n_exc - 1 + j) * delta * t)
    if n_exc == 0:
        return ph, 0 * t, 0 * t
    x = lam * wg * t
    return (ph * (b ** 2 + a ** 2 * np.cos(x)) / lam ** 2, -1j * ph * (a / lam) * np.sin(x),
            ph * (a * b / lam ** 2) * (np.cos(x) - 1))


def test_j1_equals_j2_closed_form_all_metrics():
    """rho_B built from the closed-form ladder amplitudes (sum over m of phi_m phi_m^dag,
    physics.md section 7), metrics by definition (independent_reference) vs the kernel."""
    nbar, j, wg, delta = 3.0, 0.7, 0.8, 1.0
    t = np.array([0.0, 0.3, 1.1, 2.6, 5.0])
    lo, hi = 0, 60
    amps = {n: [math.sqrt(poisson(nbar, n)) * c for c in ladder_amplitudes(n, j, wg, delta, t)]
            for n in range(lo, hi + 1)}
    hb = ref.cavity_battery_h(delta, j, j)
    ds = qbfast.sweep("cavity", t, charger="coherent", nbar=nbar, J1=j, J2=j, omega_g=wg,
                      omega_a=delta, Delta=delta)
    for k, tk in enumerate(t):
        rho = np.zeros((4, 4), dtype=complex)
        for m in range(hi + 1):
            ee = amps[m + 2][2][k] if m + 2 <= hi else 0.0
            tt = amps[m + 1][1][k] if m + 1 <= hi else 0.0
            gg = amps[m][0][k]
            phi = np.array([ee, tt / math.sqrt(2), tt / math.sqrt(2), gg])
            rho += np.outer(phi, phi.conj())
        w, v = np.linalg.eigh(rho)
        f = v * np.sqrt(np.clip(w, 0, None))
        s = np.linalg.svd(f.T @ np.kron(ref.SY, ref.SY) @ f, compute_uv=False)
        conc = max(0.0, s[0] - s[1:].sum())
        expected = ref.metrics_from_rho(rho, hb, delta, tk, conc)
        for name in ref.METRIC_NAMES:
            if tk == 0 and name in ("efficiency", "efficiency_incoherent", "power"):
                assert np.isnan(ds[name].values[k])
                continue
            np.testing.assert_allclose(ds[name].values[k], expected[name], rtol=1e-9,
                                       atol=1e-10, err_msg=f"{name} t={tk}")


def test_classical_limit_large_nbar():
    """nbar -> infinity at fixed Omega = wg sqrt(nbar), J1 = J2: a product state with
    E = 2 Delta (4 Omega^2 / W^2) sin^2(W t / 2), W = sqrt((Delta - wa)^2 + 4 Omega^2);
    the trace distance is ~ K(t) / nbar."""
    omega, delta, wa, j = 0.5, 1.0, 1.3, 0.4
    t = np.linspace(0, 4, 9)
    w = math.sqrt((delta - wa) ** 2 + 4 * omega ** 2)
    classical = 2 * delta * (4 * omega ** 2 / w ** 2) * np.sin(w * t / 2) ** 2
    errors = []
    for nbar in (100.0, 400.0):
        ds = qbfast.sweep("cavity", t, charger="coherent", nbar=nbar, omega_g=omega / math.sqrt(nbar),
                          omega_a=wa, J1=j, J2=j, Delta=delta)
        errors.append(np.max(np.abs(ds.energy.values - classical)))
        assert np.max(ds.concurrence.values) < 20 / nbar
        assert np.min(ds.purity_battery.values) > 1 - 40 / nbar
    assert errors[1] < 20 / 400 and errors[1] < errors[0] / 2.5  # ~ 1/nbar


def test_coherent_is_not_the_poisson_mixture():
    """The Poisson mixture sum_N p_N rho_fock(N) (QuTiP Fock brute force, tests/
    test_reference_qutip.py) has the coherent charger's energy but not its ergotropy:
    documented point nbar = 2, J1 = 0.8, J2 = 0.2, omega_g = omega_a = Delta = 1, t = 1.3."""
    nbar = 2.0
    params = dict(J1=0.8, J2=0.2, omega_g=1.0, omega_a=1.0, Delta=1.0)
    t = np.array([0.4, 1.3])
    rho = np.zeros((len(t), 4, 4), dtype=complex)
    for n in range(1, 40):
        rho += poisson(nbar, n) * np.array(cavity_states(n=n, t=t, **params))
    rho += poisson(nbar, 0) * np.diag([0, 0, 0, 1.0])  # |0,gg> does not evolve
    hb = ref.cavity_battery_h(1.0, 0.8, 0.2)
    coh = qbfast.sweep("cavity", t, charger="coherent", nbar=nbar, **params)
    for k in range(len(t)):
        mix = ref.metrics_from_rho(rho[k], hb, 1.0, t[k], ref.concurrence_x(rho[k]))
        assert abs(coh.energy.values[k] - mix["energy"]) < 1e-9
        assert abs(coh.ergotropy_incoherent_cell.values[k]
                   - mix["ergotropy_incoherent_cell"]) < 1e-9
        assert abs(coh.ergotropy.values[k] - mix["ergotropy"]) > 0.05
        assert abs(coh.entropy_battery.values[k] - mix["entropy_battery"]) > 0.05
