"""Reaching a Dask cluster: a running scheduler at an address, or a new ``LocalCluster``.

Every step is bounded by one ``timeout`` (seconds; ``qbfast run --timeout``, default
:data:`DEFAULT_TIMEOUT`) and ends, when it runs out, in one :class:`ClusterError` line:

- the address is checked first, syntactically (:func:`check_address`): ``tcp://host:port``,
  ``tls://``, ``ucx://``, ``ws://``, ``wss://`` (host:port each), ``inproc://...``, or a bare
  ``host:port`` (TCP); an ``http://`` address (a dashboard) is refused;
- the connection and the handshake: for TCP addresses a probe first opens a socket and waits
  for the scheduler's handshake, which a Dask server sends as soon as it accepts (an HTTP
  server, such as a scheduler's dashboard port, sends nothing and is reported as such; the
  scheduler logs the probe at INFO as a connection "closed before handshake completed"); then
  ``distributed.Client(address, timeout=timeout)``. Other schemes (tls, ws, ucx) rely on the
  Client's own timeout, which bounds the connection but not distributed's handshake read;
- the wait for workers: a scheduler without workers is waited on for at most ``timeout``
  seconds, saying so on the progress stream; a local cluster likewise: it is made with no
  workers (``LocalCluster`` then returns once its scheduler runs) and scaled to its workers,
  whose start is waited on for at most ``timeout`` seconds.

While a local cluster runs, its workers' ``distributed.worker`` log is raised to CRITICAL: a
failed task is reported once by the run (one line), not dumped by every worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

#: Seconds allowed to each of: connecting (with the handshake), starting a local cluster and
#: waiting for workers.
DEFAULT_TIMEOUT = 30.0

#: Address schemes with a ``host:port`` location (distributed's registered backends).
HOST_PORT_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")

_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")


class ClusterError(ConnectionError):
    """The cluster could not be reached (a bad address, no answer, no handshake) or has no
    workers; the message is one line. A ConnectionError, hence an OSError, as the errors of
    ``distributed.Client`` it replaces."""


class ClusterLost(ClusterError):
    """During a run: no scheduler, or no worker, for ``--timeout`` seconds. The store is
    resumable; the command line adds the command that resumes it."""


def check_address(address: object) -> str:
    """A scheduler address, checked syntactically; returns it with ``tcp://`` added to a bare
    ``host:port``. Raises ClusterError (one line naming ``--scheduler`` and the allowed forms)."""
    allowed = ("allowed: tcp://HOST:PORT (or HOST:PORT), tls://, ucx://, ws://, wss:// "
               "HOST:PORT, inproc://...")
    if not isinstance(address, str) or not address.strip():
        raise ClusterError(f"--scheduler: expected an address, got {address!r}; {allowed}")
    scheme, sep, location = address.partition("://")
    if not sep:
        scheme, location = "tcp", address
    if scheme in ("http", "https"):
        raise ClusterError(f"--scheduler {address}: an HTTP address (a dashboard?) is not a "
                           f"Dask scheduler address; {allowed}, e.g. tcp://host:8786")
    if scheme == "inproc":
        if not location:
            raise ClusterError(f"--scheduler {address}: empty inproc address; {allowed}")
        return address
    if scheme not in HOST_PORT_SCHEMES:
        raise ClusterError(f"--scheduler {address}: unknown scheme {scheme!r}; {allowed}")
    m = _HOST_PORT.match(location)
    if m is None or not 0 < int(m["port"]) < 65536:
        after = f" after {scheme}://" if sep else ""
        raise ClusterError(f"--scheduler {address}: not an address: expected HOST:PORT (a port "
                           f"in 1-65535){after}; {allowed}")
    return f"{scheme}://{location}"


def _seconds(timeout: float | str) -> float:
    """``timeout`` in seconds (a number, or a Dask duration such as ``"20s"``), > 0."""
    from dask.utils import parse_timedelta

    seconds = parse_timedelta(timeout, default="s")
    if seconds is None or not seconds > 0:
        raise ClusterError(f"--timeout: expected a number of seconds > 0, got {timeout!r}")
    return float(seconds)


def probe_tcp(address: str, timeout: float) -> None:
    """Open a TCP connection to ``tcp://host:port`` and wait up to ``timeout`` s for the first
    bytes of a Dask handshake (a Dask server writes it as soon as it accepts). Raises
    ClusterError when nothing listens, nothing answers (e.g. an HTTP server) or the answer is
    HTTP."""
    location = address.partition("://")[2]
    host, _, port = location.rpartition(":")
    host = host.strip("[]")
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except TimeoutError:
        raise ClusterError(f"--scheduler {address}: no connection within {timeout:g} s "
                           f"(--timeout)") from None
    except OSError as e:
        raise ClusterError(f"--scheduler {address}: cannot connect: "
                           f"{e.strerror or e}") from None
    with sock:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            first = sock.recv(16)
        except TimeoutError:
            raise ClusterError(
                f"--scheduler {address}: connected, but no Dask handshake came within "
                f"{timeout:g} s (--timeout); is this an HTTP port, such as the dashboard? "
                f"The scheduler's address is printed as 'Scheduler at: tcp://...'") from None
        except OSError as e:
            raise ClusterError(f"--scheduler {address}: the connection failed during the "
                               f"handshake: {e.strerror or e}") from None
    if not first:
        raise ClusterError(f"--scheduler {address}: the server closed the connection without "
                           f"a Dask handshake; is it a Dask scheduler?")
    if first.startswith(b"HTTP/"):
        raise ClusterError(f"--scheduler {address}: an HTTP server answered, not a Dask "
                           f"scheduler (the dashboard port?)")


def _say(stream: IO[str] | None, message: str) -> None:
    if stream is not None:
        stream.write(f"qbfast: {message}\n")
        stream.flush()


def _wait_for_workers(client: Any, n: int, timeout: float, where: str,
                      stream: IO[str] | None, hint: str) -> None:
    have = len(client.scheduler_info(n_workers=-1)["workers"])
    if have >= n:
        return
    _say(stream, f"waiting up to {timeout:g} s for {n - have} more worker(s) of {where} "
                 f"({have} connected)")
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError:
        have = len(client.scheduler_info(n_workers=-1)["workers"])
        raise ClusterError(f"{where}: {have} of {n} worker(s) after {timeout:g} s "
                           f"(--timeout); {hint}") from None


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: ``--cluster`` kinds: dask-jobqueue's cluster classes (``local``: its LocalCluster, which
#: runs the jobs as local processes with the same machinery: for tests and trials).
JOBQUEUE_KINDS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "local": "LocalCluster"}


@dataclass(frozen=True)
class Jobqueue:
    """A dask-jobqueue cluster of batch jobs, named after dask-jobqueue's own options
    (``cores``, ``processes``, ``memory`` per job; ``walltime``, ``account``, ``queue``);
    ``jobs`` fixed jobs, or ``adapt_max`` jobs at most with ``cluster.adapt``. Workers leave
    before the walltime (``--lifetime`` = walltime - :func:`lifetime_margin`, staggered) and
    adaptive scaling starts the jobs that replace them."""

    kind: str
    cores: int | None = None
    processes: int | None = None
    memory: str | None = None
    walltime: str | None = None
    account: str | None = None
    queue: str | None = None
    jobs: int | None = None
    adapt_max: int | None = None

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {k: v for k, v in (
            ("cores", self.cores), ("processes", self.processes), ("memory", self.memory),
            ("walltime", self.walltime), ("account", self.account), ("queue", self.queue))
            if v is not None}
        # the scheduler's HTTP routes on a free port, not on 8787, which another cluster
        # (or another user's, on a login node) may hold
        kw["scheduler_options"] = {"dashboard_address": ":0"}
        if self.walltime is not None:
            lifetime, stagger = lifetime_margin(walltime_seconds(self.walltime))
            kw["worker_extra_args"] = ["--lifetime", f"{lifetime:.0f}s", "--lifetime-stagger",
                                       f"{stagger:.0f}s"]
        return kw


def walltime_seconds(walltime: str) -> float:
    """A batch walltime (``HH:MM:SS``, ``MM:SS``, or a Dask duration such as ``"2h"``) in
    seconds; one ClusterError line naming ``--walltime`` otherwise."""
    parts = walltime.split(":")
    try:
        if len(parts) in (2, 3) and all(p.isdigit() for p in parts):
            seconds = 0.0
            for p in parts:
                seconds = seconds * 60 + int(p)
        else:
            from dask.utils import parse_timedelta

            seconds = float(parse_timedelta(walltime, default="m"))
    except (ValueError, KeyError, TypeError):
        seconds = -1
    if not seconds > 0:
        raise ClusterError(f"--walltime: expected HH:MM:SS, MM:SS or a duration such as 2h, "
                           f"got {walltime!r}")
    return seconds


def lifetime_margin(walltime: float) -> tuple[float, float]:
    """(worker lifetime, its stagger) for a walltime in seconds: workers leave 10 % (at least
    1 minute, at most 10) before the walltime minus the stagger (5 % of the walltime, at most 5
    minutes), so that they close gracefully and not all at once."""
    margin = min(600.0, max(60.0, 0.1 * walltime))
    stagger = min(300.0, 0.05 * walltime)
    lifetime = walltime - margin - stagger
    if lifetime < 60:
        raise ClusterError(f"--walltime {walltime:g} s: too short for a worker to start, work "
                           f"and leave before it ({margin:g} s margin, {stagger:g} s "
                           f"stagger); use at least 3 minutes")
    return lifetime, stagger


def minimum_walltime(task_seconds: float) -> float:
    """The shortest walltime, in whole minutes (seconds), whose worker lifetime
    (:func:`lifetime_margin`) holds a task of ``task_seconds``, and at least 3 minutes."""
    def lifetime(w: float) -> float:
        return w - min(600.0, max(60.0, 0.1 * w)) - min(300.0, 0.05 * w)

    minutes = 3
    while lifetime(60.0 * minutes) < max(60.0, task_seconds):  # it grows with the walltime
        minutes += 1
    return 60.0 * minutes


def check_walltime(walltime: str, task_seconds: float) -> None:
    """Refuse (one ClusterError line naming ``--walltime`` and its minimum) a walltime whose
    worker lifetime is shorter than one task's planned duration: such a task would never
    finish, its worker leaving first, every time. A job's Dask threads fill its cores, so a
    task runs on one Numba thread: its planned duration is its core-seconds
    (:attr:`qbfast.runner.plan.Plan.task_seconds`)."""
    lifetime, _ = lifetime_margin(walltime_seconds(walltime))
    if task_seconds > lifetime:
        least = int(minimum_walltime(task_seconds))
        raise ClusterError(
            f"--walltime {walltime}: a task of this spec is planned at about "
            f"{task_seconds:.0f} s, longer than the {lifetime:.0f} s a worker runs in such a "
            f"job (it leaves before the walltime); use at least --walltime "
            f"{least // 3600:02d}:{least % 3600 // 60:02d}:00, or smaller tasks ([chunks])")


#: The command each batch kind submits its jobs with (dask-jobqueue's ``submit_command``).
SUBMIT_COMMANDS = {"slurm": "sbatch", "pbs": "qsub"}


def check_submit_command(kind: str) -> None:
    """Refuse (one ClusterError line) a batch ``--cluster`` kind whose submit command is not
    on the PATH: dask-jobqueue would fail each job's submission, with a traceback each, and
    the run would wait ``--timeout`` for workers that never come."""
    import shutil

    command = SUBMIT_COMMANDS.get(kind)
    if command is not None and shutil.which(command) is None:
        raise ClusterError(f"--cluster {kind}: {command} not found on the PATH; run on a "
                           f"host of the batch system (a login node), or --cluster local "
                           f"for a trial")


def jobqueue_cluster(options: Jobqueue, timeout: float) -> Any:
    """The dask-jobqueue cluster of ``options``, scaled (``jobs``) or adaptive
    (``adapt_max``); one ClusterError line when dask-jobqueue is missing or rejects them."""
    import importlib

    try:
        importlib.import_module("dask_jobqueue")
    except ImportError:
        raise ClusterError(f"--cluster {options.kind}: needs dask-jobqueue: pip install "
                           f"'qbfast[cluster]'") from None
    if options.kind not in JOBQUEUE_KINDS:
        raise ClusterError(f"--cluster: unknown kind {options.kind!r}; allowed: "
                           f"{', '.join(JOBQUEUE_KINDS)}")
    check_submit_command(options.kind)
    module = "dask_jobqueue.local" if options.kind == "local" else "dask_jobqueue"
    cls = getattr(importlib.import_module(module), JOBQUEUE_KINDS[options.kind])
    kw = options.kwargs()
    if options.kind == "local":  # no batch system: no account, queue or walltime
        kw = {k: v for k, v in kw.items() if k not in ("account", "queue", "walltime")}
    try:
        cluster = cls(**kw)
    except (ValueError, TypeError) as e:  # dask-jobqueue's own checks of its options
        raise ClusterError(f"--cluster {options.kind}: dask-jobqueue refused the options: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
                           ) from None
    if options.adapt_max is not None:
        cluster.adapt(minimum_jobs=min(1, options.adapt_max), maximum_jobs=options.adapt_max)
    else:
        cluster.scale(jobs=options.jobs or 1)
    return cluster


@contextlib.contextmanager
def connect(client: Any = None, scheduler: str | None = None, n_workers: int | None = None,
            threads_per_worker: int | None = None, timeout: float | str = DEFAULT_TIMEOUT,
            progress: IO[str] | None = None, dashboard: bool = False,
            jobqueue: Jobqueue | None = None) -> Iterator[Any]:
    """The ``distributed.Client`` to use: ``client`` itself; else one connected to
    ``scheduler`` (closed on exit); else one of a new ``LocalCluster`` of ``n_workers``
    processes (default: one per core // threads) with ``threads_per_worker`` threads (default
    1), closed on exit. Each step waits at most ``timeout`` seconds (see the module docstring)
    and then raises :class:`ClusterError`; what it waits for is said on ``progress``.
    ``dashboard``: a local cluster starts the Dask dashboard (on a free port; needs bokeh)
    and its address is said on ``progress``."""
    if client is not None:
        yield client
        return
    seconds = _seconds(timeout)
    from distributed import Client, LocalCluster

    if scheduler is not None:
        address = check_address(scheduler)
        if address.startswith("tcp://"):
            probe_tcp(address, seconds)
        try:
            c = Client(address, timeout=seconds)
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"--scheduler {address}: cannot connect within {seconds:g} s "
                               f"(--timeout): "
                               f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
                               ) from None
        # a lost scheduler is reported by the run, in one line (ClusterLost); the client's
        # own "Failed to reconnect to scheduler" ERROR line would be a second one
        log = logging.getLogger("distributed.client")
        level = log.level
        log.setLevel(logging.CRITICAL)
        try:
            with c:
                _wait_for_workers(c, 1, seconds, f"the scheduler at {address}", progress,
                                  f"start one with `dask worker {address}`")
                yield c
        finally:
            log.setLevel(level)
        return
    if jobqueue is not None:
        cluster = jobqueue_cluster(jobqueue, seconds)
        with cluster, Client(cluster, timeout=seconds) as c:
            _say(progress, f"dask-jobqueue {JOBQUEUE_KINDS[jobqueue.kind]}: "
                           + (f"adaptive, at most {jobqueue.adapt_max} jobs"
                              if jobqueue.adapt_max is not None
                              else f"{jobqueue.jobs or 1} jobs"))
            _wait_for_workers(c, 1, seconds, f"the {jobqueue.kind} cluster", progress,
                              "are its jobs still queued? see the batch system's queue, or "
                              "a longer --timeout")
            yield c
        return
    k = threads_per_worker or 1
    n = n_workers or max(1, available_cores() // k)
    # Numba threads are set per task (numba.set_num_threads is thread-local); no
    # NUMBA_NUM_THREADS in the workers' environment, which Numba refuses to see change once
    # its pool runs.
    # silence_logs: the workers' "distributed" logs at CRITICAL (a failed task is reported
    # once by the run, not by every worker). No dashboard; the scheduler's HTTP routes
    # (health, metrics) on a free port, not on 8787, which another cluster may hold.
    # The cluster starts with no workers (the constructor then waits only for its scheduler),
    # and is scaled to n: the workers' start is waited on below, bounded by ``timeout``.
    try:
        cluster = LocalCluster(n_workers=0, threads_per_worker=k, processes=True,
                               dashboard_address=":0" if dashboard else None,
                               silence_logs=logging.CRITICAL,
                               scheduler_kwargs=None if dashboard
                               else {"dashboard_address": "127.0.0.1:0"})
    except (OSError, TimeoutError, RuntimeError) as e:  # RuntimeError: "failed to start"
        raise ClusterError(f"the local cluster did not start within {seconds:g} s "
                           f"(--timeout): {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                           ) from None
    with cluster, Client(cluster, timeout=seconds) as c:
        if dashboard:
            _say(progress, f"Dask dashboard at {c.dashboard_link}")
        cluster.scale(n)
        # said only when it fails: a local cluster's workers always start after it
        _wait_for_workers(c, n, seconds, "the local cluster", None,
                          "fewer --workers, or a longer --timeout on a loaded host")
        yield c


__all__ = [
    "DEFAULT_TIMEOUT",
    "JOBQUEUE_KINDS",
    "Jobqueue",
    "ClusterError",
    "ClusterLost",
    "available_cores",
    "check_address",
    "check_submit_command",
    "check_walltime",
    "minimum_walltime",
    "connect",
    "probe_tcp",
]
