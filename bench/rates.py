"""Kernel rates per core, the figures behind ``qbfast.runner.plan.RATES``:
``python -m bench.rates``.

    python -m bench.rates                 # every kernel, 1, 2, 4, 8 and 15 metrics (about 1 min)
    python -m bench.rates --kernels cavity --metrics 2

For each kernel of :attr:`qbfast.core.Grid.kernel` ("cavity", "field_drive", "field_full", and
the open ones of issue 18: "open_field_drive", "open_field_full", "open_cavity",
"open_cavity_thermal", called directly on the cases of ``bench.open.rate_case``) and each
number of metrics k (the first k of ``qbfast.params.METRIC_LIST``: 1 = energy, 2 = energy and
ergotropy, ...), on ONE Numba thread, it times

- ``series``: :meth:`Grid.compute` into a reused float64 buffer (what a task that stores the
  series computes, before any cast, compression or write);
- ``reduced``: :func:`qbfast.reduce.reduce_grid` with stats max, argmax, first_max (what a
  [reduce]-only task computes: the series is never held);

and prints points per CPU-second (point = one (parameter set, time) evaluation; the process's
CPU time, so that time slices taken by other jobs on a shared machine are not counted; best of
a few repeats of at least ``--min-time`` CPU seconds each, after a warm-up call that loads the
cached kernels) and, last, the lines to paste into ``RATES`` (rounded to 2 significant
digits). The field "full" kernel's cost per evaluation grows with the Magnus steps between
output times: it is measured with 400 times in [0, 20] and A, B in [0, 2], g = 0.5 (about 10
default steps per output interval). Not a test: caches and memory bandwidth shared with other
jobs still move the figures (the load average is printed on the first line).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from qbfast.core import Grid
from qbfast.params import METRIC_LIST
from qbfast.reduce import reduce_grid

METRIC_NAMES = [m.name for m in METRIC_LIST]
STATS = ("max", "argmax", "first_max")
CLOSED_KERNELS = ("cavity", "field_drive", "field_full")
#: The open kernels (issue 18), timed by calling them directly (``bench.open.rate_case``: the
#: cases behind their RATES entries) until ``Grid`` routes to them.
OPEN_KERNELS = ("open_field_drive", "open_field_full", "open_cavity",
                "open_cavity_thermal")
KERNELS = CLOSED_KERNELS + OPEN_KERNELS
#: (parameter sets, times in [0, 20]) of each open kernel's timing grid: the 1000 times of the
#: ``bench.kernels`` open rows, since the cost per evaluation grows with the span between
#: output times (Taylor substeps; the cavity's step matrix is built once per point)
OPEN_GRIDS = {"open_field_drive": (32, 1000), "open_field_full": (32, 1000),
              "open_cavity": (16, 1000), "open_cavity_thermal": (2, 1000)}
METRIC_COUNTS = (1, 2, 4, 8, 15)


def grid_for(kernel: str, n_metrics: int, n_points: int, n_t: int) -> Grid:
    """About ``n_points`` parameter sets of ``kernel``'s model, ``n_t`` times in [0, 20]."""
    metrics = METRIC_NAMES[:n_metrics]
    t = np.linspace(0.0, 20.0, n_t)
    if kernel == "cavity":
        n_j2 = max(1, n_points // 8)
        return Grid("cavity", t, metrics=metrics, n=list(range(1, 9)),
                    J2=np.linspace(-1.0, 2.0, n_j2), J1=0.75)
    n_a = max(1, math.isqrt(n_points))
    swept: dict[str, Any] = {"A": np.linspace(0.0, 2.0, n_a),
                             "B": np.linspace(0.0, 2.0, max(1, n_points // n_a))}
    protocol = "drive" if kernel == "field_drive" else "full"
    return Grid("field", t, protocol=protocol, metrics=metrics, g=0.5, **swept)


def best_rate(fn: Callable[[], Any], evaluations: int, min_time: float, repeats: int) -> float:
    """Evaluations per CPU-second of this process: the best of ``repeats`` timings, each of at
    least ``min_time`` CPU seconds (calls repeated), after one warm-up call. CPU time, not wall
    time: on a machine shared with other jobs, the time slices this process does not get are
    not counted (a core-second is what the planner budgets)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        calls, start = 0, time.process_time()
        while True:
            fn()
            calls += 1
            elapsed = time.process_time() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return evaluations / best


def measure_open(kernel: str, n_metrics: int, min_time: float, repeats: int) -> float:
    """Evaluations per second of an open kernel computing the first ``n_metrics`` metrics into
    a reused buffer (the series), on the current number of Numba threads."""
    from bench.open import rate_case

    case = rate_case(kernel)
    n_points, n_t = OPEN_GRIDS[kernel]
    table = case.table(n_points)
    t = np.linspace(0.0, 20.0, n_t)
    slot = np.full(len(METRIC_NAMES), -1, dtype=np.int64)
    slot[:n_metrics] = np.arange(n_metrics)
    out = np.zeros((n_metrics, table.shape[0], n_t))
    return best_rate(lambda: case.run(table, t, slot, out), table.shape[0] * n_t, min_time,
                     repeats)


def measure(kernel: str, n_metrics: int, min_time: float, repeats: int) -> tuple[float, float]:
    """(series, reduced) evaluations per second on the current number of Numba threads. An
    open kernel is not routed by ``Grid`` (nor by ``reduce_grid``) yet: its series rate stands
    for both (a reduction adds little to these kernels' propagation: closed field_full
    measures the same for both)."""
    if kernel in OPEN_KERNELS:
        series = measure_open(kernel, n_metrics, min_time, repeats)
        return series, series
    # the ODE kernel is ~50x slower: a smaller grid keeps each call short
    n_points, n_t = (256, 400) if kernel == "field_full" else (2048, 1000)
    grid = grid_for(kernel, n_metrics, n_points, n_t)
    evaluations = grid.n_points * grid.t.size
    out = np.zeros((n_metrics, grid.n_points, grid.t.size))  # touched: no page faults timed
    series = best_rate(lambda: grid.compute(out), evaluations, min_time, repeats)
    reduced = best_rate(lambda: reduce_grid(grid, STATS), evaluations, min_time, repeats)
    return series, reduced


def _round2(x: float) -> float:
    return float(f"{x:.2g}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.rates", description=__doc__.split("\n")[0])
    p.add_argument("--kernels", nargs="+", choices=KERNELS, default=list(KERNELS))
    p.add_argument("--metrics", nargs="+", type=int, default=list(METRIC_COUNTS),
                   help="numbers of metrics (the first k of METRIC_LIST)")
    p.add_argument("--min-time", type=float, default=0.2, help="seconds per timing")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="Numba threads (rates are per core)")
    args = p.parse_args(argv)
    numba.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bench.rates: {args.threads} Numba thread(s); {os.cpu_count()} CPUs; "
          f"load average {load:.2f} at the start")
    print(f"{'kernel':<20} {'metrics':>7} {'series M pt/s':>14} {'reduced M pt/s':>15}")
    table: dict[tuple[str, bool], dict[int, float]] = {}
    for kernel in args.kernels:
        for k in args.metrics:
            series, reduced = measure(kernel, k, args.min_time, args.repeats)
            series /= args.threads
            reduced /= args.threads
            table.setdefault((kernel, True), {})[k] = series
            table.setdefault((kernel, False), {})[k] = reduced
            print(f"{kernel:<20} {k:>7} {series / 1e6:>14.2f} {reduced / 1e6:>15.2f}",
                  flush=True)
    print("\nRATES = {  # evaluations/s per core: (kernel, keep_series) -> {n_metrics: rate}")
    for (kernel, keep), rates in table.items():
        body = ", ".join(f"{k}: {_round2(r):.1e}" for k, r in rates.items())
        print(f"    ({kernel!r}, {keep}): {{{body}}},")
    print("}")


if __name__ == "__main__":
    main()
