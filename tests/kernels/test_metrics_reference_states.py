"""The metric kernels on reference states, against definitions computed here from scratch.

- ``steering_pair`` on |gg>, a Bell state, the maximally mixed state and Werner states (the
  reference values of physics.md section 4), and on random mixed states against the
  outcome-probability definition H(sigma_i^b | sigma_i^a) = H(joint) - H(marginal of a).
- ``write_block``: every one of the 15 metrics from the state summary of random mixed states
  against the definitions applied to the density matrix itself (NumPy/QuTiP), the NaN rules
  and the metric selection by ``slot``. (The cavity's X-state writer: test_metrics_xstate.py.)
"""

from __future__ import annotations

import inspect

import independent_reference as ref  # tests/ is on pytest's pythonpath
import numpy as np
import pytest
from scipy.optimize import brentq

from qbfast.kernels import metrics as metrics_kernels
from qbfast.kernels.metrics import steering_pair, write_block

KET_E = np.array([1.0, 0.0], dtype=complex)
KET_G = np.array([0.0, 1.0], dtype=complex)


def kernel_steering(rho: np.ndarray) -> tuple[float, float]:
    n, s, c = ref.bloch_summary(rho)
    return steering_pair(*n, *s, *c)


def dm(psi: np.ndarray) -> np.ndarray:
    return np.outer(psi, psi.conj())


BELL = (np.kron(KET_E, KET_G) + np.kron(KET_G, KET_E)) / np.sqrt(2)  # triplet Psi+
BELL_SINGLET = (np.kron(KET_E, KET_G) - np.kron(KET_G, KET_E)) / np.sqrt(2)
PHI_PLUS = (np.kron(KET_E, KET_E) + np.kron(KET_G, KET_G)) / np.sqrt(2)


def werner(p: float, psi: np.ndarray = BELL_SINGLET) -> np.ndarray:
    return p * dm(psi) + (1 - p) * np.eye(4) / 4


def test_ground_state_gives_two():
    rho = dm(np.kron(KET_G, KET_G))
    np.testing.assert_allclose(kernel_steering(rho), (2.0, 2.0), atol=1e-14)
    np.testing.assert_allclose(ref.steering_by_outcomes(rho), (2.0, 2.0), atol=1e-14)


@pytest.mark.parametrize("psi", [BELL, BELL_SINGLET, PHI_PLUS], ids=["psi+", "psi-", "phi+"])
def test_bell_states_give_zero(psi):
    rho = dm(psi)
    np.testing.assert_allclose(kernel_steering(rho), (0.0, 0.0), atol=1e-13)
    np.testing.assert_allclose(ref.steering_by_outcomes(rho), (0.0, 0.0), atol=1e-13)


def test_maximally_mixed_gives_three():
    rho = np.eye(4, dtype=complex) / 4
    np.testing.assert_allclose(kernel_steering(rho), (3.0, 3.0), atol=1e-14)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.3, 0.5, 0.6521, 0.7, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("psi", [BELL, BELL_SINGLET, PHI_PLUS], ids=["psi+", "psi-", "phi+"])
def test_werner_states(p, psi):
    rho = werner(p, psi)
    expected = 3 * ref.h2((1 + p) / 2)
    np.testing.assert_allclose(kernel_steering(rho), (expected, expected), atol=1e-13)
    np.testing.assert_allclose(ref.steering_by_outcomes(rho), (expected, expected), atol=1e-13)


def test_werner_crossing_at_0_6521():
    def f(p):
        return kernel_steering(werner(p))[0] - 2.0

    p_cross = brentq(f, 0.3, 0.99, xtol=1e-14)
    assert abs(p_cross - 0.6521) < 1e-4
    # and it is where 3 h((1+p)/2) = 2
    assert abs(3 * ref.h2((1 + p_cross) / 2) - 2.0) < 1e-12


@pytest.mark.parametrize("rank", [1, 2, 3, 4])
def test_random_mixed_states_match_outcome_definition(rank):
    rng = np.random.default_rng(1000 + rank)
    for _ in range(100):
        rho = ref.random_density_matrix(rng, rank)
        got = kernel_steering(rho)
        expected = ref.steering_by_outcomes(rho)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_random_product_states_are_never_steerable():
    rng = np.random.default_rng(11)
    for _ in range(100):
        a = ref.random_density_matrix(rng, 4)[:2, :2]
        b = ref.random_density_matrix(rng, 4)[2:, 2:]
        rho = np.kron(a / np.trace(a), b / np.trace(b))
        i_ab, i_ba = kernel_steering(rho)
        assert i_ab >= 2 - 1e-12 and i_ba >= 2 - 1e-12


def test_product_state_on_axis_gives_exactly_two():
    phi = (KET_E + 1j * KET_G) / np.sqrt(2)  # sigma_y eigenstate
    rho = dm(np.kron(phi, KET_G))
    np.testing.assert_allclose(kernel_steering(rho), (2.0, 2.0), atol=1e-13)


# ----------------------------------------------------------------------------- write_block
def summary_quantities(rho: np.ndarray, hb: np.ndarray, concurrence: float) -> dict[str, float]:
    """Every quantity a state-summary row may hold, computed here with NumPy."""
    n, s, c = ref.bloch_summary(rho)
    r = np.linalg.eigvalsh(rho)[::-1]
    exp_h = float(np.real(np.trace(hb @ rho)))
    return {
        "EXP_H": exp_h, "ENERGY_ROW": exp_h - float(np.real(hb[3, 3])),
        "R0": r[0], "R1": r[1], "R2": r[2], "R3": r[3],
        "NX": n[0], "NY": n[1], "NZ": n[2], "SX": s[0], "SY": s[1], "SZ": s[2],
        "CX": c[0], "CY": c[1], "CZ": c[2], "CONC": concurrence,
    }


def summary_of(rhos: list[np.ndarray], hb: np.ndarray, concurrences) -> np.ndarray:
    """The (N_SUMMARY, T) state summary in the row layout qbfast.kernels.metrics declares
    (row indices looked up by name, so only the *meaning* of each row is assumed)."""
    summary = np.full((metrics_kernels.N_SUMMARY, len(rhos)), np.nan)
    filled = set()
    for j, rho in enumerate(rhos):
        for name, value in summary_quantities(rho, hb, concurrences[j]).items():
            row = getattr(metrics_kernels, name, None)
            if row is not None:
                summary[row, j] = value
                filled.add(row)
    assert filled == set(range(metrics_kernels.N_SUMMARY)), "unknown summary rows"
    return summary


def run_write_block(rhos, hb, delta, t, concurrences, slot=None):
    """Call write_block for one parameter point and len(rhos) times; returns out (M, 1, T).

    Arguments are passed by name, so a reordered signature still works; a parameter this test
    does not know fails loudly instead of being guessed."""
    e = np.sort(np.linalg.eigvalsh(hb))
    n = len(rhos)
    if slot is None:
        slot = np.arange(len(ref.METRIC_NAMES), dtype=np.int64)
    out = np.full((int(np.max(slot)) + 1, 1, n), -123.0)
    known = {
        "out": out, "slot": slot, "p": 0, "start": 0, "t": np.asarray(t, dtype=float),
        "summary": summary_of(rhos, hb, concurrences), "n": n,
        "delta": delta, "threshold": 1e-12 * max(abs(delta), float(np.max(np.abs(e)))),
        "e_init": float(np.real(hb[3, 3])), "spectrum": (e[0], e[1], e[2], e[3]),
        # scratch rows (documented as such in write_block's docstring)
        "stored": np.empty(n), "shared": np.empty(n),
    }
    names = list(inspect.signature(write_block.py_func).parameters)
    unknown = [name for name in names if name not in known]
    if unknown:
        pytest.fail(f"write_block has parameters this test does not know: {unknown}")
    write_block(*(known[name] for name in names))
    return out


def random_hermitian(rng):
    z = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
    return 0.5 * (z + z.conj().T)


def assert_block_matches(out, rhos, hb, delta, t, concurrences):
    for j, rho in enumerate(rhos):
        expected = ref.metrics_from_rho(rho, hb, delta, t[j], concurrences[j])
        for m, name in enumerate(ref.METRIC_NAMES):
            np.testing.assert_allclose(out[m, 0, j], expected[name], rtol=1e-10, atol=1e-12,
                                       equal_nan=True, err_msg=name)


@pytest.mark.parametrize("rank", [1, 2, 4])
def test_write_block_random_states(rank):
    rng = np.random.default_rng(77 + rank)
    for _ in range(10):
        rhos = [ref.random_density_matrix(rng, rank) for _ in range(5)]
        hb = random_hermitian(rng)
        delta = rng.uniform(-2, 2)
        t = np.concatenate([[0.0], np.sort(rng.uniform(0.1, 5, 4))])
        conc = rng.uniform(size=5)  # write_block only stores the route's concurrence
        out = run_write_block(rhos, hb, delta, t, conc)
        assert_block_matches(out, rhos, hb, delta, t, conc)


def test_write_block_nan_rules():
    gg = dm(np.kron(KET_G, KET_G))
    hb = ref.field_battery_h(1.0, 0.3)
    out = run_write_block([gg], hb, 1.0, [0.0], [0.0])
    got = dict(zip(ref.METRIC_NAMES, out[:, 0, 0]))
    assert got["energy"] == 0.0
    assert np.isnan(got["efficiency"]) and np.isnan(got["efficiency_incoherent"])
    assert np.isnan(got["power"])
    # negative energy (the singlet lies below |gg> for g > Delta): efficiencies NaN
    hb = ref.field_battery_h(1.0, 2.0)
    out = run_write_block([dm(BELL_SINGLET)], hb, 1.0, [2.0], [1.0])
    got = dict(zip(ref.METRIC_NAMES, out[:, 0, 0]))
    assert got["energy"] == pytest.approx(-1.0, abs=1e-14)  # -3g/4 - (g/4 - Delta)
    assert np.isnan(got["efficiency"]) and np.isnan(got["efficiency_incoherent"])
    assert got["power"] == pytest.approx(-0.5, abs=1e-14)


def test_write_block_respects_slots():
    rng = np.random.default_rng(5)
    rhos = [ref.random_density_matrix(rng, 4) for _ in range(3)]
    hb = ref.field_battery_h(1.0, 0.5)
    t = [0.5, 1.0, 1.5]
    full = run_write_block(rhos, hb, 1.0, t, [0.1, 0.2, 0.3])
    wanted = ["steering_ba", "energy", "power"]
    slot = np.full(len(ref.METRIC_NAMES), -1, dtype=np.int64)
    for i, name in enumerate(wanted):
        slot[ref.METRIC_NAMES.index(name)] = i
    out = run_write_block(rhos, hb, 1.0, t, [0.1, 0.2, 0.3], slot=slot)
    for i, name in enumerate(wanted):
        np.testing.assert_array_equal(out[i, 0], full[ref.METRIC_NAMES.index(name), 0])
