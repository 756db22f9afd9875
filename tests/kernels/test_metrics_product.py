"""The field drive's product-state route: ``product_state_summary`` + ``write_block_product``.

- every one of the 15 metrics of phi x phi, phi = cos A1 |g> - i sin A1 |e> (paper eq. 16),
  against the definitions applied to the density matrix itself (tests/independent_reference.py:
  NumPy/QuTiP, steering by outcome probabilities, concurrence of the pure state), for random and
  edge-case angles A1, both accountings;
- every metric requested alone (and a few subsets) equals the same metric of a full request;
- the product-state steering formula against the general formula :func:`steering_pair`.
"""

from __future__ import annotations

import independent_reference as ref  # tests/ is on pytest's pythonpath
import numba
import numpy as np
import pytest

from qbfast.kernels import metrics as mk
from qbfast.kernels.metrics import (
    outcome_entropy,
    steering_pair,
    steering_product,
    write_block_product,
)
from qbfast.kernels.states import product_state_summary

KET_E = np.array([1.0, 0.0], dtype=complex)
KET_G = np.array([0.0, 1.0], dtype=complex)


def product_ket(a1: float) -> np.ndarray:
    phi = np.cos(a1) * KET_G - 1j * np.sin(a1) * KET_E
    return np.kron(phi, phi)


@numba.njit
def _summaries(hb, angles):
    rows = np.full((mk.N_PSUMMARY, angles.size), np.nan)
    for j in range(angles.size):
        product_state_summary(rows, j, hb, np.sin(angles[j]), np.cos(angles[j]))
    return rows


def hb_tuple(model_h: np.ndarray) -> tuple[float, float, float, float, float]:
    """(h_ee, h_eg, h_ge, h_gg, h_x) of a battery Hamiltonian of the models' form."""
    return (model_h[0, 0].real, model_h[1, 1].real, model_h[2, 2].real, model_h[3, 3].real,
            model_h[1, 2].real)


def run(angles, h, delta, t, slot=None) -> np.ndarray:
    """product_state_summary + write_block_product for one parameter point at a start offset;
    returns out[:, 0, 2:]."""
    angles = np.asarray(angles, dtype=float)
    n = angles.size
    if slot is None:
        slot = np.arange(len(ref.METRIC_NAMES), dtype=np.int64)
    e = np.sort(np.linalg.eigvalsh(h))
    out = np.full((int(np.max(slot)) + 1, 1, n + 4), -123.0)
    t_full = np.concatenate([[-1.0, -1.0], np.asarray(t, dtype=float), [-1.0, -1.0]])
    threshold = 1e-12 * max(abs(delta), float(np.max(np.abs(e))))
    rows = _summaries(hb_tuple(h), angles)
    write_block_product(out, slot, 0, 2, t_full, rows, n, delta, threshold, float(h[3, 3].real),
                        (e[0], e[1], e[2], e[3]))
    assert np.all(out[:, 0, :2] == -123.0) and np.all(out[:, 0, n + 2:] == -123.0), \
        "wrote outside its block"
    return out[:, 0, 2:n + 2]


def assert_matches_definitions(got, angles, h, delta, t):
    for j, a1 in enumerate(angles):
        psi = product_ket(a1)
        rho = np.outer(psi, psi.conj())
        expected = ref.metrics_from_rho(rho, h, delta, t[j], ref.concurrence_pure(psi))
        for m, name in enumerate(ref.METRIC_NAMES):
            np.testing.assert_allclose(got[m, j], expected[name], rtol=1e-10, atol=1e-12,
                                       equal_nan=True, err_msg=f"{name}, A1 = {a1!r}")


EDGE_ANGLES = [0.0, np.pi / 2, np.pi / 4, -np.pi / 4, 1e-9, np.pi, 3.0, -7.5]


@pytest.mark.parametrize("accounting", ["interacting", "bare"])
def test_product_states_match_definitions(accounting):
    rng = np.random.default_rng(31)
    for _ in range(8):
        delta = rng.uniform(-2, 2)
        g = rng.uniform(-2, 2)
        h = ref.field_battery_h(delta, g) if accounting == "interacting" else ref.bare_h(delta)
        angles = np.concatenate([EDGE_ANGLES, rng.uniform(-10, 10, 8)])
        t = np.concatenate([[0.0], np.sort(rng.uniform(0.1, 5, angles.size - 1))])
        assert_matches_definitions(run(angles, h, delta, t), angles, h, delta, t)


def test_ground_state_at_t0_has_undefined_efficiencies():
    h = ref.field_battery_h(1.0, 0.3)
    got = dict(zip(ref.METRIC_NAMES, run([0.0], h, 1.0, [0.0])[:, 0]))
    assert got["energy"] == 0.0 and got["steering_ab"] == 2.0
    for name in ("efficiency", "efficiency_incoherent", "power"):
        assert np.isnan(got[name]), name


@pytest.mark.parametrize("wanted", [[name] for name in ref.METRIC_NAMES] + [
    ["steering_ba", "energy"], ["entropy_diag_cell", "steering_ab"], ["power", "purity_cell"]])
def test_any_subset_of_metrics_gives_the_full_values(wanted):
    rng = np.random.default_rng(5)
    angles = rng.uniform(-3, 3, 5)
    h = ref.field_battery_h(0.9, 0.4)
    t = [0.0, 0.5, 1.0, 1.5, 2.0]
    full = run(angles, h, 0.9, t)
    slot = np.full(len(ref.METRIC_NAMES), -1, dtype=np.int64)
    for i, name in enumerate(wanted):
        slot[ref.METRIC_NAMES.index(name)] = i
    got = run(angles, h, 0.9, t, slot=slot)
    for i, name in enumerate(wanted):
        np.testing.assert_array_equal(got[i], full[ref.METRIC_NAMES.index(name)], err_msg=name)


@pytest.mark.slow  # hypothesis over many states
def test_product_steering_equals_general_formula():
    rng = np.random.default_rng(8)
    for _ in range(300):
        n = rng.normal(size=3)
        n *= rng.uniform(0, 1) / np.linalg.norm(n)
        s = rng.normal(size=3)
        s *= rng.uniform(0, 1) / np.linalg.norm(s)
        i_ab, i_ba = steering_pair(*n, *s, *(n * s))  # c_i = n_i s_i for a product state
        h_b = [outcome_entropy(0.5 * (1 + x), 0.5 * (1 - x)) for x in s]
        h_a = [outcome_entropy(0.5 * (1 + x), 0.5 * (1 - x)) for x in n]
        assert abs(steering_product(*h_b) - i_ab) < 1e-12
        assert abs(steering_product(*h_a) - i_ba) < 1e-12
