"""Pure Numba kernels on arrays: eigensolver, Hamiltonians, propagation, states, metrics.

Nothing here imports from the layers above (grid, dask, zarr, CLI).
"""

from ._cache import clear_stale_cache

clear_stale_cache()
