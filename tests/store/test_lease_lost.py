"""A writer that lost its lease writes nothing more (issue 19, item 6): a run stopped
(SIGSTOP) after its last task, whose stale lease another run took over, must not write its
completion record, journal entries or chunk files into the other run's store when it is
continued (SIGCONT); it stops with one line, rc 2. The check is on the client and on the
workers (a writer compares the lease file's run id with its run's)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from qbstore import (
    SMALL_SPEC,
    context,
    create,
    is_complete,
    one_error_line,
    qbfast_proc,
    small_spec,
    spec_file,
    tree_state,
    wait_for,
)

from qbfast import store
from qbfast.runner.tasks import compute_block
from qbfast.store.lock import STALE_AFTER_ENV, LeaseLostError, StoreLock, lock_path


def _files(path) -> dict[str, tuple[int, int]]:
    """Every file of the store (not directories: a refused task's temporary files come and go)
    with its size and mtime."""
    return {k: v for k, v in tree_state(path).items() if (path / k).is_file()}


def _stop_heartbeat(lock: StoreLock) -> None:
    """As a SIGSTOP does to the holder: its heartbeat stops."""
    lock._stop.set()
    assert lock._thread is not None
    lock._thread.join(5)


def test_worker_writer_stops_once_its_run_lost_the_lease(tmp_path, monkeypatch):
    monkeypatch.setenv(STALE_AFTER_ENV, "0.3")
    spec = small_spec()
    path = tmp_path / "s.zarr"
    create(spec, path)
    a = StoreLock(path, "aaaaaaaaaaaa").acquire()
    ctx = context(spec, path, run_id=a.run_id)
    writer = store.StoreWriter(path, ctx.store_id, ctx.generation, ctx.run_id,
                               lease=lock_path(path))
    try:
        data, peaks = compute_block(spec, ctx.slices(0))
        writer.write(0, data, peaks)  # held: written and recorded
        assert store.read_record(store.open_info(path)).done.tolist() == [True, False, False]
        _stop_heartbeat(a)
        time.sleep(0.5)
        b = StoreLock(path, "bbbbbbbbbbbb").acquire()  # stale: taken over
        try:
            assert b.took_over is not None and b.took_over["run_id"] == "aaaaaaaaaaaa"
            before = _files(path)
            data, peaks = compute_block(spec, ctx.slices(1))
            with pytest.raises(LeaseLostError) as e:
                writer.write(1, data, peaks)
            msg = str(e.value)
            assert "\n" not in msg and "run aaaaaaaaaaaa lost its lease" in msg
            assert "run bbbbbbbbbbbb" in msg
            with pytest.raises(LeaseLostError):
                a.check()
            b.check()  # the new holder passes
            assert _files(path) == before  # nothing renamed into place, no entry appended
            record = store.read_record(store.open_info(path))
            assert record.entries == 1 and record.done.tolist() == [True, False, False]
        finally:
            b.release()
    finally:
        writer.close()
        a.release()
    assert not lock_path(path).exists()  # b released; a did not remove what is not its own


def _read(p) -> str:
    return p.read_text() if p.exists() else ""


@pytest.mark.slow
def test_run_stopped_after_its_last_task_and_taken_over_writes_nothing(tmp_path):
    """Real `qbfast run` processes, real SIGSTOP/SIGCONT: A stops after its last task (before
    its completion record); B takes the stale lease over (--overwrite, same spec) and finishes
    its store; A, continued, leaves B's store byte for byte as B left it and exits 2 in one
    line."""
    spec = spec_file(tmp_path, SMALL_SPEC, "small")
    path = tmp_path / "s.zarr"
    env = {STALE_AFTER_ENV: "3", "QBFAST_DEBUG_COMPLETE_DELAY": "5"}
    log_a = tmp_path / "a.log"
    with open(log_a, "w") as out:
        a = qbfast_proc(["run", str(spec), "--store", str(path), "--workers", "1"], env=env,
                        stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "before the completion record" in _read(log_a) or a.poll() is not None,
                 300, "run A's last task")
        assert a.poll() is None, _read(log_a)
        os.killpg(a.pid, signal.SIGSTOP)
        assert store.read_record(store.open_info(path)).done.all()  # A computed everything
        a_store_id = store.open_info(path).store_id
        assert not (path / "_qbfast" / "complete.json").exists()
        time.sleep(4)  # A's heartbeat is older than the 3 s staleness now
        b = subprocess.run([sys.executable, "-m", "qbfast", "run", str(spec), "--store",
                            str(path), "--workers", "1", "--overwrite"],
                           env={**os.environ, STALE_AFTER_ENV: "3"}, capture_output=True,
                           text=True, timeout=300, check=False)
        assert b.returncode == 0, b.stderr
        assert "taking over the stale lock" in b.stderr and f"pid {a.pid}" in b.stderr
        info = store.open_info(path)
        assert info.store_id != a_store_id and is_complete(path)
        before = tree_state(path)
        complete = (path / "_qbfast" / "complete.json").read_bytes()
        journals = {p.name: p.read_bytes() for p in (path / "_qbfast" / "journal").iterdir()}
        os.killpg(a.pid, signal.SIGCONT)
        assert a.wait(120) == 2, _read(log_a)
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGCONT)
            os.killpg(a.pid, signal.SIGKILL)
            a.wait(30)
    lines = [ln for ln in _read(log_a).splitlines() if ln.startswith("qbfast: error:")]
    assert len(lines) == 1 and "Traceback" not in _read(log_a), _read(log_a)
    line = one_error_line(lines[0])
    assert "lost its lease" in line and str(path) in line
    assert tree_state(path) == before  # nothing written, renamed or removed
    assert (path / "_qbfast" / "complete.json").read_bytes() == complete
    assert {p.name: p.read_bytes() for p in (path / "_qbfast" / "journal").iterdir()} \
        == journals
    record = store.read_record(info)
    assert record.done.all() and record.torn == 0
    assert np.all(record.crc != 0)
    assert not lock_path(path).exists()  # B released its lease; A removed nothing
