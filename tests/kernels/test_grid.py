"""The cavity grid kernel's two block routes give the same bits.

``_cavity_block_fused`` (every metric of a time in one loop, taken when a log metric is
requested) and ``_cavity_block`` (summary rows, then one loop per metric) must agree exactly,
for every metric, both accountings and any set of requested metrics; ``cavity_grid`` must pick
a route without changing any number. (Their physics is checked against QuTiP in
tests/test_reference_qutip.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from qbfast.api import Grid
from qbfast.kernels import grid as G
from qbfast.kernels.metrics import N_METRICS, N_XSUMMARY, POWER
from qbfast.params import METRIC_INDEX
from qbfast.params import N_METRICS as N_PARAMS_METRICS


def _inputs(bare: bool, n_t: int = 700):
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


def _slot(names):
    slot = np.full(N_METRICS, -1, dtype=np.int64)
    for i, name in enumerate(names):
        slot[METRIC_INDEX[name]] = i
    return slot


@pytest.mark.parametrize("bare", [False, True])
@pytest.mark.parametrize("names", [tuple(METRIC_INDEX), ("power", "entropy_battery", "energy")])
def test_fused_block_equals_staged_block(bare, names):
    t, params, energies, w_re, w_im = _inputs(bare)
    n_t, n_points = t.size, params.shape[0]
    n_jobs, n_blocks = G._blocks(n_points, n_t)
    slot = _slot(names)
    fused = np.full((len(names), n_points, n_t), np.nan)
    staged = np.full_like(fused, np.nan)
    rows = np.empty((N_XSUMMARY, G.T_BLOCK))
    sn = np.empty((3, G.T_BLOCK))
    cs = np.empty((3, G.T_BLOCK))
    amp = np.empty((6, G.T_BLOCK))
    sink = np.empty((N_METRICS, G.T_BLOCK))
    for job in range(n_jobs):
        G._cavity_block_fused(job, n_blocks, n_t, t, params, bare, slot, fused, energies,
                              w_re, w_im, sink)
        G._cavity_block(job, n_blocks, n_t, t, t[-1], params, bare, slot, staged, energies,
                        w_re, w_im, rows, sn, cs, amp)
    assert not np.isnan(staged[list(names).index("energy")]).any()  # every time written
    np.testing.assert_array_equal(fused, staged)  # NaN where both have NaN (power at t = 0)


def test_cavity_grid_routes_give_the_same_bits():
    """All metrics (fused route), a log-free subset (staged route) and a subset with one log
    metric (fused route, the others into the thread's sink): the same numbers per metric."""
    assert N_METRICS == N_PARAMS_METRICS and METRIC_INDEX["power"] == POWER
    t, params, *_ = _inputs(False, n_t=1100)
    every = np.empty((N_METRICS, params.shape[0], t.size))
    G.cavity_grid(params, t, False, _slot(tuple(METRIC_INDEX)), every, 2)
    for names in (("ergotropy", "concurrence", "purity_battery"),
                  ("steering_ba", "efficiency"), ("energy",)):
        out = np.empty((len(names), params.shape[0], t.size))
        G.cavity_grid(params, t, False, _slot(names), out, 2)
        for i, name in enumerate(names):
            np.testing.assert_array_equal(out[i], every[METRIC_INDEX[name]], err_msg=name)
