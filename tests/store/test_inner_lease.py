"""One writer per store, not per spelling of its path (issue 19, item 1): besides the lease
beside the store, a run holds a lease inside it (``STORE/_qbfast/lease``), taken before the
cluster starts and before anything is written; a second writer that reaches the store through
another path (a bind mount: its lease beside the store is another file) refuses in one line
naming the holder, rc 2, and the journal holds each task's entry once."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from qbstore import (
    SMALL_SPEC,
    create,
    is_complete,
    one_error_line,
    qbfast_proc,
    small_spec,
    spec_file,
    wait_for,
)

from qbfast import store
from qbfast.runner.tasks import DEBUG_DELAY_ENV
from qbfast.store.lock import LockError, StoreLock, inner_lease_path, lock_path


def test_inner_lease_refuses_a_writer_whose_outer_lease_is_another_file(tmp_path):
    path = tmp_path / "s.zarr"
    create(small_spec(), path)
    first = StoreLock(path, "aaaaaaaaaaaa").acquire()
    try:
        first.acquire_inner()
        assert inner_lease_path(path).is_file() and first.inner == inner_lease_path(path)
        second = StoreLock(path, "bbbbbbbbbbbb")
        second.path = tmp_path / ".elsewhere.qbfast-lock"  # as through another mount
        second.acquire()  # its outer lease is free ...
        try:
            with pytest.raises(LockError) as e:
                second.acquire_inner()  # ... the store's own is not
            msg = str(e.value)
            assert "\n" not in msg and "run aaaaaaaaaaaa" in msg and "inside the store" in msg
            assert second.inner is None
        finally:
            second.release()
        first.check()  # untouched by the refused one
        store.check_removable(path)  # the lease is a store file: --overwrite may remove it
    finally:
        first.release()
    assert not inner_lease_path(path).exists() and not lock_path(path).exists()


def _can_bind_mount(tmp_path) -> bool:
    a, b = tmp_path / "probe-a", tmp_path / "probe-b"
    a.mkdir()
    b.mkdir()
    r = subprocess.run(["mount", "--bind", str(a), str(b)], capture_output=True, check=False)
    if r.returncode:
        return False
    subprocess.run(["umount", str(b)], check=True)
    return True


@pytest.mark.slow
def test_second_run_through_a_bind_mount_is_refused(tmp_path):
    if not _can_bind_mount(tmp_path):
        pytest.skip("mount --bind is not permitted here (needs root or CAP_SYS_ADMIN)")
    spec = spec_file(tmp_path, SMALL_SPEC, "small")
    (tmp_path / "d").mkdir()
    (tmp_path / "e" / "s.zarr").mkdir(parents=True)
    path = tmp_path / "d" / "s.zarr"
    other = tmp_path / "e" / "s.zarr"
    log = tmp_path / "a.log"
    with open(log, "w") as out:
        a = qbfast_proc(["run", str(spec), "--store", str(path), "--workers", "1"],
                        env={DEBUG_DELAY_ENV: "3"}, stdout=out, stderr=subprocess.STDOUT)
    mounted = False
    try:
        wait_for(lambda: inner_lease_path(path).exists() or a.poll() is not None, 300,
                 "run A's store")
        assert a.poll() is None, log.read_text()
        subprocess.run(["mount", "--bind", str(path), str(other)], check=True)
        mounted = True
        assert os.path.realpath(other) != os.path.realpath(path)  # two spellings, two
        assert lock_path(other) != lock_path(path)                # leases beside the store
        assert (other / "zarr.json").is_file()  # ... and one store
        b = subprocess.run([sys.executable, "-m", "qbfast", "run", str(spec), "--store",
                            str(other), "--workers", "1"], capture_output=True, text=True,
                           timeout=300, check=False)
        assert b.returncode == 2, b.stderr
        line = one_error_line(b.stderr)
        assert "in use by run" in line and f"pid {a.pid}" in line and "inside the store" in line
        assert a.poll() is None, log.read_text()  # A still running, B stopped before the cluster
        assert a.wait(300) == 0, log.read_text()
    finally:
        if mounted:
            subprocess.run(["umount", str(other)], check=True)
        if a.poll() is None:
            os.killpg(a.pid, 9)
            a.wait(30)
    assert is_complete(path)
    info = store.open_info(path)
    record = store.read_record(info)
    assert record.entries == info.n_tasks and record.journals == 1  # each entry once: A's
    tasks = np.concatenate([np.frombuffer(p.read_bytes(), dtype=store.record.entry_dtype(
        len(info.variables), len(info.peak_metrics)))["task"]
        for p in (path / store.META / "journal").iterdir()])
    assert sorted(tasks.tolist()) == list(range(info.n_tasks))
    assert not inner_lease_path(path).exists()  # released at the end of A
