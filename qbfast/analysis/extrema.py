"""Extrema along t of every grid point, lazily and chunk by chunk, plus exact kernel refinement.

``extrema`` applies the Numba kernel ``_kernels.extrema_rows`` to each dask chunk with
``xr.apply_ufunc(dask="parallelized")``: a chunk of shape (*grid chunk, T) becomes one of shape
(*grid chunk, 8), so a store larger than memory is reduced one chunk at a time (time must be
one chunk per task; a store chunked along t is rechunked to whole time series).

``refine_with_kernel`` then polishes the extrema of a (small) selection by evaluating the
model itself at arbitrary t through ``qbfast.sweep``: a safeguarded Newton iteration on the
zero of dE/dt (five-point stencil), accurate to ~1e-10 in t for the exact models (cavity and
field "drive").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..params import METRICS, TIME
from . import _kernels
from ._io import check_metric, point_parameters, swept_dims

__all__ = ["extrema", "refine_with_kernel", "apply_rows", "EXTREMA", "RTOL", "ATOL"]

# Two samples closer than ATOL + RTOL * max|y| are "equal" when looking for local extrema.
RTOL = 1e-9
ATOL = 1e-12
#: refine="kernel" costs ~50 ms per grid point; more points than this are refused.
MAX_REFINE_POINTS = 1000

# name -> (long_name prefix, is a time)
EXTREMA: dict[str, tuple[str, bool]] = {
    "max": ("global maximum of", False),
    "t_max": ("time of the global maximum of", True),
    "min": ("global minimum of", False),
    "t_min": ("time of the global minimum of", True),
    "first_max": ("first local maximum of", False),
    "t_first_max": ("time of the first local maximum of", True),
    "first_min": ("first local minimum of", False),
    "t_first_min": ("time of the first local minimum of", True),
}


def _whole_time(obj: xr.DataArray, dim: str) -> xr.DataArray:
    """Rechunk to one chunk along ``dim`` (a no-op for stores chunked on the grid only)."""
    if obj.chunks is not None and len(obj.chunksizes[dim]) > 1:
        return obj.chunk({dim: -1})
    return obj


def apply_rows(kernel: Callable[..., np.ndarray], arrays: Sequence[xr.DataArray],
               columns: Sequence[str], dim: str, *args: Any) -> xr.Dataset:
    """Apply a row kernel ``(n, T) arrays, t, *args -> (n, k)`` along ``dim``, chunk by chunk.

    Returns one variable per column with the arrays' other dims; lazy when they are dask-backed.
    """
    arrays = [_whole_time(a.astype(np.float64, copy=False), dim) for a in arrays]
    t = np.array(arrays[0][dim].values, dtype=np.float64)  # a writeable copy: one numba signature
    k = len(columns)

    def block(*ys: np.ndarray) -> np.ndarray:
        lead = ys[0].shape[:-1]
        rows = [np.ascontiguousarray(y.reshape(-1, y.shape[-1])) for y in ys]
        return kernel(*rows, t, *args).reshape(*lead, k)

    stacked = xr.apply_ufunc(
        block, *arrays,
        input_core_dims=[[dim]] * len(arrays),
        output_core_dims=[["_column"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"_column": k}},
        keep_attrs=False,
    )
    return xr.Dataset({name: stacked.isel(_column=i, drop=True) for i, name in enumerate(columns)})


def _label(out: xr.Dataset, da: xr.DataArray, name: str, dim: str) -> xr.Dataset:
    """Name the columns ``{name}_{suffix}`` and give each long_name and units from the
    metric's and time's attrs."""
    what = da.attrs.get("long_name", name)
    tattrs = da[dim].attrs if dim in da.coords else {}
    for var in list(out.data_vars):
        prefix, is_time = EXTREMA[str(var)]
        units = tattrs.get("units", TIME.units) if is_time else da.attrs.get("units", "")
        out[var].attrs = {"long_name": f"{prefix} {what}", "units": units}
    return out.rename({var: f"{name}_{var}" for var in out.data_vars})


def extrema(obj: xr.Dataset | xr.DataArray, metric: str | None = None, *, dim: str = TIME.name,
            refine: str = "parabolic", rtol: float = RTOL, atol: float = ATOL,
            xtol: float = 1e-12, max_points: int = MAX_REFINE_POINTS) -> xr.Dataset:
    """Extrema of one metric along ``dim`` for every grid point.

    Parameters
    ----------
    obj : a qbfast Dataset (``metric`` names the variable) or a DataArray with a ``dim`` axis.
        Dask-backed input gives a lazy result computed chunk by chunk.
    refine : "parabolic" (default: vertex of the parabola through each sampled extremum and its
        neighbours) or "kernel" (then Newton on the model itself: see ``refine_with_kernel``;
        needs a Dataset carrying qbfast's attrs, computes eagerly; at most ``max_points`` grid
        points).
    rtol, atol : samples within ``atol + rtol * max|y|`` are equal (flat) for local extrema.

    Returns
    -------
    Dataset over the grid dims (obj's dims without ``dim``) with the float64 variables
    ``{metric}_{suffix}`` for the suffixes max, t_max, min, t_min, first_max, t_first_max,
    first_min, t_first_min (NaN where a grid point has no such extremum; the names of
    ``qbfast run``'s [reduce] variables), labelled with long_name and units. A DataArray
    without a name is called "y".
    """
    if refine not in ("parabolic", "kernel"):
        raise ValueError(f"refine: expected 'parabolic' or 'kernel', got {refine!r}")
    if isinstance(obj, xr.Dataset):
        if metric is None:
            raise ValueError("metric: name the variable of the Dataset, e.g. metric='energy'")
        name = check_metric(obj, metric, dim)
        da = obj[name]
    else:
        da = obj
        name = str(da.name) if da.name is not None else "y"
        if dim not in da.dims:
            raise ValueError(f"dim: {dim!r} is not a dimension of {name!r} {da.dims}")
    out = apply_rows(_kernels.extrema_rows, [da], _kernels.EXTREMA_COLUMNS, dim,
                     float(rtol), float(atol))
    out = _label(out, da, name, dim)
    out.attrs = dict(obj.attrs) if isinstance(obj, xr.Dataset) else {}
    out.attrs.update(metric=name, refine=refine)
    if refine == "kernel":
        if not isinstance(obj, xr.Dataset):
            raise ValueError("refine='kernel' needs the Dataset (its attrs name the model)")
        _check_refine_size(obj, name, dim, max_points)  # before computing anything
        out = refine_with_kernel(obj, name, out.compute(), dim=dim, xtol=xtol,
                                 max_points=max_points)
    return out


# ---------------------------------------------------------------------------------------------
# Kernel refinement


def _sweep_at(kwargs: dict[str, Any], metric: str) -> Callable[[np.ndarray], np.ndarray]:
    from ..api import sweep

    def f(times: np.ndarray) -> np.ndarray:
        return sweep(kwargs["model"], times, metrics=[metric],
                     **{k: v for k, v in kwargs.items() if k != "model"})[metric].values

    return f


def _newton_extremum(f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, t0: float,
                     sign: float, xtol: float, h: float) -> tuple[float, float] | None:
    """Zero of f' in [lo, hi] (f' > 0 at lo for a maximum, sign = +1), or None.

    f' and f'' come from the five-point stencil at spacing h (one kernel call per step);
    Newton steps that leave the bracket are replaced by bisection.
    """
    def derivatives(x: float) -> tuple[float, float, float]:
        y = f(np.array([x - 2 * h, x - h, x, x + h, x + 2 * h]))
        d1 = (y[0] - 8 * y[1] + 8 * y[3] - y[4]) / (12 * h)
        d2 = (-y[0] + 16 * y[1] - 30 * y[2] + 16 * y[3] - y[4]) / (12 * h * h)
        return sign * d1, sign * d2, y[2]

    if not (derivatives(lo)[0] > 0 and derivatives(hi)[0] < 0):
        return None
    x = min(max(t0, lo), hi)
    for _ in range(60):
        d1, d2, _y = derivatives(x)
        if d1 > 0:
            lo = x
        else:
            hi = x
        step = -d1 / d2 if d2 < 0 else np.inf
        nxt = x + step
        if not (lo < nxt < hi):
            nxt = 0.5 * (lo + hi)
        if abs(nxt - x) < xtol or hi - lo < xtol:
            x = nxt
            break
        x = nxt
    return x, float(f(np.array([x]))[0])


def _check_refine_size(ds: xr.Dataset, metric: str, dim: str, max_points: int) -> None:
    points = int(np.prod([ds.sizes[d] for d in swept_dims(ds[metric], dim)]))
    if points > max_points:
        raise ValueError(f"refine='kernel' re-evaluates the model at each grid point: select at "
                         f"most {max_points} points first (this has {points})")


def refine_with_kernel(ds: xr.Dataset, metric: str, ext: xr.Dataset, *, dim: str = TIME.name,
                       xtol: float = 1e-12, max_points: int = MAX_REFINE_POINTS) -> xr.Dataset:
    """Refine the interior extrema in ``ext`` (output of ``extrema``) on the model itself.

    For every grid point, the parameters are rebuilt from ``ds.attrs`` and its coordinates,
    and each extremum is polished by Newton's method on dE/dt between the grid times around
    it, evaluating ``qbfast.sweep`` at a handful of scalar times per step (about 10 calls of a
    few ms per extremum). Extrema at the ends of the time range, on flat tops, or whose
    bracket does not hold a sign change of dE/dt, keep their parabolic values.
    Exact to ~1e-10 in t for the cavity and field "drive"; for field "full" the accuracy is
    that of its Magnus propagator. More than ``max_points`` grid points is refused (select a
    few first).
    """
    if metric not in METRICS:
        raise ValueError(f"refine='kernel': {metric!r} is not a qbfast metric")
    _check_refine_size(ds, metric, dim, max_points)
    t = np.asarray(ds[dim].values, dtype=np.float64)
    if t.size < 3:
        return ext
    step = float(np.min(np.diff(t)))
    h = min(1e-4, 0.01 * step)
    out = ext.copy(deep=True)
    grid = swept_dims(ds[metric], dim)
    shape = [ds.sizes[d] for d in grid]
    for index in np.ndindex(*shape):
        point = {d: ds[d].values[i].item() for d, i in zip(grid, index)}
        kwargs = point_parameters(ds, ds.attrs, point)
        kwargs["model"] = ds.attrs["model"]
        f = _sweep_at(kwargs, metric)
        for kind, sign in (("max", 1.0), ("min", -1.0), ("first_max", 1.0), ("first_min", -1.0)):
            tv = float(out[f"{metric}_t_{kind}"].values[index])
            if not np.isfinite(tv):
                continue
            j = int(np.searchsorted(t, tv))
            if j <= 0 or j >= t.size:
                continue
            lo, hi = max(t[max(j - 2, 0)], 2 * h), t[min(j + 1, t.size - 1)]
            got = _newton_extremum(f, lo, hi, tv, sign, xtol, h)
            if got is not None:
                out[f"{metric}_t_{kind}"].values[index] = got[0]
                out[f"{metric}_{kind}"].values[index] = got[1]
    return out

