"""The steerable region: where I_ab or I_ba < 2 bits (docs/physics.md section 4), lazily.

A product state with its Bloch vector on an axis gives exactly 2, and rounding puts it a hair
either side, so "steerable" means below ``2 - tol``.
"""

from __future__ import annotations

import xarray as xr

from ..params import TIME
from ._io import check_metric, swept_dims

__all__ = ["steerable", "steerable_by_parameter", "STEERING_BOUND", "STEERING_TOL"]

STEERING_BOUND = 2.0
STEERING_TOL = 1e-9


def steerable(ds: xr.Dataset, *, tol: float = STEERING_TOL, dim: str = TIME.name) -> xr.Dataset:
    """Masks and fractions of the steerable region.

    Returns a Dataset with the boolean masks ``ab`` (steering_ab < 2 - tol: a steers b),
    ``ba`` and ``either`` over (*grid dims, t), and per grid point the fractions of time
    ``fraction_ab``, ``fraction_ba``, ``fraction_either`` and the minima ``min_ab``,
    ``min_ba`` of the steering sums along t. Lazy for dask-backed input.
    """
    ab = ds[check_metric(ds, "steering_ab", dim)]
    ba = ds[check_metric(ds, "steering_ba", dim)]
    below = STEERING_BOUND - tol
    masks = {"ab": ab < below, "ba": ba < below}
    masks["either"] = masks["ab"] | masks["ba"]
    out = xr.Dataset()
    text = {"ab": "a steers b (I_ab < 2)", "ba": "b steers a (I_ba < 2)",
            "either": "a steers b or b steers a"}
    for key, mask in masks.items():
        out[key] = mask.assign_attrs(long_name=text[key], units="1")
        out[f"fraction_{key}"] = mask.mean(dim).assign_attrs(
            long_name=f"fraction of {dim} where {text[key]}", units="1")
    out["min_ab"] = ab.min(dim).assign_attrs(long_name=f"minimum of I_ab along {dim}", units="bit")
    out["min_ba"] = ba.min(dim).assign_attrs(long_name=f"minimum of I_ba along {dim}", units="bit")
    out.attrs = dict(ds.attrs)
    out.attrs.update(steering_bound=STEERING_BOUND, steering_tol=tol)
    return out


def steerable_by_parameter(ds: xr.Dataset, *, tol: float = STEERING_TOL,
                           dim: str = TIME.name) -> dict[str, xr.Dataset]:
    """For each swept parameter, the share of the rest of the grid (and t) that is steerable.

    Returns {parameter: Dataset over that parameter} with ``grid_fraction_ab``,
    ``grid_fraction_ba``, ``grid_fraction_either`` (over all other dims and t) and
    ``grid_min_ab``, ``grid_min_ba`` (smallest steering sums over them); a value where
    ``grid_fraction_either`` is 0 is outside the steerable range. (The ``grid_`` prefix: these
    are not ``steerable``'s ``fraction_ab`` / ``min_ab``, which are over t alone.) Lazy for
    dask-backed input.
    """
    region = steerable(ds, tol=tol, dim=dim)
    result: dict[str, xr.Dataset] = {}
    for p in swept_dims(region["ab"], dim):
        rest = [d for d in region["ab"].dims if d != p]
        out = xr.Dataset()
        for key in ("ab", "ba", "either"):
            what = region[key].attrs["long_name"]
            out[f"grid_fraction_{key}"] = region[key].mean(rest).assign_attrs(
                long_name=f"fraction of the other dims and {dim} where {what}", units="1")
        for key in ("ab", "ba"):
            out[f"grid_min_{key}"] = region[f"min_{key}"].min([d for d in rest if d != dim]) \
                .assign_attrs(long_name=f"minimum of I_{key} over the other dims and {dim}",
                              units=region[f"min_{key}"].attrs["units"])
        out.attrs = dict(region.attrs)
        result[p] = out
    return result
