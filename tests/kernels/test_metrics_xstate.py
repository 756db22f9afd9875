"""The cavity X-state route of the metrics: ``write_block_xstate`` and its ``*_xstate`` formulas.

- every one of the 15 metrics from the X-state summary rows against the definitions applied to
  the density matrix itself (tests/independent_reference.py: NumPy/QuTiP, steering by outcome
  probabilities, Yu-Eberly concurrence), on random and edge-case X states;
- every metric requested alone (and a few subsets) equals the same metric of a full request, so
  the shared terms computed only when needed are computed whenever needed;
- the steering shortcut against the general formula :func:`steering_pair`.
"""

from __future__ import annotations

import independent_reference as ref  # tests/ is on pytest's pythonpath
import numpy as np
import pytest

from qbfast.kernels import metrics as mk
from qbfast.kernels.metrics import (
    marginal_term,
    steering_joint_xstate,
    steering_pair,
    steering_xstate,
    write_block_xstate,
    xlog2x,
)

EE, EG, GE, GG = range(4)  # basis order (ee, eg, ge, gg)


def x_state(c: np.ndarray) -> np.ndarray:
    """rho_B of the cavity sector state c_gg |n,gg> + c_T |T> + c_ee |n-2,ee> with the triplet
    |T> = (|n-1,eg> + |n-1,ge>)/sqrt(2) (the exchange-symmetric states the model produces):
    diag(|c_ee|^2, [[|c_T|^2/2, |c_T|^2/2], [|c_T|^2/2, |c_T|^2/2]], |c_gg|^2)."""
    c = np.asarray(c, dtype=complex)
    c = c / np.linalg.norm(c)
    sector = np.array([c[0], c[1] / np.sqrt(2), c[1] / np.sqrt(2), c[2]])
    rho = np.zeros((4, 4), dtype=complex)
    rho[EE, EE] = abs(sector[3]) ** 2
    rho[GG, GG] = abs(sector[0]) ** 2
    rho[EG:GE + 1, EG:GE + 1] = np.outer(sector[1:3], sector[1:3].conj())
    return rho


def edge_states() -> list[np.ndarray]:
    s = np.sqrt(0.5)
    return [x_state(c) for c in (
        [1, 0, 0],               # |gg>: nothing stored
        [0, 0, 1],               # |ee>: full charge
        [0, 1, 0],               # triplet Psi+: maximally entangled
        [0, 1j, 0],              # the same state, another phase
        [s, 0, s],               # classical mixture of gg and ee
        [s, s, 0],
        [1, 1e-9, 0],            # barely charged
        [1e-9, 1, 1e-9],
    )]


def random_states(rng: np.random.Generator, k: int) -> list[np.ndarray]:
    return [x_state(rng.normal(size=3) + 1j * rng.normal(size=3)) for _ in range(k)]


def summary_rows(rhos: list[np.ndarray], hb: np.ndarray) -> np.ndarray:
    """The X-state summary rows XS_ENERGY .. XS_SZ computed here with NumPy; the scratch
    rows are filled with NaN so that reading one before writing it shows."""
    rows = np.full((mk.N_XSUMMARY, len(rhos)), np.nan)
    for j, rho in enumerate(rhos):
        n, _, _ = ref.bloch_summary(rho)
        rows[mk.XS_ENERGY, j] = np.real(np.trace(hb @ rho) - hb[GG, GG])
        rows[mk.XS_GG, j] = rho[GG, GG].real
        rows[mk.XS_T, j] = rho[EG, EG].real + rho[GE, GE].real
        rows[mk.XS_EE, j] = rho[EE, EE].real
        rows[mk.XS_NZ, j] = n[2]
    return rows


def run(rhos, hb, delta, t, slot=None) -> np.ndarray:
    """write_block_xstate for one parameter point at a start offset; returns out[:, 0, 2:]."""
    n = len(rhos)
    if slot is None:
        slot = np.arange(len(ref.METRIC_NAMES), dtype=np.int64)
    e = np.sort(np.linalg.eigvalsh(hb))
    out = np.full((int(np.max(slot)) + 1, 1, n + 4), -123.0)
    t_full = np.concatenate([[-1.0, -1.0], np.asarray(t, dtype=float), [-1.0, -1.0]])
    threshold = 1e-12 * max(abs(delta), float(np.max(np.abs(e))))
    write_block_xstate(out, slot, 0, 2, t_full, summary_rows(rhos, hb), n, delta, threshold,
                       float(np.real(hb[GG, GG])), (e[0], e[1], e[2], e[3]))
    assert np.all(out[:, 0, :2] == -123.0) and np.all(out[:, 0, n + 2:] == -123.0), \
        "wrote outside its block"
    return out[:, 0, 2:n + 2]


def random_battery_h(rng: np.random.Generator) -> np.ndarray:
    """A cavity battery Hamiltonian with random Delta, J1, J2 (physics.md eq. 23)."""
    return ref.cavity_battery_h(rng.uniform(0.2, 2.0), rng.uniform(-1.5, 1.5),
                                rng.uniform(-1.5, 2.0))


def assert_matches_definitions(got, rhos, hb, delta, t):
    for j, rho in enumerate(rhos):
        expected = ref.metrics_from_rho(rho, hb, delta, t[j], ref.concurrence_x(rho))
        for m, name in enumerate(ref.METRIC_NAMES):
            np.testing.assert_allclose(got[m, j], expected[name], rtol=1e-10, atol=1e-12,
                                       equal_nan=True, err_msg=f"{name}, state {j}")


def test_random_x_states_match_definitions():
    rng = np.random.default_rng(99)
    for _ in range(10):
        rhos = random_states(rng, 6)
        hb = random_battery_h(rng)
        delta = rng.uniform(-2, 2)
        t = np.concatenate([[0.0], np.sort(rng.uniform(0.1, 5, 5))])
        assert_matches_definitions(run(rhos, hb, delta, t), rhos, hb, delta, t)


@pytest.mark.parametrize("accounting", ["interacting", "bare"])
def test_edge_states_match_definitions(accounting):
    rhos = edge_states()
    hb = ref.cavity_battery_h(1.0, 1.0, 1.0) if accounting == "interacting" else ref.bare_h(1.0)
    t = np.linspace(0.0, 3.0, len(rhos))
    got = run(rhos, hb, 1.0, t)
    assert_matches_definitions(got, rhos, hb, 1.0, t)
    names = list(ref.METRIC_NAMES)
    # |gg> at t = 0: nothing stored, efficiencies and power undefined
    assert got[names.index("energy"), 0] == 0.0
    for name in ("efficiency", "efficiency_incoherent", "power"):
        assert np.isnan(got[names.index(name), 0]), name
    # the triplet Psi+: maximal concurrence, steering sum 0
    for j in (2, 3):
        assert got[names.index("concurrence"), j] == pytest.approx(1.0, abs=1e-15)
        assert got[names.index("steering_ab"), j] == pytest.approx(0.0, abs=1e-13)


@pytest.mark.parametrize("wanted", [[name] for name in ref.METRIC_NAMES] + [
    ["steering_ba", "energy"], ["entropy_battery", "steering_ab"],
    ["entropy_diag_cell", "concurrence"], ["power", "entropy_cell", "steering_ba"]])
def test_any_subset_of_metrics_gives_the_full_values(wanted):
    rng = np.random.default_rng(5)
    rhos = random_states(rng, 5)
    hb = random_battery_h(rng)
    t = [0.0, 0.5, 1.0, 1.5, 2.0]
    full = run(rhos, hb, 0.8, t)
    slot = np.full(len(ref.METRIC_NAMES), -1, dtype=np.int64)
    for i, name in enumerate(wanted):
        slot[ref.METRIC_NAMES.index(name)] = i
    got = run(rhos, hb, 0.8, t, slot=slot)
    for i, name in enumerate(wanted):
        np.testing.assert_array_equal(got[i], full[ref.METRIC_NAMES.index(name)], err_msg=name)


def test_xstate_steering_equals_general_formula():
    rng = np.random.default_rng(7)
    for _ in range(500):
        # populations of a symmetric X state: p_eg = p_ge = coh = p_T / 2
        p_ee, p_t, p_gg = rng.dirichlet(np.ones(3))
        nz = sz = p_ee - p_gg
        cz = p_ee + p_gg - p_t
        i_ab, i_ba = steering_pair(0.0, 0.0, nz, 0.0, 0.0, sz, p_t, p_t, cz)
        joint = steering_joint_xstate(xlog2x(p_gg), xlog2x(p_t), xlog2x(p_ee), p_t)
        assert abs(steering_xstate(joint, marginal_term(nz)) - i_ab) < 1e-13
        assert abs(steering_xstate(joint, marginal_term(sz)) - i_ba) < 1e-13
