"""Reductions along the time axis, on NumPy arrays (run inside each sweep task, in float64).

Every function takes ``x`` of shape (..., T) and ``t`` of shape (T,) and returns arrays of
shape (...). NaN values (efficiency and power have legitimate NaNs) are ignored; where a whole
series is NaN, or a statistic does not exist, the result is NaN. Ties go to the earliest time.
"""

from __future__ import annotations

import numpy as np

from .spec import REDUCTIONS


def _extreme(x: np.ndarray, t: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """Value and time of the maximum (sign=+1) or minimum (sign=-1) of x along the last axis."""
    nan = np.isnan(x)
    keyed = np.where(nan, -np.inf, sign * x)
    idx = np.argmax(keyed, axis=-1)
    value = np.take_along_axis(x, idx[..., None], axis=-1)[..., 0]
    time = t[idx]
    empty = nan.all(axis=-1)
    return np.where(empty, np.nan, value), np.where(empty, np.nan, time)


def maximum(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max over t, time of the max)."""
    return _extreme(x, t, 1.0)


def minimum(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min over t, time of the min)."""
    return _extreme(x, t, -1.0)


def first_local_maximum(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value and time of the first interior local maximum: the first k in 1..T-2 with
    x[k-1] < x[k] >= x[k+1] (a plateau counts at its first time). NaN where there is none
    (a monotonic series, T < 3) and comparisons with NaN are false."""
    shape = x.shape[:-1]
    if x.shape[-1] < 3:
        return np.full(shape, np.nan), np.full(shape, np.nan)
    mid = x[..., 1:-1]
    peak = (mid > x[..., :-2]) & (mid >= x[..., 2:])
    k = np.argmax(peak, axis=-1)
    found = np.take_along_axis(peak, k[..., None], axis=-1)[..., 0]
    value = np.take_along_axis(mid, k[..., None], axis=-1)[..., 0]
    time = t[1:-1][k]
    return np.where(found, value, np.nan), np.where(found, time, np.nan)


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
