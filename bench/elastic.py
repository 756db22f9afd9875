"""Runs on a changing cluster: real ``dask scheduler`` / ``dask worker`` processes, and a model of
1,000 workers.

    python -m bench.elastic                  # the four parts, about 5 minutes here
    python -m bench.elastic --quick          # small and short (not recorded): 1-2 minutes
    python -m bench.elastic --skip-restart   # without part 3

Parts 1-3 start real processes on 127.0.0.1: a ``dask scheduler`` and single-threaded
``dask worker --nthreads 1`` processes, and a ``qbfast run --scheduler`` subprocess. This
machine has 2 cores shared with other jobs, so at most 3 workers run at once, and each task
of the spec (the cavity spec of ``tests/runner/test_elastic.py``, 2 x J2 tasks of 51 times)
computes a few microseconds and then sleeps ``--delay`` seconds on the worker
(``QBFAST_DEBUG_CHUNK_DELAY``, inside the task, before its chunk is written): a task lasts the
same on a loaded machine as on an idle one. These parts measure the orchestration (the
window, the scheduler, churn), not the kernels: ``bench.scale`` and ``bench.sweeps`` do that.

1. **Workers joining mid-run.** A scheduler and 1 worker; the run starts; once its first task
   is recorded, a worker joins every ``--join-every`` seconds until ``--workers`` are present.
   Every ``--sample`` seconds a separate ``distributed.Client`` (this process) asks the
   scheduler which workers are running (``scheduler_info``) and each worker how many tasks it
   is executing (``client.run`` of ``dask_worker.state.executing_count``: the worker's own
   state, a task counts from the moment its thread starts it). A worker joins when the
   scheduler first lists it. From each join to the tail (the first sample at which the
   journal holds at least all tasks but one per present worker: no task is then left to
   start), it reports the fraction of worker time busy (sum of executing workers / sum of
   present workers over the samples) and the fraction of samples in which every present
   worker was busy (the issue's target: >= 90 %). The journal is written by the workers'
   flushers a moment after a task ends, so the tail is found a little late: that errs toward
   idle samples, not busy ones.
2. **Workers rotating.** ``--rotate-workers`` workers (with a nanny) run the same spec twice
   in one bench run: once fixed, once with ``--lifetime 20s --lifetime-stagger 2s
   --lifetime-restart``. Throughput: the tasks recorded after the first one x points per task /
   seconds from the first recorded task to the command's exit; the ratio rotating / fixed is
   printed (target >= 0.8x). The data chunk files of the two stores (and of part 1's) are
   compared bit for bit.
3. **A scheduler restart.** 2 workers (no nanny); the run once without restart, then once
   with the scheduler SIGKILLed when a third of the tasks are recorded and started again on
   its port ``--restart-after`` seconds later, with 2 new workers (as a job script's loop
   would start them). Time lost = that run's wall time - the uninterrupted run's. Bounded by
   ``--restart-timeout``: a run that does not finish in time is recorded as such
   (``finished: no``) and killed.
4. **The model of 1,000 workers** (no processes): :func:`simulate`, the driver's rules
   (:data:`qbfast.runner.driver.WINDOW_PER_THREAD` x the Dask threads seen at the last
   refresh, every :data:`qbfast.runner.driver.REFRESH_S`), the planner's tasks
   (:mod:`qbfast.runner.plan`, at its measured rate), workers arriving evenly over
   ``--arrive-over`` seconds, each leaving at its ``--lifetime`` (walltime -
   :func:`qbfast.runner.cluster.lifetime_margin`, staggered as ``dask worker`` does, +- the
   stagger), a task whose worker leaves losing its work so far and running again first, and
   (optional) each leaving job replaced after a queue wait. The client's cost, measured here:
   CPU seconds per finished task (a run of tasks that do not sleep, on 2 workers: the
   ``qbfast run`` process's CPU time between its first and last recorded task over the tasks
   in between, its polling and refreshes included), its other CPU per second (part 1's CPU
   less its tasks' share), and seconds per refresh (``scheduler_info`` timed with part 1's
   workers, plus the decoding of N worker entries, timed on copies of a real one; the
   scheduler's own cost of building N entries is not included). The client's load at the
   peak = workers / task seconds x CPU per task + other CPU per second + the refreshes' extra
   decoding. Merge tasks of grouped stores are left out (I/O of a few ms each).

Not a test: timings depend on the machine and its load (``tests/bench/test_elastic.py`` runs
``--quick`` and checks its fields, and checks the model on hand-computed cases).
"""

from __future__ import annotations

import argparse
import functools
import heapq
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DASK = str(Path(sys.executable).with_name("dask"))

SPEC = """model = "cavity"
metrics = ["energy", "ergotropy"]
dtype = "float32"
[params]
n = [1, 2]
J2 = {{ start = -1.0, stop = 2.0, num = {n} }}
t = {{ start = 0.0, stop = 5.0, num = 51 }}
[chunks]
n = 1
J2 = 1
"""  # 2 x n tasks of 51 points each


# ---- part 4: the model (pure) -----------------------------------------------------------------

#: Event kinds in the order they are handled at one instant: a worker that arrives is seen by
#: a refresh at the same instant, and a task that ends when its worker leaves is finished.
_ARRIVE, _FINISH, _LEAVE, _REFRESH = 0, 1, 2, 3


@dataclass
class ModelResult:
    """What :func:`simulate` found. Times in seconds from the run's start; work in
    worker-seconds (a worker is one Dask thread)."""

    finish_s: float  # the last task's end (inf: not finished by the horizon)
    tasks: int
    work_s: float  # sum of the task durations: the work the scan needs
    lost_s: float  # work done by tasks whose worker left before they ended
    lost_runs: int  # task runs cut short by their worker's exit (each is run again)
    completions: int
    refreshes: int
    workers_max: int
    busy_s: float  # worker-seconds executing, to the end
    present_s: float  # worker-seconds present, to the end
    busy_left_s: float  # the same while tasks were left to start (queued or not submitted)
    present_left_s: float
    tail_start_s: float  # the last time at which no task was left to start
    bins: list[dict[str, float]] = field(default_factory=list)

    @property
    def busy_fraction(self) -> float:
        return self.busy_s / self.present_s if self.present_s else 0.0

    @property
    def busy_fraction_while_tasks_left(self) -> float:
        return self.busy_left_s / self.present_left_s if self.present_left_s else 0.0


def simulate(task_seconds: Sequence[float] | np.ndarray, arrivals: Sequence[float] | np.ndarray,
             lifetimes: Sequence[float] | np.ndarray, *, window_per_thread: int | None = None,
             refresh_s: float | None = None, replace_after_s: float | None = None,
             bin_s: float = 60.0, horizon_s: float = 1e7) -> ModelResult:
    """A run of tasks lasting ``task_seconds`` (in order) on workers of one Dask thread that
    arrive at ``arrivals`` and leave ``lifetimes`` later (``inf``: never), by the driver's rules:

    - the client refreshes its view of the cluster at t = 0 and every ``refresh_s``
      (default :data:`qbfast.runner.driver.REFRESH_S`) and keeps ``max(2, window_per_thread x
      threads seen)`` tasks in flight (default :data:`~qbfast.runner.driver.WINDOW_PER_THREAD`;
      none while it sees no thread), refilled as tasks finish and at each refresh;
    - tasks in flight wait at the scheduler, oldest first, and start at once on an idle worker
      (no scheduler or network latency: an ideal scheduler);
    - a worker that leaves mid-task loses that task's work so far; the task stays in flight and
      runs again first (the scheduler reschedules it); with ``replace_after_s``, the job is
      replaced: a new worker arrives that much later, with the next lifetime of the sequence.

    Deterministic. ``bins``: per ``bin_s`` interval, its start, the mean workers present and
    busy, and the busy fraction. Stops at ``horizon_s`` (``finish_s`` inf) or when no worker is
    left nor coming.
    """
    from qbfast.runner.driver import REFRESH_S, WINDOW_PER_THREAD

    per_thread = WINDOW_PER_THREAD if window_per_thread is None else window_per_thread
    every = REFRESH_S if refresh_s is None else refresh_s
    if len(arrivals) != len(lifetimes):
        raise ValueError(f"lifetimes: expected one per arrival ({len(arrivals)}), got "
                         f"{len(lifetimes)}")
    if every <= 0 or bin_s <= 0:
        raise ValueError("refresh_s, bin_s: expected seconds > 0")
    n_tasks = len(task_seconds)
    if not n_tasks:
        raise ValueError("task_seconds: expected at least one task")
    events: list[tuple[float, int, int, int, int]] = []  # (time, kind, order, worker, token)
    order = 0

    def push(t: float, kind: int, worker: int = -1, token: int = 0) -> None:
        nonlocal order
        heapq.heappush(events, (t, kind, order, worker, token))
        order += 1

    lifetime_of: dict[int, float] = {}
    for w, (a, life) in enumerate(zip(arrivals, lifetimes)):
        lifetime_of[w] = life
        push(float(a), _ARRIVE, w)
    n_workers = len(arrivals)
    push(0.0, _REFRESH)
    present: set[int] = set()
    idle: deque[int] = deque()
    running: dict[int, tuple[int, float, int]] = {}  # worker -> (task, start, token)
    queue: deque[int] = deque()
    next_task = 0
    window = 0
    done = 0
    token = 0
    lost_s = 0.0
    lost_runs = refreshes = workers_max = 0
    busy_s = present_s = busy_left_s = present_left_s = 0.0
    tail_start = -1.0  # unset while a task is left to start
    bins_busy: dict[int, float] = {}
    bins_present: dict[int, float] = {}
    last = 0.0
    finish = math.inf
    others = n_workers  # pending arrive / finish / leave events

    def account(now: float) -> None:
        nonlocal last, busy_s, present_s, busy_left_s, present_left_s
        if now <= last:
            return
        b, p = len(running), len(present)
        busy_s += b * (now - last)
        present_s += p * (now - last)
        if queue or next_task < n_tasks:
            busy_left_s += b * (now - last)
            present_left_s += p * (now - last)
        t = last
        while t < now:
            k = int(t // bin_s)
            end = min(now, (k + 1) * bin_s)
            bins_busy[k] = bins_busy.get(k, 0.0) + b * (end - t)
            bins_present[k] = bins_present.get(k, 0.0) + p * (end - t)
            t = end
        last = now

    def refill() -> None:
        nonlocal next_task
        while len(queue) + len(running) < window and next_task < n_tasks:
            queue.append(next_task)
            next_task += 1

    def dispatch(now: float) -> None:
        nonlocal token, others, tail_start
        while idle and queue:
            w = idle.popleft()
            if w not in present or w in running:
                continue
            task = queue.popleft()
            token += 1
            running[w] = (task, now, token)
            push(now + float(task_seconds[task]), _FINISH, w, token)
            others += 1
        if tail_start < 0 and not queue and next_task >= n_tasks:
            tail_start = now

    while events:
        now, kind, _, w, tok = heapq.heappop(events)
        if now > horizon_s:
            account(horizon_s)
            break
        account(now)
        if kind != _REFRESH:
            others -= 1
        if kind == _ARRIVE:
            present.add(w)
            idle.append(w)
            workers_max = max(workers_max, len(present))
            if math.isfinite(lifetime_of[w]):
                push(now + lifetime_of[w], _LEAVE, w)
                others += 1
        elif kind == _FINISH:
            if running.get(w, (0, 0.0, -1))[2] != tok:
                continue  # its worker left before: the run was lost
            task, start, _ = running.pop(w)
            done += 1
            idle.append(w)
            if done == n_tasks:
                finish = now
                break
        elif kind == _LEAVE:
            present.discard(w)
            if w in running:
                task, start, _ = running.pop(w)
                lost_s += now - start
                lost_runs += 1
                queue.appendleft(task)
                tail_start = -1.0
            if replace_after_s is not None:
                new = n_workers
                n_workers += 1
                lifetime_of[new] = lifetimes[new % len(lifetimes)]
                push(now + replace_after_s, _ARRIVE, new)
                others += 1
        else:
            refreshes += 1
            threads = len(present)
            window = max(2, per_thread * threads) if threads else 0
            if others == 0 and not present:
                break  # nobody left, nobody coming: never finishes
            push(now + every, _REFRESH)
        refill()
        dispatch(now)
    bins = [{"t_s": k * bin_s, "present": bins_present[k] / bin_s,
             "busy": bins_busy.get(k, 0.0) / bin_s,
             "busy_fraction": (bins_busy.get(k, 0.0) / bins_present[k]
                               if bins_present[k] else 0.0)}
            for k in sorted(bins_present)]
    return ModelResult(finish_s=finish, tasks=n_tasks, work_s=float(np.sum(task_seconds)),
                       lost_s=lost_s, lost_runs=lost_runs, completions=done,
                       refreshes=refreshes, workers_max=workers_max, busy_s=busy_s,
                       present_s=present_s, busy_left_s=busy_left_s,
                       present_left_s=present_left_s, tail_start_s=tail_start, bins=bins)


def stagger_offsets(n: int) -> np.ndarray:
    """``n`` offsets in [-1, 1), spread evenly (golden-ratio sequence): the deterministic
    stand-in for ``dask worker``'s ``uniform(-1, 1) x --lifetime-stagger``."""
    golden = (math.sqrt(5) - 1) / 2
    return 2 * ((np.arange(1, n + 1) * golden) % 1.0) - 1


def cluster_arrivals(workers: int, arrive_over_s: float, walltime_s: float | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Workers arriving evenly over ``arrive_over_s`` (the first at 0) and their lifetimes:
    walltime - margin - stagger, +- the stagger (:func:`qbfast.runner.cluster.lifetime_margin`,
    as ``Jobqueue.kwargs`` sets them); ``walltime_s`` None: they never leave."""
    from qbfast.runner.cluster import lifetime_margin

    arrivals = np.arange(workers) * (arrive_over_s / workers)
    if walltime_s is None:
        return arrivals, np.full(workers, math.inf)
    lifetime, stagger = lifetime_margin(walltime_s)
    return arrivals, lifetime + stagger * stagger_offsets(workers)


def planned_task_seconds(text: str, cores_per_worker: int = 1) -> tuple[np.ndarray, Any]:
    """Each task's duration on a worker, by the planner: the spec's tasks (as ``qbfast run``
    cuts them) at the planner's measured rate per core (:attr:`Plan.rate`), on
    ``cores_per_worker`` Numba threads (perfect scaling assumed)."""
    from qbfast.runner.spec import parse_spec

    spec = parse_spec(text, name="model")
    plan = spec.plan()
    assert tuple(plan.chunks) == tuple(spec.chunks), (plan.chunks, spec.chunks)
    grid = plan.chunk_grid
    coords = np.unravel_index(np.arange(plan.n_tasks), grid)
    points = np.ones(plan.n_tasks, dtype=np.float64)
    for c, chunk, size in zip(coords, plan.chunks, plan.shape):
        points *= np.minimum((c + 1) * chunk, size) - c * chunk
    return points / plan.rate / cores_per_worker, plan


def refresh_cost_s(measured_s: float, measured_workers: int, per_worker_s: float,
                   workers: int) -> float:
    """Seconds of one ``scheduler_info`` refresh at ``workers``: the measured call, plus the
    decoding of the extra worker entries."""
    return measured_s + max(0, workers - measured_workers) * per_worker_s


def model_row(name: str, text: str, workers: int, arrive_over_s: float,
              walltime_s: float | None, replace_after_s: float | None,
              completion_cost_s: float, idle_cpu_per_s: float, refresh_measured_s: float,
              refresh_workers: int, per_worker_s: float, bin_s: float = 300.0
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One scenario of the model: a summary row and its busy fraction over time."""
    from qbfast.runner.driver import REFRESH_S

    durations, plan = planned_task_seconds(text)
    arrivals, lifetimes = cluster_arrivals(workers, arrive_over_s, walltime_s)
    r = simulate(durations, arrivals, lifetimes, replace_after_s=replace_after_s, bin_s=bin_s)
    refresh = refresh_cost_s(refresh_measured_s, refresh_workers, per_worker_s, workers)
    peak_completions = workers / float(np.mean(durations))
    row = {"table": "model", "scan": name, "points": int(np.prod(plan.shape)),
           "tasks": r.tasks, "task_s": float(np.mean(durations)), "workers": workers,
           "arrive_over_s": arrive_over_s,
           "walltime_s": walltime_s if walltime_s is not None else "none",
           "replaced_after_s": replace_after_s if replace_after_s is not None else "no",
           "finish_s": r.finish_s, "ideal_finish_s": r.work_s / workers,
           "busy_fraction": r.busy_fraction,
           "busy_fraction_while_tasks_left": r.busy_fraction_while_tasks_left,
           "lost_worker_s": r.lost_s, "lost_fraction": r.lost_s / r.work_s,
           "lost_runs": r.lost_runs, "refreshes": r.refreshes,
           "client_s_per_completion": completion_cost_s, "client_s_per_refresh": refresh,
           "client_idle_cpu_per_s": idle_cpu_per_s,
           "completions_per_s_at_peak": peak_completions,
           # the completions, the time-driven work measured with a few workers, and the
           # refreshes' extra decoding at ``workers``
           "client_load_at_peak": (peak_completions * completion_cost_s + idle_cpu_per_s
                                   + (refresh - refresh_measured_s) / REFRESH_S)}
    bins = [{"table": f"model busy: {name}", **b} for b in r.bins]
    return row, bins


# ---- parts 1-3: real processes ----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


class Processes:
    """A scheduler, its workers and a ``qbfast run``, each in its own session with its log in
    ``directory``; :meth:`close` kills what is left."""

    def __init__(self, directory: Path, delay: float) -> None:
        self.directory = directory
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        # the workers and the run import this checkout's qbfast (and bench, for client.run)
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "PYTHONUNBUFFERED": "1"}
        self.delay = delay

    def start(self, args: list[str], name: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen:
        with open(self.directory / f"{name}.log", "a") as log:
            p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                 env={**self.env, **(env or {})}, start_new_session=True,
                                 cwd=self.directory)
        self.procs.append(p)
        return p

    def scheduler(self) -> subprocess.Popen:
        p = self.start([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                        "--no-dashboard"], "scheduler")
        _wait_for(lambda: _listening(self.port) or p.poll() is not None, 60, "the scheduler")
        if p.poll() is not None:
            raise RuntimeError((self.directory / "scheduler.log").read_text()[-2000:])
        return p

    def worker(self, name: str, *extra: str, nanny: bool = False) -> subprocess.Popen:
        from qbfast.runner.tasks import DEBUG_DELAY_ENV

        return self.start([DASK, "worker", self.address, "--nthreads", "1", "--no-dashboard",
                           "--host", "127.0.0.1", "--name", name,
                           *([] if nanny else ["--no-nanny"]), *extra],
                          f"worker-{name}", env={DEBUG_DELAY_ENV: f"{self.delay:g}"})

    def run(self, spec: Path, store: Path, name: str, timeout: float = 60) -> subprocess.Popen:
        return self.start([sys.executable, "-m", "qbfast", "run", str(spec), "--store",
                           str(store), "--scheduler", self.address, "--timeout", f"{timeout:g}"],
                          name)

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()


def _recorded(store: Path) -> int:
    """Tasks whose DONE entry is in the store's journals (0 before the store exists)."""
    from bench.scale import _entries
    from qbfast.store.record import entry_dtype

    # the cavity spec: 2 data variables (energy, ergotropy), 2 peak metrics
    return _entries(store, entry_dtype(2, 2))


def data_files(path: Path) -> dict[str, bytes]:
    """Every chunk file of a store's arrays (data variables and coordinates) by relative path;
    metadata (zarr.json: store id, creation time) and the bookkeeping group are left out."""
    from qbfast.store import META

    out = {}
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if (p.is_file() and p.name != "zarr.json" and not rel.startswith(META + "/")
                and not p.name.endswith(".partial")):
            out[rel] = p.read_bytes()
    return out


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (nan once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return math.nan


def _executing(dask_worker: Any) -> int:
    return int(dask_worker.state.executing_count)


class Sampler:
    """Every ``every`` seconds, in a thread: the running workers (by name) as the scheduler
    lists them, the tasks each is executing (asked of the worker itself), the tasks recorded in
    the store's journal, and the ``qbfast run`` process's CPU seconds."""

    def __init__(self, address: str, store: Path, pid: int, every: float) -> None:
        from distributed import Client

        self.client = Client(address, timeout="30s")
        self.store, self.pid, self.every = store, pid, every
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                workers = self.client.scheduler_info(n_workers=-1)["workers"]
                executing = self.client.run(_executing, on_error="return")
            except Exception:  # the cluster changing under the call
                workers, executing = {}, {}
            names = {a: str(w.get("name", a)) for a, w in workers.items()
                     if w.get("status", "running") == "running"}
            self.samples.append({
                "t": t, "present": sorted(names.values()),
                "busy": sorted(names[a] for a, n in executing.items()
                               if a in names and isinstance(n, int) and n > 0),
                "recorded": _recorded(self.store), "cpu_s": _cpu_s(self.pid)})
            self._stop.wait(max(0.0, self.every - (time.monotonic() - t)))

    def time_refresh(self, calls: int = 20) -> tuple[float, int, float]:
        """(median seconds of one ``scheduler_info(n_workers=-1)`` call, workers listed,
        seconds to decode one more worker entry): the driver's refresh."""
        import msgpack  # type: ignore[import-untyped]

        seconds = []
        info: Any = {}
        for _ in range(calls):
            t0 = time.perf_counter()
            info = self.client.scheduler_info(n_workers=-1)
            seconds.append(time.perf_counter() - t0)
        workers = info.get("workers", {})
        entry: Any = next(iter(workers.values()), {})
        many = msgpack.dumps({f"tcp://10.0.{i // 250}.{i % 250}:4000{i}": entry
                              for i in range(1000)}, default=str)
        t0 = time.perf_counter()
        for _ in range(5):
            msgpack.loads(many, strict_map_key=False, use_list=False)  # as distributed
        per_worker = (time.perf_counter() - t0) / 5 / 1000
        return statistics.median(seconds), len(workers), per_worker

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.close()


def join_figures(samples: list[dict[str, Any]], joins: dict[str, float], n_tasks: int
                 ) -> list[dict[str, Any]]:
    """Per join (worker name -> time the scheduler first listed it), over the samples from the
    join to the tail (the first sample whose journal count is >= n_tasks - present workers):
    the fraction of worker time busy and of samples with every present worker busy."""
    tail = next((s["t"] for s in samples
                 if s["present"] and s["recorded"] >= n_tasks - len(s["present"])), math.inf)
    rows = []
    for name, at in sorted(joins.items(), key=lambda kv: kv[1]):
        window = [s for s in samples if at <= s["t"] < tail and s["present"]]
        busy = sum(len(s["busy"]) for s in window)
        present = sum(len(s["present"]) for s in window)
        full = sum(len(s["busy"]) == len(s["present"]) for s in window)
        rows.append({"table": "joins", "worker": name, "joined_at_s": at - samples[0]["t"],
                     "samples": len(window), "seconds_to_tail": tail - at,
                     "busy_fraction": busy / present if present else math.nan,
                     "all_busy_fraction": full / len(window) if window else math.nan})
    return rows


def part_joins(work: Path, spec: Path, n_tasks: int, workers: int, join_every: float,
               delay: float, sample: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Part 1 (see the module docstring). Returns the join rows and the client costs."""
    procs = Processes(work / "joins", delay)
    procs.directory.mkdir()
    store = work / "joins.zarr"
    try:
        procs.scheduler()
        procs.worker("w1")
        start = time.monotonic()
        run = procs.run(spec, store, "run")
        sampler = Sampler(procs.address, store, run.pid, sample)
        try:
            _wait_for(lambda: _recorded(store) >= 1 or run.poll() is not None, 300,
                      "a first task")
            for k in range(2, workers + 1):
                end = time.monotonic() + join_every
                while time.monotonic() < end and run.poll() is None:
                    time.sleep(0.05)
                if run.poll() is not None:
                    break
                procs.worker(f"w{k}")
            rc = run.wait(600)
            wall = time.monotonic() - start
            refresh = sampler.time_refresh()
        finally:
            sampler.stop()
    finally:
        procs.close()
    if rc != 0:
        raise RuntimeError(f"part 1: qbfast run rc {rc}: "
                           f"{(procs.directory / 'run.log').read_text()[-2000:]}")
    samples = sampler.samples
    joins: dict[str, float] = {}
    for s in samples:
        for name in s["present"]:
            joins.setdefault(name, s["t"])
    joined = {n: t for n, t in joins.items() if n != "w1"}
    rows = join_figures(samples, joined, n_tasks)
    # the client's CPU seconds, per second and per finished task, between the first and the
    # last recorded task
    live = [s for s in samples if s["cpu_s"] == s["cpu_s"] and s["recorded"] >= 1]
    cpu = tasks = seconds = math.nan
    if len(live) >= 2 and live[-1]["recorded"] > live[0]["recorded"]:
        cpu = live[-1]["cpu_s"] - live[0]["cpu_s"]
        tasks = live[-1]["recorded"] - live[0]["recorded"]
        seconds = live[-1]["t"] - live[0]["t"]
    first = next((s["t"] for s in samples if s["recorded"] >= 1), samples[-1]["t"])
    all_rows = join_figures(samples, {"(all, from the first task)": first}, n_tasks)
    for r in rows + all_rows:
        r.update({"workers": workers, "run_wall_s": wall})
    costs = {"run_cpu_s": cpu, "run_tasks": tasks, "run_seconds": seconds,
             "refresh_s": refresh[0],
             "refresh_workers": refresh[1], "per_worker_decode_s": refresh[2],
             "store": store}
    return rows + all_rows, costs


def client_cost(work: Path, n_tasks: int, sample: float = 0.1) -> dict[str, float]:
    """The ``qbfast run`` client's CPU seconds per finished task: ``n_tasks`` tasks that do not
    sleep on 2 workers (as many completions per second as this machine allows), its CPU time
    (/proc) between the first and the last sample with a recorded task, over the tasks
    recorded in between (its time-driven work, refreshes and polling, is included: an upper
    bound)."""
    procs = Processes(work / "cost", 0.0)
    procs.directory.mkdir()
    spec = work / "cost.toml"
    spec.write_text(SPEC.format(n=n_tasks // 2))
    store = work / "cost.zarr"
    seen: list[tuple[float, int, float]] = []
    try:
        procs.scheduler()
        procs.worker("c1")
        procs.worker("c2")
        run = procs.run(spec, store, "run")
        deadline = time.monotonic() + 300
        while run.poll() is None and time.monotonic() < deadline:
            k, cpu = _recorded(store), _cpu_s(run.pid)
            if k and cpu == cpu:
                seen.append((time.monotonic(), k, cpu))
            time.sleep(sample)
        rc = run.wait(15)
    finally:
        procs.close()
    if rc != 0 or len(seen) < 2 or seen[-1][1] <= seen[0][1]:
        raise RuntimeError(f"client cost: qbfast run rc {rc}, {len(seen)} samples: "
                           f"{(procs.directory / 'run.log').read_text()[-2000:]}")
    (t0, k0, c0), (t1, k1, c1) = seen[0], seen[-1]
    return {"client_s_per_completion": (c1 - c0) / (k1 - k0),
            "completions_per_s": (k1 - k0) / (t1 - t0), "cost_tasks": n_tasks}


def _timed_run(procs: Processes, spec: Path, store: Path, name: str, timeout: float,
               on_third: Any = None, n_tasks: int = 0) -> dict[str, Any]:
    """Start ``qbfast run`` on ``procs``'s scheduler, poll its journal every 0.05 s, call
    ``on_third()`` once a third of the tasks are recorded, and wait for it at most
    ``timeout`` seconds (then kill it)."""
    start = time.monotonic()
    run = procs.run(spec, store, name)
    first: tuple[float, int] | None = None
    called = False
    while run.poll() is None and time.monotonic() - start < timeout:
        k = _recorded(store)
        if k and first is None:
            first = (time.monotonic(), k)
        if on_third is not None and not called and k >= n_tasks / 3:
            called = True
            on_third()
        time.sleep(0.05)
    end = time.monotonic()
    finished = run.poll() is not None
    if not finished:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(15)
    out: dict[str, Any] = {"finished": "yes" if finished else "no", "rc": run.returncode,
                           "wall_s": end - start}
    if finished and first is not None and end > first[0]:
        out["tasks_after_first"] = n_tasks - first[1]
        out["seconds_after_first"] = end - first[0]
    return out


def _log_line(log: str, fragment: str) -> str:
    """The first line of a run's log that holds ``fragment``, stripped ("" if none)."""
    return next((ln.strip() for ln in log.splitlines() if fragment in ln), "")


def retirements(directory: Path) -> list[dict[str, float]]:
    """Each worker retirement in the ``worker-*.log`` files of ``directory`` (``dask worker``'s
    own log lines): seconds from "Closing worker gracefully" to the nanny's "Restarting worker"
    (the old process closed and gone) and from there to the new process's "Registered to"."""
    import datetime as dt

    def stamp(line: str) -> float:
        return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()

    out = []
    for log in sorted(directory.glob("worker-*.log")):
        retire = gone = None
        for line in log.read_text(errors="replace").splitlines():
            if "Closing worker gracefully" in line:
                retire, gone = stamp(line), None
            elif retire is not None and "Restarting worker" in line:
                gone = stamp(line)
            elif retire is not None and gone is not None and "Registered to" in line:
                out.append({"closing_s": gone - retire, "restart_s": stamp(line) - gone})
                retire = gone = None
    return out


def part_rotation(work: Path, spec: Path, n_tasks: int, points_per_task: int, workers: int,
                  lifetime: str, stagger: str, delay: float, timeout: float
                  ) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Part 2: the same spec on ``workers`` fixed workers, then on as many rotating ones."""
    rows, stores = [], {}
    for case, extra in (("fixed", []), ("rotating", ["--lifetime", lifetime,
                                                     "--lifetime-stagger", stagger,
                                                     "--lifetime-restart"])):
        procs = Processes(work / case, delay)
        procs.directory.mkdir()
        store = work / f"{case}.zarr"
        try:
            procs.scheduler()
            for k in range(workers):
                procs.worker(f"{case}{k}", *extra, nanny=True)
            r = _timed_run(procs, spec, store, "run", timeout, n_tasks=n_tasks)
        finally:
            procs.close()
        log = (procs.directory / "run.log").read_text()
        if extra:
            gone = retirements(procs.directory)
            r["retirements"] = len(gone)
            if gone:
                r["closing_s"] = statistics.median(g["closing_s"] for g in gone)
                r["restart_s"] = statistics.median(g["restart_s"] for g in gone)
        r["resubmitted_line"] = _log_line(log, "submitted again")
        if "seconds_after_first" in r:
            r["points_per_s"] = r["tasks_after_first"] * points_per_task / r["seconds_after_first"]
        rows.append({"table": "rotation", "case": case, "workers": workers,
                     "lifetime": lifetime if extra else "none",
                     "stagger": stagger if extra else "none", **r})
        stores[case] = store
    fixed, rotating = rows
    if "points_per_s" in fixed and "points_per_s" in rotating:
        rotating["vs_fixed"] = rotating["points_per_s"] / fixed["points_per_s"]
    return rows, stores


def _restart(procs: Processes, scheduler: subprocess.Popen, old: list[subprocess.Popen],
             tag: str, restart_after: float) -> None:
    """SIGKILL the scheduler, wait for its workers to close (they do when they lose it), and
    ``restart_after`` s after the kill start a scheduler on the same port and 2 new workers."""
    scheduler.send_signal(signal.SIGKILL)
    scheduler.wait(10)
    killed = time.monotonic()
    for w in old:
        try:
            w.wait(30)
        except subprocess.TimeoutExpired:
            w.kill()
    time.sleep(max(0.0, restart_after - (time.monotonic() - killed)))
    procs.scheduler()
    procs.worker(f"{tag}-c")
    procs.worker(f"{tag}-d")


def part_restart(work: Path, spec: Path, n_tasks: int, delay: float, restart_after: float,
                 timeout: float) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Part 3: 2 workers, once uninterrupted, once with the scheduler SIGKILLed at a third of
    the tasks and started again on its port ``restart_after`` s later, with 2 new workers."""
    rows, stores = [], {}
    for case in ("no restart", "restart"):
        tag = case.replace(" ", "-")
        procs = Processes(work / tag, delay)
        procs.directory.mkdir()
        store = work / f"{tag}.zarr"
        try:
            scheduler = procs.scheduler()
            old = [procs.worker(f"{tag}-a"), procs.worker(f"{tag}-b")]

            r = _timed_run(procs, spec, store, "run", timeout,
                           on_third=(functools.partial(_restart, procs, scheduler, old, tag,
                                                       restart_after)
                                     if case == "restart" else None), n_tasks=n_tasks)
        finally:
            procs.close()
        log = (procs.directory / "run.log").read_text()
        r["log_tail"] = " / ".join(ln.strip() for ln in log.splitlines()[-3:])[-300:]
        # the run's own account of futures cut with the scheduler, if any
        r["stale_line"] = _log_line(log, "not reported to this client")
        r["resubmitted_line"] = _log_line(log, "submitted again")
        rows.append({"table": "restart", "case": case, "workers": 2,
                     "restart_after_s": restart_after if case == "restart" else 0,
                     "timeout_s": timeout, **r})
        stores[case] = store
    base, again = rows
    if base["finished"] == "yes" and again["finished"] == "yes":
        again["time_lost_s"] = again["wall_s"] - base["wall_s"]
    return rows, stores


def compare_stores(stores: dict[str, Path], reference: str) -> list[dict[str, Any]]:
    """Each finished store's data chunk files against the reference store's, bit for bit."""
    from qbfast.store import open_info, read_complete

    ref = data_files(stores[reference])
    rows = []
    for name, path in stores.items():
        try:
            complete = read_complete(open_info(path)) is not None
        except Exception:
            complete = False
        if name == reference or not complete:
            continue
        files = data_files(path)
        rows.append({"table": "bit for bit", "store": name, "against": reference,
                     "chunk_files": len(files), "identical": "yes" if files == ref else "NO"})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.elastic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small and short parts (a smoke run: not recorded)")
    parser.add_argument("--tasks", type=int, default=None,
                        help="tasks of the spec (even; default 60, --quick 24)")
    parser.add_argument("--delay", type=float, default=None,
                        help="seconds each task sleeps on its worker (default 1, --quick 0.4)")
    parser.add_argument("--workers", type=int, default=3,
                        help="part 1: workers present at the end (1 at the start)")
    parser.add_argument("--join-every", type=float, default=None,
                        help="part 1: seconds between joins (default 10, --quick 1.5)")
    parser.add_argument("--sample", type=float, default=0.5, help="part 1: seconds per sample")
    parser.add_argument("--rotate-workers", type=int, default=2)
    parser.add_argument("--lifetime", default=None,
                        help="part 2: --lifetime of the rotating workers (default 20s, "
                             "--quick 6s)")
    parser.add_argument("--stagger", default=None,
                        help="part 2: --lifetime-stagger (default 2s, --quick 1s)")
    parser.add_argument("--skip-restart", action="store_true", help="leave out part 3")
    parser.add_argument("--restart-after", type=float, default=5.0,
                        help="part 3: seconds between the scheduler's kill and its restart")
    parser.add_argument("--restart-timeout", type=float, default=None,
                        help="part 3: seconds a run may take before it is killed (default "
                             "180, --quick 40)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the figures here (a list of rows; --quick too)")
    parser.add_argument("--model-workers", type=int, default=1000)
    parser.add_argument("--arrive-over", type=float, default=600.0,
                        help="part 4: seconds over which the workers arrive")
    parser.add_argument("--walltime", type=float, default=3600.0, help="part 4: job walltime, s")
    parser.add_argument("--replace-after", type=float, default=300.0,
                        help="part 4: queue wait of a replacement job, s")
    args = parser.parse_args(argv)
    q = args.quick
    n_tasks = args.tasks or (24 if q else 60)
    delay = args.delay if args.delay is not None else (0.4 if q else 1.0)
    join_every = args.join_every if args.join_every is not None else (1.5 if q else 10.0)
    lifetime = args.lifetime or ("6s" if q else "20s")
    stagger = args.stagger or ("1s" if q else "2s")
    workers = min(args.workers, 2) if q else args.workers
    restart_timeout = args.restart_timeout or (40.0 if q else 180.0)
    cost_tasks = 40 if q else 400
    if n_tasks < 4 or n_tasks % 2:
        parser.error(f"--tasks: expected an even number >= 4, got {n_tasks}")
    if not (delay >= 0 and args.sample > 0 and join_every >= 0 and workers >= 1):
        parser.error("--delay, --sample, --join-every, --workers: expected numbers >= 0 "
                     "(--sample > 0, --workers >= 1)")
    text = SPEC.format(n=n_tasks // 2)
    points_per_task = 51
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="qbfast-elastic-") as tmp:
        work = Path(tmp)
        spec = work / "elastic.toml"
        spec.write_text(text)
        print(f"== spec: {n_tasks} tasks of {points_per_task} points, each sleeping {delay:g} s "
              f"on its worker (QBFAST_DEBUG_CHUNK_DELAY); single-threaded workers on "
              f"{os.cpu_count()} cores")
        t0 = time.monotonic()
        rows, costs = part_joins(work, spec, n_tasks, workers, join_every, delay, args.sample)
        figures += rows
        print(f"\n== 1. workers joining: 1 worker, then one more every {join_every:g} s after the "
              f"first task, up to {workers} ({time.monotonic() - t0:.0f} s)")
        for r in rows:
            print(f"  {r['worker']:<28} joined at {r['joined_at_s']:5.1f} s: {r['samples']:3d} "
                  f"samples to the tail, worker time busy {r['busy_fraction']:.1%}, every "
                  f"worker busy in {r['all_busy_fraction']:.1%} of the samples")
        stores = {"part 1 (joins)": costs.pop("store")}
        costs.update(client_cost(work, cost_tasks))
        # the client's time-driven CPU (polling, refreshes, progress) in part 1: its CPU less
        # its completions' share
        costs["idle_cpu_per_s"] = max(0.0, (costs["run_cpu_s"] - costs["run_tasks"]
                                            * costs["client_s_per_completion"])
                                      / costs["run_seconds"])
        figures.append({"table": "client", **costs})
        print(f"  client: {costs['client_s_per_completion'] * 1e3:.2f} ms CPU per finished task "
              f"({costs['cost_tasks']} tasks without sleep on 2 workers, "
              f"{costs['completions_per_s']:.0f} tasks/s), {costs['idle_cpu_per_s']:.3f} s CPU "
              f"per s besides (part 1); scheduler_info {costs['refresh_s'] * 1e3:.2f} ms with "
              f"{costs['refresh_workers']} workers, + {costs['per_worker_decode_s'] * 1e6:.1f} "
              f"us per more worker entry")
        t0 = time.monotonic()
        rows, more = part_rotation(work, spec, n_tasks, points_per_task, args.rotate_workers,
                                   lifetime, stagger, delay, 90.0 if q else 300.0)
        figures += rows
        stores.update({f"part 2 ({k})": v for k, v in more.items()})
        print(f"\n== 2. workers rotating ({args.rotate_workers} workers, --lifetime {lifetime} "
              f"--lifetime-stagger {stagger} --lifetime-restart) "
              f"({time.monotonic() - t0:.0f} s)")
        for r in rows:
            print(f"  {r['case']:<9} finished {r['finished']}, wall {r['wall_s']:.1f} s, "
                  f"{r.get('points_per_s', math.nan):.1f} points/s after the first task"
                  + (f" = {r['vs_fixed']:.2f}x fixed" if "vs_fixed" in r else "")
                  + (f"; {r['retirements']} retirements, median {r['closing_s']:.1f} s from "
                     f"'Closing worker gracefully' to the nanny's restart, then "
                     f"{r['restart_s']:.1f} s to the new process's registration"
                     if r.get("retirements") else "")
                  + (f"; {r['resubmitted_line']}" if r["resubmitted_line"] else ""))
        if not args.skip_restart:
            t0 = time.monotonic()
            rows, more = part_restart(work, spec, n_tasks, delay, args.restart_after,
                                      restart_timeout)
            figures += rows
            stores.update({f"part 3 ({k})": v for k, v in more.items()})
            print(f"\n== 3. scheduler SIGKILLed at a third of the tasks, restarted on its port "
                  f"{args.restart_after:g} s later with 2 new workers "
                  f"({time.monotonic() - t0:.0f} s)")
            for r in rows:
                status = (f"wall {r['wall_s']:.1f} s" if r["finished"] == "yes"
                          else f"did not finish within {r['timeout_s']:g} s (killed)")
                print(f"  {r['case']:<10} {status}, rc {r['rc']}"
                      + (f"; time lost {r['time_lost_s']:.1f} s" if "time_lost_s" in r else "")
                      + "".join(f"; {r[k]}" for k in ("stale_line", "resubmitted_line")
                                if r[k]))
            if rows[1]["finished"] != "yes":
                print(f"  its log ends: {rows[1]['log_tail']}")
        compared = compare_stores(stores, "part 2 (fixed)")
        figures += compared
        print("\n== data chunk files against part 2's fixed run: "
              + ", ".join(f"{r['store']} {r['identical']}" for r in compared))
    # part 4
    from bench.scale import SIZES
    from bench.scale import SPEC as SCALE_SPEC

    scans = [("1.07e13 (bench.scale)", SCALE_SPEC.format(n=SIZES["1e13"]))]
    if not q:
        scans.append(("1.05e15", SCALE_SPEC.format(n=160)))
    print(f"\n== 4. model: {args.model_workers:,} single-threaded workers arriving over "
          f"{args.arrive_over:g} s, walltime {args.walltime:g} s, replaced after "
          f"{args.replace_after:g} s")
    cost = costs["client_s_per_completion"]
    for name, scan_text in scans:
        for walltime, replace in ((None, None), (args.walltime, args.replace_after)):
            row, bins = model_row(name, scan_text, args.model_workers, args.arrive_over,
                                  walltime, replace, cost, costs["idle_cpu_per_s"],
                                  costs["refresh_s"],
                                  costs["refresh_workers"], costs["per_worker_decode_s"])
            figures.append(row)
            if walltime is not None:
                figures += bins
            print(f"  {name}, walltime {row['walltime_s']}: {row['tasks']:,} tasks of "
                  f"{row['task_s']:.1f} s, finished at {row['finish_s']:.0f} s (all workers "
                  f"from the start: {row['ideal_finish_s']:.0f} s), busy "
                  f"{row['busy_fraction']:.1%} ({row['busy_fraction_while_tasks_left']:.1%} "
                  f"while tasks were left), lost {row['lost_worker_s']:.0f} worker-s "
                  f"({row['lost_fraction']:.2%}, {row['lost_runs']} runs); client "
                  f"{row['client_load_at_peak']:.2%} of a core at the peak completion rate")
            if walltime is not None:
                print("    busy fraction per 300 s: " + " ".join(
                    f"{b['busy_fraction']:.2f}" for b in bins))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    from bench._results import record

    options = dict(vars(args))
    options.update({"restart_timeout": restart_timeout, "tasks": n_tasks, "delay": delay,
                    "join_every": join_every, "lifetime": lifetime, "stagger": stagger,
                    "workers": workers})
    record("elastic", argv, figures, options=options, smoke=q,
           notes="parts 1-3: real dask scheduler / dask worker --nthreads 1 processes on "
                 "127.0.0.1, tasks sleeping --delay s each (orchestration, not kernels); "
                 "part 4: the pure model bench.elastic.simulate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
