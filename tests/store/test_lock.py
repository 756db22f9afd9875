"""The writer lock: a lease file beside the store, taken with O_EXCL; a live holder (in this
process or another) is refused in one line naming it; a lease of a SIGKILLed process, or one
whose heartbeat is older than STALE_AFTER_S, is taken over and the takeover is said."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qbfast.store import LockError, StoreError, StoreLock
from qbfast.store.lock import STALE_AFTER_S, lock_path


def test_second_holder_is_refused_naming_the_first(tmp_path):
    path = tmp_path / "s.zarr"
    with StoreLock(path, "aaaaaaaaaaaa") as first:
        assert lock_path(path) == tmp_path / ".s.zarr.qbfast-lock" and first.holds()
        doc = json.loads(lock_path(path).read_text())
        assert (doc["pid"], doc["run_id"]) == (os.getpid(), "aaaaaaaaaaaa")
        with pytest.raises(LockError) as e:
            StoreLock(path, "bbbbbbbbbbbb").acquire()
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg and "run aaaaaaaaaaaa" in msg
        assert f"pid {os.getpid()}" in msg
        assert first.holds()  # the refused one changed nothing
    assert not lock_path(path).exists()
    with StoreLock(path, "cccccccccccc") as again:  # released: free again
        assert again.took_over is None


def test_relative_and_dot_paths(tmp_path, monkeypatch):
    """The lease of ``--store .`` or a relative path sits beside the directory itself."""
    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path / "d")
    with StoreLock(Path("."), "aaaaaaaaaaaa"):
        assert (tmp_path / ".d.qbfast-lock").exists()
        with pytest.raises(LockError):
            StoreLock(tmp_path / "d", "bbbbbbbbbbbb").acquire()
    with StoreLock(Path("x.zarr"), "aaaaaaaaaaaa"):
        assert (tmp_path / "d" / ".x.zarr.qbfast-lock").exists()


def test_missing_parent_is_one_line(tmp_path):
    with pytest.raises(StoreError, match="no such directory"):
        StoreLock(tmp_path / "none" / "s.zarr", "aaaaaaaaaaaa").acquire()


HOLD = """
import sys, time
from qbfast.store import StoreLock
lock = StoreLock(sys.argv[1], "dddddddddddd").acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_lease_of_a_sigkilled_process_is_taken_over_and_said(tmp_path):
    path = tmp_path / "s.zarr"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockError, match=f"pid {proc.pid}"):  # alive: refused
            StoreLock(path, "eeeeeeeeeeee").acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    notice = io.StringIO()
    with StoreLock(path, "eeeeeeeeeeee", notice=notice) as lock:
        assert lock.took_over["pid"] == proc.pid
        assert notice.getvalue().startswith("qbfast: taking over the stale lock of run "
                                            "dddddddddddd")
        assert json.loads(lock_path(path).read_text())["run_id"] == "eeeeeeeeeeee"


def _foreign_lease(path: Path, age: float) -> None:
    lock_path(path).write_text(json.dumps({
        "host": "elsewhere.example", "pid": 1, "run_id": "ffffffffffff",
        "started": "2026-01-01T00:00:00Z", "heartbeat": time.time() - age}))


def test_lease_of_another_host_is_judged_by_its_heartbeat(tmp_path):
    path = tmp_path / "s.zarr"
    _foreign_lease(path, age=STALE_AFTER_S / 4)  # fresh: refused (its PID is not ours to ask)
    with pytest.raises(LockError, match="elsewhere.example"):
        StoreLock(path, "aaaaaaaaaaaa").acquire()
    _foreign_lease(path, age=STALE_AFTER_S + 5)  # stopped renewing: taken over
    notice = io.StringIO()
    with StoreLock(path, "aaaaaaaaaaaa", notice=notice) as lock:
        assert lock.took_over["run_id"] == "ffffffffffff" and "taking over" in notice.getvalue()


def test_unreadable_lease_is_judged_by_its_age(tmp_path):
    path = tmp_path / "s.zarr"
    lock_path(path).write_text("{ half written")
    with pytest.raises(LockError):  # just written: someone is creating it
        StoreLock(path, "aaaaaaaaaaaa").acquire()
    old = time.time() - STALE_AFTER_S - 5
    os.utime(lock_path(path), (old, old))
    with StoreLock(path, "aaaaaaaaaaaa") as lock:
        assert lock.took_over is not None


def test_a_lease_taken_over_is_not_released_by_its_old_holder(tmp_path):
    path = tmp_path / "s.zarr"
    old = StoreLock(path, "aaaaaaaaaaaa").acquire()
    lock_path(path).unlink()  # as a takeover after a long stall does
    new = StoreLock(path, "bbbbbbbbbbbb").acquire()
    assert not old.holds()
    old.release()
    assert new.holds() and lock_path(path).exists()
    new.release()
    assert not lock_path(path).exists()


def test_every_spelling_of_a_store_meets_one_lease(tmp_path, monkeypatch):
    """A symlink to the store, ``./NAME`` and ``a/../NAME`` are the same store: one lease."""
    real = tmp_path / "real.zarr"
    real.mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "link.zarr").symlink_to(real)
    monkeypatch.chdir(tmp_path)
    with StoreLock(real, "aaaaaaaaaaaa"):
        for other in (tmp_path / "link.zarr", Path("./real.zarr"), Path("a/../real.zarr"),
                      Path("link.zarr/")):
            assert lock_path(other) == tmp_path / ".real.zarr.qbfast-lock"
            with pytest.raises(LockError, match="run aaaaaaaaaaaa"):
                StoreLock(other, "bbbbbbbbbbbb").acquire()
