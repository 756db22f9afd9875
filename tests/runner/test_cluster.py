"""qbfast.runner.cluster: the scheduler address is checked, and connecting, the handshake and
the wait for workers each end within ``timeout`` in one ClusterError line. Real processes on
127.0.0.1: an HTTP server, a ``dask scheduler`` (its TCP port and its dashboard port) and a
``dask worker``; a real LocalCluster."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qbfast.cli import main
from qbfast.runner.cluster import ClusterError, check_address, connect

DASK = str(Path(sys.executable).with_name("dask"))
TIMEOUT = 2.0
#: A failure "within the timeout": the timeout plus the start-up of distributed's Client.
SLACK = 15.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start(args: list[str], *ports: int) -> subprocess.Popen:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not all(_listening(p) for p in ports):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{args[:3]} did not start")
        time.sleep(0.1)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def http_port():
    port = _free_port()
    proc = _start([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], port)
    yield port
    _stop(proc)


@pytest.fixture(scope="module")
def scheduler():
    """A ``dask scheduler`` without workers: (its address, its dashboard port)."""
    port, dashboard = _free_port(), _free_port()
    proc = _start([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                   "--dashboard-address", f"127.0.0.1:{dashboard}"], port, dashboard)
    yield f"tcp://127.0.0.1:{port}", dashboard
    _stop(proc)


@pytest.mark.parametrize("address, expected", [
    ("tcp://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
    ("127.0.0.1:8786", "tcp://127.0.0.1:8786"),
    ("node-12.cluster:8786", "tcp://node-12.cluster:8786"),
    ("tls://sched.example.org:8786", "tls://sched.example.org:8786"),
    ("tcp://[::1]:8786", "tcp://[::1]:8786"),
    ("ucx://10.0.0.1:13337", "ucx://10.0.0.1:13337"),
    ("ws://host:8786", "ws://host:8786"),
    ("inproc://10.0.0.1/1234/1", "inproc://10.0.0.1/1234/1"),
])
def test_good_addresses(address, expected):
    assert check_address(address) == expected


@pytest.mark.parametrize("address, fragment", [
    ("notaurl", "not an address"),
    ("http://127.0.0.1:8787", "HTTP address"),
    ("https://127.0.0.1:8787/status", "HTTP address"),
    ("tcp://127.0.0.1", "not an address"),
    ("tcp://127.0.0.1:0", "1-65535"),
    ("tcp://127.0.0.1:99999", "1-65535"),
    ("tcp://host:port", "not an address"),
    ("ftp://host:21", "unknown scheme 'ftp'"),
    ("inproc://", "empty inproc"),
    ("", "expected an address"),
])
def test_bad_addresses_in_one_line(address, fragment):
    with pytest.raises(ClusterError) as err:
        check_address(address)
    message = str(err.value)
    assert message.startswith("--scheduler") and fragment in message and "\n" not in message
    assert "tcp://HOST:PORT" in message  # says what is allowed


def _connect_fails(address: str, fragment: str) -> str:
    progress = io.StringIO()
    start = time.monotonic()
    with pytest.raises(ClusterError) as err, connect(scheduler=address, timeout=TIMEOUT,
                                                     progress=progress):
        pass
    assert time.monotonic() - start < TIMEOUT + SLACK
    message = str(err.value)
    assert fragment in message and "\n" not in message, message
    return progress.getvalue()


@pytest.mark.slow  # real scheduler/server processes and a timeout
def test_http_server_fails_within_the_timeout(http_port):
    _connect_fails(f"tcp://127.0.0.1:{http_port}", "no Dask handshake came within 2 s")


@pytest.mark.slow  # real scheduler/server processes and a timeout
def test_a_schedulers_dashboard_port_fails_within_the_timeout(scheduler):
    _, dashboard = scheduler
    _connect_fails(f"127.0.0.1:{dashboard}", "is this an HTTP port, such as the dashboard?")


def test_nothing_listening_fails_at_once():
    _connect_fails(f"tcp://127.0.0.1:{_free_port()}", "cannot connect")


@pytest.mark.slow  # real scheduler/server processes and a timeout
def test_a_scheduler_without_workers_says_what_it_waits_for(scheduler):
    address, _ = scheduler
    said = _connect_fails(address, "0 of 1 worker(s) after 2 s (--timeout); start one with "
                                   f"`dask worker {address}`")
    assert said == f"qbfast: waiting up to 2 s for 1 more worker(s) of the scheduler at " \
                   f"{address} (0 connected)\n"


@pytest.mark.slow  # real scheduler/server processes and a timeout
def test_a_scheduler_with_a_worker_connects(scheduler):
    address, _ = scheduler
    worker = subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--no-nanny"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with connect(scheduler=address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
    finally:
        _stop(worker)


@pytest.mark.slow  # a subprocess
def test_cli_http_port_one_line_rc_2_nothing_written(http_port, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('model = "cavity"\nmetrics = ["energy"]\n[params]\nJ2 = [0.0, 1.0]\n'
                    't = [0.0, 1.0]\n')
    r = subprocess.run([sys.executable, "-m", "qbfast", "run", str(spec), "--scheduler",
                        f"tcp://127.0.0.1:{http_port}", "--timeout", "2"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    # the plan line (points, tasks, size), then the one error line
    assert len(lines) == 2 and lines[0].startswith("qbfast: ") and " tasks " in lines[0], lines
    assert lines[1].startswith("qbfast: error: --scheduler tcp://127.0.0.1:")
    assert "no Dask handshake" in lines[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


@pytest.mark.parametrize("address", ["notaurl", "http://127.0.0.1:8787"])
def test_cli_bad_address_one_line_rc_2(address, tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('model = "cavity"\n[params]\nt = [0.0]\n')
    assert main(["run", str(spec), "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"qbfast: error: --scheduler {address}: ")


def test_local_cluster_task_errors_are_not_dumped_by_the_workers(capfd):
    """A failed task on a local cluster: its error reaches the client; the worker process
    writes no ``distributed.worker - ERROR`` lines (nor a traceback) to the terminal."""
    progress = io.StringIO()
    with connect(n_workers=1, timeout=60, progress=progress) as client:
        future = client.submit(int, "not a number")
        with pytest.raises(ValueError, match="invalid literal"):
            future.result(timeout=60)
        time.sleep(0.5)  # the worker's log lines, if any, reach the shared stderr
    assert progress.getvalue() == ""  # its workers were there: nothing waited for
    err = capfd.readouterr().err
    assert "ERROR" not in err and "Traceback" not in err and "Compute Failed" not in err, err



def test_local_cluster_start_is_bounded_by_the_timeout():
    """A local cluster whose workers cannot start within ``timeout`` (here 0.01 s: a worker
    process takes ~1 s to start) ends in one ClusterError line naming --timeout, instead of
    waiting on distributed's own start-up."""
    with pytest.raises(ClusterError) as e, connect(n_workers=2, timeout=0.01) as client:
        client.submit(int, "1").result()  # pragma: no cover - not reached
    message = str(e.value)
    assert "\n" not in message and "the local cluster" in message and "--timeout" in message
    assert "of 2 worker(s)" in message
