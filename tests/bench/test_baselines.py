"""The benchmark's baselines compute the same 15 metrics as qbfast.sweep (so that the speed
comparison in bench/kernels.py is fair), and ``python -m bench.kernels --quick`` runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qbfast
from qbfast.params import METRIC_LIST

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import baselines as bl  # noqa: E402

NAMES = [m.name for m in METRIC_LIST]
ATOL, RTOL = 1e-8, 1e-6

CAVITY = {"n": [1, 2, 3, 7], "J1": [0.0, 0.6, 1.0], "J2": [0.0, 0.5, 1.0, 2.0],
          "omega_g": [0.5, 1.3], "omega_a": [1.0, 0.6], "Delta": [1.0, -0.7]}
FIELD = {"A": [0.0, 0.5, 2.0], "B": [0.0, 1.0, 2.5], "omega": [0.0, 1.0, 3.0],
         "g": [0.0, 0.5, 2.0], "Delta": [1.0, -0.5]}
FIELD_FULL = {"A": [0.0, 1.5], "B": [0.5, 2.0], "omega": [0.0, 2.0], "g": [0.0, 2.0],
              "Delta": [1.0, -0.5]}
T = np.linspace(0.0, 5.0, 41)
T_FULL = np.linspace(0.0, 3.0, 16)


def reference(model: str, t: np.ndarray, params: dict, **kw) -> np.ndarray:
    ds = qbfast.sweep(model, t, **kw, **params)
    return np.stack([ds[name].values.reshape(-1, t.size) for name in NAMES])


def assert_same_metrics(got: np.ndarray, want: np.ndarray) -> None:
    """All 15 metrics within 1e-8 abs / 1e-6 rel, NaN where qbfast has NaN. The efficiencies
    are ergotropy / energy, ill-conditioned (relative error eps / energy) where the energy
    is ~0, so they are compared where |energy| > 1e-6; energy and ergotropy are compared
    everywhere."""
    assert got.shape == want.shape
    conditioned = np.abs(want[NAMES.index("energy")]) > 1e-6
    for i, name in enumerate(NAMES):
        g, w = got[i], want[i]
        if name in ("efficiency", "efficiency_incoherent"):
            g, w = g[conditioned], w[conditioned]
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=RTOL, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("bare", [False, True])
@pytest.mark.parametrize("fn", [bl.cavity_numpy, bl.cavity_eigh])
def test_cavity_baselines_match_qbfast(fn, bare):
    table, _ = bl.parameter_table("cavity", CAVITY)
    want = reference("cavity", T, CAVITY, battery_hamiltonian="bare" if bare else "interacting")
    assert_same_metrics(fn(table, T, bare=bare), want)


def test_cavity_numpy_chunking_and_threads_do_not_change_results():
    table, _ = bl.parameter_table("cavity", CAVITY)
    one = bl.cavity_numpy(table, T)
    out = np.full_like(one, -1.0)
    bl.cavity_numpy(table, T, out, chunk=100, threads=2)
    np.testing.assert_array_equal(out, one)


@pytest.mark.parametrize("bare", [False, True])
@pytest.mark.parametrize("fn", [bl.field_drive_numpy, bl.field_drive_eigh])
def test_field_drive_baselines_match_qbfast(fn, bare):
    table, _ = bl.parameter_table("field", FIELD)
    want = reference("field", T, FIELD, protocol="drive",
                     battery_hamiltonian="bare" if bare else "interacting")
    assert_same_metrics(fn(table, T, bare=bare), want)


@pytest.mark.parametrize("fn", [bl.field_full_numpy, bl.field_full_eigh])
def test_field_full_baselines_match_qbfast(fn):
    """Default steps on both sides (each ~1e-9 accurate), grouped steps in the baseline."""
    table, _ = bl.parameter_table("field", FIELD_FULL)
    want = reference("field", T_FULL, FIELD_FULL, protocol="full")
    assert_same_metrics(fn(table, T_FULL), want)


def test_parameter_table_flattens_like_qbfast():
    params = {"J2": [0.0, 0.5, 1.0], "n": [1, 3], "Delta": 0.7}
    table, sizes = bl.parameter_table("cavity", params)
    assert sizes == (3, 2)
    ds = qbfast.sweep("cavity", T[:3], **params)
    for i, j2 in enumerate(params["J2"]):
        for k, n in enumerate(params["n"]):
            row = table[i * 2 + k]
            assert (row[0], row[2], row[5]) == (n, j2, 0.7)
            single = reference("cavity", T[:3], {"n": n, "J2": j2, "Delta": 0.7})
            np.testing.assert_array_equal(single[0, 0], ds.energy.values[i, k])


@pytest.mark.slow  # QuTiP
def test_qutip_baselines_match_qbfast():
    pytest.importorskip("qutip")
    t = np.linspace(0.0, 2.0, 9)
    for model, protocol, params in (("cavity", None, {"n": [1, 5], "J2": 0.4}),
                                    ("field", "drive", {"A": [1.0], "g": 2.0}),
                                    ("field", "full", {"A": [1.0], "g": 2.0, "Delta": -0.5})):
        table, _ = bl.parameter_table(model, params)
        kw = {"protocol": protocol} if protocol else {}
        want = reference(model, t, params, **kw)
        if model == "cavity":
            states = bl.qutip_cavity_states(table, t)
        else:
            states = bl.qutip_field_states(table, t, protocol)
        np.testing.assert_allclose(bl.qutip_energy(model, table, states), want[0], atol=1e-8)
        got = bl.qutip_metrics(model, table, t, states)
        # QuTiP's concurrence (eigenvalues of rho rho~) has ~1e-8 noise near 0
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-6, equal_nan=True)


@pytest.mark.slow  # the whole quick benchmark, QuTiP included
def test_quick_benchmark_runs():
    # a few seconds; the generous timeout covers numba recompiling after a kernel edit
    # the open rows have their own test (tests/bench/test_open.py)
    proc = subprocess.run([sys.executable, "-m", "bench.kernels", "--quick", "--skip-open"],
                          cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for word in ("machine:", "cavity", "field-drive", "field-full", "points/s", "qutip",
                 "numpy batched eigh", "targets"):
        assert word in proc.stdout
