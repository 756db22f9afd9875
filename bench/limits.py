"""What limits the in-memory kernels: ``python -m bench.limits``.

For the cavity kernel and the field "drive" kernel (all 15 metrics, float64, the main grids of
``bench.kernels``, same parameters: 1024 parameter sets x 2048 times, a 252 MB output), with
one thread and with all threads, it prints points per second of

- ``kernel``: the grid kernel of ``qbfast.kernels.grid`` writing the large output (what
  ``qbfast.sweep(..., out=)`` runs, without the API's validation and Dataset construction);
- ``compute only``: the same kernel on a grid of 16 parameter sets, called repeatedly: its
  3.9 MB output stays in the (L3) cache, so this is arithmetic, logarithms and phases without
  memory traffic (calls of 0.2-0.5 ms, so the cost of starting the threads is a few %);
- ``store ceiling``: a kernel that only stores, into the same 15 output streams, in the same
  blocks of ``T_BLOCK`` times as the real kernels (memory bandwidth for this write pattern);
- ``NT ceiling``: the same with non-temporal stores (whole 64-byte lines written to memory
  without being read first): the most any kernel writing this output could reach. (Inside
  the kernels such stores gained nothing: they stall the core instead of overlapping its
  arithmetic; see the README.)
- ``no overlap``: 1 / (1/compute + 1/store), what the kernel would reach if its stores did not
  overlap its arithmetic at all.

Variants are timed in interleaved rounds (median of ``--repeats``), so that load from other
processes hits all of them alike. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from bench.baselines import parameter_table
from bench.kernels import cavity_params, field_params
from qbfast.kernels._jit import _OPTIONS
from qbfast.kernels.grid import ROUTE_AUTO, T_BLOCK, cavity_grid, field_drive_grid
from qbfast.params import N_METRICS

_opts = {k: v for k, v in _OPTIONS.items() if k != "cache"}


@intrinsic
def _stream_line(typingctx, dst, i, src, j):
    """dst[i:i + 8] = src[j:j + 8] (float64) with one non-temporal vector store; dst + i must be
    64-byte aligned."""
    sig = types.void(dst, i, src, j)

    def codegen(context, builder, signature, args):
        vec = ir.VectorType(ir.DoubleType(), 8)
        d = context.make_array(signature.args[0])(context, builder, args[0])
        s = context.make_array(signature.args[2])(context, builder, args[2])
        value = builder.load(builder.bitcast(builder.gep(s.data, [args[3]]), vec.as_pointer()),
                             align=8)
        store = builder.store(value, builder.bitcast(builder.gep(d.data, [args[1]]),
                                                     vec.as_pointer()), align=64)
        store.set_metadata("nontemporal",
                           builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _fence(typingctx):
    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@numba.njit(parallel=True, **_opts)
def store_only(out, t, n_threads, non_temporal=False):
    """out[m, p, :] = t + m for every metric m and point p, in the kernels' pattern: jobs of
    (point, block of T_BLOCK times) dealt round-robin to the threads, each job storing its
    block of every metric row. ``non_temporal``: each block row is computed into a per-thread
    row first, then written with ordinary stores up to its first 64-byte boundary, whole lines
    non-temporally, ordinary stores for the rest."""
    n_points = out.shape[1]
    n_t = t.shape[0]
    n_blocks = (n_t + T_BLOCK - 1) // T_BLOCK
    n_jobs = n_points * n_blocks
    n_workers = max(1, min(n_threads, n_jobs))
    for worker in numba.prange(n_workers):
        stage = np.empty(T_BLOCK)
        for job in range(worker, n_jobs, n_workers):
            p = job // n_blocks
            start = (job % n_blocks) * T_BLOCK
            n = min(T_BLOCK, n_t - start)
            tb = t[start:start + n]
            for m in range(out.shape[0]):
                o = out[m, p, start:start + n]
                if not non_temporal:
                    for j in range(n):
                        o[j] = tb[j] + m
                    continue
                for j in range(n):
                    stage[j] = tb[j] + m
                head = min(n, ((-o.ctypes.data) % 64) // 8)
                for j in range(head):
                    o[j] = stage[j]
                j = head
                while j + 8 <= n:
                    _stream_line(o, j, stage, j)
                    j += 8
                for k in range(j, n):
                    o[k] = stage[k]
        if non_temporal:
            _fence()


def _table(model: str, n_points: int) -> np.ndarray:
    """The parameter table of ``bench.kernels``' grid of about ``n_points`` sets."""
    make = cavity_params if model == "cavity" else field_params
    return parameter_table("cavity" if model == "cavity" else "field", make(n_points))[0]


def _runner(model: str, table: np.ndarray, t: np.ndarray, threads: int) -> Callable[[], None]:
    slot = np.arange(N_METRICS, dtype=np.int64)
    out = np.empty((N_METRICS, table.shape[0], t.size))
    if model == "cavity":
        return lambda: cavity_grid(table, t, False, slot, out, threads, ROUTE_AUTO)
    return lambda: field_drive_grid(table, t, False, slot, out, threads, ROUTE_AUTO)


def _rates(fns: dict[str, tuple[Callable[[], None], int]], repeats: int) -> dict[str, float]:
    """Median points/s of each (callable, points per call), timed in interleaved rounds."""
    for fn, _ in fns.values():
        fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, (fn, points) in fns.items():
            start = time.perf_counter()
            fn()
            samples[key].append(points / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in samples.items()}


def measure(model: str, n_points: int, n_t: int, threads: int, repeats: int) -> dict[str, float]:
    numba.set_num_threads(threads)
    t = np.linspace(0.0, 20.0 if model == "cavity" else 10.0, n_t)
    big = _table(model, n_points)
    small = _table(model, 16)
    calls = max(1, big.shape[0] // small.shape[0])
    small_fn = _runner(model, small, t, threads)

    def compute_only() -> None:
        for _ in range(calls):
            small_fn()

    store_out = np.empty((N_METRICS, big.shape[0], n_t))
    rates = _rates({
        "kernel": (_runner(model, big, t, threads), big.shape[0] * n_t),
        "compute only": (compute_only, calls * small.shape[0] * n_t),
        "store ceiling": (lambda: store_only(store_out, t, threads), big.shape[0] * n_t),
        "NT ceiling": (lambda: store_only(store_out, t, threads, True), big.shape[0] * n_t),
    }, repeats)
    rates["no overlap"] = 1.0 / (1.0 / rates["compute only"] + 1.0 / rates["store ceiling"])
    return rates


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__.split("\n")[0])
    p.add_argument("--points", type=int, default=1024, help="parameter sets of the large grid")
    p.add_argument("--times", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--models", nargs="+", default=["cavity", "drive"], choices=["cavity", "drive"])
    args = p.parse_args(argv)
    cores = numba.get_num_threads()  # all threads: nothing has set fewer yet
    print(f"qbfast kernel limits (python -m bench.limits): {args.points} x {args.times} points, "
          f"15 float64 metrics ({15 * 8} bytes per point), T_BLOCK = {T_BLOCK}, median of "
          f"{args.repeats} interleaved rounds")
    print(f"{'model':8s} {'threads':>7s} {'kernel':>12s} {'compute only':>13s} "
          f"{'store ceiling':>14s} {'no overlap':>11s} {'NT ceiling':>12s}   "
          f"(M points/s; ns per point per thread)")
    rows = []
    for model in args.models:
        for threads in sorted({1, cores}):
            r = measure(model, args.points, args.times, threads, args.repeats)
            rows.append({"model": model, "threads": threads, **r})
            cells = [f"{r[k] / 1e6:7.1f} ({threads / r[k] * 1e9:4.1f})"
                     for k in ("kernel", "compute only", "store ceiling", "no overlap",
                               "NT ceiling")]
            print(f"{model:8s} {threads:7d} {cells[0]:>12s} {cells[1]:>13s} {cells[2]:>14s} "
                  f"{cells[3]:>11s} {cells[4]:>12s}")
    # -> bench/results/limits.json, rendered on docs/performance.md
    from bench._results import record

    record("limits", argv, rows, notes=f"points/s, 15 float64 metrics, {args.points} parameter "
           f"sets x {args.times} times, median of {args.repeats} interleaved rounds")


if __name__ == "__main__":
    main()
