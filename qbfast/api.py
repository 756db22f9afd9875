"""``qbfast.sweep``: compute metrics over a parameter grid in-process, as a labelled Dataset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
import xarray as xr

from . import __version__
from .kernels.grid import cavity_grid, field_drive_grid, field_full_grid
from .params import LOG_BASE, METRIC_INDEX, METRICS, N_METRICS, TIME, Model
from .validate import (
    check_battery_hamiltonian,
    check_max_step,
    check_metrics,
    check_model,
    check_parameters,
    check_protocol,
    check_times,
)

# Default accuracy of field "full": steps of at most STEP_FACTOR / scale, with
# scale = max(|A| + |B|, |omega|, |Delta| + |g|, 1). Measured (tests/kernels/test_propagate.py)
# to keep every metric within 1e-9 of a converged reference on t in [0, 20].
STEP_FACTOR = 0.02


def default_max_step(a: np.ndarray, b: np.ndarray, omega: np.ndarray, g: np.ndarray,
                     delta: np.ndarray) -> np.ndarray:
    """The default Magnus step bound per parameter point (see ``STEP_FACTOR``)."""
    scale = np.maximum.reduce([np.abs(a) + np.abs(b), np.abs(omega), np.abs(delta) + np.abs(g),
                               np.ones_like(a)])
    return STEP_FACTOR / scale


class Grid:
    """A checked sweep request: model, protocol, swept and fixed parameters, times, metrics."""

    def __init__(self, model: str, t: Any, *, protocol: str | None = None,
                 battery_hamiltonian: str = "interacting", metrics: Sequence[str] | None = None,
                 max_step: float | None = None, **params: Any) -> None:
        self.model: Model = check_model(model)
        self.protocol = check_protocol(self.model, protocol)
        self.battery_hamiltonian = check_battery_hamiltonian(battery_hamiltonian)
        self.metrics = check_metrics(metrics)
        self.max_step = check_max_step(max_step)
        if max_step is not None and self.protocol != "full":
            raise ValueError("max_step: only used by model 'field' with protocol 'full'")
        self.t = check_times(t)
        checked = check_parameters(self.model, params)
        self.swept: dict[str, np.ndarray] = {k: v for k, v in checked.items() if isinstance(v, np.ndarray)}
        self.fixed: dict[str, float] = self.model.defaults
        self.fixed.update({k: v for k, v in checked.items() if not isinstance(v, np.ndarray)})
        for k in self.swept:
            del self.fixed[k]

    @property
    def dims(self) -> tuple[str, ...]:
        return (*self.swept, TIME.name)

    @property
    def shape(self) -> tuple[int, ...]:
        return (*(v.size for v in self.swept.values()), self.t.size)

    @property
    def n_points(self) -> int:
        """Number of parameter sets (grid points without t)."""
        return int(np.prod([v.size for v in self.swept.values()], dtype=np.int64))

    def parameter_table(self) -> np.ndarray:
        """(n_points, n_params) float64, columns in the model's parameter order, the last swept
        parameter varying fastest (C order of ``shape[:-1]``)."""
        names = self.model.parameter_names
        table = np.empty((self.n_points, len(names)))
        mesh = np.meshgrid(*self.swept.values(), indexing="ij") if self.swept else []
        swept_cols = dict(zip(self.swept, mesh))
        for j, name in enumerate(names):
            if name in swept_cols:
                table[:, j] = swept_cols[name].ravel()
            else:
                table[:, j] = self.fixed[name]
        return table

    def attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "model": self.model.name,
            "model_description": self.model.description,
            "protocol": self.protocol if self.protocol is not None else "none",
            "battery_hamiltonian": self.battery_hamiltonian,
            "log_base": LOG_BASE,
            "qbfast_version": __version__,
        }
        for name, value in self.fixed.items():
            p = self.model.parameter(name)
            attrs[name] = int(value) if p.integer else float(value)
        if self.max_step is not None:
            attrs["max_step"] = self.max_step
        return attrs

    def coords(self) -> dict[str, xr.Variable]:
        coords = {}
        for name, values in self.swept.items():
            p = self.model.parameter(name)
            data = values.astype(np.int64) if p.integer else values
            coords[name] = xr.Variable(name, data, {"long_name": p.long_name, "units": p.units})
        coords[TIME.name] = xr.Variable(TIME.name, self.t, {"long_name": TIME.long_name,
                                                             "units": TIME.units})
        return coords

    def kernel_inputs(self) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray | None]:
        """What the kernels of :mod:`qbfast.kernels.grid` take: the parameter table, ``bare``,
        ``slot`` (metric index -> row of the output, -1: not requested) and, for field
        "full", the Magnus step bound of every point (else None)."""
        slot = np.full(N_METRICS, -1, dtype=np.int64)
        for i, name in enumerate(self.metrics):
            slot[METRIC_INDEX[name]] = i
        table = self.parameter_table()
        bare = self.battery_hamiltonian == "bare"
        steps = None
        if self.protocol == "full":
            if self.max_step is None:
                steps = default_max_step(*table.T)
            else:
                steps = np.full(self.n_points, self.max_step)
        return table, bare, slot, steps

    def compute(self, out: np.ndarray) -> None:
        """Run the kernel, writing into ``out`` of shape (n_metrics, n_points, T)."""
        table, bare, slot, steps = self.kernel_inputs()
        if self.model.name == "cavity":
            cavity_grid(table, self.t, bare, slot, out, numba.get_num_threads())
        elif self.protocol == "drive":
            field_drive_grid(table, self.t, bare, slot, out, numba.get_num_threads())
        else:
            field_full_grid(table, self.t, bare, slot, out, steps)

    def empty_output(self) -> np.ndarray:
        return np.empty((len(self.metrics), *self.shape))


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
        data_vars[name] = xr.Variable(grid.dims, out[i], {"long_name": m.long_name, "units": m.units,
                                                          "description": m.description})
    return xr.Dataset(data_vars, coords=grid.coords(), attrs=grid.attrs())
