"""Command-line interface: ``qbfast run SPEC``, ``qbfast info STORE``, ``qbfast demo``.

User and environment errors (a bad spec, a mismatched store, bad options, an unreachable
scheduler, a file system error such as a read-only or full disk) print one line
``qbfast: error: ...`` on stderr and exit with status 2; a failed run exits with 1, an
unexpected error (a bug) with one line and status 1. ``--debug`` (anywhere on the command line)
shows the traceback of any error instead.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

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


def _check_run_options(args: argparse.Namespace) -> None:
    """The options of ``run`` that need no spec: one :class:`_UserError` (or ClusterError)
    line, before anything is started (the spec read, its [cluster] table applied)."""
    import math

    from .runner.cluster import available_cores, check_address

    if args.scheduler is not None and (args.workers is not None
                                       or args.threads_per_worker is not None):
        raise _UserError("--workers/--threads-per-worker size a local cluster; they cannot be "
                         "combined with --scheduler")
    for name in ("workers", "threads_per_worker"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _UserError(f"--{name.replace('_', '-')}: expected an integer >= 1, got {value}")
    jobqueue_options = ("cores", "processes", "memory", "walltime", "account", "queue",
                        "jobs", "adapt_max")
    given = [f"--{n.replace('_', '-')}" for n in jobqueue_options
             if getattr(args, n) is not None]
    if args.cluster is None and given:
        raise _UserError(f"{given[0]}: an option of --cluster (batch jobs); add --cluster "
                         f"slurm, pbs or local")
    if args.cluster is not None:
        if args.scheduler is not None or args.workers is not None:
            raise _UserError("--cluster starts its own workers; it cannot be combined with "
                             "--scheduler or --workers")
        if args.jobs is not None and args.adapt_max is not None:
            raise _UserError("--jobs (fixed) and --adapt-max (adaptive): choose one")
        for name in ("cores", "processes", "jobs", "adapt_max"):
            value = getattr(args, name)
            if value is not None and value < 1:
                raise _UserError(f"--{name.replace('_', '-')}: expected an integer >= 1, got "
                                 f"{value}")
        from .runner.cluster import Jobqueue, lifetime_margin, walltime_seconds

        if args.walltime is not None:
            lifetime_margin(walltime_seconds(args.walltime))
        args.jobqueue = Jobqueue(args.cluster, **{n: getattr(args, n)
                                                  for n in jobqueue_options})
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise _UserError(f"--timeout: expected a number of seconds > 0, got {args.timeout:g}")
    if args.scheduler is not None:
        args.scheduler = check_address(args.scheduler)
    elif args.workers is not None or args.threads_per_worker is not None:
        cores = available_cores()
        k = args.threads_per_worker or 1
        n = args.workers or max(1, cores // k)
        if n * k > cores and not args.force:
            raise _UserError(f"--workers {n} x --threads-per-worker {k}: {n * k} threads for "
                             f"the {cores} cores of this host (each worker is a process of a "
                             f"few hundred MB); use at most {cores}, or add --force")


def _apply_cluster_table(args: argparse.Namespace, table: dict[str, Any]) -> None:
    """The spec's ``[cluster]`` table as the batch-job flags it names, where those are not
    given: the flags override it. A run given ``--scheduler`` or a local cluster's
    ``--workers``/``--threads-per-worker`` leaves the table aside."""
    if not table or args.scheduler is not None or args.workers is not None \
            or args.threads_per_worker is not None:
        return
    for key, value in table.items():
        name = "cluster" if key == "kind" else key
        if getattr(args, name) is None:
            setattr(args, name, value)


def _run(args: argparse.Namespace) -> int:
    from .runner.driver import execute
    from .runner.spec import load_spec

    spec = load_spec(args.spec)
    _apply_cluster_table(args, spec.cluster)
    _check_run_options(args)
    _quiet_distributed()
    if args.dashboard:
        import importlib.util

        if importlib.util.find_spec("bokeh") is None:
            print("qbfast: warning: --dashboard needs bokeh (pip install 'qbfast[dashboard]'); "
                  "running without the dashboard", file=sys.stderr)
            args.dashboard = False
    report = execute(spec, args.store, scheduler=args.scheduler, n_workers=args.workers,
                     threads_per_worker=args.threads_per_worker, overwrite=args.overwrite,
                     progress=sys.stderr, connect_timeout=args.timeout, force=args.force,
                     dashboard=args.dashboard, jobqueue=getattr(args, "jobqueue", None))
    if report.status == "complete":
        print(f"qbfast: {report.store} is already complete ({report.tasks_total} tasks, every "
              f"chunk file present); nothing to do (--overwrite recomputes it)")
        return 0
    sizes = ", ".join(f"{d}={s}" for d, s in zip(spec.dims, spec.shape))
    total = spec.n_evaluations
    done_before = report.tasks_total - report.tasks_computed
    lines = [
        ("store", str(report.store)),
        ("points", f"{total:,} ({sizes})"),
        ("tasks", f"{report.tasks_computed} computed"
                  + (f", {done_before} already done" if done_before else "")
                  + (f", {report.repaired} recomputed (missing or damaged)"
                     if report.repaired else "")
                  + f", {report.tasks_total} total; {report.workers} workers x "
                    f"{report.numba_threads} numba threads"),
        ("on disk", f"{_fmt_bytes(report.bytes_on_disk)} in {report.files:,} files "
                    f"({report.bytes_on_disk / total:.3g} bytes/point)"),
        ("wall time", f"{report.wall_s:.2f} s (first task finished after "
                      f"{report.first_task_s:.2f} s)"),
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
    from .runner.driver import inspect_store
    from .store import bytes_on_disk
    from .store.record import journal_missing_line

    state = inspect_store(args.store)
    info, record = state.info, state.record
    attrs = info.attrs
    print(f"store       {info.path}")
    print(f"format      qbfast store format {info.meta.get('qbfast_store_format')}, "
          f"store id {info.store_id[:12]}, codec {info.meta.get('codec')}")
    print(f"spec        {attrs.get('spec_name')} (hash {str(attrs.get('spec_hash', ''))[:12]})")
    print(f"model       {attrs.get('model')}, protocol {attrs.get('protocol')}, "
          f"battery_hamiltonian {attrs.get('battery_hamiltonian')}")
    print(f"created     {attrs.get('created')} by qbfast {attrs.get('qbfast_version')}")
    print("dims        " + ", ".join(f"{k}={v}" for k, v in zip(info.dims, info.shape)))
    print(f"task shape  {info.chunks} ({info.n_tasks:,} tasks)")
    if info.grouped:
        print(f"groups      {info.group} tasks per storage chunk {info.storage_chunks} "
              f"({info.n_groups:,} groups, {record.n_groups_done:,} merged; "
              f"{record.n_staged:,} tasks staged)")
    print(f"variables   {', '.join(v.name for v in info.variables)} "
          f"({attrs.get('storage_dtype')})")
    if state.complete:
        status = "complete"
    elif record.journal_missing:
        status = "incomplete: " + journal_missing_line(info.path)
    elif len(state.lost):
        status = f"incomplete: {len(state.lost)} recorded tasks have missing chunk files"
    else:
        status = "incomplete"
    staged = (f", {record.n_staged:,} more staged (their groups not merged yet)"
              if record.n_staged else "")
    print(f"tasks       {record.n_done:,}/{info.n_tasks:,} done{staged} ({status}); "
          f"{record.journals} journal files, {record.entries:,} entries"
          + (f", {record.torn} torn entries ignored" if record.torn else ""))
    size, files = bytes_on_disk(info.path)
    print(f"on disk     {_fmt_bytes(size)} in {files:,} files")
    if getattr(args, "debug", False):
        _placements(info.path)
    print("spec text:")
    for line in str(attrs.get("spec", "")).rstrip().splitlines():
        print(f"  {line}")
    return 0


def _placements(path: Path) -> None:
    """``qbfast info --debug``: where the tasks ran, per run and host (the runs' own records,
    ``_qbfast/placement/``)."""
    from .runner.driver import read_placements

    rows = read_placements(path)
    print(f"placement   {len(rows):,} task records" + ("" if rows else " (none kept)"))
    seen: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        seen.setdefault((r["run"], r["host"]), []).append(r)
    for (run, host), rs in seen.items():
        pairs = sorted({(r["dask_threads"], r["numba_threads"]) for r in rs})
        used = ", ".join(f"{d} x {n}" for d, n in pairs)
        print(f"  run {run} host {host} ({rs[0]['cores']} cores): {len(rs):,} tasks on "
              f"{len({r['worker'] for r in rs})} workers; Dask x Numba threads: {used}")


def _verify(args: argparse.Namespace) -> int:
    from .runner.driver import execute, existing_layout, inspect_store
    from .runner.spec import parse_spec
    from .store import StoreError, repair_files, verify, verify_files
    from .store import store_path as _store_path

    path = _store_path(args.store, "STORE")
    state = inspect_store(path)
    attrs = state.info.attrs
    spec = parse_spec(str(attrs["spec"]), name=str(attrs.get("spec_name", "sweep")),
                      source=f"{path} (stored spec)")
    if spec.hash != attrs.get("spec_hash"):
        raise _UserError(f"{path}/zarr.json: damaged: its spec text does not match its "
                         f"spec_hash, so its metadata cannot be rebuilt; rerun the spec into a "
                         f"new store")
    layout = existing_layout(state.info, spec)
    damaged_files = verify_files(state.info, layout)
    for f in damaged_files:
        print(f"damaged  {f.problem}")
    if damaged_files and args.repair:
        n = repair_files(state.info, layout, damaged_files)
        print(f"qbfast: {path}: {n} files rebuilt from the store's spec: "
              + ", ".join(f.file for f in damaged_files), file=sys.stderr)
        state = inspect_store(path)
    try:
        damage = verify(state.info, state.record)
    except StoreError:  # a variable's metadata is among the damaged files
        if not damaged_files or args.repair:
            raise
        print(f"qbfast: {path}: {len(damaged_files)} metadata or coordinate files damaged; "
              f"the data chunks are verified once they are rebuilt")
        print(f"qbfast: run `qbfast verify {path} --repair` to rebuild them", file=sys.stderr)
        return 1
    bad = sorted({d.task for d in damage} | {int(t) for t in state.lost})
    missing = len(state.record.missing)
    for d in damage[:20]:
        print(f"damaged  {d.problem}")
    if len(damage) > 20:
        print(f"damaged  ... and {len(damage) - 20} more")
    if state.record.torn:
        print(f"journal  {state.record.torn} torn or damaged entries ignored (their tasks "
              f"count as not computed)")
    staged = state.record.n_staged  # grouped stores: computed, their groups not merged yet
    print(f"qbfast: {path}: {state.record.n_done - len(bad):,} of {state.info.n_tasks:,} tasks "
          f"verified, {len(bad):,} damaged, {missing:,} not computed"
          + (f", {staged:,} staged (their groups not merged yet)" if staged else "")
          + (f"; {len(damaged_files)} metadata or coordinate files damaged"
             + (" (rebuilt)" if args.repair else "") if damaged_files else ""))
    if state.record.journal_missing:
        from .store.record import journal_missing_line

        print(f"qbfast: {journal_missing_line(path)}")
    unrecorded = not bad and not missing and not staged and not state.complete
    if unrecorded:  # the one completeness rule (runner.driver.inspect_store)
        print(f"qbfast: {path}: every task verified, but the completion record "
              f"(_qbfast/complete.json) is missing, unreadable or another store's")
    elif not bad and not missing and not staged:
        if damaged_files and not args.repair:
            print(f"qbfast: run `qbfast verify {path} --repair` to rebuild them",
                  file=sys.stderr)
            return 1
        return 0
    if not args.repair:
        what = "write the record" if unrecorded else "recompute them"
        print(f"qbfast: run `qbfast verify {path} --repair` to {what}", file=sys.stderr)
        return 1
    _quiet_distributed()
    report = execute(spec, path, scheduler=args.scheduler, progress=sys.stderr,
                     repair=tuple(bad))
    print(f"qbfast: {path}: repaired; {report.tasks_computed} tasks computed")
    return 0


class _UserError(ValueError):
    pass


_DEBUG_HELP = "show the traceback of an error instead of one line"


def _parser() -> argparse.ArgumentParser:
    from .runner.cluster import DEFAULT_TIMEOUT, JOBQUEUE_KINDS

    parser = argparse.ArgumentParser(prog="qbfast", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
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
                     help="remove an existing qbfast store at --store and start over (only a "
                          "qbfast store holding nothing but its own files is removed)")
    run.add_argument("--dashboard", action="store_true",
                     help="local cluster: start the Dask dashboard (needs bokeh) and print "
                          "its address")
    jq = run.add_argument_group(
        "batch jobs (dask-jobqueue: pip install 'qbfast[cluster]')",
        "run on workers started as batch jobs; the options are dask-jobqueue's own")
    jq.add_argument("--cluster", choices=sorted(JOBQUEUE_KINDS),
                    help="the batch system (local: the jobs run here, for a trial)")
    jq.add_argument("--cores", type=int, metavar="N", help="cores per job")
    jq.add_argument("--processes", type=int, metavar="N", help="worker processes per job")
    jq.add_argument("--memory", metavar="SIZE", help="memory per job, e.g. 16GB")
    jq.add_argument("--walltime", metavar="HH:MM:SS",
                    help="walltime per job; workers leave before it, staggered, and their "
                         "jobs are replaced (with --adapt-max)")
    jq.add_argument("--account", help="the account jobs are charged to")
    jq.add_argument("--queue", help="the queue (partition) of the jobs")
    jq.add_argument("--jobs", type=int, metavar="N", help="a fixed number of jobs")
    jq.add_argument("--adapt-max", type=int, metavar="N",
                    help="adaptive: at most N jobs, started again as workers leave")
    run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                     help="the longest wait for each of: connecting to --scheduler (with its "
                          "handshake), starting a local cluster, workers to join "
                          f"(default {DEFAULT_TIMEOUT:g}); each ends in one error line")
    run.add_argument("--force", action="store_true",
                     help="start even with more local worker threads (--workers x "
                          "--threads-per-worker) than this host has cores, or a planned store "
                          "larger than the free disk space")
    run.set_defaults(func=_run)
    info = sub.add_parser("info", help="describe a store: spec, dims, chunks done, size")
    info.add_argument("store")
    info.set_defaults(func=_info)
    verify = sub.add_parser("verify", help="decode every chunk of a store and check its "
                                           "checksums against the completion record")
    verify.add_argument("store")
    verify.add_argument("--repair", action="store_true",
                        help="recompute the damaged or missing tasks (on a local cluster, or "
                             "--scheduler)")
    verify.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler")
    verify.set_defaults(func=_verify)
    demo = sub.add_parser("demo", help="run an in-process demo sweep and print a summary")
    demo.set_defaults(func=_demo)
    from .cli_analysis import add_commands  # extrema, corr, claims, plot, figures
    add_commands(sub)
    for command in sub.choices.values():  # --debug also after the command's name
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help=_DEBUG_HELP)
    return parser


def _os_error_line(e: OSError) -> str:
    """``PATH: strerror`` (``PATH -> PATH2`` for a rename) of a file system error."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.filename is None:
        return reason
    where = str(e.filename) + (f" -> {e.filename2}" if e.filename2 is not None else "")
    return f"{where}: {reason}"


def _first_line(e: BaseException) -> str:
    text = str(e)
    return text.splitlines()[0] if text.strip() else type(e).__name__


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    print(f"qbfast: warning: {str(message).splitlines()[0]}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv``; return the exit status (0 done, 1 a failed run or an
    unexpected error, 2 a user or environment error, 130 interrupted)."""
    from .runner.cluster import ClusterError, ClusterLost
    from .runner.spec import SpecError

    args = _parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    if not debug:  # warnings as one line each, like errors
        import warnings

        warnings.showwarning = _show_warning
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("qbfast: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `qbfast info STORE | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # one line, no traceback (unless --debug)
        from .runner.driver import RunError
        from .store import StoreError

        if debug:
            raise
        if isinstance(e, ClusterLost):  # mid-run: the store is resumable
            command = shlex.join(["qbfast", *(sys.argv[1:] if argv is None else argv)])
            print(f"qbfast: error: {_first_line(e)}: resume with `{command}`", file=sys.stderr)
            return 2
        if isinstance(e, (_UserError, SpecError, StoreError, ClusterError)):
            print(f"qbfast: error: {_first_line(e)}", file=sys.stderr)
            return 2
        if isinstance(e, RunError):
            print(f"qbfast: error: {_first_line(e)}", file=sys.stderr)
            return 1
        if isinstance(e, (OSError, TimeoutError)) and getattr(args, "scheduler", None):
            print(f"qbfast: error: cannot use the scheduler {args.scheduler}: {_first_line(e)}",
                  file=sys.stderr)
            return 2
        if isinstance(e, OSError):  # the file system: read-only, full, not a directory, ...
            print(f"qbfast: error: {_os_error_line(e)}", file=sys.stderr)
            return 2
        print(f"qbfast: error: unexpected {type(e).__name__}: {_first_line(e)} (a bug? run "
              f"again with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
