"""Distributed runs on real clusters: a LocalCluster of 2 worker processes, and a separate
``dask scheduler`` + ``dask worker`` processes on 127.0.0.1; resume after SIGKILL of the client
or of a worker, compared bit for bit with an uninterrupted run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import qbfast
from qbfast import store
from qbfast.runner.driver import DEBUG_DELAY_ENV, chunk_task, execute
from qbfast.runner.spec import load_spec

pytestmark = pytest.mark.slow  # every test runs a Dask cluster (SIGKILL, resume)

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
"""  # 12 chunks

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


def data_files(path: Path) -> dict[str, bytes]:
    """Every chunk file (data and bookkeeping), by relative path; metadata excluded."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(Path(path).rglob("*"))
            if p.is_file() and p.name != "zarr.json" and not p.name.endswith(".partial")}


def n_done(path: Path) -> int:
    d = path / store.META / "done"
    return sum(1 for p in d.iterdir() if p.name.startswith("c.") and not p.name.endswith(
        ".partial")) if d.exists() else 0


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("specs") / "kill.toml"
    p.write_text(SPEC)
    return p


@pytest.fixture(scope="module")
def reference(client, spec_file, tmp_path_factory) -> Path:
    """An uninterrupted run of the spec on the LocalCluster."""
    path = tmp_path_factory.mktemp("ref") / "kill.zarr"
    report = execute(spec_file, path, client)
    assert report.status == "created" and report.chunks_computed == 12
    return path


def test_local_cluster_run_equals_sweep_and_uses_both_workers(client, spec_file, reference,
                                                              tmp_path):
    with distributed.get_task_stream(client) as ts:
        ds = qbfast.run(spec_file, tmp_path / "a.zarr", client=client)
    workers = {t["worker"] for t in ts.data if t["key"].startswith("chunk_task")}
    assert len(workers) == 2  # one task per chunk, spread over both processes
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
    assert store.is_complete(tmp_path / "a.zarr")
    assert data_files(tmp_path / "a.zarr") == data_files(reference)  # runs are reproducible


def test_field_full_with_reductions_equals_sweep(client, tmp_path):
    spec_path = tmp_path / "field.toml"
    spec_path.write_text(FIELD_SPEC)
    ds = qbfast.run(spec_path, tmp_path / "f.zarr", client=client)
    ref = qbfast.sweep("field", np.linspace(0, 4, 41), protocol="full",
                       battery_hamiltonian="bare", metrics=["energy", "ergotropy", "steering_ab"],
                       A=[0.0, 1.0, 2.0], g=[0.0, 0.5], B=2.0)
    for name in ("energy", "ergotropy", "steering_ab"):
        np.testing.assert_array_equal(ds[name].values, ref[name].values)
    np.testing.assert_array_equal(ds.energy_max.values, ref.energy.max("t").values)
    np.testing.assert_array_equal(ds.energy_t_max.values, ref.energy.idxmax("t").values)
    assert ds.ergotropy_t_first_max.dims == ("A", "g")


def test_resume_computes_only_missing_chunks(client, spec_file, reference, tmp_path):
    spec = load_spec(spec_file)
    path = tmp_path / "r.zarr"
    store.create(spec, path)
    for idx in spec.chunk_indices()[::3]:  # 4 chunks done "before the crash"
        chunk_task(idx, str(path), spec, {})
    report = execute(spec, path, client)
    assert (report.status, report.chunks_computed, report.chunks_total) == ("resumed", 8, 12)
    assert report.evaluations == 8 * 3 * 201
    assert data_files(path) == data_files(reference)
    again = execute(spec, path, client)
    assert (again.status, again.chunks_computed) == ("complete", 0)


def _qbfast(args, env=None, **kw) -> subprocess.Popen:
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "qbfast", *args], env=full_env,
                            start_new_session=True, **kw)


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_client_killed_then_resumed_is_bit_for_bit(client, spec_file, reference, tmp_path):
    path = tmp_path / "k.zarr"
    log = open(tmp_path / "run.log", "w")
    proc = _qbfast(["run", str(spec_file), "--store", str(path), "--workers", "2"],
                   env={DEBUG_DELAY_ENV: "0.4"}, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: n_done(path) >= 2 or proc.poll() is not None, 90, "two chunks")
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its local workers, at once
    finally:
        proc.wait(30)
        log.close()
    done = n_done(path)
    assert 2 <= done < 12, (tmp_path / "run.log").read_text()
    assert not store.is_complete(path)
    report = execute(load_spec(spec_file), path, client)
    assert report.status == "resumed"
    # only the unmarked chunks are computed (one killed between data and marker included)
    assert report.chunks_computed == 12 - done
    assert store.is_complete(path)
    assert data_files(path) == data_files(reference)


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
        m = re.search(r"Scheduler at:\s+(tcp://127\.0\.0\.1:\d+)", slog.read())
        if m:
            address.append(m.group(1))
        return bool(m)

    _wait_for(scheduler_up, 60, "the scheduler")
    workers = [start([dask, "worker", address[0], "--nthreads", "1", "--no-nanny",
                      "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"], f"worker{i}",
                     env={DEBUG_DELAY_ENV: "0.3"})[0] for i in range(2)]
    with distributed.Client(address[0], timeout="30s") as c:
        c.wait_for_workers(2, timeout=60)
    try:
        yield address[0], workers
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


def test_scheduler_address_and_a_worker_killed_mid_sweep(dask_cluster, spec_file, reference,
                                                         tmp_path):
    address, workers = dask_cluster
    path = tmp_path / "s.zarr"
    out = open(tmp_path / "cli.log", "w")
    proc = _qbfast(["run", str(spec_file), "--store", str(path), "--scheduler", address],
                   stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: n_done(path) >= 2 or proc.poll() is not None, 90, "two chunks")
        workers[0].send_signal(signal.SIGKILL)  # mid-sweep: it holds a chunk in progress
        done_at_kill = n_done(path)
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        out.close()
    text = (tmp_path / "cli.log").read_text()
    assert rc == 0, text
    assert done_at_kill < 12
    assert workers[0].poll() is not None and workers[1].poll() is None
    assert "max energy" in text and "chunks" in text
    assert store.is_complete(path)
    assert data_files(path) == data_files(reference)


def _threads_in_task(per_host):
    import numba

    from qbfast.runner.driver import set_numba_threads, task_numba_threads

    set_numba_threads(task_numba_threads(per_host))
    return numba.get_num_threads()


def test_numba_threads_do_not_oversubscribe_the_cores(client):
    from qbfast.runner.driver import available_cores, numba_threads_for

    per_host = numba_threads_for(client)
    assert list(per_host.values()) == [max(1, available_cores() // 2)]  # 2 workers x 1 thread
    got = client.gather(client.map(_threads_in_task, [per_host] * 4, pure=False))
    assert got == [max(1, available_cores() // 2)] * 4


def test_reduce_alone_then_overwritten_at_the_same_path(client, tmp_path):
    """[reduce] alone on the cluster (chunks computed in blocks, each worker keeping the store's
    arrays open between its tasks), then another spec written over it at the same path by the
    same workers: each store holds exactly its own sweep's reductions."""
    from qbfast.reduce import reduce_t
    from qbfast.runner.spec import parse_spec

    path = tmp_path / "red.zarr"
    for metrics, n in ((["energy", "ergotropy"], [1, 2, 7]), (["energy", "concurrence"], [2, 3])):
        text = (SPEC.replace('["energy", "ergotropy", "concurrence", "power"]', repr(metrics))
                .replace("n = [1, 2, 7]", f"n = {n}").replace("[chunks]\nn = 1\nJ2 = 3\n",
                                                             "[chunks]\nn = 1\nJ2 = 2\n")
                + '[reduce]\nstats = ["max", "argmax", "first_max"]\n')
        spec = parse_spec(text, name="red")
        assert spec.n_chunks >= 4  # several tasks per worker
        report = execute(spec, path, client, overwrite=True)
        assert report.chunks_computed == spec.n_chunks and store.is_complete(path)
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
