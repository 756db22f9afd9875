"""The core request: :class:`Grid`, one checked sweep request (model, protocol, swept and fixed
parameters, times, metrics), and the single place that dispatches it to a Numba kernel.

Layering: :mod:`qbfast.kernels` (pure Numba on arrays) <- this module (plus :mod:`.params`,
:mod:`.validate`, :mod:`.reduce`) <- the API (:mod:`qbfast.api`), the runner
(:mod:`qbfast.runner`), the store (:mod:`qbfast.store`) and the analysis <- the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
import xarray as xr

from ._version import __version__
from .kernels.chargers import coherent_grid, thermal_grid
from .kernels.grid import cavity_grid, field_drive_grid, field_full_grid, route_code
from .kernels.open_cavity import open_cavity_grid
from .kernels.open_field import open_field_grid
from .kernels.reduced_chargers import reduced_coherent_grid, reduced_thermal_grid
from .kernels.reduced_grid import (
    reduced_cavity_grid,
    reduced_field_drive_grid,
    reduced_field_full_grid,
)
from .kernels.reductions import reduce_rows
from .params import LOG_BASE, METRIC_INDEX, N_METRICS, TIME, Model, Parameter
from .validate import (
    check_battery_hamiltonian,
    check_charger,
    check_max_step,
    check_metrics,
    check_model,
    check_parameters,
    check_protocol,
    check_rates,
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
                 max_step: float | None = None, charger: str | None = None,
                 **params: Any) -> None:
        self.model: Model = check_model(model)
        self.protocol = check_protocol(self.model, protocol)
        #: the charger state (cavity: "fock", "coherent" or "thermal"; None for the field)
        self.charger = check_charger(self.model, charger)
        self.battery_hamiltonian = check_battery_hamiltonian(battery_hamiltonian)
        self.metrics = check_metrics(metrics)
        self.max_step = check_max_step(max_step)
        if max_step is not None and self.protocol != "full":
            raise ValueError("max_step: only used by model 'field' with protocol 'full'")
        self.t = check_times(t)
        checked = check_parameters(self.model, params, self.charger)
        self.swept: dict[str, np.ndarray] = {k: v for k, v in checked.items()
                                             if isinstance(v, np.ndarray)}
        self.fixed: dict[str, float] = {p.name: p.default for p in self.parameters}
        self.fixed.update({k: v for k, v in checked.items() if not isinstance(v, np.ndarray)})
        for k in self.swept:
            del self.fixed[k]
        check_rates(self.model, self.charger,
                    {p.name: self.values(p.name) for p in self.parameters})
        if self.max_step is not None and self.is_open:
            raise ValueError("max_step: only for the closed field kernel; with a rate > 0 the "
                             "open kernel chooses its own steps (accurate to 1e-8 abs + 1e-6 "
                             "rel, docs/physics.md section 8): leave max_step unset")

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """This request's model parameters in kernel order (those of its charger)."""
        return self.model.parameters_for(self.charger)

    def values(self, name: str) -> np.ndarray:
        """The values of parameter ``name`` on this grid: its dimension, or the fixed value."""
        if name in self.swept:
            return self.swept[name]
        return np.array([self.fixed[name]])

    @property
    def closed_parameters(self) -> tuple[Parameter, ...]:
        """The closed kernels' columns: :attr:`parameters` without the rates."""
        return self.model.closed_parameters_for(self.charger)

    def open_points(self) -> np.ndarray:
        """(n_points,) bool: the points with a rate > 0 (the open kernels compute them; the
        others, every rate 0, go through the closed kernels, whose results they are)."""
        table = self.parameter_table(rates=True)
        return np.any(table[:, len(self.closed_parameters):] > 0, axis=1)

    @property
    def is_open(self) -> bool:
        """Whether any point has a rate > 0."""
        rates = self.model.rate_names
        return (any(self.fixed.get(r, 0.0) > 0 for r in rates)
                or any(bool(np.any(v > 0)) for k, v in self.swept.items() if k in rates))

    @property
    def is_mixed(self) -> bool:
        """Whether the grid has both points with every rate 0 and points with a rate > 0
        (decided from the rates' values, without a parameter table)."""
        rates = self.model.rate_names
        has_closed = (all(self.fixed.get(r, 0.0) == 0 for r in rates)
                      and all(bool(np.any(v == 0)) for k, v in self.swept.items() if k in rates))
        return self.is_open and has_closed

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

    def parameter_table(self, rates: bool | None = None) -> np.ndarray:
        """(n_points, n_params) float64, columns in the model's parameter order, the last swept
        parameter varying fastest (C order of ``shape[:-1]``). ``rates``: whether the rate
        columns follow the closed ones (:attr:`parameters`, the open kernels' table) or not
        (:attr:`closed_parameters`, the closed kernels' table); None: when :attr:`is_open`."""
        with_rates = self.is_open if rates is None else rates
        names = [p.name for p in (self.parameters if with_rates else self.closed_parameters)]
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
            "charger": self.charger if self.charger is not None else "none",
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

    def _slot(self) -> np.ndarray:
        """Metric index -> row of the output (-1: not requested)."""
        slot = np.full(N_METRICS, -1, dtype=np.int64)
        for i, name in enumerate(self.metrics):
            slot[METRIC_INDEX[name]] = i
        return slot

    def kernel_inputs(self) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray | None]:
        """What the closed kernels of :mod:`qbfast.kernels.grid` take: the parameter table
        without the rates, ``bare``, ``slot`` (metric index -> row of the output, -1: not
        requested) and, for field "full", the Magnus step bound of every point (else None)."""
        table = self.parameter_table(rates=False)
        bare = self.battery_hamiltonian == "bare"
        steps = None
        if self.protocol == "full":
            if self.max_step is None:
                steps = default_max_step(*table.T)
            else:
                steps = np.full(self.n_points, self.max_step)
        return table, bare, self._slot(), steps

    @property
    def closed_kernel(self) -> str:
        """The closed kernel of this request: "cavity", "field_drive" or "field_full" of
        :mod:`qbfast.kernels.grid`, or "cavity_coherent" / "cavity_thermal" of
        :mod:`qbfast.kernels.chargers`."""
        if self.model.name == "cavity":
            return "cavity" if self.charger == "fock" else f"cavity_{self.charger}"
        return "field_drive" if self.protocol == "drive" else "field_full"

    @property
    def open_kernel(self) -> str:
        """The open kernel of this request (physics.md section 8): "open_field_drive",
        "open_field_full" (:mod:`qbfast.kernels.open_field`), "open_cavity" (Fock) or
        "open_cavity_thermal" (:mod:`qbfast.kernels.open_cavity`)."""
        if self.model.name == "cavity":
            return "open_cavity" if self.charger == "fock" else f"open_cavity_{self.charger}"
        return f"open_field_{self.protocol}"

    @property
    def kernel(self) -> str:
        """Which kernel computes this request: :attr:`open_kernel` when any point has a rate
        > 0, else :attr:`closed_kernel`. (A mixed grid computes its points with every rate 0
        through the closed kernel, the others through the open one.)"""
        return self.open_kernel if self.is_open else self.closed_kernel

    def _split(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(closed rows, open rows) of a grid with both kinds of points; None otherwise."""
        if not self.is_open:
            return None
        is_open = self.open_points()
        if is_open.all():
            return None
        return np.flatnonzero(~is_open), np.flatnonzero(is_open)

    def _open_compute(self, table: np.ndarray, out: np.ndarray) -> None:
        """The open kernel on the rows ``table`` (every column of :attr:`parameters`)."""
        bare = self.battery_hamiltonian == "bare"
        threads = numba.get_num_threads()
        table = np.ascontiguousarray(table)
        if self.model.name == "cavity":
            open_cavity_grid(table, self.t, self.charger == "thermal", bare, self._slot(), out,
                             threads)
        else:
            open_field_grid(table, self.t, self.protocol == "full", bare, self._slot(), out,
                            threads)

    def compute(self, out: np.ndarray, route: str = "auto") -> None:
        """Run the kernel, writing into ``out`` of shape (n_metrics, n_points, T), on
        ``numba.get_num_threads()`` threads. ``route``: "auto", "staged" or "fused", the block
        route of the cavity and field "drive" kernels (:data:`qbfast.kernels.grid.ROUTES`;
        every route gives the same bits, field "full" has one route; the open kernels have
        one route). Points with every rate 0 go through the closed kernel (its bits), the
        others through the open kernel."""
        code = route_code(route)
        split = self._split()
        if split is not None:
            closed, opened = split
            for rows in (closed, opened):
                part = self._rows(rows)
                block = np.empty((out.shape[0], rows.size, out.shape[2]))
                part.compute(block, route)
                out[:, rows] = block
            return
        if self.is_open:
            self._open_compute(self.parameter_table(rates=True), out)
            return
        table, bare, slot, steps = self.kernel_inputs()
        threads = numba.get_num_threads()
        kernel = self.kernel
        if kernel == "cavity":
            cavity_grid(table, self.t, bare, slot, out, threads, code)
        elif kernel == "cavity_coherent":
            coherent_grid(table, self.t, bare, slot, out, threads)
        elif kernel == "cavity_thermal":
            thermal_grid(table, self.t, bare, slot, out, threads)
        elif kernel == "field_drive":
            field_drive_grid(table, self.t, bare, slot, out, threads, code)
        else:
            field_full_grid(table, self.t, bare, slot, out, steps)

    def compute_reduced(self, block_rows: int, buffer: np.ndarray, wanted: np.ndarray,
                        index: np.ndarray, value: np.ndarray, route: str = "auto") -> None:
        """Run the kernel reduced along t as it goes (:mod:`qbfast.kernels.reduced_grid`:
        arguments as documented there), on ``numba.get_num_threads()`` threads; ``route`` as
        for :meth:`compute`."""
        code = route_code(route)
        split = self._split()
        if split is not None:
            for rows in split:
                part = self._rows(rows)
                part_index = np.full((index.shape[0], index.shape[1], rows.size), -1,
                                     dtype=index.dtype)
                part_value = np.full((value.shape[0], value.shape[1], rows.size), np.nan)
                part.compute_reduced(block_rows, buffer, wanted, part_index, part_value, route)
                index[:, :, rows] = part_index
                value[:, :, rows] = part_value
            return
        threads = numba.get_num_threads()
        if self.is_open:
            table = self.parameter_table(rates=True)
            n_m, n_t = wanted.shape[0], self.t.size
            for r0 in range(0, self.n_points, block_rows):
                r1 = min(self.n_points, r0 + block_rows)
                out = buffer[:n_m * (r1 - r0) * n_t].reshape((n_m, r1 - r0, n_t))
                self._open_compute(table[r0:r1], out)
                reduce_rows(out, wanted, r0, index, value, threads)
            return
        table, bare, slot, steps = self.kernel_inputs()
        work = (block_rows, buffer, wanted, index, value)
        kernel = self.kernel
        if kernel == "cavity":
            reduced_cavity_grid(table, self.t, bare, slot, threads, code, *work)
        elif kernel == "cavity_coherent":
            reduced_coherent_grid(table, self.t, bare, slot, threads, *work)
        elif kernel == "cavity_thermal":
            reduced_thermal_grid(table, self.t, bare, slot, threads, *work)
        elif kernel == "field_drive":
            reduced_field_drive_grid(table, self.t, bare, slot, threads, code, *work)
        else:
            reduced_field_full_grid(table, self.t, bare, slot, steps, threads, *work)

    def _rows(self, rows: np.ndarray) -> _Rows:
        """The points ``rows`` of this grid as a request of their own (same t and options)."""
        return _Rows(self, rows)

    def subgrid(self, slices: Sequence[slice]) -> Grid:
        """The request of the block ``slices`` (one per dim, t last) of this grid, with the
        same fixed parameters, times sliced, and the same options."""
        swept = {name: values[s] for (name, values), s in zip(self.swept.items(), slices)}
        return Grid(self.model.name, self.t[slices[-1]], protocol=self.protocol,
                    battery_hamiltonian=self.battery_hamiltonian, metrics=self.metrics,
                    max_step=self.max_step, charger=self.charger, **swept, **self.fixed)

    def empty_output(self) -> np.ndarray:
        return np.empty((len(self.metrics), *self.shape))


class _Rows(Grid):
    """Some points of a :class:`Grid` (``rows`` of its parameter table, all closed or all open)
    as a request of their own: what :meth:`Grid.compute` runs for each part of a mixed grid."""

    def __init__(self, grid: Grid, rows: np.ndarray) -> None:  # shares grid's checks
        self.__dict__.update(grid.__dict__)
        self._table = grid.parameter_table(rates=True)[rows]
        self._is_open = bool(grid.open_points()[rows].all())

    @property
    def n_points(self) -> int:
        return int(self._table.shape[0])

    @property
    def is_open(self) -> bool:
        return self._is_open

    def parameter_table(self, rates: bool | None = None) -> np.ndarray:
        with_rates = self.is_open if rates is None else rates
        if with_rates:
            return self._table
        return np.ascontiguousarray(self._table[:, :len(self.closed_parameters)])

    def _split(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None
