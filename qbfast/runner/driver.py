"""Distributed execution of a sweep spec: one Dask task per chunk, each writing its own region.

The client only plans and watches: it creates (or checks) the store, submits one task per
missing chunk with ``client.map``, and follows them with ``as_completed``. A task computes its
chunk with the Numba kernel (float64), reduces along t if asked, writes the chunk's region and
then its ``done`` marker into the store, and returns a few numbers; data never travel back
through the client. With [reduce] alone a task computes its (larger) chunk and reduces it in
one Numba call, block by block while each is in cache (:func:`qbfast.reduce.reduce_grid`); each
worker process keeps the store's chunk writers (:class:`qbfast.store.ChunkWriter`) from one
task to the next (keyed by the store's id, so a store created again at the same path is opened
again). Workers run Numba with ``numba_threads`` threads per Dask thread so that Dask threads
x Numba threads does not exceed the cores of a host.
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import xarray as xr

from .. import store as _store
from ..reduce import reduce_grid, reduce_stats
from .cluster import connect
from .spec import Spec, load_spec

#: Environment variable read by the tasks (fault-injection tests only): seconds to sleep
#: between computing a chunk and writing it, to widen the window in which a kill lands.
DEBUG_DELAY_ENV = "QBFAST_DEBUG_CHUNK_DELAY"


class RunError(RuntimeError):
    """A sweep that could not finish (a task failed); the store stays resumable."""


# ---- work of one chunk (runs on a worker) ------------------------------------------------------


def compute_chunk(spec: Spec, index: tuple[int, ...], block_bytes: int | None = None
                  ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Compute chunk ``index`` in float64.

    Returns ``(data, peaks)``: ``data[var]`` has the chunk's shape along ``var``'s dims;
    ``peaks`` is (n_peak_metrics, 2): value and flat index (in the full grid) of the chunk's
    maximum of each of ``qbfast.store.PEAK_METRICS`` present (NaN where all values are NaN).
    Without stored series ([reduce] alone) the chunk is computed and reduced in one Numba call
    (:func:`qbfast.reduce.reduce_grid`), in blocks of at most ``block_bytes`` (default
    ``qbfast.reduce.REDUCE_BLOCK_BYTES``); the results do not depend on it.
    """
    grid = spec.chunk_grid_request(index)
    slices = spec.chunk_slices(index)
    names = _store.peak_metrics(spec)
    if spec.keep_series:
        series = _compute_series(grid)
        data = _chunk_data(spec, grid, series, _reduced(spec, grid, series))
        return data, _peaks(spec, grid, series, slices, names)
    with _kernel_lock():
        reduced, local = reduce_grid(grid, spec.reduce.stats, names, block_bytes)
    data = {var.name: reduced[var.metric][var.suffix] for var in spec.variables()}
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


def _compute_series(grid: Any, buffer: np.ndarray | None = None) -> np.ndarray:
    """All metrics of ``grid``, float64, shape (n_metrics, *grid.shape), in the start of the
    1-D float64 ``buffer`` if given."""
    shape = (len(grid.metrics), grid.n_points, grid.t.size)
    if buffer is None:
        out = np.empty(shape)
    else:
        out = buffer[:math.prod(shape)].reshape(shape)
    with _kernel_lock():
        grid.compute(out)
    return out.reshape(len(grid.metrics), *grid.shape)


def _reduced(spec: Spec, grid: Any, series: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """metric -> suffix -> reduced array, for the metrics that [reduce] stores."""
    if spec.reduce is None:
        return {}
    metrics = sorted({v.metric for v in spec.variables() if v.stat is not None},
                     key=grid.metrics.index)
    return {m: reduce_stats(series[grid.metrics.index(m)], grid.t, spec.reduce.stats)
            for m in metrics}


def _chunk_data(spec: Spec, grid: Any, series: np.ndarray,
                reduced: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    data: dict[str, np.ndarray] = {}
    for var in spec.variables():
        if var.stat is None:
            data[var.name] = series[grid.metrics.index(var.metric)]
        else:
            data[var.name] = reduced[var.metric][var.suffix]
    return data


def _peaks(spec: Spec, grid: Any, series: np.ndarray, slices: tuple[slice, ...],
           names: tuple[str, ...]) -> np.ndarray | None:
    """(len(names), 2): value and flat index in the full grid of the first maximum of each
    metric over ``series`` (the sub-grid at ``slices``), NaN skipped; NaN rows if all NaN."""
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
_OPENER = ThreadPoolExecutor(1, thread_name_prefix="qbfast-open")


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

    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


def chunk_task(index: tuple[int, ...], path: str, spec: Spec, numba_threads: dict[str, int],
               kernels: str | None = None, identity: str | None = None
               ) -> tuple[tuple[int, ...], int, float]:
    """A Dask task: compute one chunk and write it (data, peaks, then ``done``) into the store.
    ``numba_threads``: host -> Numba threads per Dask thread; ``kernels``: the kernel digest
    the store was made with (a worker with other kernel code refuses); ``identity``: the
    store's id (:func:`qbfast.store.store_id`), under which the worker keeps the store's arrays
    open from one task to the next. Returns (index, evaluations, seconds)."""
    start = time.perf_counter()
    if kernels is not None and kernels != _store.kernels_digest():
        raise RuntimeError(f"this worker's qbfast kernels ({_store.kernels_digest()[:12]}) differ "
                           f"from the store's ({kernels[:12]}); install the same qbfast")
    set_numba_threads(task_numba_threads(numba_threads))
    # open the store's arrays (a worker's first task of a run) while the kernel computes: the
    # kernels release the GIL
    opener = _OPENER.submit(_store.chunk_writer, path, spec, identity)
    data, peaks = compute_chunk(spec, index)
    delay = os.environ.get(DEBUG_DELAY_ENV)
    if delay:
        time.sleep(float(delay))
    opener.result().write(index, data, peaks)
    evaluations = math.prod(s.stop - s.start for s in spec.chunk_slices(index))
    return index, evaluations, time.perf_counter() - start


def _warm(spec: Spec, numba_threads: dict[str, int]) -> int:
    """Load (or compile) the Numba kernel of this spec once on a worker, and import the
    store's writers, so that the first tasks are not slowed down."""
    import xarray.backends.zarr  # noqa: F401

    set_numba_threads(task_numba_threads(numba_threads))
    g = spec.grid
    swept = {k: v[:1] for k, v in g.swept.items()}
    from ..core import Grid

    tiny = Grid(g.model.name, g.t[:2], protocol=g.protocol,
                battery_hamiltonian=g.battery_hamiltonian, metrics=g.metrics,
                max_step=g.max_step, **swept, **g.fixed)
    if spec.keep_series:
        out = np.empty((len(g.metrics), tiny.n_points, tiny.t.size))
        with _kernel_lock():
            tiny.compute(out)
    if spec.reduce is not None and spec.keep_series:  # the NaN route included
        x = np.array([[0.0, 1.0, 0.0], [np.nan, 1.0, 0.0]])
        reduce_stats(x, np.arange(3.0), ("max", "min", "first_max"))
    if not spec.keep_series:
        with _kernel_lock():
            reduce_grid(tiny, spec.reduce.stats, _store.peak_metrics(spec))
    # xarray imports its duck-array modules (dask.array: ~0.35 s) on the first Variable a
    # process makes; without this the first task of every worker paid for it in write_chunk
    xr.Variable("x", np.zeros(1))
    return os.getpid()


def _host_cores() -> tuple[str, int]:
    import socket

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return socket.gethostname(), cores


def available_cores() -> int:
    return _host_cores()[1]


def numba_threads_for(client: Any) -> dict[str, int]:
    """Numba threads per Dask thread on each host: cores // (Dask threads of all workers on
    that host), at least 1. Tasks look up their host (see :func:`task_numba_threads`)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    hosts = client.run(_host_cores)
    threads: dict[str, int] = {}
    cores: dict[str, int] = {}
    for addr, w in workers.items():
        if addr in hosts:
            host, n = hosts[addr]
            threads[host] = threads.get(host, 0) + int(w["nthreads"])
            cores[host] = n
    return {h: max(1, cores[h] // threads[h]) for h in threads}


def task_numba_threads(per_host: dict[str, int]) -> int:
    """Numba threads for a task on this worker: the planned value of its host, else (a worker
    that joined later) cores // this worker's Dask threads."""
    host, cores = _host_cores()
    if host in per_host:
        return per_host[host]
    try:
        from distributed import get_worker

        return max(1, cores // get_worker().state.nthreads)
    except ValueError:  # not on a worker
        return cores


# ---- progress --------------------------------------------------------------------------------

def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class Progress:
    """A one-line progress bar on ``stream``: chunks done/total, points/s, ETA. On a terminal
    it redraws in place; otherwise it prints a line at most every ``every`` seconds."""

    def __init__(self, total_chunks: int, done_chunks: int, total_evaluations: int,
                 stream: IO[str] | None, every: float = 5.0) -> None:
        self.total = total_chunks
        self.done = done_chunks
        self.todo_evaluations = total_evaluations
        self.evaluations = 0
        self.stream = stream
        self.tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        self.every = 0.2 if self.tty else every
        self.start = time.perf_counter()
        self.last = -math.inf

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.evaluations / elapsed if elapsed > 0 else 0.0
        left = self.todo_evaluations - self.evaluations
        eta = left / rate if rate > 0 else math.inf
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} chunks  "
                f"{rate / 1e6:6.2f} M points/s  ETA {_fmt_duration(eta)}")

    def update(self, chunks: int, evaluations: int) -> None:
        self.done += chunks
        self.evaluations += evaluations
        now = time.perf_counter()
        if self.stream is None:
            return
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            end = "" if self.tty else "\n"
            prefix = "\r" if self.tty else ""
            self.stream.write(f"{prefix}{self.line()}{end}")
            self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ---- the run ---------------------------------------------------------------------------------

@dataclass
class RunReport:
    """What a run did; ``status`` is "complete" (nothing to do), "created" or "resumed"."""

    store: Path
    spec: Spec
    status: str
    chunks_total: int
    chunks_computed: int = 0
    evaluations: int = 0
    wall_s: float = 0.0
    compute_s: float = 0.0  # from the first submitted task to the last finished one
    bytes_on_disk: int = 0
    peaks: dict[str, tuple[float, dict[str, float]]] = field(default_factory=dict)
    workers: int = 0
    numba_threads: int = 0

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


def prepare(spec: Spec, path: Path, overwrite: bool = False) -> list[tuple[int, ...]] | None:
    """Make ``path`` ready for ``spec``; return the missing chunks, or None if the store is
    already complete. Refuses a store made from another spec (untouched) unless overwrite."""
    if path.exists() or path.is_symlink():
        if overwrite:
            _store.remove(path)
        else:
            _store.check_spec(path, spec)
            if _store.is_complete(path):
                return None
            _store.remove_partial_files(path)
    if not path.exists():
        _store.remove_stale_builds(path)
        _store.create(spec, path)
    return _store.missing_chunks(path, spec)


def execute(spec: Spec | str | Path, store: str | Path | None = None, client: Any = None, *,
            scheduler: str | None = None, n_workers: int | None = None,
            threads_per_worker: int | None = None, overwrite: bool = False,
            progress: IO[str] | None = None, connect_timeout: float | str = "20s") -> RunReport:
    """Run (or resume) a sweep into ``store`` and report what was done.

    ``client``: a ``distributed.Client`` to use; else ``scheduler`` (an address such as
    ``tcp://host:8786``) to connect to; else a ``LocalCluster`` of ``n_workers`` processes
    (default: one per core) with ``threads_per_worker`` threads (default 1), closed at the end.
    Order: the spec and an existing store are checked first (read-only), then the cluster is
    reached, and only then is the store created or cleaned; a complete store starts nothing.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    path = Path(store) if store is not None else default_store(spec)
    start = time.perf_counter()
    report = RunReport(store=path, spec=spec, status="created", chunks_total=spec.n_chunks)
    existing = (path.exists() or path.is_symlink()) and not overwrite
    if existing:
        report.status = "resumed"
        _store.check_spec(path, spec)
        if _store.is_complete(path):
            report.status = "complete"
    if report.status != "complete":
        if existing and not _store.missing_chunks(path, spec):
            missing: list[tuple[int, ...]] | None = []  # all written; only the flag is unset
        else:
            with connect(client, scheduler, n_workers, threads_per_worker,
                         connect_timeout, progress) as c:
                missing = prepare(spec, path, overwrite)
                if missing:
                    _distribute(spec, path, missing, report, c, progress)
        if missing is not None and not _store.mark_complete(path):  # pragma: no cover
            raise RunError(f"{path}: chunks are still missing after the run; run it again")
    report.wall_s = time.perf_counter() - start
    report.bytes_on_disk = _store.bytes_on_disk(path)
    report.peaks = _store.peaks(path, spec)
    return report


def _distribute(spec: Spec, path: Path, missing: list[tuple[int, ...]], report: RunReport,
                client: Any, stream: IO[str] | None) -> None:
    """Submit one task per missing chunk and follow them to the end."""
    from distributed import as_completed

    if not client.scheduler_info()["workers"]:
        client.wait_for_workers(1, timeout=120)
    numba_threads = numba_threads_for(client)
    report.workers = len(client.scheduler_info(n_workers=-1)["workers"])
    report.numba_threads = min(numba_threads.values(), default=1)
    try:
        client.run(_warm, spec, numba_threads)
    except Exception as e:  # e.g. a worker without qbfast, or another version of it
        raise RunError(f"the workers cannot run qbfast kernels ({type(e).__name__}: {e}); "
                       f"install the same qbfast in the workers' environment") from e
    [spec_future] = client.scatter([spec], broadcast=True, hash=False)
    todo = sum(math.prod(s.stop - s.start for s in spec.chunk_slices(i)) for i in missing)
    bar = Progress(spec.n_chunks, spec.n_chunks - len(missing), todo, stream)
    submitted = time.perf_counter()
    kernels = _store.read_attrs(path).get("kernels_digest")
    identity = _store.store_id(path)
    futures = client.map(chunk_task, missing, path=str(path), spec=spec_future,
                         numba_threads=numba_threads, kernels=kernels, identity=identity,
                         pure=False, retries=1)
    try:
        for fut in as_completed(futures):
            if fut.status != "finished":
                exc = fut.exception() if fut.status == "error" else None
                what = f"{type(exc).__name__}: {exc}" if exc is not None else fut.status
                raise RunError(f"{path}: a chunk task failed ({what}); the store is resumable:"
                               f" run the same command again") from exc
            _, evaluations, _ = fut.result()
            report.chunks_computed += 1
            report.evaluations += evaluations
            bar.update(1, evaluations)
            fut.release()
        report.compute_s = time.perf_counter() - submitted
    finally:
        bar.close()
        client.cancel([f for f in futures if not f.done()])


def run(spec: Spec | str | Path, store: str | Path | None = None, client: Any = None, *,
        overwrite: bool = False, **kwargs: Any) -> xr.Dataset:
    """Run (or resume) the sweep of ``spec`` (a path or a :class:`~qbfast.runner.spec.Spec`) into
    the Zarr store ``store`` (default ``<spec name>.zarr`` in the working directory) and
    return the store opened lazily with ``xr.open_zarr``.

    ``client``: an existing ``distributed.Client``; by default a ``LocalCluster`` is started
    and closed. Other keywords go to :func:`execute` (``scheduler``, ``n_workers``,
    ``threads_per_worker``, ``progress``).
    """
    report = execute(spec, store, client, overwrite=overwrite, **kwargs)
    return xr.open_zarr(report.store)


__all__ = ["run", "execute", "compute_chunk", "chunk_task", "RunReport", "RunError", "Progress"]
