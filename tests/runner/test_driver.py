"""Distributed runs on real clusters: a LocalCluster of 2 worker processes, and a separate
``dask scheduler`` + ``dask worker`` processes on 127.0.0.1; resume after SIGKILL of the client
or of a worker, compared bit for bit with an uninterrupted run; a bounded window of tasks in
flight, asked of the scheduler."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import qbstore
import xarray as xr

import qbfast
from qbfast import store
from qbfast.runner.driver import WINDOW_PER_THREAD, execute
from qbfast.runner.spec import load_spec, parse_spec
from qbfast.runner.tasks import DEBUG_DELAY_ENV

distributed = pytest.importorskip("distributed")

SPEC = """
model = "cavity"
metrics = ["energy", "ergotropy", "concurrence", "power"]
dtype = "float32"
[params]
n = [1, 2, 7]
J2 = { start = -1.0, stop = 2.0, num = 12 }
omega_g = 1.0
t = { start = 0.0, stop = 10.0, num = 201 }
[chunks]
n = 1
J2 = 3
"""  # 12 tasks

FIELD_SPEC = """
model = "field"
protocol = "full"
battery_hamiltonian = "bare"
metrics = ["energy", "ergotropy", "steering_ab"]
dtype = "float64"
[params]
A = [0.0, 1.0, 2.0]
g = [0.0, 0.5]
B = 2.0
t = { start = 0.0, stop = 4.0, num = 41 }
[chunks]
A = 1
[reduce]
stats = ["max", "argmax", "first_max"]
keep_series = true
"""


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    return qbstore.spec_file(tmp_path_factory.mktemp("specs"), SPEC, "kill")


@pytest.fixture(scope="module")
def reference(spec_file, tmp_path_factory) -> Path:
    """The spec written in this process, no cluster: the uninterrupted run."""
    return qbstore.reference_store(spec_file, tmp_path_factory.mktemp("ref"))


def test_local_cluster_run_equals_sweep_and_uses_both_workers(client, spec_file, reference,
                                                              tmp_path):
    with distributed.get_task_stream(client) as ts:
        ds = qbfast.run(spec_file, tmp_path / "a.zarr", client=client)
    workers = {t["worker"] for t in ts.data if t["key"].startswith("qbfast-task")}
    assert len(workers) == 2  # tasks spread over both processes
    assert isinstance(ds.energy.data, __import__("dask").array.Array)  # opened lazily
    spec = load_spec(spec_file)
    g = spec.grid
    ref = qbfast.sweep("cavity", g.t, metrics=list(g.metrics), n=[1, 2, 7], J2=g.swept["J2"],
                       omega_g=1.0)
    for name in g.metrics:
        assert ds[name].dtype == np.float32
        np.testing.assert_array_equal(ds[name].values, ref[name].values.astype(np.float32))
        assert ds[name].attrs["long_name"] == ref[name].attrs["long_name"]
    for c in ref.coords:
        xr.testing.assert_identical(ds[c], ref[c])  # values, long_name, units
    assert {k: ds.attrs[k] for k in ref.attrs} == ref.attrs
    assert qbstore.is_complete(tmp_path / "a.zarr")
    assert qbstore.data_files(tmp_path / "a.zarr") == qbstore.data_files(reference)


def test_field_full_with_reductions_equals_sweep(client, tmp_path):
    spec_path = tmp_path / "field.toml"
    spec_path.write_text(FIELD_SPEC)
    report = execute(spec_path, tmp_path / "f.zarr", client)
    ds = xr.open_zarr(report.store)
    ref = qbfast.sweep("field", np.linspace(0, 4, 41), protocol="full",
                       battery_hamiltonian="bare", metrics=["energy", "ergotropy", "steering_ab"],
                       A=[0.0, 1.0, 2.0], g=[0.0, 0.5], B=2.0)
    for name in ("energy", "ergotropy", "steering_ab"):
        np.testing.assert_array_equal(ds[name].values, ref[name].values)
    np.testing.assert_array_equal(ds.energy_max.values, ref.energy.max("t").values)
    np.testing.assert_array_equal(ds.energy_t_max.values, ref.energy.idxmax("t").values)
    assert ds.ergotropy_t_first_max.dims == ("A", "g")
    value, where = report.peaks["energy"]  # the run's peak: the sweep's maximum, located
    assert value == ref.energy.values.max() and ref.energy.sel(where).item() == value


def test_resume_computes_only_missing_tasks(client, spec_file, reference, tmp_path):
    spec = load_spec(spec_file)
    path = tmp_path / "r.zarr"
    qbstore.create(spec, path)
    qbstore.write_tasks(spec, path, range(0, 12, 3))  # 4 tasks done "before the crash"
    # and one killed between its data and its journal entry: wrong data there, no entry
    info = store.open_info(path)
    coords = info.task_coords(5)
    for v in info.variables:
        store.ChunkFiles.open(path / v.name).write(coords, np.zeros((1, 3, 201)))
    report = execute(spec, path, client)
    assert (report.status, report.tasks_computed, report.tasks_total) == ("resumed", 8, 12)
    assert report.evaluations == 8 * 3 * 201
    assert qbstore.data_files(path) == qbstore.data_files(reference)
    assert qbstore.is_complete(path)
    before = qbstore.tree_state(path)
    again = execute(spec, path, client)
    assert (again.status, again.tasks_computed) == ("complete", 0)
    assert qbstore.tree_state(path) == before


def test_lost_chunk_file_and_torn_journal_are_recomputed(client, spec_file, reference,
                                                         tmp_path):
    """A complete store loses one chunk file: the rerun recomputes exactly that task. A journal
    torn mid-entry (its last entry cut): that task is recomputed. Bit for bit both times."""
    spec = load_spec(spec_file)
    path = tmp_path / "c.zarr"
    execute(spec, path, client)
    (path / "power" / "c.1.2.0").unlink()  # task 1 * 4 + 2 = 6
    report = execute(spec, path, client)
    assert (report.status, report.tasks_computed, report.repaired) == ("resumed", 1, 1)
    assert qbstore.data_files(path) == qbstore.data_files(reference)
    assert qbstore.is_complete(path)
    journals = sorted((path / "_qbfast" / "journal").iterdir(), key=lambda p: p.stat().st_size)
    last = journals[-1]
    info = store.open_info(path)
    size = store.record.entry_dtype(len(info.variables), len(info.peak_metrics)).itemsize
    data = last.read_bytes()
    torn_task = int(np.frombuffer(data[-size:], dtype=store.record.entry_dtype(
        len(info.variables), len(info.peak_metrics)))["task"][0])
    last.write_bytes(data[:-size // 2])
    store.clear_complete(info)  # as a kill before the completion file leaves it
    assert store.read_record(info).missing.tolist() == [torn_task]
    report = execute(spec, path, client)
    assert report.tasks_computed == 1
    assert qbstore.data_files(path) == qbstore.data_files(reference)
    assert qbstore.is_complete(path)


@pytest.mark.slow
def test_client_killed_then_resumed_is_bit_for_bit(client, spec_file, reference, tmp_path):
    path = tmp_path / "k.zarr"
    log = open(tmp_path / "run.log", "w")
    proc = qbstore.qbfast_proc(["run", str(spec_file), "--store", str(path), "--workers", "2"],
                               env={DEBUG_DELAY_ENV: "0.4"}, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        qbstore.wait_for(lambda: qbstore.n_recorded(path) >= 2 or proc.poll() is not None,
                         120, "two tasks")
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its local workers, at once
    finally:
        proc.wait(30)
        log.close()
    done = qbstore.n_recorded(path)
    assert 2 <= done < 12, (tmp_path / "run.log").read_text()
    assert not (path / "_qbfast" / "complete.json").exists()
    report = execute(load_spec(spec_file), path, client)  # the SIGKILLed run's lock: taken over
    assert report.status == "resumed"
    assert report.tasks_computed == 12 - done  # only the unrecorded tasks
    assert qbstore.is_complete(path)
    assert qbstore.data_files(path) == qbstore.data_files(reference)


@pytest.fixture
def dask_cluster(tmp_path):
    """A ``dask scheduler`` and two ``dask worker`` processes (no nanny, one thread each)."""
    procs = []
    logs = []

    def start(args, name, env=None):
        log = open(tmp_path / f"{name}.log", "w+")
        logs.append(log)
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, **(env or {})}, start_new_session=True)
        procs.append(p)
        return p, log

    dask = str(Path(sys.executable).with_name("dask"))
    _, slog = start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard"], "scheduler")
    address = []

    def scheduler_up():
        slog.seek(0)
        m = qbstore.SCHEDULER_AT.search(slog.read())
        if m:
            address.append(m.group(1))
        return bool(m)

    qbstore.wait_for(scheduler_up, 60, "the scheduler")

    def worker(i):
        return start([dask, "worker", address[0], "--nthreads", "1", "--no-nanny",
                      "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"],
                     f"worker{i}", env={DEBUG_DELAY_ENV: "0.3"})[0]

    workers = [worker(i) for i in range(2)]
    with distributed.Client(address[0], timeout="30s") as c:
        c.wait_for_workers(2, timeout=60)
    try:
        yield address[0], workers, worker
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for log in logs:
            log.close()


@pytest.mark.slow
@pytest.mark.parametrize("kill_both", [False, True])
def test_scheduler_address_and_workers_killed_at_random_moments(dask_cluster, spec_file,
                                                                reference, tmp_path,
                                                                kill_both):
    """A worker SIGKILLed mid-sweep at a random moment (its task in progress: computing,
    before or while writing), a new one started; with ``kill_both`` the other original worker
    is killed next: the run finishes, bit for bit."""
    address, workers, start_worker = dask_cluster
    path = tmp_path / "s.zarr"
    out = open(tmp_path / "cli.log", "w")
    proc = qbstore.qbfast_proc(["run", str(spec_file), "--store", str(path), "--scheduler",
                                address], stdout=out, stderr=subprocess.STDOUT)
    rng = random.Random(int(time.time()))
    try:
        qbstore.wait_for(lambda: qbstore.n_recorded(path) >= 2 or proc.poll() is not None,
                         120, "two tasks")
        time.sleep(rng.uniform(0.0, 0.3))  # anywhere in a task: compute, delay, write
        workers[0].send_signal(signal.SIGKILL)
        done_at_kill = qbstore.n_recorded(path)
        workers.append(start_worker(2))
        time.sleep(rng.uniform(0.1, 0.3))
        if kill_both and proc.poll() is None and qbstore.n_recorded(path) < 11:
            workers[1].send_signal(signal.SIGKILL)
        rc = proc.wait(180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        out.close()
    text = (tmp_path / "cli.log").read_text()
    assert rc == 0, text
    assert done_at_kill < 12
    assert workers[0].poll() is not None
    assert "max energy" in text and "tasks" in text
    assert qbstore.is_complete(path)
    assert qbstore.data_files(path) == qbstore.data_files(reference)


def _slow_journal_factory():
    """A function to run on a worker: wait ``seconds`` after a task's chunk files are durable
    and before its journal entry (fault injection: widens that window so that a kill lands in
    it). Made in a closure so that it is pickled by value (this module is not importable by a
    ``dask worker`` process)."""
    def slow_journal(seconds):
        import os
        import time

        from qbfast.store import record

        append = record.Journal.append

        def slow(self, *args, **kwargs):
            time.sleep(seconds)
            return append(self, *args, **kwargs)

        record.Journal.append = slow
        return os.getpid()

    return slow_journal


def _written_not_recorded(path: Path) -> int:
    chunks = [p for p in (path / "energy").glob("c.*") if not p.name.endswith(".partial")]
    return len(chunks) - qbstore.n_recorded(path)


@pytest.mark.slow
def test_worker_killed_between_data_and_journal_entry(dask_cluster, spec_file, reference,
                                                      tmp_path):
    """A worker SIGKILLed after a task's chunk files are written and before its journal entry:
    that task is not recorded, it is computed again, and the store ends bit for bit."""
    address, workers, _ = dask_cluster
    with distributed.Client(address, timeout="30s") as c:
        by_name = {w["name"]: a for a, w in c.scheduler_info(n_workers=-1)["workers"].items()}
        [pid] = c.run(_slow_journal_factory(), 60.0, workers=[by_name["w0"]]).values()
    assert pid == workers[0].pid
    path = tmp_path / "j.zarr"
    out = open(tmp_path / "cli.log", "w")
    proc = qbstore.qbfast_proc(["run", str(spec_file), "--store", str(path), "--scheduler",
                                address], stdout=out, stderr=subprocess.STDOUT)
    try:
        qbstore.wait_for(lambda: (path.exists() and _written_not_recorded(path) >= 1)
                         or proc.poll() is not None, 120, "data written, entry pending")
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        assert _written_not_recorded(path) >= 1  # the kill landed in the window
        rc = proc.wait(180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        out.close()
    assert rc == 0, (tmp_path / "cli.log").read_text()
    assert qbstore.is_complete(path)
    assert qbstore.data_files(path) == qbstore.data_files(reference)


def test_numba_threads_do_not_oversubscribe_the_cores(client, spec_file, tmp_path, capsys):
    """Every task records its host, the Dask threads on it and the Numba threads it used; the
    fixture's cluster is 2 single-threaded workers on this host: 2 Dask threads, and Dask
    threads x Numba threads within the host's cores."""
    from qbfast.runner.driver import read_placements

    report = execute(spec_file, tmp_path / "a.zarr", client=client)
    rows = read_placements(tmp_path / "a.zarr")
    assert sorted(r["task"] for r in rows) == list(range(report.tasks_total))
    cores = len(os.sched_getaffinity(0))
    for r in rows:
        assert r["cores"] == cores and r["dask_threads"] == 2, r
        assert r["numba_threads"] == max(1, cores // 2), r
        assert r["dask_threads"] * r["numba_threads"] <= max(cores, 2), r
    assert len({r["worker"] for r in rows}) == 2
    from qbfast.cli import main

    assert main(["info", str(tmp_path / "a.zarr"), "--debug"]) == 0
    out = capsys.readouterr().out
    assert f"placement   {report.tasks_total} task records" in out
    assert f"({cores} cores): {report.tasks_total} tasks on 2 workers; Dask x Numba threads: " \
           f"2 x {max(1, cores // 2)}\n" in out


@pytest.mark.slow
def test_reduce_alone_then_overwritten_at_the_same_path(client, tmp_path):
    """[reduce] alone on the cluster (each worker keeping the store's writer open between its
    tasks), then another spec written over it at the same path by the same workers: each store
    holds exactly its own sweep's reductions."""
    from qbfast.reduce import reduce_t

    path = tmp_path / "red.zarr"
    ids = []
    for metrics, n in ((["energy", "ergotropy"], [1, 2, 7]), (["energy", "concurrence"], [2, 3])):
        text = (SPEC.replace('["energy", "ergotropy", "concurrence", "power"]', repr(metrics))
                .replace("n = [1, 2, 7]", f"n = {n}").replace("[chunks]\nn = 1\nJ2 = 3\n",
                                                             "[chunks]\nn = 1\nJ2 = 2\n")
                + '[reduce]\nstats = ["max", "argmax", "first_max"]\n')
        spec = parse_spec(text, name="red")
        assert spec.n_chunks >= 4  # several tasks per worker
        report = execute(spec, path, client, overwrite=True)
        assert report.tasks_computed == spec.n_chunks and qbstore.is_complete(path)
        ids.append(store.open_info(path).store_id)
        ds = xr.open_zarr(path)
        g = spec.grid
        ref = qbfast.sweep("cavity", g.t, metrics=metrics, n=n, J2=g.swept["J2"], omega_g=1.0)
        assert sorted(ds.data_vars) == sorted(f"{m}_{s}" for m in metrics for s in
                                              ("max", "t_max", "first_max", "t_first_max"))
        for m in metrics:
            x = ref[m].values
            np.testing.assert_array_equal(ds[f"{m}_max"].values,
                                          reduce_t(x, g.t, "max")[0].astype(np.float32))
            np.testing.assert_array_equal(ds[f"{m}_t_max"].values, reduce_t(x, g.t, "argmax")[0])
            fv, ft = reduce_t(x, g.t, "first_max")
            np.testing.assert_array_equal(ds[f"{m}_first_max"].values, fv.astype(np.float32))
            np.testing.assert_array_equal(ds[f"{m}_t_first_max"].values, ft)
        value, where = report.peaks["energy"]
        assert value == ref.energy.values.max()
        assert ref.energy.sel(where).item() == value
    assert ids[0] != ids[1]


def test_mismatched_store_is_refused_untouched(client, spec_file, tmp_path):
    spec = load_spec(spec_file)
    path = tmp_path / "m.zarr"
    qbstore.create(spec, path)
    qbstore.write_tasks(spec, path, [0, 1])
    before = qbstore.tree_state(path)
    other = parse_spec(SPEC.replace("omega_g = 1.0", "omega_g = 0.9"), name="kill")
    with pytest.raises(store.StoreError, match="made from a different spec.*--overwrite"):
        execute(other, path, client)
    assert qbstore.tree_state(path) == before
    assert not list(tmp_path.glob(".m.zarr*"))  # the lock released, nothing left beside it


def test_other_kernel_code_is_refused(client, spec_file, tmp_path, monkeypatch):
    """Finishing a store computed by other kernels would mix versions: refused, untouched."""
    spec = load_spec(spec_file)
    path = tmp_path / "o.zarr"
    qbstore.create(spec, path)
    qbstore.write_tasks(spec, path, [0])
    before = qbstore.tree_state(path)
    from qbfast.runner import driver

    monkeypatch.setattr(driver, "kernels_digest", lambda: "f" * 64)
    with pytest.raises(store.StoreError, match="other kernel code.*--overwrite"):
        execute(spec, path, client)
    assert qbstore.tree_state(path) == before


def test_unreachable_scheduler_writes_nothing(tmp_path, spec_file):
    path = tmp_path / "s.zarr"
    from qbfast.runner.cluster import ClusterError

    with pytest.raises(ClusterError, match="cannot connect"):
        execute(spec_file, path, scheduler="tcp://127.0.0.1:1", connect_timeout=0.5)
    assert list(tmp_path.iterdir()) == []  # no store, no lock, no build directory


def test_all_tasks_recorded_but_not_marked_complete_needs_no_cluster(tmp_path, spec_file):
    spec = load_spec(spec_file)
    path = tmp_path / "s.zarr"
    qbstore.create(spec, path)
    qbstore.write_tasks(spec, path)
    report = execute(spec, path, scheduler="tcp://127.0.0.1:1", connect_timeout=0.5)
    assert (report.status, report.tasks_computed) == ("resumed", 0)
    assert qbstore.is_complete(path)


def _watch_in_flight(prefix):
    """Runs on the scheduler: a plugin that follows every transition of this run's tasks and
    keeps the largest number in flight at once (waiting, queued, processing or no-worker).
    Exact: no polling, no sampling."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    flight = ("waiting", "queued", "processing", "no-worker")

    class InFlight(SchedulerPlugin):
        name = "qbfast-in-flight"

        def __init__(self):
            self.now: set[str] = set()
            self.max = 0
            self.seen = 0

        def transition(self, key, start, finish, *args, **kwargs):
            if not str(key).startswith(prefix):
                return
            if finish in flight:
                if key not in self.now:
                    self.seen += 1
                self.now.add(key)
                self.max = max(self.max, len(self.now))
            else:
                self.now.discard(key)

    def install(dask_scheduler):
        dask_scheduler.add_plugin(InFlight(), name=InFlight.name)

    def read(dask_scheduler):
        plugin = dask_scheduler.plugins[InFlight.name]
        return plugin.max, plugin.seen

    return install, read


@pytest.mark.slow
def test_window_of_tasks_in_flight_on_20000_tiny_tasks(client, tmp_path):
    """Tasks of one point each (600 by default, 100 windows' worth; QBFAST_TEST_TINY_TASKS=20000
    for the scale the issue names: 530 s on the shared 2-core machine): the scheduler never
    holds more of this run's tasks in flight than the window (every transition of every task
    followed on the scheduler)."""
    n_tasks = int(os.environ.get("QBFAST_TEST_TINY_TASKS", "600"))
    text = f"""
model = "cavity"
metrics = ["energy"]
[params]
J2 = {{ start = 0.0, stop = 1.0, num = {n_tasks} }}
t = [0.0, 1.0]
[chunks]
J2 = 1
[reduce]
stats = ["max"]
"""
    spec = parse_spec(text, name="tiny")
    assert spec.n_chunks == n_tasks
    window = WINDOW_PER_THREAD * 2  # 2 workers x 1 thread
    install, read = _watch_in_flight("qbfast-task-")
    client.run_on_scheduler(install)
    report = execute(spec, tmp_path / "tiny.zarr", client, durable=False)
    largest, seen = client.run_on_scheduler(read)
    assert report.tasks_computed == n_tasks and qbstore.is_complete(tmp_path / "tiny.zarr")
    assert seen == n_tasks  # the plugin saw every task: the measure can fail
    assert 2 <= largest <= window, largest
    ds = xr.open_zarr(tmp_path / "tiny.zarr")
    ref = qbfast.sweep("cavity", np.array([0.0, 1.0]), metrics=["energy"],
                       J2=np.linspace(0, 1, n_tasks))
    np.testing.assert_array_equal(ds.energy_max.values, ref.energy.max("t").values)
