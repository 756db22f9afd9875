"""Command-line interface: ``qbfast run SPEC``, ``qbfast info STORE``, ``qbfast demo``.

User errors (a bad spec, a mismatched store, bad options) print one line
``qbfast: error: ...`` on stderr and exit with status 2; a failed run exits with 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    from .api import sweep

    t = np.linspace(0.0, 20.0, 2001)
    j2 = np.linspace(-1.0, 2.0, 61)
    n = [1, 2, 4, 7, 8]
    sweep("cavity", t[:2], n=n, J2=j2)  # compile / load the cache
    start = time.perf_counter()
    ds = sweep("cavity", t, n=n, J2=j2)
    wall = time.perf_counter() - start
    points = ds.energy.size
    print(f"cavity sweep: dims {dict(ds.sizes)}, {points} points x {len(ds.data_vars)} metrics "
          f"in {wall:.3f} s ({points / wall / 1e6:.1f} M points/s)")
    for name in ("energy", "ergotropy"):
        da = ds[name]
        where = da.argmax(...)
        loc = {k: float(da[k][int(v)]) for k, v in where.items()}
        print(f"max {name} = {float(da.max()):.7g} at {loc}")
    return 0


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _fmt_where(coords: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.6g}" for k, v in coords.items())


def _quiet_distributed() -> None:
    """The local cluster's nannies and scheduler live in this process: keep their INFO and
    shutdown WARNING lines off the terminal (errors still show)."""
    import logging

    for name in ("distributed", "distributed.nanny", "distributed.scheduler",
                 "distributed.worker", "distributed.core"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _run(args: argparse.Namespace) -> int:
    from .runner.driver import execute
    from .runner.spec import load_spec

    if args.scheduler is not None and (args.workers is not None
                                       or args.threads_per_worker is not None):
        raise _UserError("--workers/--threads-per-worker size a local cluster; they cannot be "
                         "combined with --scheduler")
    for name in ("workers", "threads_per_worker"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _UserError(f"--{name.replace('_', '-')}: expected an integer >= 1, got {value}")
    spec = load_spec(args.spec)
    _quiet_distributed()
    report = execute(spec, args.store, scheduler=args.scheduler, n_workers=args.workers,
                     threads_per_worker=args.threads_per_worker, overwrite=args.overwrite,
                     progress=sys.stderr)
    if report.status == "complete":
        print(f"qbfast: {report.store} is already complete ({report.chunks_total} chunks); "
              f"nothing to do (--overwrite recomputes it)")
        return 0
    sizes = ", ".join(f"{d}={s}" for d, s in zip(spec.dims, spec.shape))
    total = spec.n_evaluations
    done_before = report.chunks_total - report.chunks_computed
    lines = [
        ("store", str(report.store)),
        ("points", f"{total:,} ({sizes})"),
        ("chunks", f"{report.chunks_computed} computed"
                   + (f", {done_before} already done" if done_before else "")
                   + f", {report.chunks_total} total; {report.workers} workers x "
                     f"{report.numba_threads} numba threads"),
        ("on disk", f"{_fmt_bytes(report.bytes_on_disk)} "
                    f"({report.bytes_on_disk / total:.3g} bytes/point)"),
        ("wall time", f"{report.wall_s:.2f} s"),
        ("throughput", f"{report.points_per_s / 1e6:.2f} M points/s overall, "
                       f"{report.compute_points_per_s / 1e6:.2f} M points/s while computing "
                       f"({report.evaluations:,} points computed)"),
    ]
    for name, (value, where) in report.peaks.items():
        lines.append((f"max {name}", f"{value:.7g} at {_fmt_where(where)}"))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .store import info

    d = info(args.store)
    attrs = d["attrs"]
    print(f"store       {d['store']}")
    print(f"spec        {attrs.get('spec_name')} (hash {attrs.get('spec_hash', '')[:12]})")
    print(f"model       {attrs.get('model')}, protocol {attrs.get('protocol')}, "
          f"battery_hamiltonian {attrs.get('battery_hamiltonian')}")
    print(f"created     {attrs.get('created')} by qbfast {attrs.get('qbfast_version')}")
    print("dims        " + ", ".join(f"{k}={v}" for k, v in d["sizes"].items()))
    print(f"chunk shape {tuple(d['chunk_shape'])}")
    print(f"variables   {', '.join(d['variables'])} ({attrs.get('storage_dtype')})")
    state = "complete" if d["complete"] else "incomplete"
    print(f"chunks      {d['chunks_done']}/{d['chunks_total']} done ({state})")
    print(f"on disk     {_fmt_bytes(d['bytes'])}")
    print("spec text:")
    for line in str(attrs.get("spec", "")).rstrip().splitlines():
        print(f"  {line}")
    return 0


class _UserError(ValueError):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qbfast", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run or resume a sweep spec into a Zarr store",
                         description="Run (or resume) the sweep of a TOML spec on a Dask "
                                     "cluster, writing a chunked Zarr v3 store.")
    run.add_argument("spec", help="the sweep spec (TOML), e.g. sweeps/default.toml")
    run.add_argument("--store", help="the Zarr store (default: the spec's name + .zarr in "
                                     "the current directory)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="use a running Dask scheduler (e.g. tcp://host:8786) instead of a "
                          "local cluster")
    run.add_argument("--workers", type=int, metavar="N",
                     help="local cluster: worker processes (default: one per core)")
    run.add_argument("--threads-per-worker", type=int, metavar="K",
                     help="local cluster: Dask threads per worker (default 1); Numba gets "
                          "cores // (N * K) threads")
    run.add_argument("--overwrite", action="store_true",
                     help="delete an existing store at --store and start over")
    run.set_defaults(func=_run)
    info = sub.add_parser("info", help="describe a store: spec, dims, chunks done, size")
    info.add_argument("store")
    info.set_defaults(func=_info)
    demo = sub.add_parser("demo", help="run an in-process demo sweep and print a summary")
    demo.set_defaults(func=_demo)
    from .cli_analysis import add_commands  # extrema, corr, claims, plot, figures
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .runner.spec import SpecError

    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (_UserError, SpecError) as e:
        print(f"qbfast: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qbfast: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `qbfast info STORE | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # store and cluster errors: one line, no traceback
        from .runner.driver import RunError
        from .store import StoreError

        if isinstance(e, StoreError):
            print(f"qbfast: error: {e}", file=sys.stderr)
            return 2
        if isinstance(e, RunError):
            print(f"qbfast: error: {e}", file=sys.stderr)
            return 1
        if isinstance(e, (OSError, TimeoutError)) and getattr(args, "scheduler", None):
            print(f"qbfast: error: cannot use the scheduler {args.scheduler}: {e}",
                  file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
