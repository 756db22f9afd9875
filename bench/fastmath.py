"""Vectorizable log2 and sin/cos against libm inside numba loops: ``python -m bench.fastmath``.

Prints nanoseconds per element (one thread, 4 M elements, best of 5) for
qbfast.kernels.fastmath.log2 vs np.log2 and fastmath.sin_cos vs np.sin + np.cos.
"""

from __future__ import annotations

import time

import numba
import numpy as np

from qbfast.kernels._jit import _OPTIONS
from qbfast.kernels.fastmath import log2, sin_cos

_opts = {k: v for k, v in _OPTIONS.items() if k != "cache"}


@numba.njit(**_opts)
def _fast_log(x, out):
    for i in range(x.size):
        out[i] = log2(x[i])


@numba.njit(**_opts)
def _libm_log(x, out):
    for i in range(x.size):
        out[i] = np.log2(x[i])


@numba.njit(**_opts)
def _fast_sc(x, s, c):
    for i in range(x.size):
        s[i], c[i] = sin_cos(x[i])


@numba.njit(**_opts)
def _libm_sc(x, s, c):
    for i in range(x.size):
        s[i] = np.sin(x[i])
        c[i] = np.cos(x[i])


def _best(fn, *args, repeats: int = 5) -> float:
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    rng = np.random.default_rng(0)
    n = 4_000_000
    x = rng.uniform(1e-3, 4.0, n)
    y = rng.uniform(-100.0, 100.0, n)
    out, s, c = np.empty(n), np.empty(n), np.empty(n)
    rows = [
        ("log2 (fastmath)", _best(_fast_log, x, out)),
        ("np.log2 (libm)", _best(_libm_log, x, out)),
        ("sin_cos (fastmath)", _best(_fast_sc, y, s, c)),
        ("np.sin + np.cos (libm)", _best(_libm_sc, y, s, c)),
    ]
    print(f"numba {numba.__version__}, 1 thread, {n:,} elements, best of 5")
    for name, seconds in rows:
        print(f"{name:24s} {seconds / n * 1e9:6.2f} ns/element")
    # -> bench/results/fastmath.json, rendered on docs/performance.md
    from bench._results import record

    record("fastmath", argv, [{"function": name, "ns_per_element": sec / n * 1e9}
                              for name, sec in rows],
           notes=f"one thread, {n:,} elements, best of 5")


if __name__ == "__main__":
    main()
