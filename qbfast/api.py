"""``qbfast.sweep``: compute metrics over a parameter grid in-process, as a labelled Dataset."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .core import Grid
from .params import METRICS

__all__ = ["MEMORY_FRACTION", "Grid", "available_memory", "sweep"]

#: ``sweep`` refuses a request whose memory (its float64 output, unless ``out`` is given, plus
#: the parameter table the kernels read) exceeds this fraction of :func:`available_memory`.
MEMORY_FRACTION = 0.8


def available_memory() -> int:
    """Bytes this process can still allocate: the system's available memory
    (``psutil.virtual_memory().available``), capped by the cgroup (v2) limit if one is set."""
    import psutil

    free = int(psutil.virtual_memory().available)
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text())
            free = min(free, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return free


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g} {unit}" if n < 1000 else f"{n:,.0f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def _check_memory(grid: Grid, with_output: bool) -> None:
    """Refuse (ValueError) a request that would not fit in memory, before anything is allocated:
    bytes = 8 * (n_metrics * n_points * T [the output, unless ``out`` is given]
    + n_points * n_params [the parameter table: the closed parameters, and the rates when a
    rate is > 0]); a grid mixing closed and open points (:attr:`Grid.is_mixed`) adds the
    output and the table once more (its two parts are computed apart, then copied in)."""
    points = math.prod(grid.shape)  # Python ints: no int64 overflow
    columns = len(grid.parameters) if grid.is_open else len(grid.closed_parameters)
    table = math.prod(grid.shape[:-1]) * columns
    need = 8 * ((len(grid.metrics) * points if with_output else 0) + table)
    if grid.is_mixed:
        need += 8 * (len(grid.metrics) * points + table)
    free = available_memory()
    if need > MEMORY_FRACTION * free:
        sizes = " x ".join(f"{d}={s}" for d, s in zip(grid.dims, grid.shape))
        raise ValueError(
            f"grid: {sizes} ({points:,} points) x {len(grid.metrics)} metrics needs "
            f"{_fmt_bytes(need)} of memory, more than {MEMORY_FRACTION:.0%} of the "
            f"{_fmt_bytes(free)} available; write it to disk in chunks with `qbfast run` (a "
            f"spec, whose [reduce] table can keep only reductions along t), or sweep fewer "
            f"points or metrics"
        )


def _check_out(out: object, expected: tuple[int, ...]) -> np.ndarray:
    """``out`` if it is a writeable C-contiguous float64 array of shape ``expected``; else
    ValueError naming the first property that fails."""
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out: expected a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise ValueError(f"out: dtype is {out.dtype}; expected float64")
    if out.shape != expected:
        raise ValueError(f"out: shape is {out.shape}; expected {expected} "
                         f"(n_metrics, *swept sizes, T)")
    if not out.flags.c_contiguous:
        order = "Fortran order" if out.flags.f_contiguous else "not contiguous"
        c_strides = tuple(8 * math.prod(expected[i + 1:]) for i in range(len(expected)))
        raise ValueError(f"out: strides are {out.strides} ({order}); expected a C-contiguous "
                         f"array (strides {c_strides}), e.g. np.empty(shape)")
    if not out.flags.writeable:
        raise ValueError("out: the array is read-only (flags.writeable is False); expected a "
                         "writeable array")
    return out


def sweep(model: str, t: Any, *, protocol: str | None = None, charger: str | None = None,
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
    charger : cavity only: the charger's initial state, "fock" (default: |n>, integer ``n``),
        "coherent" or "thermal" (mean photon number ``nbar`` >= 0), physics.md section 7.
        Must be left unset for the field.
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

    Raises
    ------
    ValueError
        One line naming the argument, for bad input; and, before allocating anything, when
        the request would need more than ``MEMORY_FRACTION`` of ``available_memory()`` (the
        output and the parameter table): such sweeps belong in ``qbfast run``, which writes
        chunks to disk.
    """
    grid = Grid(model, t, protocol=protocol, battery_hamiltonian=battery_hamiltonian,
                metrics=metrics, max_step=max_step, charger=charger, **params)
    expected = (len(grid.metrics), *grid.shape)
    if out is not None:
        out = _check_out(out, expected)
    _check_memory(grid, with_output=out is None)
    if out is None:
        out = grid.empty_output()
    grid.compute(out.reshape(len(grid.metrics), grid.n_points, grid.t.size))
    data_vars = {}
    for i, name in enumerate(grid.metrics):
        m = METRICS[name]
        data_vars[name] = xr.Variable(grid.dims, out[i], {"long_name": m.long_name,
                                                          "units": m.units,
                                                          "description": m.description})
    return xr.Dataset(data_vars, coords=grid.coords(), attrs=grid.attrs())
