"""Reductions along t (the last axis), used by the sweep tasks' ``[reduce]`` (``qbfast.reduce``):
one-pass loops over the rows of a 2-D array, and :func:`reduce_rows`, which reduces a block of
kernel output (M metrics, R points, T times) in place of storing it.

Conventions everywhere: NaN values are skipped, ties go to the earliest time, and an index of
-1 means "none" (an all-NaN row; no interior local maximum).
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import kernel, parallel_kernel

#: Rows of the ``wanted``/``index``/``value`` arrays of :func:`reduce_rows`.
RED_MAX = 0
RED_MIN = 1
RED_FIRST_MAX = 2
N_REDUCTIONS = 3


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


@kernel
def first_extreme_index(x, sign, lanes):
    """Index of the first largest ``sign * x[k]`` of the 1-D ``x`` (sign = +1: maximum, -1:
    minimum), NaN skipped; -1 if ``x`` is all NaN or empty. The extreme is found first with 8
    independent running extremes (scratch ``lanes``, 8 float64), which the CPU overlaps
    (10x the speed of :func:`extreme_index_rows`'s one-by-one loop), then the first k that
    attains it; its sign (for -0.0 against 0.0) is that of ``x[k]``, as in NumPy's argmax."""
    n = x.shape[0]
    for lane in range(8):
        lanes[lane] = -np.inf
    k0 = 0
    while k0 + 8 <= n:
        for lane in range(8):
            v = sign * x[k0 + lane]
            lanes[lane] = v if v > lanes[lane] else lanes[lane]  # NaN: False, skipped
        k0 += 8
    best = -np.inf
    for lane in range(8):
        best = lanes[lane] if lanes[lane] > best else best
    for k in range(k0, n):
        v = sign * x[k]
        best = v if v > best else best
    for k in range(n):
        if sign * x[k] == best:
            return k
    return -1


@kernel
def first_peak_index(x):
    """The first k in 1..T-2 with x[k-1] < x[k] >= x[k+1] of the 1-D ``x`` (comparisons with
    NaN are false); -1 where there is none."""
    for k in range(1, x.shape[0] - 1):
        if x[k - 1] < x[k] and x[k] >= x[k + 1]:
            return k
    return -1


@parallel_kernel
def reduce_rows(series, wanted, row0, index, value, n_threads):
    """Reduce a block of series along t: for metric m, point r of ``series`` (M, R, T) and each
    s with ``wanted[m, s]`` (s = RED_MAX: first maximum, RED_MIN: first minimum,
    RED_FIRST_MAX: first interior local maximum), ``index[s, m, row0 + r]`` = its time index
    (-1: none) and ``value[s, m, row0 + r]`` = the series there (NaN for none). Entries not
    wanted are left as they are."""
    n_metrics, n_rows, _ = series.shape
    n_workers = max(1, min(n_threads, n_rows))
    for worker in numba.prange(n_workers):
        lanes = np.empty(8)
        for r in range(worker, n_rows, n_workers):
            for m in range(n_metrics):
                x = series[m, r]
                for s in range(N_REDUCTIONS):
                    if not wanted[m, s]:
                        continue
                    if s == RED_MAX:
                        k = first_extreme_index(x, 1.0, lanes)
                    elif s == RED_MIN:
                        k = first_extreme_index(x, -1.0, lanes)
                    else:
                        k = first_peak_index(x)
                    index[s, m, row0 + r] = k
                    value[s, m, row0 + r] = x[k] if k >= 0 else np.nan
