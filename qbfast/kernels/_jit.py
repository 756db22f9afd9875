"""The one place that fixes numba's compile options for every kernel.

- ``cache=True``: compiled code is cached on disk, so only the first import compiles.
- ``error_model="numpy"``: division by zero gives inf/NaN instead of raising, so loops stay
  branch-free and vectorizable.
- no ``fastmath``: strict IEEE arithmetic. NaN is a legitimate output (efficiency, power), and
  without floating-point contraction the results are bit-for-bit reproducible: with
  ``fastmath={"contract"}`` a freshly compiled kernel and the same kernel loaded from the cache
  fused different multiply-adds and differed in the last bit, which breaks the sweep engine's
  promise that a resumed store is identical to an uninterrupted one. Where a fused
  multiply-add pays (the polynomials of ``log2``/``sin_cos``, the cavity amplitudes), it is
  written explicitly with :func:`.fastmath.fma`: one ``llvm.fma`` in every compilation.
"""

from __future__ import annotations

from typing import Any

import numba

_OPTIONS: dict[str, Any] = dict(cache=True, error_model="numpy", nogil=True)


def kernel(fn):
    """Compile a scalar helper; LLVM inlines it into its callers."""
    return numba.njit(**_OPTIONS)(fn)


def leaf(fn):
    """Compile a tiny, hot scalar helper (log2, x log x, sin/cos) that is inlined at numba-IR
    level (``inline="always"``): LLVM's own inliner stops inlining once a caller holds several
    copies, leaving an opaque call that blocks vectorization of the loop."""
    return numba.njit(inline="always", **_OPTIONS)(fn)


def routine(fn):
    """Compile a larger helper (eigensolver, integrator step) called as a function."""
    return numba.njit(**_OPTIONS)(fn)


def parallel_kernel(fn):
    """Compile a top-level kernel that runs ``numba.prange`` loops on all threads."""
    return numba.njit(parallel=True, **_OPTIONS)(fn)
