"""Analysis of qbfast datasets and stores: extrema, correlations, the paper's claims, figures.

Everything works on a Dataset from ``qbfast.sweep`` or lazily on one opened from a Zarr store
(``open_store`` / ``xr.open_zarr``): per-point reductions along t run chunk by chunk with
dask, so a store larger than memory is never loaded whole. Importing this package registers
the ``ds.qb`` accessor; the functions below (and dask) are imported on first use.

- ``extrema(ds, metric)``: max/min and first local max/min, value and time, per grid point:
  ``{metric}_t_first_max`` etc. are the ``[reduce]`` values of those names (samples), the
  ``..._refined`` ones are refined (parabolic; ``refine="kernel"`` re-evaluates the model for
  ~1e-10 in t), each with a ``method`` attribute.
- ``correlation(ds, a, b)`` / ``correlation_summary``: Pearson and Spearman along t.
- ``coincidence(ds, a, b, kind_a=, kind_b=)``: time between the extrema of two metrics.
- ``steerable(ds)`` / ``steerable_by_parameter(ds)``: where I_ab or I_ba < 2.
- ``claims(ds)`` / ``format_claims``: the paper's qualitative claims, tested per grid point.
- ``plots``: matplotlib (Agg) figures labelled from the attrs (imported on use); the data of
  the paper's figures comes from :mod:`qbfast.figures` (the interface level).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from . import accessor  # noqa: F401  (registers ds.qb; imports no analysis module)

if TYPE_CHECKING:  # the names below are imported on first use (module docstring)
    from ._io import open_store, select
    from .claims import CLAIMS, claims, format_claims
    from .correlation import coincidence, correlation, correlation_summary
    from .extrema import extrema, refine_with_kernel
    from .steering import steerable, steerable_by_parameter

#: Public name -> the submodule defining it. Imported on first use, so that ``import qbfast``
#: (which registers ``ds.qb``) imports neither dask (claims) nor the analysis kernels.
_EXPORTS = {
    "open_store": "_io", "select": "_io",
    "CLAIMS": "claims", "claims": "claims", "format_claims": "claims",
    "coincidence": "correlation", "correlation": "correlation",
    "correlation_summary": "correlation",
    "extrema": "extrema", "refine_with_kernel": "extrema",
    "steerable": "steering", "steerable_by_parameter": "steering",
}

__all__ = [
    "open_store", "select", "extrema", "refine_with_kernel", "correlation",
    "correlation_summary", "coincidence", "steerable", "steerable_by_parameter", "claims",
    "format_claims", "CLAIMS",
]


class _LazyPackage(types.ModuleType):
    """This package, whose public names are imported on first access. Three submodules share
    their name with the function they export (``claims``, ``correlation``, ``extrema``): the
    import system binds a submodule as an attribute of its package when it is first imported
    (by whichever module), and that binding is dropped here, so that ``qbfast.analysis.claims``
    always means the function, as it did when this package imported everything eagerly."""

    def __getattr__(self, name: str) -> Any:
        if name not in _EXPORTS:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{self.__name__}.{_EXPORTS[name]}"), name)
        super().__setattr__(name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_EXPORTS})


sys.modules[__name__].__class__ = _LazyPackage
