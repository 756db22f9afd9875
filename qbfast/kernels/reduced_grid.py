"""The grid kernels reduced along t as they go: a chunk of a ``[reduce]`` sweep is computed
in blocks of parameter points that stay in cache, each block reduced (:func:`.reductions.
reduce_rows`) before the next overwrites it, all in one call that holds no GIL.
"""

from __future__ import annotations

from ._jit import routine
from .grid import cavity_grid, field_drive_grid, field_full_grid
from .reductions import reduce_rows

#: ``model`` codes of :func:`reduced_grid`.
MODEL_CAVITY = 0
MODEL_FIELD_DRIVE = 1
MODEL_FIELD_FULL = 2


@routine
def reduced_grid(model, params, t, bare, slot, max_step, n_threads, block_rows, buffer,
                 wanted, index, value):
    """Reductions along t of the metrics of a grid (P points, T times), without its series.

    ``model``, ``params`` (P, n_params), ``t``, ``bare``, ``slot``: as for the kernels of
    :mod:`.grid` (``max_step`` (P,): field "full" only; ``n_threads``: cavity and drive);
    ``buffer``: float64 scratch of at least M * ``block_rows`` * T (M = ``wanted.shape[0]``,
    the metrics computed); ``wanted``, ``index`` (3, M, P), ``value`` (3, M, P): as for
    :func:`.reductions.reduce_rows` with point p at row p. Blocks do not change the results:
    every point is computed and reduced on its own."""
    n_points = params.shape[0]
    n_t = t.shape[0]
    n_metrics = wanted.shape[0]
    for r0 in range(0, n_points, block_rows):
        r1 = min(n_points, r0 + block_rows)
        out = buffer[:n_metrics * (r1 - r0) * n_t].reshape((n_metrics, r1 - r0, n_t))
        block = params[r0:r1].copy()  # C-contiguous, as the kernels are compiled for
        if model == MODEL_CAVITY:
            cavity_grid(block, t, bare, slot, out, n_threads)
        elif model == MODEL_FIELD_DRIVE:
            field_drive_grid(block, t, bare, slot, out, n_threads)
        else:
            field_full_grid(block, t, bare, slot, out, max_step[r0:r1].copy())
        reduce_rows(out, wanted, r0, index, value, n_threads)
