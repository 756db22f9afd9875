"""qbfast: Numba-compiled, Dask-distributed sweeps of quantum-battery metrics.

Public API: :func:`sweep` (in-process), :data:`METRICS`, :data:`MODELS`.
"""

__version__ = "0.1.0"

from .params import METRICS, MODELS  # noqa: E402
from .api import sweep  # noqa: E402

__all__ = ["sweep", "METRICS", "MODELS", "__version__"]
