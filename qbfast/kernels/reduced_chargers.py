"""The charger kernels of :mod:`.chargers` reduced along t as they go, as the drivers of
:mod:`.reduced_grid` (same arguments, same block scheme: every point is computed and reduced
on its own, so blocks do not change the results)."""

from __future__ import annotations

from ._jit import routine
from .chargers import coherent_grid, thermal_grid
from .reduced_grid import _block
from .reductions import reduce_rows


@routine
def reduced_coherent_grid(params, t, bare, slot, n_threads, block_rows, buffer, wanted, index,
                          value):
    """:func:`.chargers.coherent_grid` reduced along t (:mod:`.reduced_grid` docstring)."""
    n_points = params.shape[0]
    for r0 in range(0, n_points, block_rows):
        r1 = min(n_points, r0 + block_rows)
        block, out = _block(params, buffer, wanted.shape[0], t.shape[0], r0, r1)
        coherent_grid(block, t, bare, slot, out, n_threads)
        reduce_rows(out, wanted, r0, index, value, n_threads)


@routine
def reduced_thermal_grid(params, t, bare, slot, n_threads, block_rows, buffer, wanted, index,
                         value):
    """:func:`.chargers.thermal_grid` reduced along t (:mod:`.reduced_grid` docstring)."""
    n_points = params.shape[0]
    for r0 in range(0, n_points, block_rows):
        r1 = min(n_points, r0 + block_rows)
        block, out = _block(params, buffer, wanted.shape[0], t.shape[0], r0, r1)
        thermal_grid(block, t, bare, slot, out, n_threads)
        reduce_rows(out, wanted, r0, index, value, n_threads)
