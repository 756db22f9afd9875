"""The one place that fixes numba's compile options for every kernel.

- ``cache=True``: compiled code is cached on disk, so only the first import compiles.
- ``error_model="numpy"``: division by zero gives inf/NaN instead of raising, so loops stay
  branch-free and vectorizable.
- ``fastmath={"contract"}``: allow fused multiply-add, but keep IEEE NaN/inf semantics
  (NaN is a legitimate output: efficiency and power).
"""

from __future__ import annotations

import numba

_OPTIONS = dict(cache=True, error_model="numpy", fastmath={"contract"}, nogil=True)


def kernel(fn):
    """Compile a scalar/array helper kernel (inlined into its callers by LLVM)."""
    return numba.njit(**_OPTIONS)(fn)


def parallel_kernel(fn):
    """Compile a top-level kernel that runs ``numba.prange`` loops on all threads."""
    return numba.njit(parallel=True, **_OPTIONS)(fn)
