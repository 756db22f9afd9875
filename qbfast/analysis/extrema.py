"""Extrema along t of every grid point, lazily and chunk by chunk, plus exact kernel refinement.

One meaning per name. ``{metric}_max``, ``_t_max``, ``_min``, ``_t_min``, ``_first_max`` and
``_t_first_max`` are exactly the ``[reduce]`` variables of those names (``qbfast run``), computed
by the same functions (:mod:`qbfast.reduce`, on the rule of :mod:`qbfast.kernels.reductions`):
sample values at grid times, strict comparisons, NaN skipped, ties to the earliest time.
``_first_min`` / ``_t_first_min`` are ``_first_max`` / ``_t_first_max`` of the negated series.
Refined values never share those names: they are ``{metric}_{suffix}_refined`` and carry the
attribute ``method`` (``METHODS``) saying how they were refined:

- ``"parabolic"``: the vertex of the parabola through the sampled extremum and its two
  neighbours; local extrema found with flat steps (``|dy| <= atol + rtol max|y|``) merged,
  so that rounding noise on an exactly flat stretch is no extremum (``_kernels``);
- ``"kernel"``: then Newton's method on dE/dt of the model itself (``refine_with_kernel``),
  accurate to ~1e-10 in t for the exact models (cavity and field "drive").

``extrema`` applies the row functions to each dask chunk with
``xr.apply_ufunc(dask="parallelized")``: a chunk of shape (*grid chunk, T) becomes one of shape
(*grid chunk, k), so a store larger than memory is reduced one chunk at a time (time must be
one chunk per task; a store chunked along t is rechunked to whole time series).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..core import Grid
from ..params import METRICS, TIME
from ..reduce import REDUCTIONS, first_local_maximum, reduce_stats
from . import _kernels
from ._io import check_metric, point_parameters, swept_dims

__all__ = ["extrema", "refine_with_kernel", "apply_rows", "sample_extrema_rows",
           "EXTREMA_SUFFIXES", "REFINED", "REFINES", "METHODS", "RTOL", "ATOL"]

EXTREMA_SUFFIXES = _kernels.EXTREMA_SUFFIXES
REFINED = _kernels.REFINED

# Two samples closer than ATOL + RTOL * max|y| are "equal" when looking for refined local
# extrema.
RTOL = 1e-9
ATOL = 1e-12
#: refine="kernel" costs ~50 ms per grid point; more points than this are refused.
MAX_REFINE_POINTS = 1000

#: The values of ``extrema(refine=...)``: "none" gives the sample (``[reduce]``) extrema only,
#: "parabolic" and "kernel" add the ``_refined`` ones.
REFINES = ("none", "parabolic", "kernel")

#: The ``method`` attribute of each extremum variable, by how it was computed.
METHODS: dict[str, str] = {
    "sample": "sample at a grid time, the [reduce] rule (qbfast.kernels.reductions): strict "
              "comparisons, NaN skipped, ties to the earliest time",
    "parabolic": "parabolic: vertex of the parabola through the sampled extremum and its two "
                 "neighbours; local extrema with flat steps |dy| <= atol + rtol max|y| merged "
                 "(a flat top: its middle)",
    "kernel": "kernel: Newton's method on the time derivative of the model itself, from the "
              "parabolic value (kept where the bracket holds no sign change: ends, flat tops)",
}

_REDUCE_LONG = {suffix: template for entries in REDUCTIONS.values()
                for suffix, _, template in entries}
#: suffix -> (long_name template, is a time); the shared names take [reduce]'s long_name.
_LONG: dict[str, tuple[str, bool]] = {
    "max": (_REDUCE_LONG["max"], False),
    "t_max": (_REDUCE_LONG["t_max"], True),
    "min": (_REDUCE_LONG["min"], False),
    "t_min": (_REDUCE_LONG["t_min"], True),
    "first_max": (_REDUCE_LONG["first_max"], False),
    "t_first_max": (_REDUCE_LONG["t_first_max"], True),
    "first_min": ("first local minimum over t of {}", False),
    "t_first_min": ("time of the first local minimum over t of {}", True),
}


def sample_extrema_rows(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The sample extrema of every row, y (n, T), t (T,) -> (n, 8), columns
    ``EXTREMA_SUFFIXES``: the ``[reduce]`` functions of :mod:`qbfast.reduce` themselves
    (``reduce_stats`` for max, min, first_max; ``first_local_maximum`` of ``-y`` for
    first_min), so that each shared name holds the very values ``qbfast run`` stores."""
    stats = reduce_stats(y, t, ("max", "min", "first_max"))
    first_min, t_first_min = first_local_maximum(-y, t)
    columns = [stats[s] for s in EXTREMA_SUFFIXES[:6]] + [-first_min, t_first_min]
    return np.stack(columns, axis=-1) if y.shape[0] else np.empty((0, 8))


def _all_extrema_rows(y: np.ndarray, t: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """``sample_extrema_rows`` then ``_kernels.refined_extrema_rows``: (n, 16)."""
    return np.concatenate([sample_extrema_rows(y, t),
                           _kernels.refined_extrema_rows(y, t, rtol, atol)], axis=1)


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


def _label(out: xr.Dataset, da: xr.DataArray, name: str, dim: str, method: str) -> xr.Dataset:
    """Name the columns ``{name}_{suffix}`` and give each long_name, units and method (the
    refined ones: ``method``, the others: "sample")."""
    what = da.attrs.get("long_name", name)
    tattrs = da[dim].attrs if dim in da.coords else {}
    for var in list(out.data_vars):
        suffix = str(var).removesuffix(REFINED)
        refined = suffix != str(var)
        template, is_time = _LONG[suffix]
        units = tattrs.get("units", TIME.units) if is_time else da.attrs.get("units", "")
        long_name = template.format(what) + (f" (refined: {method})" if refined else "")
        out[var].attrs = {"long_name": long_name, "units": units,
                          "method": METHODS[method if refined else "sample"]}
    return out.rename({var: f"{name}_{var}" for var in out.data_vars})


def extrema(obj: xr.Dataset | xr.DataArray, metric: str | None = None, *, dim: str = TIME.name,
            refine: str = "parabolic", rtol: float = RTOL, atol: float = ATOL,
            xtol: float = 1e-12, max_points: int = MAX_REFINE_POINTS) -> xr.Dataset:
    """Extrema of one metric along ``dim`` for every grid point.

    Parameters
    ----------
    obj : a qbfast Dataset (``metric`` names the variable) or a DataArray with a ``dim`` axis.
        Dask-backed input gives a lazy result computed chunk by chunk.
    refine : "none" (the sample extrema only), "parabolic" (default: also the ``_refined``
        extrema, vertex of the parabola through each sampled extremum and its neighbours) or
        "kernel" (the ``_refined`` extrema then polished by Newton on the model itself: see
        ``refine_with_kernel``; needs a Dataset carrying qbfast's attrs, computes eagerly; at
        most ``max_points`` grid points).
    rtol, atol : samples within ``atol + rtol * max|y|`` are equal (flat) for the refined
        local extrema.

    Returns
    -------
    Dataset over the grid dims (obj's dims without ``dim``) with the float64 variables
    ``{metric}_{suffix}`` for the suffixes max, t_max, min, t_min, first_max, t_first_max,
    first_min, t_first_min: sample values, equal to ``qbfast run``'s ``[reduce]`` variables of
    the same names; unless ``refine="none"``, also ``{metric}_{suffix}_refined``. NaN where a
    grid point has no such extremum. Each variable has long_name, units and ``method``
    (``METHODS``). A DataArray without a name is called "y".
    """
    if refine not in REFINES:
        raise ValueError(f"refine: expected one of {', '.join(map(repr, REFINES))}, "
                         f"got {refine!r}")
    if isinstance(obj, xr.Dataset):
        if metric is None:
            raise ValueError("metric: name the variable of the Dataset, e.g. metric='energy'")
        name = check_metric(obj, metric, dim)
        da = obj[name]
    else:
        if refine == "kernel":
            raise ValueError("refine='kernel' needs the Dataset (its attrs name the model)")
        da = obj
        name = str(da.name) if da.name is not None else "y"
        if dim not in da.dims:
            raise ValueError(f"dim: {dim!r} is not a dimension of {name!r} {da.dims}")
    if refine == "kernel":
        assert isinstance(obj, xr.Dataset)
        _check_refine_size(obj, name, dim, max_points)  # before computing anything
    if refine == "none":
        out = apply_rows(sample_extrema_rows, [da], EXTREMA_SUFFIXES, dim)
    else:
        out = apply_rows(_all_extrema_rows, [da], EXTREMA_SUFFIXES + _kernels.REFINED_COLUMNS,
                         dim, float(rtol), float(atol))
    out = _label(out, da, name, dim, "parabolic" if refine == "none" else refine)
    out.attrs = dict(obj.attrs) if isinstance(obj, xr.Dataset) else {}
    out.attrs.update(metric=name, refine=refine)
    if refine == "kernel":
        assert isinstance(obj, xr.Dataset)
        out = refine_with_kernel(obj, name, out.compute(), dim=dim, xtol=xtol,
                                 max_points=max_points)
    return out


# ---------------------------------------------------------------------------------------------
# Kernel refinement


def _metric_at(kwargs: dict[str, Any], metric: str) -> Callable[[np.ndarray], np.ndarray]:
    """The function times -> ``metric`` at those times of the one grid point ``kwargs``
    (``qbfast.sweep``'s keyword arguments, with ``model``), through the core's kernel
    dispatch (:class:`qbfast.core.Grid`)."""
    params = {k: v for k, v in kwargs.items() if k != "model"}

    def f(times: np.ndarray) -> np.ndarray:
        grid = Grid(kwargs["model"], times, metrics=[metric], **params)
        out = grid.empty_output()
        grid.compute(out.reshape(1, grid.n_points, grid.t.size))
        return out.reshape(-1)

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
    """Refine the interior ``_refined`` extrema in ``ext`` (output of ``extrema`` with
    ``refine="parabolic"``) on the model itself; the sample extrema are left as they are.

    For every grid point, the parameters are rebuilt from ``ds.attrs`` and its coordinates,
    and each extremum is polished by Newton's method on dE/dt between the grid times around
    it, evaluating the model (:class:`qbfast.core.Grid`) at a handful of scalar times per step
    (about 10 calls of a few ms per extremum). Extrema at the ends of the time range, on flat
    tops, or whose bracket does not hold a sign change of dE/dt, keep their parabolic values.
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
        f = _metric_at(kwargs, metric)
        for kind, sign in (("max", 1.0), ("min", -1.0), ("first_max", 1.0), ("first_min", -1.0)):
            tv = float(out[f"{metric}_t_{kind}{REFINED}"].values[index])
            if not np.isfinite(tv):
                continue
            j = int(np.searchsorted(t, tv))
            if j <= 0 or j >= t.size:
                continue
            lo, hi = max(t[max(j - 2, 0)], 2 * h), t[min(j + 1, t.size - 1)]
            got = _newton_extremum(f, lo, hi, tv, sign, xtol, h)
            if got is not None:
                out[f"{metric}_t_{kind}{REFINED}"].values[index] = got[0]
                out[f"{metric}_{kind}{REFINED}"].values[index] = got[1]
    for var in out.data_vars:
        if str(var).endswith(REFINED):
            out[var].attrs["method"] = METHODS["kernel"]
            out[var].attrs["long_name"] = str(out[var].attrs.get("long_name", var)).replace(
                "(refined: parabolic)", "(refined: kernel)")
    out.attrs["refine"] = "kernel"
    return out

