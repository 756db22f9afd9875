"""The work of one task, on a worker: compute a block of the grid, reduce it along t if asked,
and write it into the store (:class:`qbfast.store.StoreWriter`: chunk files, then the journal
entry). A task receives its task number and the run's :class:`TaskContext` (scattered once to
every worker), never data; it returns a few numbers.

With [reduce] alone a task computes and reduces its block in one Numba call
(:func:`qbfast.reduce.reduce_grid`). A task chooses its Numba threads when it runs, on its
worker (:func:`task_numba_threads`): the host's cores // the Dask threads of every worker on
that host (as the client last saw the cluster, sent with the submission), at least 1, so that
Dask threads x Numba threads never exceeds a host's cores; it returns what it used
(:class:`Placement`).
"""

from __future__ import annotations

import functools
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..core import Grid
from ..reduce import reduce_grid, reduce_stats
from ..store.writer import task_writer
from .spec import Spec

#: Environment variable read by the tasks (fault-injection tests only): seconds to sleep
#: between computing a task and writing it, to widen the window in which a kill lands.
DEBUG_DELAY_ENV = "QBFAST_DEBUG_CHUNK_DELAY"
#: Metrics whose location of the maximum the run summary reports (kept in the record).
PEAK_METRICS = ("energy", "ergotropy")


@functools.lru_cache(maxsize=1)
def kernels_digest() -> str:
    """SHA-256 of the kernel sources of this process's qbfast (computed once per process).
    Recorded in the store: resuming with other kernel code would mix results."""
    from ..kernels._cache import sources_digest

    return sources_digest()


def peak_metrics(spec: Spec) -> tuple[str, ...]:
    return tuple(m for m in PEAK_METRICS if m in spec.grid.metrics)


@dataclass(frozen=True)
class TaskContext:
    """What every task of a run shares: the spec, the task (= chunk) shape, the store and the
    run's identity in it and the kernel digest. ``numba_threads`` is unused (Numba threads are
    chosen per task, :func:`task_numba_threads`); kept so that older callers still build it."""

    spec: Spec
    chunks: tuple[int, ...]
    path: str
    store_id: str
    generation: int
    run_id: str
    kernels: str
    numba_threads: dict[str, int] = field(default_factory=dict)
    durable: bool = True
    #: the run's lease file (:class:`qbfast.store.StoreLock`), checked by the writers before
    #: every record ("": not checked, e.g. a test writing tasks without a run)
    lease: str = ""

    @property
    def chunk_grid(self) -> tuple[int, ...]:
        return tuple(-(-s // c) for s, c in zip(self.spec.shape, self.chunks))

    def slices(self, task: int) -> tuple[slice, ...]:
        coords = np.unravel_index(task, self.chunk_grid)
        return tuple(slice(int(i) * c, min((int(i) + 1) * c, s))
                     for i, c, s in zip(coords, self.chunks, self.spec.shape))

    def evaluations(self, task: int) -> int:
        return math.prod(s.stop - s.start for s in self.slices(task))


def compute_block(spec: Spec, slices: tuple[slice, ...], block_bytes: int | None = None,
                  scratch: Scratch | None = None
                  ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Compute the block ``slices`` of the spec's grid in float64.

    Returns ``(data, peaks)``: ``data[var]`` has the block's shape along ``var``'s dims;
    ``peaks`` is (n_peak_metrics, 2): value and flat index (in the full grid) of the block's
    maximum of each of :data:`PEAK_METRICS` present (NaN where all values are NaN). Without
    stored series ([reduce] alone) the block is computed and reduced in one Numba call, in
    blocks of at most ``block_bytes``; the results do not depend on it. With ``scratch``, a
    stored series is computed into its buffer, and ``data`` is valid until its next use.
    """
    grid = spec.grid.subgrid(slices)
    names = peak_metrics(spec)
    if spec.keep_series:
        series = _compute_series(grid, scratch)
        data = _block_data(spec, grid, series, _reduced(spec, grid, series))
        return data, _peaks(spec, grid, series, slices, names)
    assert spec.reduce is not None
    with _kernel_lock():
        reduced, local = reduce_grid(grid, spec.reduce.stats, names, block_bytes)
    data = {var.name: reduced[var.metric][str(var.suffix)] for var in spec.variables()}
    if not names:
        return data, None
    peaks = local.copy()
    shape = tuple(s.stop - s.start for s in slices)
    for j, (value, flat) in enumerate(local):
        if not np.isnan(value):
            where = np.unravel_index(int(flat), shape)
            peaks[j, 1] = np.ravel_multi_index(
                tuple(s.start + i for s, i in zip(slices, where)), spec.shape)
    return data, peaks


class Scratch:
    """A float64 buffer reused by the series of one thread's tasks: a fresh array per task
    pays a page fault per 4 KiB page (Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_``, which makes
    every allocation above 128 KiB a new mapping)."""

    def __init__(self) -> None:
        self.buffer = np.empty(0)

    def take(self, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialized float64 array of ``shape`` in the buffer (grown if needed)."""
        size = math.prod(shape)
        if self.buffer.size < size:
            self.buffer = np.empty(size)
        return self.buffer[:size].reshape(shape)


_thread_scratch = threading.local()


def thread_scratch() -> Scratch:
    """This thread's :class:`Scratch` (one per worker thread, kept between tasks)."""
    scratch = getattr(_thread_scratch, "scratch", None)
    if scratch is None:
        scratch = _thread_scratch.scratch = Scratch()
    return scratch


def _compute_series(grid: Grid, scratch: Scratch | None = None) -> np.ndarray:
    """All metrics of ``grid``, float64, shape (n_metrics, *grid.shape)."""
    shape = (len(grid.metrics), grid.n_points, grid.t.size)
    out = np.empty(shape) if scratch is None else scratch.take(shape)
    with _kernel_lock():
        grid.compute(out)
    return out.reshape(len(grid.metrics), *grid.shape)


def _reduced(spec: Spec, grid: Grid, series: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """metric -> suffix -> reduced array, for the metrics that [reduce] stores."""
    if spec.reduce is None:
        return {}
    metrics = sorted({v.metric for v in spec.variables() if v.stat is not None},
                     key=grid.metrics.index)
    return {m: reduce_stats(series[grid.metrics.index(m)], grid.t, spec.reduce.stats)
            for m in metrics}


def _block_data(spec: Spec, grid: Grid, series: np.ndarray,
                reduced: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    data: dict[str, np.ndarray] = {}
    for var in spec.variables():
        if var.stat is None:
            data[var.name] = series[grid.metrics.index(var.metric)]
        else:
            assert var.suffix is not None
            data[var.name] = reduced[var.metric][var.suffix]
    return data


def _peaks(spec: Spec, grid: Grid, series: np.ndarray, slices: tuple[slice, ...],
           names: tuple[str, ...]) -> np.ndarray | None:
    """(len(names), 2): value and flat index in the full grid of the first maximum of each
    metric over ``series`` (the block at ``slices``), NaN skipped; NaN rows if all NaN."""
    if not names:
        return None
    shape = series.shape[1:]
    peaks = np.full((len(names), 2), np.nan)
    for j, name in enumerate(names):
        x = series[grid.metrics.index(name)]
        k = int(np.argmax(x))  # one pass; numpy's argmax stops at the first NaN, so
        if np.isnan(x.flat[k]):  # only then take the slower NaN-skipping route
            k = int(np.argmax(np.where(np.isnan(x), -np.inf, x)))
            if np.isnan(x.flat[k]):
                continue
        local = np.unravel_index(k, shape)
        flat = np.ravel_multi_index(tuple(s.start + i for s, i in zip(slices, local)),
                                    spec.shape)
        peaks[j] = (x.flat[k], float(flat))
    return peaks


_LOCK = threading.Lock()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _kernel_lock() -> Any:
    """Numba's "workqueue" threading layer must not launch parallel kernels from two threads
    at once; serialize launches only when that is the layer in use (omp/tbb are thread-safe)."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # not initialized yet: take the lock for the first launch
        return _LOCK
    return _LOCK if layer == "workqueue" else _NoLock()


def set_numba_threads(n: int) -> int:
    """Set the Numba threads of the calling thread (thread-local in Numba), capped by
    NUMBA_NUM_THREADS; return the number set."""
    import numba

    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    numba.set_num_threads(n)
    return n


def host_cores() -> tuple[str, int]:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return socket.gethostname(), cores


def available_cores() -> int:
    return host_cores()[1]


class Placement(NamedTuple):
    """Where a task ran and with how many threads: its worker's address, the host (the
    scheduler's name of it: the worker's address host), the host's cores, the Dask threads of
    every worker on that host as the task saw them, and the Numba threads it used."""

    worker: str
    host: str
    cores: int
    dask_threads: int
    numba_threads: int


def worker_host() -> tuple[str, str, int]:
    """(this worker's address, its host, its Dask threads); outside a worker ("", hostname,
    1)."""
    try:
        from distributed import get_worker
        from distributed.comm import get_address_host

        w = get_worker()
    except (ImportError, ValueError):  # not on a worker
        return "", socket.gethostname(), 1
    return str(w.address), str(get_address_host(w.address)), int(w.state.nthreads)


def task_numba_threads(host_threads: dict[str, int] | None) -> Placement:
    """The Numba threads of a task on this worker: the host's cores // the Dask threads of all
    the workers on this host (``host_threads``: host -> Dask threads, as the client last saw
    the cluster), at least 1. A host the client has not seen yet (a worker that has just
    joined) counts as full: 1 Numba thread, never more than its cores. Outside a worker (and
    with ``host_threads`` None) every core."""
    worker, host, own = worker_host()
    _, cores = host_cores()
    if not worker:
        return Placement("", host, cores, 1, cores)
    if host_threads is None or host not in host_threads:
        return Placement(worker, host, cores, cores, 1)
    threads = max(own, int(host_threads[host]))
    return Placement(worker, host, cores, threads, max(1, cores // threads))


def run_task(task: int, ctx: TaskContext, host_threads: dict[str, int] | None = None
             ) -> tuple[int, int, float, Placement]:
    """A Dask task: compute task ``task`` and write it into the store (chunk files, then the
    journal entry, both finished by the writer's flusher thread while the worker computes
    its next task; :func:`flush` waits for them). ``host_threads``: the Dask threads per host
    (:func:`task_numba_threads`). Returns (task, evaluations, seconds, placement). A
    worker whose kernel code differs from the store's, or a store that was created again
    since the run was planned, is refused
    before anything is written."""
    start = time.perf_counter()
    if ctx.kernels != kernels_digest():
        raise RuntimeError(f"this worker's qbfast kernels ({kernels_digest()[:12]}) differ "
                           f"from the store's ({ctx.kernels[:12]}); install the same qbfast")
    placement = task_numba_threads(host_threads)
    placement = placement._replace(numba_threads=set_numba_threads(placement.numba_threads))
    writer = task_writer(ctx.path, ctx.store_id, ctx.generation, ctx.run_id, ctx.durable,
                         ctx.lease or None)
    slices = ctx.slices(task)
    # the series in this thread's buffer: encoded and written to the chunk (or staging) files
    # by write_behind/stage below, before they return (only the flush and renames wait)
    data, peaks = compute_block(ctx.spec, slices, scratch=thread_scratch())
    delay = os.environ.get(DEBUG_DELAY_ENV)
    if delay:
        time.sleep(float(delay))
    if writer.info.grouped:
        # recorded before the task returns: the client merges a group once all its tasks
        # have returned
        writer.stage(task, data, peaks)
    else:
        writer.write_behind(task, data, peaks)  # recorded by the writer's flusher thread
    return (task, math.prod(s.stop - s.start for s in slices), time.perf_counter() - start,
            placement)


def flush(run_id: str) -> int:
    """On a worker, at the end of run ``run_id``: wait until every task it wrote is recorded
    (the writers' flusher threads, :meth:`qbfast.store.StoreWriter.write_behind`)."""
    from ..store.writer import flush_writers

    return flush_writers(run_id)


def merge_task(group: int, ctx: TaskContext) -> tuple[int, float]:
    """A Dask task of a grouped store: merge group ``group`` (its tasks' staging files into
    one chunk file per variable, then the group's journal entry; see
    :meth:`qbfast.store.writer.StoreWriter.merge`). Returns (group, seconds)."""
    start = time.perf_counter()
    if ctx.kernels != kernels_digest():
        raise RuntimeError(f"this worker's qbfast kernels ({kernels_digest()[:12]}) differ "
                           f"from the store's ({ctx.kernels[:12]}); install the same qbfast")
    writer = task_writer(ctx.path, ctx.store_id, ctx.generation, ctx.run_id, ctx.durable,
                         ctx.lease or None)
    writer.merge(group)
    return group, time.perf_counter() - start


def warm(ctx: TaskContext) -> int:
    """Load (or compile) the Numba kernel of this run once on a worker, so that the first tasks
    are not slowed down; open the store's writer."""
    import xarray as xr

    set_numba_threads(1)  # compiling needs no threads; the tasks choose theirs
    spec = ctx.spec
    g = spec.grid
    tiny = g.subgrid(tuple(slice(0, 1) for _ in g.swept) + (slice(0, 2),))
    if spec.keep_series:
        out = np.empty((len(g.metrics), tiny.n_points, tiny.t.size))
        with _kernel_lock():
            tiny.compute(out)
    if spec.reduce is not None and spec.keep_series:  # the NaN route included
        x = np.array([[0.0, 1.0, 0.0], [np.nan, 1.0, 0.0]])
        reduce_stats(x, np.arange(3.0), ("max", "min", "first_max"))
    if not spec.keep_series:
        assert spec.reduce is not None
        with _kernel_lock():
            reduce_grid(tiny, spec.reduce.stats, peak_metrics(spec))
    xr.Variable("x", np.zeros(1))
    task_writer(ctx.path, ctx.store_id, ctx.generation, ctx.run_id, ctx.durable,
                ctx.lease or None)
    return os.getpid()
