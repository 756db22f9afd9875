"""One-pass reductions along the last axis of a 2-D array (one series per row), used by the
sweep tasks' ``[reduce]`` (``qbfast.reduce``)."""

from __future__ import annotations

import numpy as np

from ._jit import kernel


@kernel
def extreme_index_rows(x, sign):
    """For each row of x (n, T): the index of the first largest ``sign * x`` (sign = +1:
    maximum, -1: minimum), NaN skipped; -1 where the row is all NaN."""
    n, n_t = x.shape
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        arg = -1
        best = 0.0
        for k in range(n_t):
            v = sign * x[i, k]
            if v == v and (arg < 0 or v > best):  # v == v: not NaN
                best = v
                arg = k
        out[i] = arg
    return out


@kernel
def first_peak_index_rows(x):
    """For each row of x (n, T): the first k in 1..T-2 with x[k-1] < x[k] >= x[k+1]
    (comparisons with NaN are false); -1 where there is none."""
    n, n_t = x.shape
    out = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        for k in range(1, n_t - 1):
            if x[i, k - 1] < x[i, k] and x[i, k] >= x[i, k + 1]:
                out[i] = k
                break
    return out
