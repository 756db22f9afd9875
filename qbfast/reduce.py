"""Reductions along the time axis, on NumPy arrays (run inside each sweep task, in float64).

Every function takes ``x`` of shape (..., T) and ``t`` of shape (T,) and returns arrays of
shape (...). NaN values (efficiency and power have legitimate NaNs) are ignored; where a whole
series is NaN, or a statistic does not exist, the result is NaN. Ties go to the earliest time.
"""

from __future__ import annotations

import numpy as np

from .kernels.reductions import extreme_index_rows, first_peak_index_rows
from .spec import REDUCTIONS


def _take(x: np.ndarray, t: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and times at per-row indices (-1: NaN), reshaped to x.shape[:-1]."""
    rows = x.reshape(-1, x.shape[-1])
    found = idx >= 0
    safe = np.where(found, idx, 0)
    value = np.where(found, rows[np.arange(rows.shape[0]), safe], np.nan)
    time = np.where(found, t[safe], np.nan)
    return value.reshape(x.shape[:-1]), time.reshape(x.shape[:-1])


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
    """The arrays of ``stat`` (a key of ``qbfast.spec.REDUCTIONS``), one per produced variable,
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
