"""Correlations and coincidence of extrema between two metrics, per grid point, lazily.

Both apply Numba row kernels (``_kernels.correlation_rows``, ``_kernels.coincidence_rows``)
chunk by chunk through ``extrema.apply_rows``; the per-point results have the grid's dims and
no t, so summaries over the grid (``correlation_summary``) load only those.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..params import TIME
from . import _kernels
from ._io import check_metric
from .extrema import ATOL, RTOL, apply_rows

__all__ = ["correlation", "correlation_summary", "coincidence", "KINDS"]

KINDS = {"max": 1.0, "min": -1.0}


def _pair(ds: xr.Dataset, a: str, b: str, dim: str) -> tuple[xr.DataArray, xr.DataArray]:
    return ds[check_metric(ds, a, dim)], ds[check_metric(ds, b, dim)]


def correlation(ds: xr.Dataset, a: str, b: str, *, dim: str = TIME.name) -> xr.Dataset:
    """Pearson and Spearman correlation of metrics a and b along ``dim``, per grid point.

    Only times where both are finite count (power and efficiency are NaN at t = 0 or where
    the energy vanishes). Returns a Dataset over the grid dims with ``pearson``, ``spearman``
    (NaN where either series has no spread or fewer than 2 finite pairs) and ``count`` (the
    number of pairs used); lazy for dask-backed input.
    """
    xa, xb = _pair(ds, a, b, dim)
    out = apply_rows(_kernels.correlation_rows, [xa, xb], _kernels.CORRELATION_COLUMNS, dim)
    out["pearson"].attrs = {"long_name": f"Pearson correlation of {a} and {b} along {dim}",
                            "units": "1"}
    out["spearman"].attrs = {"long_name": f"Spearman rank correlation of {a} and {b} along {dim}",
                             "units": "1"}
    out["count"].attrs = {"long_name": "finite time samples used", "units": "1"}
    out.attrs = dict(ds.attrs)
    out.attrs.update(metric_a=a, metric_b=b)
    return out


def correlation_summary(corr: xr.Dataset) -> xr.Dataset:
    """Summary over the grid of ``correlation``'s output: one row per statistic.

    Returns a Dataset with dim ``stat`` = (points, defined, mean, std, min, median, max,
    positive) for ``pearson`` and ``spearman``: ``points`` all grid points, ``defined`` those
    with a finite coefficient, ``positive`` the fraction of defined ones above 0. Loads only
    the grid-sized coefficients (no t axis).
    """
    stats = ("points", "defined", "mean", "std", "min", "median", "max", "positive")
    data = {}
    for name in ("pearson", "spearman"):
        values = np.asarray(corr[name].values, dtype=np.float64).ravel()
        ok = values[np.isfinite(values)]
        if ok.size:
            row = [values.size, ok.size, ok.mean(), ok.std(), ok.min(), np.median(ok), ok.max(),
                   float(np.mean(ok > 0))]
        else:
            row = [values.size, 0] + [np.nan] * 6
        data[name] = ("stat", np.asarray(row, dtype=np.float64), dict(corr[name].attrs))
    out = xr.Dataset(data, coords={"stat": list(stats)})
    out.attrs = dict(corr.attrs)
    return out


def coincidence(ds: xr.Dataset, a: str, b: str, *, kind_a: str = "max", kind_b: str = "max",
                dim: str = TIME.name, rtol: float = RTOL, atol: float = ATOL) -> xr.Dataset:
    """How far apart in time the extrema of metrics a and b lie, per grid point.

    For the first local extremum of a of kind ``kind_a`` ("max" or "min") at t_a, t_b is the
    nearest local extremum of b of kind ``kind_b`` (the nearest point of a flat top); a b that
    is flat along t is at its extremum everywhere (t_b = t_a). Returns a Dataset over the grid
    dims with t_a, t_b, dt = t_b - t_a, dt_worst (the largest |dt| over every local extremum
    of a of that kind, not just the first) and count_a (how many a has); NaN where a or b has
    no such extremum. Lazy for dask-backed input.
    """
    for label, kind in (("kind_a", kind_a), ("kind_b", kind_b)):
        if kind not in KINDS:
            raise ValueError(f"{label}: expected 'max' or 'min', got {kind!r}")
    xa, xb = _pair(ds, a, b, dim)
    out = apply_rows(_kernels.coincidence_rows, [xa, xb], _kernels.COINCIDENCE_COLUMNS, dim,
                     KINDS[kind_a], KINDS[kind_b], float(rtol), float(atol))
    units = ds[dim].attrs.get("units", TIME.units) if dim in ds.coords else TIME.units
    long = {
        "t_a": f"time of the first local {kind_a} of {a}",
        "t_b": f"time of the local {kind_b} of {b} nearest t_a",
        "dt": "t_b - t_a",
        "dt_worst": f"largest |dt| over the local {kind_a}ima of {a}",
        "count_a": f"number of local {kind_a}ima of {a}",
    }
    for name, text in long.items():
        out[name].attrs = {"long_name": text, "units": "1" if name == "count_a" else units}
    out.attrs = dict(ds.attrs)
    out.attrs.update(metric_a=a, metric_b=b, kind_a=kind_a, kind_b=kind_b)
    return out
