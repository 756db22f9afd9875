"""Opening stores, checking metric names and selections, and rebuilding a grid point's
parameters from a dataset's attributes and coordinates.

Every check raises ``ValueError`` with a one-line message naming the offending input.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from ..params import METRICS, MODELS, TIME

__all__ = ["open_store", "merge_stores", "check_metric", "parse_selection", "select",
           "point_parameters", "swept_dims"]


#: Dataset attribute that lets the analysis use an incomplete qbfast store (set by
#: ``open_store(..., allow_incomplete=True)``; its value is the number of missing tasks).
ALLOW_INCOMPLETE = "qbfast_incomplete_allowed"


class IncompleteStoreError(ValueError):
    """A qbfast store with tasks missing, opened for analysis without ``allow_incomplete``."""


def _incomplete_line(path: str, missing: int, total: int, recorded: bool = True) -> str:
    from ..store.record import journal_dir, journal_missing_line

    if missing and not journal_dir(path).is_dir():
        return (f"store {path!r}: incomplete: {journal_missing_line(path, named=False)}"
                f" (or allow it: allow_incomplete=True, CLI --allow-incomplete)")
    if not missing and not recorded:
        return (f"store {path!r}: incomplete: every task is recorded but its completion "
                f"record (_qbfast/complete.json) is missing, unreadable or another store's; "
                f"check it with `qbfast verify {path} --repair` (which writes the record once "
                f"every chunk is proven), or allow it (allow_incomplete=True, CLI "
                f"--allow-incomplete)")
    return (f"store {path!r}: incomplete: {missing:,} of {total:,} tasks missing (a run "
            f"stopped?); resume it with `qbfast run`, or allow it (allow_incomplete=True, CLI "
            f"--allow-incomplete): the missing region then reads as NaN and is left out of "
            f"every statistic")


def check_complete(ds: xr.Dataset) -> None:
    """Refuse (one-line :class:`IncompleteStoreError`) a Dataset read from an incomplete
    qbfast store, unless it was opened with ``allow_incomplete=True``. Datasets not read from
    a qbfast store (``qbfast.sweep``, other Zarr stores) pass."""
    from ..store import completeness

    source = ds.encoding.get("source")
    if not source or ALLOW_INCOMPLETE in ds.attrs or "://" in str(source):
        return
    state = completeness(source)
    if state is not None and (state[0] or not state[2]):
        raise IncompleteStoreError(_incomplete_line(str(source), *state))


def open_store(store: str | os.PathLike[str], allow_incomplete: bool = False) -> xr.Dataset:
    """Open a Zarr store written by ``qbfast run`` (or ``Dataset.to_zarr``) lazily, dask-backed.

    Reads consolidated metadata where the store has it and the plain metadata otherwise,
    without warnings. Raises ``ValueError`` if the path is missing or not a Zarr store, and
    :class:`IncompleteStoreError` if it is a qbfast store with tasks missing, unless
    ``allow_incomplete``: then a ``UserWarning`` says how many are missing, the Dataset's attrs
    record it (:data:`ALLOW_INCOMPLETE`), and the missing region reads as NaN (the fill value),
    which every analysis skips like any NaN.
    """
    from ..store import completeness, store_path

    path = os.fspath(store)
    if "://" not in path:
        path = os.fspath(store_path(path, "store"))
    if "://" not in path and not os.path.exists(path):
        raise ValueError(f"store {path!r}: no such file or directory")
    state = completeness(path) if "://" not in path else None
    if state is not None and (state[0] or not state[2]) and not allow_incomplete:
        raise IncompleteStoreError(_incomplete_line(path, *state))
    errors: list[str] = []
    for consolidated in (True, False):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = xr.open_zarr(path, consolidated=consolidated)
            break
        except Exception as exc:  # zarr raises several types for "not a store"
            errors.append(f"{type(exc).__name__}: {exc}")
    else:
        raise ValueError(f"store {path!r}: not a readable Zarr store "
                         f"({errors[-1].splitlines()[0]})")
    if state is not None and (state[0] or not state[2]):
        what = (f"{state[0]:,} of {state[1]:,} tasks missing (counted when the store was "
                f"opened): their region reads as NaN and is left out of the statistics"
                if state[0] else "its completion record is missing, unreadable or another "
                "store's (every task is recorded)")
        warnings.warn(f"store {path!r}: {what}", UserWarning, stacklevel=2)
        ds.attrs[ALLOW_INCOMPLETE] = state[0]
    return ds


def merge_stores(datasets: list[xr.Dataset]) -> xr.Dataset:
    """One Dataset from several stores of the same grid (e.g. figure specs that split the
    metrics): coordinates must be equal, and so must model, protocol, battery Hamiltonian and
    fixed parameters; other attrs (spec text, creation time) are kept where they agree."""
    if len(datasets) == 1:
        return datasets[0]
    first = datasets[0]
    keys = ["model", "protocol", "battery_hamiltonian", *sorted(_parameter_attrs(first))]
    for ds in datasets[1:]:
        for key in keys:
            if ds.attrs.get(key) != first.attrs.get(key):
                raise ValueError(f"stores differ in {key}: {first.attrs.get(key)!r} and "
                                 f"{ds.attrs.get(key)!r}; only stores of one grid merge")
    try:
        return xr.merge(datasets, join="exact", compat="override",
                        combine_attrs="drop_conflicts")
    except ValueError as e:
        raise ValueError(f"stores do not share one grid: {str(e).splitlines()[0]}") from None


def metric_names(ds: xr.Dataset, dim: str = TIME.name) -> list[str]:
    """The qbfast metrics this dataset holds as series along ``dim``, in canonical order."""
    return [name for name in METRICS if name in ds.data_vars and dim in ds[name].dims]


def check_metric(ds: xr.Dataset, name: object, dim: str = TIME.name) -> str:
    """A metric (or any variable with a ``dim`` axis) of the dataset; ValueError otherwise."""
    if isinstance(name, str) and name in ds.data_vars and dim in ds[name].dims:
        return name
    if isinstance(name, str) and name in ds.data_vars and dim not in ds.dims:
        raise ValueError(f"metric {name!r}: the selection removed {dim} (--sel {dim}=...); "
                         f"this command needs the series along {dim}: select other dimensions")
    have = ", ".join(metric_names(ds, dim)) or "none"
    if isinstance(name, str) and name in METRICS:
        if name in ds.data_vars or any(str(v).startswith(f"{name}_") for v in ds.data_vars):
            raise ValueError(f"metric {name!r}: this store keeps no series along {dim} of it "
                             f"(only reductions); series held: {have}")
        raise ValueError(f"metric {name!r} is not in this store; it holds: {have}")
    raise ValueError(f"unknown metric {name!r}; this store holds: {have}")


def swept_dims(obj: xr.Dataset | xr.DataArray, dim: str = TIME.name) -> list[str]:
    """The dimensions other than time, in order."""
    return [str(d) for d in obj.dims if d != dim]


def parse_selection(items: Iterable[str] | None) -> dict[str, float]:
    """``["J2=1", "n=7"]`` -> ``{"J2": 1.0, "n": 7.0}``."""
    selection: dict[str, float] = {}
    for item in items or ():
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise ValueError(f"selection {item!r}: expected NAME=VALUE, e.g. J2=1")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"selection {item!r}: {text.strip()!r} is not a number") from None
        if name in selection:
            raise ValueError(f"selection {item!r}: {name} is selected twice")
        selection[name] = value
    return selection


def select(ds: xr.Dataset, selection: Mapping[str, float]) -> xr.Dataset:
    """Select one coordinate value per named dimension (the nearest grid value).

    A value outside a dimension's coordinate range, a name that is neither a dimension nor a
    fixed parameter, or a fixed parameter given another value than the store's, is refused.
    """
    indexers: dict[str, Any] = {}
    for name, value in selection.items():
        if name in ds.dims:
            coord = np.asarray(ds[name].values, dtype=np.float64)
            lo, hi = float(coord.min()), float(coord.max())
            slack = 1e-9 * max(1.0, abs(lo), abs(hi))
            if not lo - slack <= value <= hi + slack:
                raise ValueError(
                    f"selection {name}={value:g}: outside the coordinate range "
                    f"[{lo:g}, {hi:g}] of {name}"
                )
            indexers[name] = int(np.argmin(np.abs(coord - value)))
        elif (name in ds.coords and ds[name].ndim == 0) or name in _parameter_attrs(ds):
            fixed = float(ds[name].values) if name in ds.coords else ds.attrs[name]
            if abs(fixed - value) > 1e-9 * max(1.0, abs(value)):
                raise ValueError(f"selection {name}={value:g}: {name} is fixed at {fixed} in "
                                 f"this store")
        else:
            dims = ", ".join(str(d) for d in ds.dims)
            raise ValueError(f"selection {name}={value:g}: {name!r} is not a dimension; "
                             f"dims: {dims}")
    return ds.isel(indexers) if indexers else ds


def _parameter_attrs(ds: xr.Dataset) -> set[str]:
    """Names of the model parameters fixed in the dataset's attrs."""
    model = MODELS.get(str(ds.attrs.get("model", "")))
    if model is None:
        return set()
    charger = ds.attrs.get("charger")
    names = [p.name for p in model.parameters_for(None if charger in (None, "none")
                                                   else str(charger))]
    return {n for n in names
            if isinstance(ds.attrs.get(n), (int, float)) and not isinstance(ds.attrs.get(n), bool)}


def point_parameters(ds: xr.Dataset | xr.DataArray, attrs: Mapping[str, Any],
                     point: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``qbfast.sweep`` that recompute one grid point.

    ``attrs`` are the dataset's global attributes (model, protocol, battery_hamiltonian, the
    fixed parameters, max_step); ``point`` maps each swept dimension to its coordinate value.
    Parameters that are neither swept nor in the attrs (a scalar coordinate left by a
    selection) are read from ``ds``'s coordinates.
    """
    if "model" not in attrs or attrs["model"] not in MODELS:
        raise ValueError("dataset attrs: no qbfast 'model'; cannot recompute its grid points")
    model = MODELS[attrs["model"]]
    kwargs: dict[str, Any] = {}
    protocol = attrs.get("protocol", "none")
    if protocol not in (None, "none"):
        kwargs["protocol"] = str(protocol)
    kwargs["battery_hamiltonian"] = str(attrs.get("battery_hamiltonian", "interacting"))
    if "max_step" in attrs:
        kwargs["max_step"] = float(attrs["max_step"])
    charger = attrs.get("charger")
    charger = None if charger in (None, "none") else str(charger)
    if charger is not None and charger != model.default_charger:
        kwargs["charger"] = charger
    for p in model.parameters_for(charger):
        if p.name in point:
            value = point[p.name]
        elif p.name in ds.coords and ds[p.name].ndim == 0:
            value = ds[p.name].values.item()
        elif p.name in attrs:
            value = attrs[p.name]
        else:
            value = p.default
        value = float(value)
        kwargs[p.name] = int(round(value)) if p.integer else value
    return kwargs
