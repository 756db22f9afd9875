"""The grid kernels reduced along t as they go: a chunk of a ``[reduce]`` sweep is computed
in blocks of parameter points that stay in cache, each block reduced (:func:`.reductions.
reduce_rows`) before the next overwrites it, all in one call that holds no GIL.

One driver per kernel of :mod:`.grid` (not one taking the model as an argument): a driver
compiles the kernel it calls into itself, and field "full" alone takes ~30 s to compile.

Common arguments: ``params`` (P, n_params), ``t``, ``bare``, ``slot`` and ``route`` (the
cavity and field "drive" drivers) as for the kernels of :mod:`.grid`; ``block_rows``: points
per block; ``buffer``: float64 scratch of at least M * ``block_rows`` * T (M =
``wanted.shape[0]``, the metrics computed); ``wanted``, ``index`` (3, M, P), ``value``
(3, M, P): as for :func:`.reductions.reduce_rows`, point p at row p.
Blocks do not change the results: every point is computed and reduced on its own.
"""

from __future__ import annotations

from ._jit import kernel, routine
from .grid import cavity_grid, field_drive_grid, field_full_grid
from .reductions import reduce_rows


@kernel
def _block(params, buffer, n_metrics, n_t, r0, r1):
    """The parameter rows r0:r1 (C-contiguous, as the kernels are compiled for) and the
    output block (n_metrics, r1 - r0, n_t) at the start of ``buffer``."""
    out = buffer[:n_metrics * (r1 - r0) * n_t].reshape((n_metrics, r1 - r0, n_t))
    return params[r0:r1].copy(), out


@routine
def reduced_cavity_grid(params, t, bare, slot, n_threads, route, block_rows, buffer, wanted,
                        index, value):
    """:func:`.grid.cavity_grid` reduced along t (module docstring)."""
    n_points = params.shape[0]
    for r0 in range(0, n_points, block_rows):
        r1 = min(n_points, r0 + block_rows)
        block, out = _block(params, buffer, wanted.shape[0], t.shape[0], r0, r1)
        cavity_grid(block, t, bare, slot, out, n_threads, route)
        reduce_rows(out, wanted, r0, index, value, n_threads)


@routine
def reduced_field_drive_grid(params, t, bare, slot, n_threads, route, block_rows, buffer,
                             wanted, index, value):
    """:func:`.grid.field_drive_grid` reduced along t (module docstring)."""
    n_points = params.shape[0]
    for r0 in range(0, n_points, block_rows):
        r1 = min(n_points, r0 + block_rows)
        block, out = _block(params, buffer, wanted.shape[0], t.shape[0], r0, r1)
        field_drive_grid(block, t, bare, slot, out, n_threads, route)
        reduce_rows(out, wanted, r0, index, value, n_threads)


@routine
def reduced_field_full_grid(params, t, bare, slot, max_step, n_threads, block_rows, buffer,
                            wanted, index, value):
    """:func:`.grid.field_full_grid` (``max_step`` (P,): its Magnus step bound per point)
    reduced along t (module docstring)."""
    n_points = params.shape[0]
    for r0 in range(0, n_points, block_rows):
        r1 = min(n_points, r0 + block_rows)
        block, out = _block(params, buffer, wanted.shape[0], t.shape[0], r0, r1)
        field_full_grid(block, t, bare, slot, out, max_step[r0:r1].copy())
        reduce_rows(out, wanted, r0, index, value, n_threads)
