"""Writing tasks into a store from a worker: every variable's chunk file, then the task's journal
entry (:mod:`.record`). A process keeps its writers from one task to the next
(:func:`task_writer`), keyed by store path, store id and run, so a store is opened once per
worker and run, not once per task.

A writer holds the store's root directory open and opens everything relative to it, after
checking that the store there is the one the run was planned for (its store id): a worker left
over from a killed run can never write into a store that has since been removed and created
again at the same path; its writes follow the old directory, renamed aside and deleted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import staging
from .chunk_files import ChunkError, ChunkFiles, StagedChunk, commit, discard
from .layout import META, STAGING, StoreError, StoreInfo
from .lock import check_lease
from .record import DONE, GROUP_DONE, STAGED, Journal, read_record

#: Environment variable read by the writers (fault-injection tests only): seconds to sleep
#: between a task's chunk files and its journal entry.
DEBUG_JOURNAL_DELAY_ENV = "QBFAST_DEBUG_JOURNAL_DELAY"
#: Tasks of one writer that may wait for its flusher thread (:meth:`StoreWriter.write_behind`).
WRITE_BEHIND = 2


class StoreChangedError(StoreError):
    """The store at the path is not the one this task was given (it was recreated)."""


class StoreWriter:
    """Writes tasks of one run into one store (see the module docstring)."""

    def __init__(self, path: str | Path, store_id: str, generation: int, run_id: str,
                 durable: bool = True, lease: str | Path | None = None) -> None:
        self.path = Path(path)
        self.run_id = run_id
        #: the run's lease file, checked before every record (None: not checked)
        self.lease = None if lease is None else Path(lease)
        self.root_fd: int | None = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        self.files: list[ChunkFiles] = []
        self._cond = threading.Condition()
        self._queue: deque[tuple[int, list[StagedChunk], np.ndarray | None]] = deque()
        self._flusher: threading.Thread | None = None
        self._busy = False
        self._closing = False
        self._error: BaseException | None = None
        try:
            fd = os.open(f"{META}/zarr.json", os.O_RDONLY, dir_fd=self.root_fd)
            with os.fdopen(fd, "rb") as f:
                meta = json.load(f).get("attributes", {})
            if meta.get("store_id") != store_id:
                raise StoreChangedError(
                    f"{self.path}: the store there is not the one this run was given (store id "
                    f"{str(meta.get('store_id'))[:12]} != {store_id[:12]}): it was created "
                    f"again; this task writes nothing")
            self.info = StoreInfo(self.path, {}, meta)
            self.files = [ChunkFiles.open(self.path / v.name, durable, self.root_fd)
                          for v in self.info.variables]
            self.ndims = [len(v.dims) for v in self.info.variables]
            self.names = [v.name for v in self.info.variables]
            journal_fd = os.open(f"{META}/journal", os.O_RDONLY | os.O_DIRECTORY,
                                 dir_fd=self.root_fd)
            self.journal_fd: int | None = journal_fd
            self.staging_fd: int | None = None
            if self.info.grouped:
                self.staging_fd = os.open(f"{META}/{STAGING}", os.O_RDONLY | os.O_DIRECTORY,
                                          dir_fd=self.root_fd)
            self.staging_dir = self.path / META / STAGING
            self.durable = durable
            self.journal = Journal(self.path, generation, run_id, len(self.files),
                                   len(self.info.peak_metrics), durable,
                                   journal_fd=journal_fd)
        except BaseException:
            self.close()
            raise

    def write(self, task: int, data: Mapping[str, np.ndarray],
              peaks: np.ndarray | None = None) -> None:
        """Write task ``task``: each variable's chunk (``data[name]``: the task's region),
        durable, then its journal entry (checksums and peaks)."""
        staged = self._stage(task, data)
        try:
            self._commit(task, staged, peaks)
        except BaseException:
            discard(staged)  # those not renamed yet
            raise

    def write_behind(self, task: int, data: Mapping[str, np.ndarray],
                     peaks: np.ndarray | None = None) -> None:
        """As :meth:`write`, but only the chunk files' bytes are written here (to their
        temporary names); flushing them to disk, renaming them and the journal entry are done
        by this writer's flusher thread, in order, while the caller computes its next task (a
        task's data then cost the disk's time once, not twice). At most
        :data:`WRITE_BEHIND` tasks wait for it: beyond, this call waits. An error of the
        flusher is raised by the next call, and by :meth:`flush`. The record never names a
        task before its data are durable; a kill loses only the tasks not yet recorded."""
        staged = self._stage(task, data)
        try:
            self._raise_flusher_error()
            with self._cond:
                if self._flusher is None:
                    self._flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                                     name="qbfast-store-flusher")
                    self._flusher.start()
                while len(self._queue) >= WRITE_BEHIND and self._error is None:
                    self._cond.wait()
                self._queue.append((task, staged, peaks))
                self._cond.notify_all()
        except BaseException:
            discard(staged)
            raise

    def flush(self) -> None:
        """Wait until every task given to :meth:`write_behind` is recorded; raise the
        flusher's error, if any."""
        with self._cond:
            while (self._queue or self._busy) and self._error is None:
                self._cond.wait()
        self._raise_flusher_error()

    def _raise_flusher_error(self) -> None:
        if self._error is not None:
            raise StoreError(f"{self.path}: writing a task failed: {self._error}") \
                from self._error

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    if self._closing:
                        return
                    self._cond.wait()
                task, staged, peaks = self._queue.popleft()
                self._busy = True
            try:
                self._commit(task, staged, peaks)
            except BaseException as e:  # kept for the writing thread; nothing recorded
                discard(staged)  # the files not renamed yet
                with self._cond:
                    self._error = e
                    for _, other, _ in self._queue:
                        discard(other)
                    self._queue.clear()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _stage(self, task: int, data: Mapping[str, np.ndarray]) -> list[StagedChunk]:
        return self._stage_chunks(self.info.task_coords(task), data)

    def _stage_chunks(self, coords: tuple[int, ...], data: Mapping[str, np.ndarray],
                      reuse: bool = True) -> list[StagedChunk]:
        """Every variable's chunk at ``coords`` (``data[name]``), staged (see
        :meth:`.ChunkFiles.stage`); none left behind on an error."""
        staged: list[StagedChunk] = []
        try:
            for files, ndim, name in zip(self.files, self.ndims, self.names):
                staged.append(files.stage(coords[:ndim], data[name], reuse))
        except BaseException:
            discard(staged)
            raise
        return staged

    def check_lease(self) -> None:
        """Raise :class:`.lock.LeaseLostError` if the run lost its lease (no-op without
        ``lease``)."""
        if self.lease is not None:
            check_lease(self.lease, self.run_id, self.path)

    def _commit(self, task: int, staged: list[StagedChunk],
                peaks: np.ndarray | None) -> None:
        self.check_lease()
        commit(staged)
        delay = os.environ.get(DEBUG_JOURNAL_DELAY_ENV)
        if delay:  # fault-injection tests: widen the window between data and record
            time.sleep(float(delay))
        self.check_lease()
        self.journal.append(task, DONE, [c.crc for c in staged], peaks)

    def stage(self, task: int, data: Mapping[str, np.ndarray],
              peaks: np.ndarray | None = None) -> int:
        """Grouped stores: write task ``task``'s staging file (all its variables), durable,
        then its STAGED entry (the file's CRC and the task's peaks). Returns the CRC."""
        blob = staging.encode(self.info, task, data)
        self.check_lease()
        crc = staging.write(self.staging_fd, self.staging_dir, task, blob, self.durable)
        delay = os.environ.get(DEBUG_JOURNAL_DELAY_ENV)
        if delay:
            time.sleep(float(delay))
        self.check_lease()
        self.journal.append(task, STAGED, [crc] + [0] * (len(self.files) - 1), peaks)
        return crc

    def merge(self, group: int, expected: Mapping[int, int] | None = None) -> list[int]:
        """Grouped stores: read and check the staging files of every task of ``group``,
        write each variable's storage chunk (durable), append the GROUP_DONE entry with the
        chunk files' CRCs, then remove the staging files. Returns the CRCs."""
        info = self.info
        tasks = info.group_tasks(group)
        gcoords = info.group_coords(group)
        first = info.task_coords(int(tasks[0]))
        lo = [i * c for i, c in zip(first, info.chunks)]
        hi = [min((g + 1) * f * c, s) for g, f, c, s in
              zip(gcoords, info.group, info.chunks, info.shape)]
        blocks = {v.name: np.full(tuple(h - lo_ for lo_, h in zip(lo, hi))[:len(v.dims)],
                                  np.nan, dtype=np.dtype(v.dtype))
                  for v in info.variables}
        for task in tasks:
            try:
                part = staging.read(info, self.staging_dir, int(task), self.staging_fd,
                                    None if expected is None else expected.get(int(task)))
            except ChunkError:
                done = self._merged_crcs(group)
                if done is not None:  # merged before: a retry after the result was lost
                    return done
                raise
            coords = info.task_coords(int(task))
            for var in info.variables:
                region = tuple(slice(i * c - lo_, min((i + 1) * c, s) - lo_) for i, c, s, lo_
                               in zip(coords, info.chunks, info.shape, lo))[:len(var.dims)]
                blocks[var.name][region] = part[var.name]
        staged = self._stage_chunks(gcoords, blocks, reuse=False)  # no buffer kept
        try:
            self.check_lease()
        except BaseException:
            discard(staged)
            raise
        commit(staged)  # flushed together, then renamed
        crcs = [c.crc for c in staged]
        delay = os.environ.get(DEBUG_JOURNAL_DELAY_ENV)
        if delay:
            time.sleep(float(delay))
        self.check_lease()
        self.journal.append(group, GROUP_DONE, crcs, None)
        for task in tasks:
            try:
                os.unlink(staging.stage_name(int(task)), dir_fd=self.staging_fd)
            except FileNotFoundError:
                pass
        return crcs

    def _merged_crcs(self, group: int) -> list[int] | None:
        """The chunk CRCs of ``group``'s GROUP_DONE entry if the record holds one (a merge
        whose worker was lost after it removed the staging files, retried by Dask), else
        None."""
        record = read_record(self.info)
        assert record.group_done is not None and record.group_crc is not None
        if not record.group_done[group]:
            return None
        return [int(c) for c in record.group_crc[group]]

    def close(self) -> None:
        """Record what :meth:`write_behind` was given (errors are dropped here: those tasks
        stay unrecorded), then close every file."""
        if self._flusher is not None:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._flusher.join()
            self._flusher = None
        staging_fd = getattr(self, "staging_fd", None)
        if staging_fd is not None:
            os.close(staging_fd)
            self.staging_fd = None
        for f in self.files:
            f.close()
        if getattr(self, "journal", None) is not None:
            self.journal.close()
        journal_fd = getattr(self, "journal_fd", None)
        if journal_fd is not None:
            os.close(journal_fd)
            self.journal_fd = None
        if self.root_fd is not None:
            os.close(self.root_fd)
            self.root_fd = None


_WRITERS: OrderedDict[tuple[str, str, str, int], StoreWriter] = OrderedDict()
_WRITERS_LOCK = threading.Lock()
_WRITERS_KEPT = 4


def task_writer(path: str | Path, store_id: str, generation: int, run_id: str,
                durable: bool = True, lease: str | Path | None = None) -> StoreWriter:
    """This process's :class:`StoreWriter` for (store, run), opened on first use; ``lease``:
    the run's lease file, checked before every record."""
    key = (os.path.abspath(path), store_id, run_id, generation)
    with _WRITERS_LOCK:
        writer = _WRITERS.get(key)
        if writer is not None:
            _WRITERS.move_to_end(key)
            return writer
        writer = StoreWriter(path, store_id, generation, run_id, durable, lease)
        _WRITERS[key] = writer
        while len(_WRITERS) > _WRITERS_KEPT:
            _WRITERS.popitem(last=False)[1].close()
    return writer


def flush_writers(run_id: str) -> int:
    """Wait until every task this process gave to a writer of run ``run_id``
    (:meth:`~StoreWriter.write_behind`) is recorded (on every worker at the end of a run);
    return the number of those writers. Raises the first flusher error of that run (another
    run's writers, e.g. of an earlier failed run on a long-lived worker, are not looked at)."""
    with _WRITERS_LOCK:
        writers = [w for key, w in _WRITERS.items() if key[2] == run_id]
    for w in writers:
        w.flush()
    return len(writers)
