"""``ds.qb``: the analysis as an xarray accessor on qbfast Datasets (and ``da.qb`` on a metric).

Registered when ``qbfast.analysis`` is imported. Every method forwards to the module-level
function of the same topic, so ``ds.qb.extrema("energy")`` is ``analysis.extrema(ds, "energy")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xarray as xr

from ..params import TIME
from . import claims as _claims
from . import correlation as _correlation
from . import extrema as _extrema
from . import steering as _steering
from ._io import check_complete, metric_names, point_parameters, select


@xr.register_dataset_accessor("qb")
class DatasetAccessor:
    """Analysis of a qbfast Dataset (from ``qbfast.sweep`` or ``xr.open_zarr`` of a store).
    On a Dataset read from an incomplete qbfast store, ``ds.qb`` raises a one-line
    ``ValueError`` saying how many tasks are missing, unless the store was opened with
    ``qbfast.analysis.open_store(path, allow_incomplete=True)``."""

    def __init__(self, ds: xr.Dataset) -> None:
        check_complete(ds)
        self._ds = ds

    @property
    def metrics(self) -> list[str]:
        """The qbfast metrics the dataset holds, in canonical order."""
        return metric_names(self._ds)

    def sel(self, selection: Mapping[str, float] | None = None, **values: float) -> xr.Dataset:
        """Nearest-value selection that refuses values outside the coordinate range."""
        return select(self._ds, {**(selection or {}), **values})

    def parameters(self, **point: Any) -> dict[str, Any]:
        """``qbfast.sweep`` keyword arguments (with ``model``) recomputing one grid point."""
        kwargs = point_parameters(self._ds, self._ds.attrs, point)
        return {"model": self._ds.attrs["model"], **kwargs}

    def extrema(self, metric: str, **kwargs: Any) -> xr.Dataset:
        """See :func:`qbfast.analysis.extrema`."""
        return _extrema.extrema(self._ds, metric, **kwargs)

    def corr(self, a: str, b: str, **kwargs: Any) -> xr.Dataset:
        """See :func:`qbfast.analysis.correlation`."""
        return _correlation.correlation(self._ds, a, b, **kwargs)

    def corr_summary(self, a: str, b: str, **kwargs: Any) -> xr.Dataset:
        """:func:`qbfast.analysis.correlation_summary` of ``corr(a, b)``."""
        return _correlation.correlation_summary(self.corr(a, b, **kwargs))

    def coincidence(self, a: str, b: str, **kwargs: Any) -> xr.Dataset:
        """See :func:`qbfast.analysis.coincidence`."""
        return _correlation.coincidence(self._ds, a, b, **kwargs)

    def steerable(self, **kwargs: Any) -> xr.Dataset:
        """See :func:`qbfast.analysis.steerable`."""
        return _steering.steerable(self._ds, **kwargs)

    def steerable_by_parameter(self, **kwargs: Any) -> dict[str, xr.Dataset]:
        """See :func:`qbfast.analysis.steerable_by_parameter`."""
        return _steering.steerable_by_parameter(self._ds, **kwargs)

    def claims(self, **kwargs: Any) -> list[_claims.Check]:
        """See :func:`qbfast.analysis.claims`."""
        return _claims.claims(self._ds, **kwargs)

    def plot(self, y: str, x: str = TIME.name, **kwargs: Any) -> Any:
        """See :func:`qbfast.analysis.plots.plot_metric`; returns the matplotlib Axes."""
        from .plots import plot_metric

        return plot_metric(self._ds, y, x=x, **kwargs)


@xr.register_dataarray_accessor("qb")
class DataArrayAccessor:
    """Extrema of one metric DataArray along t (``da.qb.extrema()``)."""

    def __init__(self, da: xr.DataArray) -> None:
        self._da = da

    def extrema(self, **kwargs: Any) -> xr.Dataset:
        """See :func:`qbfast.analysis.extrema` (refine "none" or "parabolic": "kernel" needs the
        Dataset)."""
        return _extrema.extrema(self._da, **kwargs)
