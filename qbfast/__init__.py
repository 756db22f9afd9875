"""qbfast: Numba-compiled, Dask-distributed sweeps of quantum-battery metrics.

Public API: :func:`sweep` (in-process), :func:`run` (a TOML spec on a Dask cluster into a Zarr
store), :data:`METRICS`, :data:`MODELS`.
"""

from . import analysis  # noqa: F401  (registers ds.qb; imports neither dask nor the analysis)
from ._version import __version__
from .api import sweep
from .params import METRICS, MODELS

__all__ = ["sweep", "run", "METRICS", "MODELS", "__version__"]


def __getattr__(name: str) -> object:  # lazy: ``qbfast.run`` pulls in zarr and distributed
    if name == "run":
        from .runner.driver import run

        return run
    raise AttributeError(f"module 'qbfast' has no attribute {name!r}")
