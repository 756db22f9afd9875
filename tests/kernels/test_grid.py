"""The grid kernels' two block routes give the same bits.

The fused routes (``_cavity_block_fused``, ``_drive_block_fused``: every metric of a time in
one loop, taken when many metrics are requested) and the staged ones (``_cavity_block``,
``_drive_block``: summary rows, then one loop per metric) must agree exactly, for every metric,
both accountings and any set of requested metrics; the grid kernels take the route as an
argument (``route``: "auto", "staged", "fused"), and every route gives the same numbers (the
``route`` fixture of tests/kernels/conftest.py runs those tests once per route). (The physics
is checked against QuTiP in tests/test_reference_qutip.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from qbfast.core import Grid
from qbfast.kernels import grid as G
from qbfast.kernels.metrics import N_METRICS, N_PSUMMARY, N_XSUMMARY, POWER
from qbfast.kernels.reductions import N_REDUCTIONS, RED_MAX
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


def test_grid_kernels_route_without_changing_a_bit(route):
    """Every metric set, in every route, gives per metric the numbers of the all-metrics call
    in the staged route."""
    assert N_METRICS == N_PARAMS_METRICS and METRIC_INDEX["power"] == POWER
    assert G.CAVITY_FUSED_MIN_METRICS <= 6 < len(ALL) and G.DRIVE_FUSED_MIN_METRICS <= 10
    code = G.route_code(route)
    t, cavity_params, *_ = _cavity_inputs(False, n_t=1100)
    _, field_params = _field_inputs(False, n_t=1100)
    for kernel, params in ((G.cavity_grid, cavity_params), (G.field_drive_grid, field_params)):
        every = np.empty((N_METRICS, params.shape[0], t.size))
        kernel(params, t, False, _slot(ALL), every, 2, G.ROUTE_STAGED)
        for names in (*SUBSETS, ALL):
            out = np.full((len(names), params.shape[0], t.size), np.nan)
            kernel(params, t, False, _slot(names), out, 2, code)
            for i, name in enumerate(names):
                np.testing.assert_array_equal(out[i], every[METRIC_INDEX[name]],
                                              err_msg=f"{kernel.__name__} {route} {name}")


NON_LOG = tuple(name for name in ALL if METRIC_INDEX[name] not in G.LOG_METRICS)
LOG = tuple(name for name in ALL if METRIC_INDEX[name] in G.LOG_METRICS)


def test_route_choice():
    """"staged" and "fused" force their route; "auto" takes the fused route from
    CAVITY_FUSED_MIN_METRICS metrics with a log metric among them (cavity) and from
    DRIVE_FUSED_MIN_METRICS metrics (drive)."""
    assert len(NON_LOG) == 10 and len(LOG) == 5
    cavity_min, drive_min = G.CAVITY_FUSED_MIN_METRICS, G.DRIVE_FUSED_MIN_METRICS
    with_log = (LOG[0], *NON_LOG)
    for n in range(1, len(ALL) + 1):
        for names in ((*LOG, *NON_LOG)[:n], with_log[:n], NON_LOG[:n]):
            slot = _slot(names)
            has_log = any(name in LOG for name in names)
            assert G._cavity_fused(slot, G.ROUTE_AUTO) == (has_log and len(names) >= cavity_min)
            assert G._drive_fused(slot, G.ROUTE_AUTO) == (len(names) >= drive_min)
            for choose in (G._cavity_fused, G._drive_fused):
                assert choose(slot, G.ROUTE_STAGED) is False
                assert choose(slot, G.ROUTE_FUSED) is True


KERNEL_GRIDS = {
    "cavity": lambda t: Grid("cavity", t, n=[1, 4], J1=[0.0, 0.8], J2=[-1.5, 1.0],
                             metrics=ALL[:7]),
    "field_drive": lambda t: Grid("field", t, A=[0.0, 1.3], B=[0.5, 2.0], g=1.1,
                                  metrics=("energy", *ALL[3:])),
    "field_full": lambda t: Grid("field", t, protocol="full", A=[0.3, 1.3], B=0.5, g=1.1,
                                 metrics=("energy", "concurrence")),
}


def _reduced(grid: Grid, route: str) -> tuple[np.ndarray, np.ndarray]:
    """Every reduction of every metric of ``grid`` by Grid.compute_reduced (blocks of 3 points,
    which do not divide the grid)."""
    n_m, n_p, n_t = len(grid.metrics), grid.n_points, grid.t.size
    wanted = np.ones((n_m, N_REDUCTIONS), dtype=np.uint8)
    index = np.full((N_REDUCTIONS, n_m, n_p), -7, dtype=np.int64)
    value = np.full((N_REDUCTIONS, n_m, n_p), -7.0)
    grid.compute_reduced(3, np.empty(n_m * 3 * n_t), wanted, index, value, route=route)
    return index, value


@pytest.mark.parametrize("kernel", list(KERNEL_GRIDS))
def test_grid_compute_in_every_route_equals_staged(kernel, route):
    """Grid.compute and Grid.compute_reduced give the staged route's bits in every route."""
    grid = KERNEL_GRIDS[kernel](np.linspace(0.0, 6.0, 601))
    assert grid.kernel == kernel and grid.n_points % 3 != 0
    flat = (len(grid.metrics), grid.n_points, grid.t.size)
    staged, out = np.full(flat, np.nan), np.full(flat, np.nan)
    grid.compute(staged, route="staged")
    grid.compute(out, route=route)
    assert not np.isnan(staged[0]).any()
    np.testing.assert_array_equal(out, staged)
    staged_index, staged_value = _reduced(grid, "staged")
    index, value = _reduced(grid, route)
    np.testing.assert_array_equal(index, staged_index)
    np.testing.assert_array_equal(value, staged_value)
    # every point reduced: the first metric (no NaN) has the maximum of its stored series
    assert (index[RED_MAX, 0] >= 0).all()
    np.testing.assert_array_equal(value[RED_MAX, 0], staged[0].max(axis=1))


def test_fused_route_keeps_the_staged_route_beyond_the_fast_phases():
    """route="fused" on a point whose phases leave sin_cos's range by t_max (1e7 * |E_m - E_0|)
    computes that point in the staged route with libm (same bits as route="staged"), and the
    others fused."""
    t = np.array([0.0, 0.5, 1.0, 3.0e6, 1.0e7])
    grid = Grid("cavity", t, n=[1, 2], J1=0.8, J2=1.0, metrics=ALL)
    flat = (len(ALL), grid.n_points, t.size)
    staged, fused = np.full(flat, np.nan), np.full(flat, np.nan)
    grid.compute(staged, route="staged")
    grid.compute(fused, route="fused")
    assert not np.isnan(staged[0]).any()
    np.testing.assert_array_equal(fused, staged)
    # the early times agree with a grid that stays in sin_cos's range (fused there)
    short = Grid("cavity", t[:3], n=[1, 2], J1=0.8, J2=1.0, metrics=ALL)
    near = np.full((len(ALL), short.n_points, 3), np.nan)
    short.compute(near, route="fused")
    np.testing.assert_allclose(near, staged[:, :, :3], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", ["fast", "Auto", "", None, 1])
def test_bad_route_is_one_line_naming_the_choices(bad):
    """A bad route is refused before any work: ``out`` is left untouched."""
    grid = KERNEL_GRIDS["cavity"](np.linspace(0.0, 1.0, 5))
    out = np.full((len(grid.metrics), grid.n_points, 5), -3.0)
    with pytest.raises(ValueError) as err:
        grid.compute(out, route=bad)
    message = str(err.value)
    assert message == f"route: must be one of 'auto', 'staged', 'fused', got {bad!r}"
    assert (out == -3.0).all()
    with pytest.raises(ValueError, match=r"^route: must be one of 'auto', 'staged', 'fused'"):
        _reduced(grid, bad)
