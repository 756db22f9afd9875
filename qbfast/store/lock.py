"""One writer per store: a lease file beside the store, ``.NAME.zarr.qbfast-lock``.

Taken atomically with ``O_CREAT | O_EXCL`` (which, unlike ``flock``, holds on NFS and Lustre);
it holds JSON: host, PID, run id, start time and a heartbeat time, renewed every
:data:`HEARTBEAT_S` seconds by a thread of the holder. A second ``qbfast run`` on the same
store (``--overwrite`` included) refuses with one line naming the holder. A stale lease is taken
over, and the takeover is said: the holder's PID is dead on this host, or its heartbeat is
older than :data:`STALE_AFTER_S` (a holder on another host that stopped renewing). The lease
sits beside the store (not inside it), so that creation, removal and recreation are covered;
it is named after the store's resolved path, so a symlink to the store, ``./NAME`` or
``a/../NAME`` meet the same lease (a bind mount or another host's mount of the same directory
under another path do not: for those, a second lease inside the store, ``_qbfast/lease``,
:meth:`StoreLock.acquire_inner`; see docs/store-format.md).

A run that lost its lease (stopped, e.g. SIGSTOP or a suspended VM, for longer than the
staleness, and taken over meanwhile) must write nothing more: every record it writes (the
completion record, journal entries, merges; the client's and its workers') is preceded by
:func:`check_lease`, which compares the lease file's run id with the run's and raises
:class:`LeaseLostError` (one line) when they differ. Check-then-write leaves a small window
(a takeover between the check and the write it guards, a few microseconds against a staleness
of minutes): the check makes a lost writer stop at its next record, it is not a fence.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

from .layout import StoreError

#: Seconds between heartbeats of the holder.
HEARTBEAT_S = 10.0
#: A lease whose heartbeat is older than this is stale (documented in docs/store-format.md).
STALE_AFTER_S = 120.0
#: Environment variable (tests only): the staleness in seconds instead of :data:`STALE_AFTER_S`;
#: the heartbeat then comes every quarter of it (at most :data:`HEARTBEAT_S`).
STALE_AFTER_ENV = "QBFAST_STALE_AFTER_S"


def stale_after_s() -> float:
    """The staleness of a lease: :data:`STALE_AFTER_S`, or the test override
    :data:`STALE_AFTER_ENV`."""
    value = os.environ.get(STALE_AFTER_ENV)
    if value:
        try:
            seconds = float(value)
        except ValueError:
            seconds = 0.0
        if seconds > 0:
            return seconds
    return STALE_AFTER_S


def heartbeat_s() -> float:
    """Seconds between two heartbeats: :data:`HEARTBEAT_S`, or a quarter of the staleness if
    that is shorter."""
    return min(HEARTBEAT_S, stale_after_s() / 4)


class LockError(StoreError):
    """The store is held by another live run (one line naming the holder)."""


class LeaseLostError(StoreError):
    """This run's lease on the store was taken over (or removed): it writes nothing more."""


def read_lease(path: str | Path) -> dict[str, Any] | None:
    """The JSON of the lease file ``path``; None if there is none; ``{}`` if unreadable."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def check_lease(path: str | Path, run_id: str, store: str | Path) -> None:
    """Raise :class:`LeaseLostError` unless the lease file ``path`` (of ``store``) names run
    ``run_id``: called before every record a run writes, by its client and by its workers
    (the lease file is the only thing they compare: a worker needs no client to ask). See the
    module docstring for the window it leaves."""
    doc = read_lease(path)
    if doc is not None and doc.get("run_id") == run_id:
        return
    if doc is None:
        now_held = "its lease file is gone"
    elif doc.get("run_id"):
        now_held = f"it is now held by {_describe(doc)}"
    else:
        now_held = f"its lease file {path} is unreadable"
    raise LeaseLostError(f"{store}: run {run_id} lost its lease on the store ({now_held}; it "
                         f"was stopped longer than the lease's {stale_after_s():g} s and taken "
                         f"over); this run writes nothing more: check the store with `qbfast "
                         f"verify`")


def lock_path(store: str | Path) -> Path:
    """The lease file of ``store``: beside it, in its parent directory. The path is resolved
    first (``os.path.realpath``: symlinks, ``./``, ``a/../`` and relative paths, ``--store .``
    included), so that every spelling of one store on this host names one lease."""
    store = Path(os.path.realpath(store))
    return store.with_name(f".{store.name}.qbfast-lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(doc: dict[str, Any]) -> str:
    age = time.time() - float(doc.get("heartbeat", 0))
    return (f"run {doc.get('run_id')} (pid {doc.get('pid')} on {doc.get('host')}, "
            f"started {doc.get('started')}, heartbeat {age:.0f} s ago)")


#: The second lease, inside the store (``STORE/_qbfast/lease``): one writer per store, not per
#: spelling of its path (a bind mount, another host's mount of a shared file system).
INNER_LEASE = "lease"


def inner_lease_path(store: str | Path) -> Path:
    """The lease file inside the store (see :data:`INNER_LEASE`)."""
    from .layout import META

    return Path(store) / META / INNER_LEASE


class StoreLock:
    """The leases of one store, held from :meth:`acquire` to :meth:`release` (a context
    manager): the lease beside the store (:func:`lock_path`, taken by :meth:`acquire`, which
    covers creation and removal), and, once the store exists, the lease inside it
    (:func:`inner_lease_path`, taken by :meth:`acquire_inner` before anything is written into
    the store: a second writer that reaches the store through another path, whose lease beside
    it is another file, meets this one). Both follow the same rules (``O_EXCL``, heartbeat,
    staleness, takeover said). ``notice``: where a takeover of a stale lease is said."""

    def __init__(self, store: str | Path, run_id: str, notice: IO[str] | None = None) -> None:
        self.path = lock_path(store)
        self.store = Path(store)
        self.run_id = run_id
        self.notice = notice
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.took_over: dict[str, Any] | None = None
        #: the lease inside the store, once taken (:meth:`acquire_inner`)
        self.inner: Path | None = None

    def _doc(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "run_id": self.run_id,
                "started": self.started, "heartbeat": time.time(), "store": str(self.store)}

    def _create(self, path: Path | None = None) -> bool:
        try:
            fd = os.open(path or self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self._doc(), f)
            f.flush()
            os.fsync(f.fileno())
        return True

    def _read(self, path: Path | None = None) -> dict[str, Any] | None:
        path = path or self.path
        doc = read_lease(path)
        if doc is None:
            return None
        if "heartbeat" not in doc:  # unreadable or being written: judge by the file's age
            try:
                doc["heartbeat"] = path.stat().st_mtime
            except FileNotFoundError:
                return None
        return doc

    def _stale(self, doc: dict[str, Any]) -> bool:
        if (doc.get("host") == self.host and isinstance(doc.get("pid"), int)
                and not _alive(doc["pid"])):
            return True
        return time.time() - float(doc.get("heartbeat", 0)) > stale_after_s()

    def _take(self, path: Path) -> dict[str, Any] | None:
        """Take the lease file ``path`` (a stale one taken over and said); return the stale
        holder's document, if any; :class:`LockError` naming a live holder."""
        took_over = None
        for _ in range(20):
            if self._create(path):
                return took_over
            doc = self._read(path)
            if doc is None:
                continue  # released meanwhile: try again
            if not self._stale(doc):
                where = "" if path == self.path else " (its lease inside the store)"
                raise LockError(f"{self.store}: in use by {_describe(doc)}{where}; wait for it "
                                f"to finish, or remove {path} if that run is really gone")
            # take the stale lease over: move it aside (one contender wins the rename)
            aside = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.stale")
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            try:
                os.unlink(aside)
            except FileNotFoundError:
                pass
            took_over = doc
            if self.notice is not None:
                print(f"qbfast: taking over the stale lock of {_describe(doc)}",
                      file=self.notice)
        raise LockError(f"{self.store}: could not take the lock {path}")  # pragma: no cover

    def acquire(self) -> StoreLock:
        if not self.path.parent.is_dir():
            raise StoreError(f"{self.store.parent}: no such directory")
        self.took_over = self._take(self.path)
        self._thread = threading.Thread(target=self._beat, name="qbfast-lock", daemon=True)
        self._thread.start()
        return self

    def acquire_inner(self) -> None:
        """Take the lease inside the store (which must exist); :class:`LockError` (one line
        naming the holder) if another live run holds it."""
        path = inner_lease_path(self.store)
        doc = self._take(path)
        self.took_over = self.took_over or doc
        self.inner = path

    def drop_inner(self) -> None:
        """Forget the inner lease (the store that held it was removed, ``--overwrite``)."""
        self.inner = None

    def _leases(self) -> list[Path]:
        return [self.path] + ([self.inner] if self.inner is not None else [])

    def _beat(self) -> None:
        while not self._stop.wait(heartbeat_s()):
            for path in self._leases():
                doc = self._read(path)
                if doc is None or doc.get("run_id") != self.run_id:
                    return  # lost (taken over after a long stall): stop renewing
                tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.beat")
                try:
                    with open(tmp, "w", encoding="utf-8") as f:
                        json.dump(self._doc(), f)
                    os.replace(tmp, path)
                except OSError:
                    try:
                        os.unlink(tmp)
                    except OSError:
                        pass

    def check(self) -> None:
        """Raise :class:`LeaseLostError` unless this run still holds its leases
        (:func:`check_lease`)."""
        for path in self._leases():
            check_lease(path, self.run_id, self.store)

    def holds(self) -> bool:
        doc = self._read()
        return doc is not None and doc.get("run_id") == self.run_id

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for path in reversed(self._leases()):
            doc = self._read(path)
            if doc is not None and doc.get("run_id") == self.run_id:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        self.inner = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
