"""Analysis of qbfast datasets and stores: extrema, correlations, the paper's claims, figures.

Everything works on a Dataset from ``qbfast.sweep`` or lazily on one opened from a Zarr store
(``open_store`` / ``xr.open_zarr``): per-point reductions along t run chunk by chunk with
dask, so a store larger than memory is never loaded whole. Importing this package registers
the ``ds.qb`` accessor.

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

from . import accessor  # noqa: F401  (registers ds.qb)
from ._io import open_store, select
from .claims import CLAIMS, claims, format_claims
from .correlation import coincidence, correlation, correlation_summary
from .extrema import extrema, refine_with_kernel
from .steering import steerable, steerable_by_parameter

__all__ = [
    "open_store", "select", "extrema", "refine_with_kernel", "correlation",
    "correlation_summary", "coincidence", "steerable", "steerable_by_parameter", "claims",
    "format_claims", "CLAIMS",
]
