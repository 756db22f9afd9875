"""qbfast: Numba-compiled, Dask-distributed sweeps of quantum-battery metrics.

Public API: :func:`sweep` (in-process), :func:`run` (a TOML spec on a Dask cluster into a Zarr
store), :data:`METRICS`, :data:`MODELS`.
"""

from ._version import __version__
from .params import METRICS, MODELS  # noqa: E402
from .api import sweep  # noqa: E402
from . import analysis  # noqa: E402,F401  (registers the xarray accessor ds.qb)

__all__ = ["sweep", "run", "METRICS", "MODELS", "__version__"]


def __getattr__(name: str):  # lazy: ``qbfast.run`` pulls in zarr and distributed
    if name == "run":
        from .runner.driver import run

        return run
    raise AttributeError(f"module 'qbfast' has no attribute {name!r}")
