"""Numba kernels of the analysis: one time series per row, time along the last axis.

Array level only (no xarray, no dask): every kernel takes 2-D arrays of shape (n, T), one row
per grid point, and the times t of shape (T,), and returns an array of shape (n, k) with k
numbers per row. The xarray layer (``extrema.py``, ``correlation.py``) reshapes, labels and
applies them chunk by chunk with ``xr.apply_ufunc(..., dask="parallelized")``.

Conventions shared by every kernel:

- NaN samples are skipped (efficiency and power are NaN where they are undefined); a step
  between two samples counts only where both are finite.
- A *local* extremum is interior: a rise followed by a fall (for a maximum), with any number
  of flat steps between them. A step is flat when ``|y[k+1] - y[k]| <= tol``, where
  ``tol = atol + rtol * max|y|`` per row, so that rounding noise on an exactly flat stretch
  (entanglement 0, purity 1) is not reported as a string of extrema. A flat top is reported as
  the interval [lo, hi] of its first and last samples; a sharp top is refined between grid
  times with the vertex of the parabola through it and its two neighbours.
- Global extrema start from the sample of the one argmax rule,
  :func:`qbfast.kernels.reductions.first_extreme_index` (the ``[reduce]`` rule: first
  largest, NaN skipped), then are refined the same way when both neighbours are finite.

Everything these kernels return is *refined* and is named with the ``_refined`` suffix by the
xarray layer; the unrefined sample values come from :mod:`qbfast.reduce` itself.
"""

from __future__ import annotations

import numpy as np

from ..kernels._jit import kernel
from ..kernels.reductions import first_extreme_index

#: The extrema of a series along t, in column order. Unsuffixed, each means what the
#: ``[reduce]`` variable of that name means (:mod:`qbfast.kernels.reductions`); ``first_min`` /
#: ``t_first_min`` are ``first_max`` / ``t_first_max`` of ``-y`` (value negated back).
EXTREMA_SUFFIXES = ("max", "t_max", "min", "t_min",
                    "first_max", "t_first_max", "first_min", "t_first_min")
#: Suffix of every refined extremum (its own name: never the ``[reduce]`` value).
REFINED = "_refined"
#: Column order of ``refined_extrema_rows``.
REFINED_COLUMNS = tuple(f"{s}{REFINED}" for s in EXTREMA_SUFFIXES)
# Column order of ``coincidence_rows``.
COINCIDENCE_COLUMNS = ("t_a", "t_b", "dt", "dt_worst", "count_a")
# Column order of ``correlation_rows``.
CORRELATION_COLUMNS = ("pearson", "spearman", "count")


@kernel
def _tolerance(y, rtol, atol):
    """atol + rtol * max|y| over the finite samples of one row."""
    big = 0.0
    for k in range(y.size):
        v = abs(y[k])
        if np.isfinite(v) and v > big:
            big = v
    return atol + rtol * big


@kernel
def _vertex(t0, t1, t2, y0, y1, y2):
    """(time, value) of the vertex of the parabola through three points, x1 the middle one.

    Falls back to (t1, y1) when the points are collinear; the vertex is clamped to [t0, t2].
    """
    d0 = t0 - t1
    d2 = t2 - t1
    s0 = (y0 - y1) / d0
    s2 = (y2 - y1) / d2
    c = (s2 - s0) / (d2 - d0)
    if c == 0.0 or not np.isfinite(c):
        return t1, y1
    b = s0 - c * d0
    u = -b / (2.0 * c)
    if u < d0:
        u = d0
    elif u > d2:
        u = d2
    return t1 + u, y1 + b * u + c * u * u


@kernel
def _refined_at(y, t, i):
    """The sample i refined by its parabola where both neighbours are finite and i is interior."""
    if i <= 0 or i >= y.size - 1 or not (np.isfinite(y[i - 1]) and np.isfinite(y[i + 1])):
        return t[i], y[i]
    return _vertex(t[i - 1], t[i], t[i + 1], y[i - 1], y[i], y[i + 1])


@kernel
def local_extrema(y, t, sign, tol, lo, hi, val):
    """All interior local maxima of ``sign * y`` (sign = +1: maxima, -1: minima), in time order.

    Writes extremum j as the time interval [lo[j], hi[j]] (equal for a sharp, refined top) and
    its value val[j] (of y, not sign * y); returns how many it found. lo, hi, val need y.size
    slots.
    """
    count = 0
    rising = False
    start = 0
    for k in range(y.size - 1):
        a = sign * y[k]
        b = sign * y[k + 1]
        if not (np.isfinite(a) and np.isfinite(b)):
            rising = False
            continue
        d = b - a
        if d > tol:
            rising = True
            start = k + 1
        elif d < -tol:
            if rising:
                if start == k:
                    tv, yv = _vertex(t[k - 1], t[k], t[k + 1], y[k - 1], y[k], y[k + 1])
                    lo[count] = tv
                    hi[count] = tv
                    val[count] = yv
                else:
                    best = sign * y[start]
                    for m in range(start + 1, k + 1):
                        if sign * y[m] > best:
                            best = sign * y[m]
                    lo[count] = t[start]
                    hi[count] = t[k]
                    val[count] = sign * best
                count += 1
            rising = False
    return count


@kernel
def refined_extrema_rows(y, t, rtol, atol):
    """Refined extrema along t of every row: y (n, T), t (T,) -> (n, 8), columns
    ``REFINED_COLUMNS`` (the names of ``EXTREMA_SUFFIXES`` with ``_refined``).

    Global maximum and minimum: the sample the ``[reduce]`` rule picks
    (:func:`qbfast.kernels.reductions.first_extreme_index`: the first largest, NaN skipped),
    then the vertex of the parabola through it and its two neighbours where both are finite
    and the vertex improves on the sample. First local maximum and minimum: the first top of
    :func:`local_extrema` (flat steps within ``atol + rtol * max|y|`` merged; value and time of
    the vertex of a sharp top, the middle of a flat one). NaN where a row has none.
    """
    n = y.shape[0]
    size = y.shape[1]
    out = np.full((n, 8), np.nan)
    lo = np.empty(size)
    hi = np.empty(size)
    val = np.empty(size)
    lanes = np.empty(8)
    for r in range(n):
        row = y[r]
        for j, sign in enumerate((1.0, -1.0)):
            i = first_extreme_index(row, sign, lanes)
            if i >= 0:
                tv, yv = _refined_at(row, t, i)
                # the parabola may only improve on the sample, never undo it
                if not sign * yv >= sign * row[i]:
                    tv, yv = t[i], row[i]
                out[r, 2 * j] = yv
                out[r, 2 * j + 1] = tv
        tol = _tolerance(row, rtol, atol)
        for j, sign in enumerate((1.0, -1.0)):
            if local_extrema(row, t, sign, tol, lo, hi, val) > 0:
                out[r, 4 + 2 * j] = val[0]
                out[r, 5 + 2 * j] = 0.5 * (lo[0] + hi[0])
    return out


@kernel
def _flat(y, tol):
    """True when every finite sample of the row lies within tol of every other."""
    lo = np.inf
    hi = -np.inf
    for k in range(y.size):
        if np.isfinite(y[k]):
            lo = min(lo, y[k])
            hi = max(hi, y[k])
    return hi - lo <= tol


@kernel
def coincidence_rows(ya, yb, t, sign_a, sign_b, rtol, atol):
    """How far the local extrema of b lie from those of a, per row -> (n, 5).

    Columns ``COINCIDENCE_COLUMNS``: t_a, time of a's first local extremum (sign_a = +1 maximum,
    -1 minimum); t_b, the time of b's local extremum of kind sign_b nearest to t_a (the nearest
    point of a flat top); dt = t_b - t_a; dt_worst, the largest |dt| over every local extremum
    of a in the row; count_a, how many a has. A row where b is flat (all finite samples within
    tol) is at its extremum everywhere: dt = 0. NaN where a has no local extremum or b none.
    """
    n = ya.shape[0]
    size = ya.shape[1]
    out = np.full((n, 5), np.nan)
    alo = np.empty(size)
    ahi = np.empty(size)
    aval = np.empty(size)
    blo = np.empty(size)
    bhi = np.empty(size)
    bval = np.empty(size)
    for r in range(n):
        na = local_extrema(ya[r], t, sign_a, _tolerance(ya[r], rtol, atol), alo, ahi, aval)
        out[r, 4] = na
        if na == 0:
            continue
        tolb = _tolerance(yb[r], rtol, atol)
        flat = _flat(yb[r], tolb)
        nb = 0 if flat else local_extrema(yb[r], t, sign_b, tolb, blo, bhi, bval)
        worst = 0.0
        for j in range(na):
            ta = 0.5 * (alo[j] + ahi[j])
            if flat:
                tb = ta
            elif nb == 0:
                tb = np.nan
            else:
                tb = np.nan
                best = np.inf
                for m in range(nb):
                    near = min(max(ta, blo[m]), bhi[m])
                    if abs(near - ta) < best:
                        best = abs(near - ta)
                        tb = near
            if j == 0:
                out[r, 0] = ta
                out[r, 1] = tb
                out[r, 2] = tb - ta
            d = abs(tb - ta)
            if not d <= worst:  # NaN propagates
                worst = d
        out[r, 3] = worst
    return out


@kernel
def _ranks(x):
    """Ranks 1..m of x, ties get the mean of their ranks (as scipy.stats.rankdata)."""
    m = x.size
    order = np.argsort(x)
    ranks = np.empty(m)
    i = 0
    while i < m:
        j = i
        while j + 1 < m and x[order[j + 1]] == x[order[i]]:
            j += 1
        mean = 0.5 * (i + j) + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = mean
        i = j + 1
    return ranks


@kernel
def _pearson(x, y):
    """Pearson correlation of two equal-length samples; NaN for fewer than 2 or no spread."""
    m = x.size
    if m < 2:
        return np.nan
    mx = x.mean()
    my = y.mean()
    sxy = 0.0
    sxx = 0.0
    syy = 0.0
    for k in range(m):
        dx = x[k] - mx
        dy = y[k] - my
        sxy += dx * dy
        sxx += dx * dx
        syy += dy * dy
    if sxx == 0.0 or syy == 0.0:
        return np.nan
    r = sxy / np.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


@kernel
def correlation_rows(x, y, t):
    """Pearson and Spearman correlation along t of every row pair -> (n, 3).

    Columns ``CORRELATION_COLUMNS``; only times where both x and y are finite count (t is
    not used: the rank and moment statistics ignore the spacing of the samples).
    """
    n = x.shape[0]
    size = x.shape[1]
    out = np.full((n, 3), np.nan)
    xs = np.empty(size)
    ys = np.empty(size)
    for r in range(n):
        m = 0
        for k in range(size):
            if np.isfinite(x[r, k]) and np.isfinite(y[r, k]):
                xs[m] = x[r, k]
                ys[m] = y[r, k]
                m += 1
        out[r, 2] = m
        if m < 2:
            continue
        out[r, 0] = _pearson(xs[:m], ys[:m])
        out[r, 1] = _pearson(_ranks(xs[:m]), _ranks(ys[:m]))
    return out
