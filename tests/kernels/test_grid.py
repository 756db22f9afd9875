"""The grid kernels' two block routes give the same bits.

The fused routes (``_cavity_block_fused``, ``_drive_block_fused``: every metric of a time in
one loop, taken when many metrics are requested) and the staged ones (``_cavity_block``,
``_drive_block``: summary rows, then one loop per metric) must agree exactly, for every metric,
both accountings and any set of requested metrics; the grid kernels must pick a route without
changing any number. (The physics is checked against QuTiP in tests/test_reference_qutip.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from qbfast.core import Grid
from qbfast.kernels import grid as G
from qbfast.kernels.metrics import N_METRICS, N_PSUMMARY, N_XSUMMARY, POWER
from qbfast.params import METRIC_INDEX
from qbfast.params import N_METRICS as N_PARAMS_METRICS

ALL = tuple(METRIC_INDEX)
SOME = ("power", "entropy_battery", "energy")


def _cavity_inputs(bare: bool, n_t: int = 700):
    """A cavity grid with n = 1 (a 2-level ladder), J1 = 0, negative J2 and Delta of both
    signs; its times (t = 0 included; n_t not a multiple of T_BLOCK) and per-point weights."""
    t = np.linspace(0.0, 15.0, n_t)
    grid = Grid("cavity", t, n=[1, 3, 7], J1=[0.0, 0.8], J2=[-1.5, 1.0], Delta=[-0.7, 0.9],
                omega_g=1.3, battery_hamiltonian="bare" if bare else "interacting")
    params = grid.parameter_table()
    n_points = params.shape[0]
    energies = np.empty((n_points, 3))
    w_re = np.empty((n_points, 3, 3))
    w_im = np.empty((n_points, 3, 3))
    for p in range(n_points):
        G._cavity_weights(params, p, energies, w_re, w_im)
    return t, params, energies, w_re, w_im


def _field_inputs(bare: bool, n_t: int = 700):
    """A field grid with A = B = 0, omega = 0 (the static limit), g = Delta and Delta of both
    signs, and its times (t = 0 included)."""
    t = np.linspace(0.0, 12.0, n_t)
    grid = Grid("field", t, A=[0.0, 1.3], B=[0.0, 2.0], omega=[0.0, 0.9], Delta=[-0.8, 1.1],
                g=1.1, battery_hamiltonian="bare" if bare else "interacting")
    return t, grid.parameter_table()


def _slot(names):
    slot = np.full(N_METRICS, -1, dtype=np.int64)
    for i, name in enumerate(names):
        slot[METRIC_INDEX[name]] = i
    return slot


def _outputs(names, n_points, n_t):
    fused = np.full((len(names), n_points, n_t), np.nan)
    return fused, np.full_like(fused, np.nan), np.empty((N_METRICS, G.T_BLOCK))


@pytest.mark.parametrize("bare", [False, True])
@pytest.mark.parametrize("names", [ALL, SOME])
def test_cavity_fused_block_equals_staged_block(bare, names):
    t, params, energies, w_re, w_im = _cavity_inputs(bare)
    n_t, n_points = t.size, params.shape[0]
    n_jobs, n_blocks = G._blocks(n_points, n_t)
    slot = _slot(names)
    fused, staged, sink = _outputs(names, n_points, n_t)
    rows = np.empty((N_XSUMMARY, G.T_BLOCK))
    sn, cs, amp = np.empty((3, G.T_BLOCK)), np.empty((3, G.T_BLOCK)), np.empty((6, G.T_BLOCK))
    for job in range(n_jobs):
        G._cavity_block_fused(job, n_blocks, n_t, t, params, bare, slot, fused, energies,
                              w_re, w_im, sink)
        G._cavity_block(job, n_blocks, n_t, t, t[-1], params, bare, slot, staged, energies,
                        w_re, w_im, rows, sn, cs, amp)
    assert not np.isnan(staged[names.index("energy")]).any()  # every time written
    np.testing.assert_array_equal(fused, staged)  # NaN where both have NaN (power at t = 0)


@pytest.mark.parametrize("bare", [False, True])
@pytest.mark.parametrize("names", [ALL, SOME])
def test_drive_fused_block_equals_staged_block(bare, names):
    t, params = _field_inputs(bare)
    n_t, n_points = t.size, params.shape[0]
    n_jobs, n_blocks = G._blocks(n_points, n_t)
    slot = _slot(names)
    fused, staged, sink = _outputs(names, n_points, n_t)
    rows = np.empty((N_PSUMMARY, G.T_BLOCK))
    sn, cs = np.empty((3, G.T_BLOCK)), np.empty((3, G.T_BLOCK))
    for job in range(n_jobs):
        assert G._drive_fast(params, job // n_blocks, t[-1])
        G._drive_block_fused(job, n_blocks, n_t, t, params, bare, slot, fused, sink)
        G._drive_block(job, n_blocks, n_t, t, t[-1], params, bare, slot, staged, rows, sn, cs)
    assert not np.isnan(staged[names.index("energy")]).any()
    np.testing.assert_array_equal(fused, staged)


# metric sets on both sides of the routes' thresholds (CAVITY_/DRIVE_FUSED_MIN_METRICS)
SUBSETS = [
    ("energy",),
    ("ergotropy", "concurrence", "purity_battery", "steering_ba", "efficiency"),
    ("steering_ab", "entropy_battery", "energy", "ergotropy", "concurrence", "purity_battery"),
    ("energy", "ergotropy", "efficiency", "ergotropy_local", "ergotropy_incoherent_cell",
     "efficiency_incoherent", "purity_cell", "purity_battery", "concurrence", "power"),
    ALL[:-1],
]


def test_grid_kernels_route_without_changing_a_bit():
    """Every metric set gives, per metric, the numbers of the all-metrics call."""
    assert N_METRICS == N_PARAMS_METRICS and METRIC_INDEX["power"] == POWER
    assert G.CAVITY_FUSED_MIN_METRICS <= 6 < len(ALL) and G.DRIVE_FUSED_MIN_METRICS <= 10
    t, cavity_params, *_ = _cavity_inputs(False, n_t=1100)
    _, field_params = _field_inputs(False, n_t=1100)
    for kernel, params in ((G.cavity_grid, cavity_params), (G.field_drive_grid, field_params)):
        every = np.empty((N_METRICS, params.shape[0], t.size))
        kernel(params, t, False, _slot(ALL), every, 2)
        for names in SUBSETS:
            out = np.empty((len(names), params.shape[0], t.size))
            kernel(params, t, False, _slot(names), out, 2)
            for i, name in enumerate(names):
                np.testing.assert_array_equal(out[i], every[METRIC_INDEX[name]],
                                              err_msg=f"{kernel.__name__} {name}")
