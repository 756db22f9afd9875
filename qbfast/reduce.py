"""Reductions along the time axis (run inside each sweep task, in float64).

Two routes that give the same bits: the functions on NumPy arrays take ``x`` of shape (..., T)
and ``t`` of shape (T,) and return arrays of shape (...) (used where the series is stored
anyway); :func:`reduce_grid` computes a grid's metrics and reduces them block by block in one
Numba call, never holding the series ([reduce] without stored series). NaN values (efficiency
and power have legitimate NaNs) are ignored; where a whole series is NaN, or a statistic does
not exist, the result is NaN. Ties go to the earliest time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .kernels.reductions import (
    N_REDUCTIONS,
    RED_FIRST_MAX,
    RED_MAX,
    RED_MIN,
    extreme_index_rows,
    first_peak_index_rows,
)

if TYPE_CHECKING:
    from .core import Grid

#: Reductions along t: stat -> the variables it produces, as (suffix, is_time, long_name
#: template); the variable of metric ``m`` is named ``f"{m}_{suffix}"``.
REDUCTIONS: dict[str, tuple[tuple[str, bool, str], ...]] = {
    "max": (("max", False, "maximum over t of {}"),),
    "argmax": (("t_max", True, "time of the maximum over t of {}"),),
    "min": (("min", False, "minimum over t of {}"),),
    "argmin": (("t_min", True, "time of the minimum over t of {}"),),
    "first_max": (("first_max", False, "first local maximum over t of {}"),
                  ("t_first_max", True, "time of the first local maximum over t of {}")),
}

#: :func:`reduce_grid` computes blocks of parameter points whose series (float64, all metrics)
#: take at most this many bytes (at least one point): small enough to stay in a core's L2
#: cache between the kernel writing them and the reduction reading them.
REDUCE_BLOCK_BYTES = 512 << 10


def _times(t: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """t at each index of ``idx``; NaN where it is -1 (none)."""
    return np.where(idx >= 0, t[np.maximum(idx, 0)], np.nan)


def _take(x: np.ndarray, t: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and times at per-row indices (-1: NaN), reshaped to x.shape[:-1]."""
    rows = x.reshape(-1, x.shape[-1])
    found = idx >= 0
    value = np.where(found, rows[np.arange(rows.shape[0]), np.maximum(idx, 0)], np.nan)
    return value.reshape(x.shape[:-1]), _times(t, idx).reshape(x.shape[:-1])


def _rows(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64).reshape(-1, x.shape[-1])


def _extreme_index(rows: np.ndarray, sign: float) -> np.ndarray:
    """Per row: index of the first largest (sign = 1) or smallest (sign = -1) value, NaN
    skipped; -1 for an all-NaN row. NumPy's SIMD argmax/argmin (first occurrence, 30x faster
    than a scalar loop) gives it for every row without NaN; it stops at the first NaN of a row,
    so only the rows where it landed on a NaN go through the NaN-skipping Numba loop."""
    n, n_t = rows.shape
    if n_t == 0 or n == 0:
        return extreme_index_rows(rows, sign)
    idx = np.argmax(rows, axis=1) if sign > 0 else np.argmin(rows, axis=1)
    nan = np.isnan(rows[np.arange(n), idx])
    if nan.any():
        idx[nan] = extreme_index_rows(rows[nan], sign)
    return idx


def maximum(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max over t, time of the max): the first largest value, NaN skipped (one pass)."""
    return _take(x, t, _extreme_index(_rows(x), 1.0))


def minimum(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min over t, time of the min): the first smallest value, NaN skipped (one pass)."""
    return _take(x, t, _extreme_index(_rows(x), -1.0))


def first_local_maximum(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value and time of the first interior local maximum: the first k in 1..T-2 with
    x[k-1] < x[k] >= x[k+1] (a plateau counts at its first time). NaN where there is none
    (a monotonic series, T < 3) and comparisons with NaN are false."""
    return _take(x, t, first_peak_index_rows(_rows(x)))


def reduce_t(x: np.ndarray, t: np.ndarray, stat: str) -> tuple[np.ndarray, ...]:
    """The arrays of ``stat`` (a key of ``REDUCTIONS``), one per produced variable,
    in the order of ``REDUCTIONS[stat]``."""
    if stat not in REDUCTIONS:
        raise ValueError(f"stat: unknown statistic {stat!r}; allowed: {', '.join(REDUCTIONS)}")
    if stat in ("max", "argmax"):
        value, time = maximum(x, t)
    elif stat in ("min", "argmin"):
        value, time = minimum(x, t)
    else:
        return first_local_maximum(x, t)
    return (value,) if stat in ("max", "min") else (time,)


def reduce_stats(x: np.ndarray, t: np.ndarray, stats: tuple[str, ...] | list[str]
                 ) -> dict[str, np.ndarray]:
    """All ``stats`` of ``x`` at once, keyed by variable suffix (``"max"``, ``"t_max"``, ...);
    max/argmax and min/argmin share one pass."""
    out: dict[str, np.ndarray] = {}
    if "max" in stats or "argmax" in stats:
        out["max"], out["t_max"] = maximum(x, t)
    if "min" in stats or "argmin" in stats:
        out["min"], out["t_min"] = minimum(x, t)
    if "first_max" in stats:
        out["first_max"], out["t_first_max"] = first_local_maximum(x, t)
    return out


#: The kernels' reductions (:data:`RED_MAX` ...), the stats that ask for each, and the
#: suffixes of the (value, time) pair each gives, as :func:`reduce_stats` names them.
_FUSED_KINDS = ((RED_MAX, ("max", "argmax"), ("max", "t_max")),
                (RED_MIN, ("min", "argmin"), ("min", "t_min")),
                (RED_FIRST_MAX, ("first_max",), ("first_max", "t_first_max")))


def reduce_grid(grid: Grid, stats: tuple[str, ...] | list[str], peak_metrics: tuple[str, ...] = (),
                block_bytes: int | None = None
                ) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """The ``stats`` of every metric of ``grid`` along t, computed without storing the series.

    Returns ``(reduced, peaks)``: ``reduced[metric][suffix]`` of shape ``grid.shape[:-1]``, as
    :func:`reduce_stats` of the metric's series gives; ``peaks`` (len(peak_metrics), 2): the
    grid's largest value of each of ``peak_metrics`` and its flat index in ``grid.shape`` (the
    first in C order; NaN skipped; NaN, NaN if all NaN). The grid is computed in blocks of at
    most ``block_bytes`` (default :data:`REDUCE_BLOCK_BYTES`); the results do not depend on it.
    The caller holds whatever lock the Numba threading layer needs.
    """
    metrics = grid.metrics
    n_m, n_t, n_p = len(metrics), grid.t.size, grid.n_points
    asked = [(kind, suffixes) for kind, names, suffixes in _FUSED_KINDS
             if any(name in stats for name in names)]
    wanted = np.zeros((n_m, N_REDUCTIONS), dtype=np.uint8)
    for kind, _ in asked:
        wanted[:, kind] = 1
    for name in peak_metrics:  # the peaks come from the per-point maxima
        wanted[metrics.index(name), RED_MAX] = 1
    rows = max(1, min(n_p, (block_bytes or REDUCE_BLOCK_BYTES) // (8 * n_m * n_t)))
    buffer = np.empty(n_m * rows * n_t)
    index = np.full((N_REDUCTIONS, n_m, n_p), -1, dtype=np.int64)
    value = np.full((N_REDUCTIONS, n_m, n_p), np.nan)
    grid.compute_reduced(rows, buffer, wanted, index, value)

    shape = grid.shape[:-1]
    reduced = {name: {suffix: array.reshape(shape)
                      for kind, suffixes in asked
                      for suffix, array in zip(suffixes, (value[kind, m],
                                                          _times(grid.t, index[kind, m])))}
               for m, name in enumerate(metrics)}
    peaks = np.full((len(peak_metrics), 2), np.nan)
    for j, name in enumerate(peak_metrics):
        m = metrics.index(name)
        best = value[RED_MAX, m]
        row = int(_extreme_index(best.reshape(1, -1), 1.0)[0]) if n_p else -1
        if row >= 0:  # the first point with the largest maximum holds the first in C order
            peaks[j] = (best[row], float(row * n_t + index[RED_MAX, m, row]))
    return reduced, peaks
