"""``ds.qb``: the analysis as an xarray accessor on qbfast Datasets (and ``da.qb`` on a metric).

Registered when ``qbfast.analysis`` is imported (so by ``import qbfast``). Every method
forwards to the module-level function of the same topic, so ``ds.qb.extrema("energy")`` is
``analysis.extrema(ds, "energy")``; the analysis modules (and dask, which the claims import)
are imported on the first call, not when the accessor is registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import xarray as xr

from ..params import TIME

if TYPE_CHECKING:
    from .claims import Check


@xr.register_dataset_accessor("qb")
class DatasetAccessor:
    """Analysis of a qbfast Dataset (from ``qbfast.sweep`` or ``xr.open_zarr`` of a store).
    On a Dataset read from an incomplete qbfast store, ``ds.qb`` raises a one-line
    ``ValueError`` saying how many tasks are missing, unless the store was opened with
    ``qbfast.analysis.open_store(path, allow_incomplete=True)``."""

    def __init__(self, ds: xr.Dataset) -> None:
        from ._io import check_complete

        check_complete(ds)
        self._ds = ds

    @property
    def metrics(self) -> list[str]:
        """The qbfast metrics the dataset holds, in canonical order."""
        from ._io import metric_names

        return metric_names(self._ds)

    def sel(self, selection: Mapping[str, float] | None = None, **values: float) -> xr.Dataset:
        """Nearest-value selection that refuses values outside the coordinate range."""
        from ._io import select

        return select(self._ds, {**(selection or {}), **values})

    def parameters(self, **point: Any) -> dict[str, Any]:
        """``qbfast.sweep`` keyword arguments (with ``model``) recomputing one grid point. The
        rates of physics.md section 8 (``gamma``, ``gamma_phi``, ...) are among them where
        they are > 0; at 0 (their default: the closed model) they are left out."""
        from ..params import MODELS
        from ._io import point_parameters

        kwargs = point_parameters(self._ds, self._ds.attrs, point)
        rates = MODELS[self._ds.attrs["model"]].rate_names
        kwargs = {k: v for k, v in kwargs.items() if not (k in rates and v == 0)}
        return {"model": self._ds.attrs["model"], **kwargs}

    def extrema(self, metric: str, **kwargs: Any) -> xr.Dataset:
        """See :func:`qbfast.analysis.extrema`."""
        from .extrema import extrema

        return extrema(self._ds, metric, **kwargs)

    def corr(self, a: str, b: str, **kwargs: Any) -> xr.Dataset:
        """See :func:`qbfast.analysis.correlation`."""
        from .correlation import correlation

        return correlation(self._ds, a, b, **kwargs)

    def corr_summary(self, a: str, b: str, **kwargs: Any) -> xr.Dataset:
        """:func:`qbfast.analysis.correlation_summary` of ``corr(a, b)``."""
        from .correlation import correlation_summary

        return correlation_summary(self.corr(a, b, **kwargs))

    def coincidence(self, a: str, b: str, **kwargs: Any) -> xr.Dataset:
        """See :func:`qbfast.analysis.coincidence`."""
        from .correlation import coincidence

        return coincidence(self._ds, a, b, **kwargs)

    def steerable(self, **kwargs: Any) -> xr.Dataset:
        """See :func:`qbfast.analysis.steerable`."""
        from .steering import steerable

        return steerable(self._ds, **kwargs)

    def steerable_by_parameter(self, **kwargs: Any) -> dict[str, xr.Dataset]:
        """See :func:`qbfast.analysis.steerable_by_parameter`."""
        from .steering import steerable_by_parameter

        return steerable_by_parameter(self._ds, **kwargs)

    def claims(self, **kwargs: Any) -> list[Check]:
        """See :func:`qbfast.analysis.claims`."""
        from .claims import claims

        return claims(self._ds, **kwargs)

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
        from .extrema import extrema

        return extrema(self._da, **kwargs)
