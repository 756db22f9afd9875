"""Running a spec: spec -> plan -> store -> tasks -> completion, on a Dask cluster.

The client only plans and watches. Under the store's lock (:class:`qbfast.store.StoreLock`) it
checks an existing store (format, spec, kernels), reads its completion record, reaches the
cluster, creates the store (metadata only, O(arrays)) or removes it first (``overwrite``, only
a qbfast store), and keeps a bounded window of tasks in flight (:data:`WINDOW_PER_THREAD` per
Dask thread), refilled as they finish: the client and the scheduler hold O(workers) futures,
never O(tasks). Each task gets its task number; data never travel through the client. When
every task is recorded and every chunk file exists, the completion file is written.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from .. import store as _store
from ..params import TIME
from ..store import StoreError, StoreInfo, StoreLayout, VariableLayout
from ..store.layout import PLACEMENT
from .cluster import (
    DEFAULT_TIMEOUT,
    ClusterLost,
    Jobqueue,
    _seconds,
    check_walltime,
    connect,
)
from .spec import Spec, load_spec
from .tasks import (
    TaskContext,
    flush,
    kernels_digest,
    merge_task,
    peak_metrics,
    run_task,
    warm,
)

#: Rounds of recomputing, within a run, tasks that finished but were never recorded (their
#: worker was lost before its flusher recorded them).
RECOMPUTE_ROUNDS = 2
#: Tasks in flight per Dask thread of the cluster: enough that a thread never waits for the
#: scheduler, few enough that the client and the scheduler hold O(workers) futures.
WINDOW_PER_THREAD = 3
#: Seconds between two looks at the cluster's workers (one ``scheduler_info``) during a run.
REFRESH_S = 2.0
#: Times a task is submitted again after its worker left (killed, retired, or the scheduler
#: lost) before the run gives up on it.
CHURN_RESUBMITS = 10
#: Seconds a future may sit done (finished, failed, cancelled or lost) in the window without
#: ``as_completed`` reporting it before the run handles it itself: ``as_completed`` never
#: reports a future whose result gather was cut by the scheduler's loss (issue 20 item 4).
#: For the futures in flight when the scheduler was lost, the run does not wait while it is
#: lost and for STALE_S seconds after it is back: it handles each one done at the next look
#: (:data:`REFRESH_S`).
STALE_S = 10.0
#: Expected size on disk / raw size per codec, for the free-space check before a run (measured
#: on energy and ergotropy series with ``python -m bench.sweeps --codecs``; upper ends).
CODEC_RATIO = {"zstd": 0.75, "blosc-lz4": 0.9, "none": 1.0}
#: Environment variable read by the client (fault-injection tests only): seconds to sleep after
#: the last task, before the completion record is written (a line says so first).
DEBUG_COMPLETE_DELAY_ENV = "QBFAST_DEBUG_COMPLETE_DELAY"


class RunError(RuntimeError):
    """A sweep that could not finish (a task failed); the store stays resumable."""


@dataclass
class RunReport:
    """What a run did; ``status`` is "complete" (nothing to do), "created" or "resumed"."""

    store: Path
    spec: Spec
    status: str
    tasks_total: int
    tasks_computed: int = 0
    evaluations: int = 0
    wall_s: float = 0.0
    compute_s: float = 0.0  # from the first submitted task to the last finished one
    first_task_s: float = math.nan  # from the start of execute() to the first finished task
    bytes_on_disk: int = 0
    files: int = 0
    peaks: dict[str, tuple[float, dict[str, float]]] = field(default_factory=dict)
    workers: int = 0
    numba_threads: int = 0  # the fewest Numba threads a task of the run used
    repaired: int = 0
    resubmitted: int = 0  # tasks submitted again after their worker (or scheduler) left
    churn: str = ""  # why the first of them was
    stale: int = 0  # futures found done but not reported: taken up by the window scan

    @property
    def points_per_s(self) -> float:
        """Evaluations computed per second of wall time (cluster start-up included)."""
        return self.evaluations / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def compute_points_per_s(self) -> float:
        """Evaluations per second while the tasks ran."""
        return self.evaluations / self.compute_s if self.compute_s > 0 else 0.0


def default_store(spec: Spec) -> Path:
    return Path.cwd() / f"{spec.name}.zarr"


def store_layout(spec: Spec, chunks: tuple[int, ...] | None = None) -> StoreLayout:
    """The :class:`StoreLayout` of a spec's store (the store layer knows nothing of specs)."""
    g = spec.grid
    coords = {name: (var.values, dict(var.attrs)) for name, var in g.coords().items()}
    attrs: dict[str, Any] = {"title": spec.description or f"qbfast sweep {spec.name}"}
    attrs.update(g.attrs())
    attrs.update({"storage_dtype": spec.dtype.name, "spec_name": spec.name, "spec": spec.text,
                  "spec_hash": spec.hash, "kernels_digest": kernels_digest(),
                  "created": _store.layout.now(), "codec": spec_codec(spec)})
    variables = tuple(VariableLayout(v.name, v.dims, spec.variable_dtype(v).name, v.attrs)
                      for v in spec.variables())
    return StoreLayout(dims=spec.dims, shape=spec.shape, chunks=chunks or spec.chunks,
                       variables=variables, coords=coords, attrs=attrs,
                       codec=spec_codec(spec), peak_metrics=peak_metrics(spec),
                       group=spec.group if chunks is None else ())


#: Root attrs of a store that its spec does not determine: kept from the store itself when its
#: files are rebuilt (:func:`existing_layout`).
STORE_OWN_ATTRS = ("created", "kernels_digest", "qbfast_version")


def existing_layout(info: StoreInfo, spec: Spec) -> StoreLayout:
    """The layout an existing store was created with: :func:`store_layout` of its spec, with
    the attrs that the spec does not determine (:data:`STORE_OWN_ATTRS`) taken from the store
    (what ``qbfast verify`` rebuilds its metadata and coordinates from)."""
    import dataclasses

    layout = store_layout(spec, chunks=None if info.chunks == spec.chunks else info.chunks)
    attrs = dict(layout.attrs)
    attrs.update({k: info.attrs[k] for k in STORE_OWN_ATTRS if k in info.attrs})
    return dataclasses.replace(layout, attrs=attrs)


def spec_codec(spec: Spec) -> str:
    codec = getattr(spec, "codec", "auto")
    if codec == "auto":
        n_series = sum(1 for v in spec.variables() if v.stat is None)
        return _store.auto_codec(n_series)
    return codec


def raw_bytes(spec: Spec) -> int:
    """Bytes of every stored variable, uncompressed."""
    total = 0
    for v in spec.variables():
        total += math.prod(spec.shape[:len(v.dims)]) * spec.variable_dtype(v).itemsize
    return total


def check_identity(info: StoreInfo, spec: Spec, complete: bool) -> None:
    """Refuse (without touching it) a store made from a different spec, or (incomplete)
    computed by other kernel code: finishing it would mix two versions."""
    attrs = info.attrs
    if attrs.get("spec_hash") != spec.hash:
        raise StoreError(
            f"{info.path}: this store was made from a different spec (spec "
            f"{attrs.get('spec_name')!r}, hash {str(attrs.get('spec_hash'))[:12]} != "
            f"{spec.hash[:12]}); it is left untouched: use --overwrite to replace it or "
            f"--store to choose another path")
    digest = attrs.get("kernels_digest")
    if digest != kernels_digest() and not complete:
        raise StoreError(
            f"{info.path}: this incomplete store was computed by other kernel code (qbfast "
            f"{attrs.get('qbfast_version')}, kernels {str(digest)[:12]} != "
            f"{kernels_digest()[:12]}); finishing it would mix two versions; it is left "
            f"untouched: use --overwrite")
    if info.shape != spec.shape or info.dims != spec.dims:
        raise StoreError(f"{info.path}: tampered bookkeeping: dims {info.dims} {info.shape} "
                         f"!= the spec's {spec.dims} {spec.shape}")


@dataclass
class StoreState:
    """An existing store as a run finds it."""

    info: StoreInfo
    record: _store.Record
    complete: bool
    lost: np.ndarray  # tasks recorded as done whose chunk files are missing


def inspect_store(path: str | Path, spec: Spec | None = None) -> StoreState:
    """Open, check and read the record of the store at ``path`` (read-only)."""
    info = _store.open_info(_store.store_path(path, "STORE"))
    record = _store.read_record(info)
    complete_file = _store.read_complete(info) is not None
    if spec is not None:
        check_identity(info, spec, complete_file and bool(record.done.all()))
    lost = _store.missing_files(info, record)
    complete = complete_file and bool(record.done.all()) and not len(lost)
    return StoreState(info, record, complete, lost)


def tasks_to_run(info: StoreInfo, record: _store.Record, lost: np.ndarray,
                 repair: tuple[int, ...] | np.ndarray = ()) -> tuple[np.ndarray, np.ndarray]:
    """(the tasks a run computes, those among them to revoke first) of a store: the tasks
    neither recorded nor staged, plus ``lost`` (recorded, a chunk file missing) and ``repair``
    (found damaged); in a grouped store a lost or damaged task's whole group. The one count of
    a run: its plan line and its tasks line both say ``len`` of the first."""
    redo = np.union1d(np.asarray(lost, dtype=np.int64), np.asarray(repair, dtype=np.int64))
    if info.grouped:  # a group is recomputed whole
        redo = info.tasks_of_groups(info.group_of(redo))
    return np.union1d(record.missing, redo), redo


def execute(spec: Spec | str | Path, store: str | Path | None = None, client: Any = None, *,
            scheduler: str | None = None, n_workers: int | None = None,
            threads_per_worker: int | None = None, overwrite: bool = False,
            progress: IO[str] | None = None, connect_timeout: float | str = DEFAULT_TIMEOUT,
            force: bool = False, durable: bool = True, repair: tuple[int, ...] = (),
            dashboard: bool = False, jobqueue: Jobqueue | None = None) -> RunReport:
    """Run (or resume) a sweep into ``store`` and report what was done.

    ``client``: a ``distributed.Client`` to use; else ``scheduler`` (an address such as
    ``tcp://host:8786``) to connect to; else a ``LocalCluster`` of ``n_workers`` processes
    (default: one per core) with ``threads_per_worker`` threads (default 1), closed at the end.
    Order: the store's lock is taken, the spec and an existing store are checked (read-only),
    the free space is checked (``force`` skips it), then the cluster is reached, and only then
    is the store created, removed (``overwrite``) or resumed; a complete store starts nothing.
    ``repair``: task numbers to recompute (found damaged by ``qbfast verify``).
    ``durable``: fsync chunk files and journal entries (off only in benchmarks of the disk).
    ``jobqueue``: a dask-jobqueue cluster of batch jobs instead (:class:`Jobqueue`).
    """
    start = time.perf_counter()
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    if jobqueue is not None and jobqueue.walltime is not None:  # before anything is written
        check_walltime(jobqueue.walltime, spec.plan().task_seconds)
    path = _store.store_path(store) if store is not None else default_store(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = RunReport(store=path, spec=spec, status="created", tasks_total=spec.n_chunks)
    run_id = _store.record.new_run_id()
    notice = progress if progress is not None else sys.stderr
    with _store.StoreLock(path, run_id, notice=notice) as lease:
        _store.remove_stale(path)
        exists = path.exists() or path.is_symlink()
        state: StoreState | None = None
        if exists and overwrite:
            _store.check_removable(path)
            lease.acquire_inner()  # one writer per store, whatever path reaches it
        elif exists:
            state = inspect_store(path, spec)
            report.status = "resumed"
            report.tasks_total = state.info.n_tasks
            if state.complete and not repair:
                report.status = "complete"
                _finish(report, state.info, start, state.record)
                return report
            lease.acquire_inner()  # before anything is written (the cluster not started)
            state = inspect_store(path, spec)  # as it is now that no other run writes it
            if state.record.done.all() and not len(state.lost) and not repair:
                # every task recorded (the run was stopped before writing the completion
                # file): nothing to compute, no cluster needed
                lease.check()
                _store.write_complete(state.info, state.record)
                _finish(report, state.info, start, state.record)
                return report
        if state is None:
            _check_space(spec, path, force)
        if progress is not None:
            n_tasks = state.info.n_tasks if state is not None else spec.n_chunks
            to_run = (len(tasks_to_run(state.info, state.record, state.lost, repair)[0])
                      if state is not None else n_tasks)
            need = raw_bytes(spec) * CODEC_RATIO.get(spec_codec(spec), 1.0)
            where = (f"scheduler {scheduler}" if scheduler else "the given client" if client
                     else f"a {jobqueue.kind} cluster" if jobqueue else "a local cluster")
            print(f"qbfast: {spec.n_evaluations:,} points in {n_tasks:,} tasks ({to_run:,} to "
                  f"run), about {_fmt_bytes(need)} on disk; starting on {where}",
                  file=progress, flush=True)
            if state is None:
                for warning in spec.plan().warnings:
                    print(f"qbfast: warning: {warning}", file=progress, flush=True)
        with connect(client, scheduler, n_workers, threads_per_worker, connect_timeout,
                     progress, dashboard=dashboard, jobqueue=jobqueue) as c:
            lease.check()  # the cluster's start can be long: still ours?
            if exists and overwrite:
                _store.remove(path)
                lease.drop_inner()
            if state is None:
                _store.create(store_layout(spec), path)
                lease.acquire_inner()
                state = inspect_store(path)
            info = state.info
            _store.remove_partial_files(path, info)
            if _store.record.restore_journal(path):  # deleted: every task is computed again
                _store.clear_complete(info)
            generation = _store.next_generation(path)
            if info.grouped and _store.record.check_staged(info, state.record):
                # damaged stagings went: their tasks are computed again
                state = StoreState(info, _store.read_record(info), False, state.lost)
            todo, redo = tasks_to_run(info, state.record, state.lost, repair)
            if len(redo):
                lease.check()
                _store.clear_complete(info)
                journal = _store.Journal(path, generation, run_id, len(info.variables),
                                         len(info.peak_metrics), durable, tag="client")
                journal.append_many(np.unique(info.group_of(redo)) if info.grouped else redo,
                                    _store.record.REVOKED)
                journal.close()
                report.repaired = len(redo)
            merge = np.zeros(0, dtype=np.int64)
            if info.grouped:
                assert state.record.group_done is not None
                undone = ~state.record.group_done
                undone[np.unique(info.group_of(redo))] = True
                merge = np.flatnonzero(undone)
            ctx = TaskContext(spec=spec, chunks=info.chunks, path=str(path),
                              store_id=info.store_id, generation=generation, run_id=run_id,
                              kernels=kernels_digest(), durable=durable,
                              lease=str(lease.inner or lease.path))
            if len(todo) or len(merge):
                try:
                    _distribute(ctx, todo, report, c, progress, start, info, merge,
                                _seconds(connect_timeout))
                    for _ in range(0 if info.grouped else RECOMPUTE_ROUNDS):
                        # tasks that finished on a worker lost before it recorded them
                        again = inspect_store(path).record.missing
                        if not len(again):
                            break
                        _distribute(ctx, again, report, c, progress, start, info, merge[:0],
                                    _seconds(connect_timeout))
                except RunError:
                    lease.check()  # a task that failed because the run lost its lease
                    raise
        _debug_complete_delay(progress)
        lease.check()
        state = inspect_store(path)
        if state.info.grouped:
            _store.record.check_staged(state.info, state.record)
        if len(state.record.missing) or len(state.lost):
            raise RunError(f"{path}: {len(state.record.missing) + len(state.lost)} tasks are "
                           f"still missing after the run; run it again")
        lease.check()
        _store.write_complete(state.info, state.record)
        _finish(report, state.info, start, state.record)
    return report


def _debug_complete_delay(progress: IO[str] | None) -> None:
    """Fault-injection tests only (:data:`DEBUG_COMPLETE_DELAY_ENV`): say so and sleep after
    the last task, before the completion record."""
    delay = os.environ.get(DEBUG_COMPLETE_DELAY_ENV)
    if delay:
        print(f"qbfast: debug: {delay} s before the completion record", file=progress or
              sys.stderr, flush=True)
        time.sleep(float(delay))


def _finish(report: RunReport, info: StoreInfo, start: float,
            record: _store.Record | None = None) -> None:
    report.wall_s = time.perf_counter() - start
    report.bytes_on_disk, report.files = _store.bytes_on_disk(info.path)
    report.peaks = peaks(info, record)


def _check_space(spec: Spec, path: Path, force: bool) -> None:
    need = raw_bytes(spec) * CODEC_RATIO.get(spec_codec(spec), 1.0)
    free = shutil.disk_usage(path.parent).free
    if need > free and not force:
        raise StoreError(f"{path}: the store needs about {_fmt_bytes(need)} on disk "
                         f"({spec.n_evaluations:,} points), and {path.parent} has "
                         f"{_fmt_bytes(free)} free; free space, choose another --store, use "
                         f"[reduce] or fewer metrics, or --force to start anyway")


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


class ClusterView:
    """The cluster as the client last saw it: Dask threads in all (of running workers: the
    window's size) and per host (of every worker, retiring ones included: what shares a
    host's cores). Refreshed with one ``scheduler_info`` at most every ``every`` seconds,
    whatever the number of tasks that finish in between: O(1) per finished task."""

    def __init__(self, client: Any, every: float = REFRESH_S) -> None:
        self.client = client
        self.every = every
        self.at = -math.inf
        self.threads = 0
        self.workers = 0
        self.host_threads: dict[str, int] = {}

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.at < self.every:
            return
        self.at = now
        if getattr(self.client, "status", "running") != "running":
            self.threads = self.workers = 0
            return
        try:
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        except (OSError, TimeoutError, RuntimeError):  # the scheduler just went away
            self.threads = self.workers = 0
            return
        from distributed.comm import get_address_host

        hosts: dict[str, int] = {}
        threads = running = 0
        for addr, w in workers.items():
            n = int(w.get("nthreads", 0))
            host = str(w.get("host") or get_address_host(addr))
            hosts[host] = hosts.get(host, 0) + n
            if w.get("status", "running") == "running":
                threads += n
                running += 1
        self.host_threads, self.threads, self.workers = hosts, threads, running


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _churn(exc: BaseException) -> bool:
    """A task error that says its worker left, not that the task failed."""
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return isinstance(exc, (KilledWorker, CommClosedError))


class _QuietLostGather(logging.Filter):
    """Drops the records, with a CommClosedError traceback, of the client's links cut by the
    scheduler's loss: tornado's ERROR of an ``as_completed`` result gather (the run handles
    that future itself, :data:`STALE_S`) and distributed.batched's INFO "Batched Comm Closed"
    of the client's message stream (the client reconnects). The run reports a lost scheduler
    in one line of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        return not (isinstance(exc, OSError)
                    and ("_track_future" in message or message.startswith("Batched Comm Closed")))


def _distribute(ctx: TaskContext, todo: np.ndarray, report: RunReport, client: Any,
                stream: IO[str] | None, start: float, info: StoreInfo | None = None,
                merge: np.ndarray | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Keep a window of tasks in flight, refilled as they finish, to the end. The window
    follows the cluster's current Dask threads (:class:`ClusterView`): it grows as workers
    join and shrinks as they leave. A task whose worker left (its future cancelled, or
    ``KilledWorker``) is submitted again, at most :data:`CHURN_RESUBMITS` times; with no
    worker, or no scheduler, for ``timeout`` seconds the run ends with :class:`ClusterLost`.
    Grouped stores (``merge``: the groups not merged yet): tasks go group by group, and a
    group's merge task is submitted (first in line) as soon as its last task is staged."""
    from distributed import as_completed

    from .progress import Progress

    view = ClusterView(client)
    view.refresh(force=True)
    report.workers = max(report.workers, view.workers)
    spec = ctx.spec
    total = spec.n_evaluations
    todo_points = int(sum(ctx.evaluations(int(t)) for t in todo)) if len(todo) < 1 << 16 \
        else _points_of(ctx, todo)
    bar = Progress(report.tasks_total, report.tasks_total - len(todo), total,
                   total - todo_points, stream)
    per_task = total / max(1, report.tasks_total)
    bar.say(f"qbfast: {len(todo):,} tasks to run (about {per_task:,.0f} points each) on "
            f"{view.workers} workers, {view.threads} Dask threads (tasks in flight: "
            f"{WINDOW_PER_THREAD} per Dask thread, following the workers that join and leave)")
    bar.say("qbfast: compiling the kernels once on the workers, about a minute; cached for "
            "later runs")
    _warm(client, ctx, bar)
    # the context travels with every task (a few kB): a task never depends on data held by
    # one worker, so the run survives the loss of every worker it started with
    grouped = info is not None and info.grouped and merge is not None
    remaining: dict[int, int] = {}
    ready: list[int] = []
    group_of: dict[int, int] = {}
    if grouped:
        assert info is not None and merge is not None
        groups = info.group_of(todo)
        todo = todo[np.argsort(groups, kind="stable")]  # group by group: staging bounded
        counts = dict(zip(*(a.tolist() for a in np.unique(groups, return_counts=True))))
        remaining = {int(g): int(counts.get(int(g), 0)) for g in merge}
        ready = [g for g in remaining if remaining[g] == 0]
        group_of = dict(zip(todo.tolist(), info.group_of(todo).tolist()))
    pending = iter(todo.tolist())
    again: list[tuple[str, int]] = []  # ("task" | "merge", number) whose worker left
    futures = as_completed(with_results=True, raise_errors=False)
    in_flight: dict[Any, tuple[str, int]] = {}
    resubmits: dict[tuple[str, int], int] = {}
    placements = _PlacementLog(ctx.path, ctx.run_id)

    def submit() -> bool:
        if again:
            what = again.pop(0)
        elif ready:
            what = ("merge", ready.pop(0))
        else:
            task = next(pending, None)
            if task is None:
                return False
            what = ("task", int(task))
        kind, n = what
        attempt = resubmits.get(what, 0)
        suffix = f"-{attempt}" if attempt else ""
        if kind == "merge":
            fut = client.submit(merge_task, n, ctx, pure=False, retries=1,
                                key=f"qbfast-merge-{ctx.run_id}-{n}{suffix}")
        else:
            fut = client.submit(run_task, n, ctx, view.host_threads, pure=False, retries=1,
                                key=f"qbfast-task-{ctx.run_id}-{n}{suffix}")
        in_flight[fut] = what
        futures.add(fut)
        return True

    def lost(what: tuple[str, int], why: str) -> None:
        resubmits[what] = resubmits.get(what, 0) + 1
        if resubmits[what] > CHURN_RESUBMITS:
            raise RunError(f"{ctx.path}: {what[0]} {what[1]} lost its worker "
                           f"{CHURN_RESUBMITS + 1} times ({why}); the store is resumable: run "
                           f"the same command again")
        again.append(what)
        if not report.resubmitted:
            report.churn = why
        report.resubmitted += 1

    first: float | None = None

    def handle(fut: Any, what: tuple[str, int], result: Any) -> None:
        """A future of the window that is done (reported, or found stale), with its result
        (a finished one's) or exception."""
        nonlocal first
        status = fut.status
        if status == "error":
            exc = result[1] if isinstance(result, tuple) else result
            fut.release()
            if _churn(exc):
                lost(what, _one_line(exc))
                return
            raise RunError(f"{ctx.path}: a task failed ({_one_line(exc)}); the store "
                           f"is resumable: run the same command again") from exc
        fut.release()
        if status != "finished":  # cancelled: the scheduler's connection was lost
            lost(what, f"its future was {status}")
            return
        if what[0] == "merge":
            return
        task, evaluations, _, placement = result
        placements.add(task, placement)
        report.numba_threads = (min(report.numba_threads, placement.numba_threads)
                                if report.numba_threads else placement.numba_threads)
        if grouped:
            g = group_of[int(task)]
            remaining[g] -= 1
            if remaining[g] == 0:
                ready.append(g)
        if first is None:
            first = time.perf_counter()
            report.first_task_s = first - start
        report.tasks_computed += 1
        report.evaluations += evaluations
        bar.update(1, evaluations)

    done_since: dict[Any, float] = {}  # futures of the window seen done, not yet reported

    def collect_stale(now: float, at_once: set[Any]) -> None:
        """Once per :data:`REFRESH_S`, O(window): the futures of the window done for more
        than :data:`STALE_S` s (those of ``at_once``, in flight at a scheduler loss just
        seen: done at all) that ``as_completed`` did not report (their result gather was
        cut by the scheduler's loss) are handled here: a finished one's result is taken
        (else it is lost), a cancelled or lost one is submitted again. A future reported
        later by ``as_completed`` is no longer in the window, and is ignored."""
        for fut in list(done_since):
            if fut not in in_flight or fut.status == "pending":
                del done_since[fut]
        for fut, what in list(in_flight.items()):
            if fut.status == "pending":
                continue
            since = done_since.setdefault(fut, now)
            if now - since < STALE_S and fut not in at_once:
                continue
            del in_flight[fut], done_since[fut]
            report.stale += 1
            result: Any = None
            if fut.status == "finished":
                try:
                    result = fut.result(timeout=REFRESH_S)
                except Exception as exc:  # its gather failed again: computed again
                    fut.release()
                    lost(what, f"its result was lost ({_one_line(exc)})")
                    continue
            elif fut.status == "error":
                result = fut.exception(timeout=REFRESH_S)
            handle(fut, what, result)

    submitted = time.perf_counter()
    waiting_since: float | None = None  # no scheduler, or no worker, since
    # the scheduler's loss was last seen at, and the futures in flight when it began: those
    # are handled at once when done, until STALE_S after the scheduler is back
    cut_at: float | None = None
    cut_window: set[Any] = set()
    lost_now = False  # the scheduler was lost at the last look
    scanned = time.monotonic()
    quiet = _QuietLostGather()
    cut_logs = [logging.getLogger(name) for name in ("tornado.application", "distributed.batched")]
    for cut_log in cut_logs:
        cut_log.addFilter(quiet)
    try:
        while True:
            view.refresh()
            status = getattr(client, "status", "running")
            if status != "running":
                if not lost_now:
                    cut_window |= set(in_flight)
                lost_now, cut_at = True, time.monotonic()
            else:
                lost_now = False
            if time.monotonic() - scanned >= REFRESH_S:
                scanned = time.monotonic()
                if cut_at is not None and scanned - cut_at >= STALE_S:
                    cut_at, cut_window = None, set()
                collect_stale(scanned, cut_window)
            if status in ("closed", "closing"):
                raise ClusterLost(f"{ctx.path}: the scheduler went away and did not come "
                                  f"back within {timeout:g} s (--timeout); the store is "
                                  f"resumable")
            if status == "running" and view.threads:
                if waiting_since is not None:
                    bar.say(f"qbfast: {view.workers} workers, {view.threads} Dask threads: "
                            f"going on")
                waiting_since = None
                report.workers = max(report.workers, view.workers)
                window = max(2, WINDOW_PER_THREAD * view.threads)
                while len(in_flight) < window and submit():
                    pass
            else:
                now = time.monotonic()
                if waiting_since is None:
                    waiting_since = now
                    whom = "the scheduler" if status != "running" else "workers"
                    bar.say(f"qbfast: no {'scheduler' if status != 'running' else 'worker'} "
                            f"left: waiting up to {timeout:g} s (--timeout) for {whom}")
                    view.refresh(force=True)
                elif now - waiting_since > timeout:
                    why = ("the scheduler did not come back" if status != "running"
                           else "no worker came")
                    raise ClusterLost(f"{ctx.path}: {why} within {timeout:g} s (--timeout);"
                                      f" the store is resumable")
            if not in_flight and not again and not ready:
                break  # (pending is exhausted: submit() found nothing with threads present)
            batch = futures.next_batch(block=False)
            if not batch:
                if first is None:
                    bar.tick()
                with futures.thread_condition:
                    futures.thread_condition.wait(timeout=0.1)
                continue
            for fut, result in batch:
                what = in_flight.pop(fut, None)
                if what is not None:
                    handle(fut, what, result)
        try:  # the last tasks' chunk files are flushed and recorded by the workers
            client.run(flush, ctx.run_id)
        except Exception as exc:
            if not _churn(exc) and not isinstance(exc, (TimeoutError, KeyError)):
                raise RunError(f"{ctx.path}: a task failed ({_one_line(exc)}); the store is "
                               f"resumable: run the same command again") from exc
            # a worker left before it recorded its last tasks: they are missing from the
            # record, and the next round computes them again
        report.compute_s += time.perf_counter() - submitted
        if report.resubmitted:
            bar.say(f"qbfast: {report.resubmitted} tasks submitted again after their worker "
                    f"left (first: {report.churn})")
        if report.stale:
            bar.say(f"qbfast: {report.stale} tasks found done on the cluster but not reported "
                    f"to this client (around the scheduler's loss): taken up by the run "
                    f"itself")
    finally:
        for cut_log in cut_logs:
            cut_log.removeFilter(quiet)
        placements.close()
        bar.close()
        if in_flight and getattr(client, "status", "") == "running":
            client.cancel(list(in_flight))


def _warm(client: Any, ctx: TaskContext, bar: Any) -> None:
    """Compile (or load) the kernels on the workers present, saying the elapsed time at
    least every 10 s."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        job = pool.submit(client.run, warm, ctx)
        while True:
            try:
                job.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                bar.tick()
            except Exception as e:  # e.g. a worker without qbfast, or another version of it
                if _churn(e) or getattr(client, "status", "running") != "running":
                    return  # a worker left while compiling: the tasks compile on the others
                raise RunError(f"the workers cannot run qbfast kernels ({_one_line(e)}); "
                               f"install the same qbfast in the workers' environment") from e


class _PlacementLog:
    """Where each finished task ran (:class:`qbfast.runner.tasks.Placement`), one JSON line
    per task in ``_qbfast/placement/<run id>.jsonl``; written by the client, buffered."""

    def __init__(self, path: str, run_id: str) -> None:
        self.file = Path(path) / _store.META / PLACEMENT / f"{run_id}.jsonl"
        self._out: IO[str] | None = None

    def add(self, task: int, placement: Any) -> None:
        if self._out is None:
            self.file.parent.mkdir(exist_ok=True)
            self._out = open(self.file, "a", encoding="utf-8")
        self._out.write(json.dumps({"task": int(task), **placement._asdict()}) + "\n")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def read_placements(path: str | Path) -> list[dict[str, Any]]:
    """Every task record of ``_qbfast/placement/`` (all runs of the store), in file order;
    a torn last line (a client killed mid-write) is skipped."""
    rows: list[dict[str, Any]] = []
    directory = Path(path) / _store.META / PLACEMENT
    if not directory.is_dir():
        return rows
    for f in sorted(directory.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                rows.append({"run": f.stem, **json.loads(line)})
            except ValueError:
                continue
    return rows


def _points_of(ctx: TaskContext, tasks: np.ndarray) -> int:
    """Evaluations of many tasks at once (vectorized: edge tasks are smaller)."""
    grid = ctx.chunk_grid
    coords = np.unravel_index(tasks, grid)
    points = np.ones(len(tasks), dtype=np.int64)
    for c, chunk, size in zip(coords, ctx.chunks, ctx.spec.shape):
        points *= np.minimum((c + 1) * chunk, size) - c * chunk
    return int(points.sum())


def peaks(info: StoreInfo, record: _store.Record | None = None
          ) -> dict[str, tuple[float, dict[str, float]]]:
    """Maximum of each peak metric over the recorded tasks: metric -> (value, coords)."""
    import zarr

    if record is None:  # the record the caller has just read, else read it
        record = _store.read_record(info)
    if not info.peak_metrics or not record.done.any():
        return {}
    root = zarr.open_group(info.path, mode="r", use_consolidated=False)
    coords = [np.asarray(root[d][...]) for d in info.dims]  # type: ignore[index]
    out = {}
    for j, name in enumerate(info.peak_metrics):
        values = record.peaks[:, j, 0]
        index = record.peaks[:, j, 1]
        if np.all(np.isnan(values)):
            continue
        k = int(np.nanargmax(values))
        where = np.unravel_index(int(index[k]), info.shape)
        out[name] = (float(values[k]),
                     {d: float(c[i]) for d, c, i in zip(info.dims, coords, where)})
    return out


def run(spec: Spec | str | Path, store: str | Path | None = None, client: Any = None, *,
        overwrite: bool = False, **kwargs: Any) -> Any:
    """Run (or resume) the sweep of ``spec`` (a path or a :class:`~qbfast.runner.spec.Spec`)
    into the Zarr store ``store`` (default ``<spec name>.zarr`` in the working directory) and
    return the store opened lazily with ``xr.open_zarr``.

    ``client``: an existing ``distributed.Client``; by default a ``LocalCluster`` is started
    and closed. Other keywords go to :func:`execute` (``scheduler``, ``n_workers``,
    ``threads_per_worker``, ``progress``, ``force``).
    """
    import xarray as xr

    report = execute(spec, store, client, overwrite=overwrite, **kwargs)
    return xr.open_zarr(report.store)


__all__ = ["run", "execute", "RunReport", "RunError", "store_layout", "inspect_store",
           "peaks", "TIME"]
