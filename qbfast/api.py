"""``qbfast.sweep``: compute metrics over a parameter grid in-process, as a labelled Dataset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .core import Grid
from .params import METRICS

__all__ = ["sweep", "Grid"]


def sweep(model: str, t: Any, *, protocol: str | None = None,
          battery_hamiltonian: str = "interacting", metrics: Sequence[str] | None = None,
          out: np.ndarray | None = None, max_step: float | None = None,
          **params: Any) -> xr.Dataset:
    """Compute battery metrics over a parameter grid and times, in-process on all cores.

    Parameters
    ----------
    model : "field" or "cavity" (see ``qbfast.MODELS``).
    t : 1-D increasing times >= 0.
    protocol : field only: "drive" (default, closed form eq. 16) or "full" (H_a(t) + H_b,
        4th-order Magnus). Must be left unset for the cavity.
    battery_hamiltonian : "interacting" (the model's H_b, default) or "bare" (H0).
    metrics : names from ``qbfast.METRICS`` (default: all 15).
    out : optional reusable float64 C-contiguous buffer of shape (n_metrics, *dims sizes, T);
        the returned variables are views into it (no allocation, no copy).
    max_step : field "full" only: largest Magnus step; default ``0.02 / scale`` keeps every
        metric within 1e-9 on t in [0, 20] (see ``default_max_step``).
    **params : model parameters; a scalar is fixed, a 1-D sequence of distinct values is a
        dimension. Dims are the swept parameters in the order given, then ``t``.

    Returns
    -------
    xarray.Dataset with one float64 variable per metric, shape (*swept sizes, T).
    """
    grid = Grid(model, t, protocol=protocol, battery_hamiltonian=battery_hamiltonian,
                metrics=metrics, max_step=max_step, **params)
    expected = (len(grid.metrics), *grid.shape)
    if out is None:
        out = grid.empty_output()
    elif (not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.shape != expected
          or not out.flags.c_contiguous or not out.flags.writeable):
        got = (f"{type(out).__name__} {getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}")
        raise ValueError(
            f"out: expected a writeable C-contiguous float64 array of shape {expected}, got {got}"
        )
    grid.compute(out.reshape(len(grid.metrics), grid.n_points, grid.t.size))
    data_vars = {}
    for i, name in enumerate(grid.metrics):
        m = METRICS[name]
        data_vars[name] = xr.Variable(grid.dims, out[i], {"long_name": m.long_name,
                                                          "units": m.units,
                                                          "description": m.description})
    return xr.Dataset(data_vars, coords=grid.coords(), attrs=grid.attrs())
