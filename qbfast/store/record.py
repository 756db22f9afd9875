"""The completion record: which tasks of a store are written, with the checksum of every chunk
file they wrote and the peaks the run summary reports.

Append-only journal files in ``_qbfast/journal/``, one per writing process and run, named
``g<generation>-<run id>-<host>-<pid>.log``. Each entry is fixed-size binary (layout
:func:`entry_dtype`): magic, kind (done / revoked), task number, generation, the CRC-32C of
each variable's chunk file, the task's peaks, and a CRC-32C of the entry itself. A task appends
its entry only after its chunk files are durable (written, fsynced, renamed), and fsyncs the
journal; so an entry never names data that are not there. A process killed mid-entry leaves a
torn last entry, which fails its checksum and is ignored: that task is computed again.

Generations: every run takes the next generation (1 + the largest in the journal names). To
recompute tasks (a chunk file found missing or damaged), the run first appends *revoked*
entries in its own generation; a *done* entry counts only if its generation is at least the
task's latest revocation. Reading the record reads every journal (a few MB for 1e6 tasks)
with NumPy; no file per chunk.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .chunk_files import crc32c
from .layout import _STAGE_NAME, META, STAGING, StoreError, StoreInfo, now

MAGIC = 0x314A4251  # b"QBJ1"
DONE = 1
REVOKED = 2
#: Grouped stores (format 3): a task's staging file is durable (``task`` = task number,
#: ``crc[0]`` = the staging file's CRC-32C, ``peaks`` = the task's peaks) ...
STAGED = 3
#: ... and a group's storage chunks are durable (``task`` = group number, ``crc`` = each
#: variable's chunk file). In grouped stores REVOKED entries name groups.
GROUP_DONE = 4
JOURNAL_NAME = re.compile(r"g(\d{6})-([0-9a-f]{12})-([A-Za-z0-9_.-]{1,64})-(\d+)\.log")
COMPLETE = "complete.json"


def _crc32c_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1)
    return table.astype(np.uint32)


_CRC32C_TABLE = _crc32c_table()


def crc32c_rows(rows: np.ndarray) -> np.ndarray:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of each row of a uint8 array,
    vectorised over the rows (one NumPy pass per byte column): the checksum of
    :func:`.chunk_files.crc32c` for many journal entries at once, without a Python loop per
    entry (1e6 entries: well under a second)."""
    rows = np.asarray(rows, dtype=np.uint8)
    crc = np.full(rows.shape[0], 0xFFFFFFFF, dtype=np.uint32)
    for j in range(rows.shape[1]):
        crc = _CRC32C_TABLE[(crc ^ rows[:, j]) & 0xFF] ^ (crc >> 8)
    return crc ^ np.uint32(0xFFFFFFFF)


def entry_dtype(n_variables: int, n_peaks: int) -> np.dtype:
    """The binary layout of one journal entry (little-endian, packed)."""
    return np.dtype([("magic", "<u4"), ("kind", "<u4"), ("task", "<i8"),
                     ("generation", "<u4"), ("crc", "<u4", (n_variables,)),
                     ("peaks", "<f8", (n_peaks, 2)), ("check", "<u4")])


def journal_dir(path: str | Path) -> Path:
    return Path(path) / META / "journal"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64] or "host"


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def journal_missing_line(path: str | Path, named: bool = True) -> str:
    """What to say of a store whose journal directory was deleted (one line; ``named``: led
    by the store's path)."""
    lead = f"{path}: " if named else ""
    return (f"{lead}its journal ({META}/journal, the record of which tasks are written) is "
            f"missing, so no task counts as written; `qbfast verify {path} --repair` or the "
            f"same `qbfast run` recomputes every task into this store and rebuilds it")


def restore_journal(path: str | Path) -> bool:
    """Create the journal directory of the store at ``path`` if it was deleted (durable);
    return whether it was missing. Called by a run under the store's lease, before it writes."""
    jdir = journal_dir(path)
    try:
        os.mkdir(jdir)
    except FileExistsError:
        return False
    fd = os.open(jdir.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def next_generation(path: str | Path) -> int:
    """1 + the largest generation among the store's journals (1 for a new store)."""
    best = 0
    for name in os.listdir(journal_dir(path)):
        m = JOURNAL_NAME.fullmatch(name)
        if m:
            best = max(best, int(m.group(1)))
    return best + 1


class Journal:
    """The journal file of this process for one run of one store: entries appended, each
    followed by an fsync. Thread-safe (Dask threads of one worker share it)."""

    def __init__(self, path: str | Path, generation: int, run_id: str, n_variables: int,
                 n_peaks: int, durable: bool = True, tag: str | None = None,
                 journal_fd: int | None = None) -> None:
        self.dtype = entry_dtype(n_variables, n_peaks)
        #: an open descriptor of the journal directory (see ChunkFiles.dir_fd), or None
        self.journal_fd = journal_fd
        self.generation = generation
        self.durable = durable
        name = f"g{generation:06d}-{run_id}-{tag or _host()}-{os.getpid()}.log"
        self.file = journal_dir(path) / name
        self._lock = threading.Lock()
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            if self.journal_fd is not None:
                self._fd = os.open(self.file.name, flags, 0o644, dir_fd=self.journal_fd)
                if self.durable:
                    os.fsync(self.journal_fd)
            else:
                self._fd = os.open(self.file, flags, 0o644)
                if self.durable:
                    fd = os.open(self.file.parent, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        return self._fd

    def append(self, task: int, kind: int = DONE, crcs: Any = (), peaks: Any = None) -> None:
        entry = np.zeros((), dtype=self.dtype)
        entry["magic"], entry["kind"], entry["task"] = MAGIC, kind, task
        entry["generation"] = self.generation
        if len(crcs):
            entry["crc"] = crcs
        entry["peaks"] = np.nan if peaks is None else peaks
        raw = entry.tobytes()
        entry["check"] = crc32c(raw[:-4])
        data = entry.tobytes()
        with self._lock:
            fd = self._open()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.durable:
                os.fdatasync(fd)

    def append_many(self, tasks: Any, kind: int) -> None:
        for t in np.asarray(tasks, dtype=np.int64):
            self.append(int(t), kind)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


@dataclass
class Record:
    """What the journals say: per task, done or not, the recorded checksum of each variable's
    chunk file, and the task's peaks.

    Grouped stores: ``done`` = the task's group is merged (its storage chunks recorded);
    ``staged`` = not done, but a valid STAGED entry and its staging file present;
    ``group_done`` / ``group_crc``: per group; ``stage_crc``: each staged task's staging file
    checksum. Ungrouped: ``staged`` all False, ``group_done`` = ``done``, ``group_crc`` = ``crc``.
    """

    done: np.ndarray         # bool (n_tasks,)
    crc: np.ndarray          # uint32 (n_tasks, n_variables)
    peaks: np.ndarray        # float64 (n_tasks, n_peaks, 2)
    entries: int             # valid entries read
    torn: int                # entries ignored (torn or damaged)
    journals: int            # journal files read
    staged: np.ndarray | None = None      # bool (n_tasks,)
    group_done: np.ndarray | None = None  # bool (n_groups,)
    group_crc: np.ndarray | None = None   # uint32 (n_groups, n_variables)
    stage_crc: np.ndarray | None = None   # uint32 (n_tasks,)
    #: the journal directory (``_qbfast/journal``) is gone: nothing is known to be written
    journal_missing: bool = False

    def __post_init__(self) -> None:
        if self.staged is None:
            self.staged = np.zeros(self.done.shape, dtype=bool)
        if self.group_done is None:
            self.group_done = self.done
        if self.group_crc is None:
            self.group_crc = self.crc
        if self.stage_crc is None:
            self.stage_crc = np.zeros(self.done.shape, dtype=np.uint32)

    @property
    def n_done(self) -> int:
        return int(self.done.sum())

    @property
    def n_groups_done(self) -> int:
        assert self.group_done is not None
        return int(self.group_done.sum())

    @property
    def n_staged(self) -> int:
        assert self.staged is not None
        return int(self.staged.sum())

    @property
    def missing(self) -> np.ndarray:
        """Tasks to compute: neither done nor staged."""
        return np.flatnonzero(~(self.done | self.staged))


def read_record(info: StoreInfo) -> Record:
    """Read every journal of the store (see the module docstring for the rules)."""
    n_vars, n_peaks, n = len(info.variables), len(info.peak_metrics), info.n_tasks
    dtype = entry_dtype(n_vars, n_peaks)
    size = dtype.itemsize
    parts = []
    torn = journals = 0
    jdir = journal_dir(info.path)
    try:
        names = sorted(os.listdir(jdir))
    except FileNotFoundError:  # deleted: no task is known to be written (journal_missing)
        names = []
        if not info.path.is_dir():
            raise
    missing_dir = not jdir.is_dir()
    for name in names:
        if not JOURNAL_NAME.fullmatch(name):
            continue
        journals += 1
        with open(jdir / name, "rb") as f:
            data = f.read()
        whole = len(data) // size
        torn += 1 if len(data) % size else 0
        if not whole:
            continue
        raw = np.frombuffer(data, dtype=np.uint8, count=whole * size).reshape(whole, size)
        entries = raw[:, :].copy().view(dtype).reshape(whole)
        ok = (entries["magic"] == MAGIC) & (entries["task"] >= 0) & (entries["task"] < n)
        ok &= (entries["kind"] >= DONE) & (entries["kind"] <= GROUP_DONE)
        if ok.any():
            checks = crc32c_rows(raw[ok][:, :-4])
            good = np.zeros(whole, dtype=bool)
            good[np.flatnonzero(ok)] = checks == entries["check"][ok]
            ok = good
        torn += int((~ok).sum())
        parts.append(entries[ok])
    entries = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    record = _read_entries(info, entries, torn, journals)
    record.journal_missing = missing_dir
    return record


def _read_entries(info: StoreInfo, entries: np.ndarray, torn: int, journals: int) -> Record:
    n, n_vars, n_peaks = info.n_tasks, len(info.variables), len(info.peak_metrics)
    if info.grouped:
        return _grouped_record(info, entries, torn, journals)
    revoked = np.zeros(n, dtype=np.int64)
    rev = entries[entries["kind"] == REVOKED]
    np.maximum.at(revoked, rev["task"], rev["generation"].astype(np.int64))
    done_entries = entries[entries["kind"] == DONE]
    valid = done_entries["generation"].astype(np.int64) >= revoked[done_entries["task"]]
    done_entries = done_entries[valid]
    # the latest valid entry of each task wins (sorted by generation, stable)
    done_entries = done_entries[np.argsort(done_entries["generation"], kind="stable")]
    done = np.zeros(n, dtype=bool)
    crc = np.zeros((n, n_vars), dtype=np.uint32)
    peaks = np.full((n, n_peaks, 2), np.nan)
    tasks = done_entries["task"]
    done[tasks] = True
    crc[tasks] = done_entries["crc"]
    peaks[tasks] = done_entries["peaks"]
    return Record(done, crc, peaks, len(entries), torn, journals)


def staging_dir(path: str | Path) -> Path:
    return Path(path) / META / STAGING


def staged_files(info: StoreInfo) -> np.ndarray:
    """Task numbers whose staging file exists (one directory listing)."""
    try:
        names = [e.name for e in os.scandir(staging_dir(info.path))]
    except FileNotFoundError:
        return np.zeros(0, dtype=np.int64)
    tasks = [int(x[:-6]) for x in names if _STAGE_NAME.fullmatch(x)]
    return np.asarray([t for t in tasks if t < info.n_tasks], dtype=np.int64)


def _latest(entries: np.ndarray) -> np.ndarray:
    return entries[np.argsort(entries["generation"], kind="stable")]


def _grouped_record(info: StoreInfo, entries: np.ndarray, torn: int, journals: int) -> Record:
    n, n_groups = info.n_tasks, info.n_groups
    n_vars, n_peaks = len(info.variables), len(info.peak_metrics)
    revoked = np.zeros(n_groups, dtype=np.int64)
    rev = entries[(entries["kind"] == REVOKED) & (entries["task"] < n_groups)]
    np.maximum.at(revoked, rev["task"], rev["generation"].astype(np.int64))
    merged = entries[(entries["kind"] == GROUP_DONE) & (entries["task"] < n_groups)]
    merged = _latest(merged[merged["generation"].astype(np.int64) >= revoked[merged["task"]]])
    group_done = np.zeros(n_groups, dtype=bool)
    group_crc = np.zeros((n_groups, n_vars), dtype=np.uint32)
    group_done[merged["task"]] = True
    group_crc[merged["task"]] = merged["crc"]
    st = entries[entries["kind"] == STAGED]
    st = _latest(st[st["generation"].astype(np.int64) >= revoked[info.group_of(st["task"])]])
    valid = np.zeros(n, dtype=bool)
    stage_crc = np.zeros(n, dtype=np.uint32)
    peaks = np.full((n, n_peaks, 2), np.nan)
    valid[st["task"]] = True
    stage_crc[st["task"]] = st["crc"][:, 0] if n_vars else 0
    peaks[st["task"]] = st["peaks"]
    done = group_done[info.group_of(np.arange(n))]
    present = np.zeros(n, dtype=bool)
    present[staged_files(info)] = True
    staged = valid & present & ~done
    peaks[~(done | staged)] = np.nan
    return Record(done, np.zeros((n, n_vars), dtype=np.uint32), peaks, len(entries), torn,
                  journals, staged=staged, group_done=group_done, group_crc=group_crc,
                  stage_crc=stage_crc)


def missing_files(info: StoreInfo, record: Record) -> np.ndarray:
    """Tasks recorded as done one of whose chunk files does not exist (one directory listing
    per variable: cheap at 1e6 chunks)."""
    if info.grouped:
        return _missing_group_files(info, record)
    bad = np.zeros(info.n_tasks, dtype=bool)
    done = np.flatnonzero(record.done)
    if not len(done):
        return np.zeros(0, dtype=np.int64)
    grid = info.chunk_grid
    coords = np.stack(np.unravel_index(done, grid), axis=1) if len(grid) else np.zeros((0, 0))
    bad[done[_absent(info, coords)]] = True
    return np.flatnonzero(bad)


def check_staged(info: StoreInfo, record: Record) -> int:
    """Grouped stores, no task writing: decode every staged task's staging file against its
    recorded CRC and delete those that fail (their tasks are computed again once the record is
    read anew); delete the staging files of merged groups (left by a kill between a group's
    entry and their removal). Returns the number of files deleted."""
    from . import staging

    if not info.grouped:
        return 0
    assert record.staged is not None and record.stage_crc is not None
    d = staging_dir(info.path)
    n = 0
    for task in np.flatnonzero(record.staged):
        try:
            staging.read(info, d, int(task), expected_crc=int(record.stage_crc[task]))
        except StoreError:
            (d / staging.stage_name(int(task))).unlink(missing_ok=True)
            n += 1
    present = staged_files(info)
    for task in present[record.done[present]]:
        (d / staging.stage_name(int(task))).unlink(missing_ok=True)
        n += 1
    return n


def _missing_group_files(info: StoreInfo, record: Record) -> np.ndarray:
    """Grouped stores: every task of a merged group one of whose chunk files is missing."""
    assert record.group_done is not None
    done = np.flatnonzero(record.group_done)
    if not len(done):
        return np.zeros(0, dtype=np.int64)
    coords = np.stack(np.unravel_index(done, info.group_grid), axis=1)
    bad = np.zeros(info.n_groups, dtype=bool)
    bad[done[_absent(info, coords)]] = True
    return info.tasks_of_groups(np.flatnonzero(bad))


def read_complete(info: StoreInfo) -> dict[str, Any] | None:
    """The completion file if present and of this store (same id and task count), else None."""
    p = info.path / META / COMPLETE
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("store_id") != info.store_id \
            or doc.get("n_tasks") != info.n_tasks:
        return None
    return doc


def write_complete(info: StoreInfo, record: Record) -> None:
    """Write the completion file (atomically) after checking the record covers every task."""
    if not record.done.all():
        raise RuntimeError("write_complete: tasks are missing")
    p = info.path / META / COMPLETE
    tmp = p.with_name(f"{COMPLETE}.{uuid.uuid4().hex}.partial")
    doc = {"store_id": info.store_id, "n_tasks": info.n_tasks, "completed": now(),
           "journal_entries": record.entries}
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def clear_complete(info: StoreInfo) -> None:
    """Remove the completion file (qbfast's own) before recomputing tasks of a store."""
    try:
        os.unlink(info.path / META / COMPLETE)
    except FileNotFoundError:
        pass


def completeness(path: str | Path) -> tuple[int, int, bool] | None:
    """(tasks missing, tasks in all, whether the completion record is this store's) of the
    qbfast store at ``path``, counting recorded tasks whose chunk files are gone as missing;
    None if ``path`` is not a qbfast store of this format (e.g. a Dataset written by
    ``to_zarr``). The one rule every command applies: a store is complete when no task is
    missing and its completion record (``_qbfast/complete.json``, :func:`read_complete`) is
    present, readable and of this store (the same rule as ``qbfast info`` and ``qbfast run``,
    ``runner.driver.inspect_store``). For the analysis: an incomplete store reads as NaN (the
    fill value) where tasks are missing."""
    from .layout import StoreError, open_info

    try:
        info = open_info(path)
    except StoreError:
        return None
    record = read_record(info)
    lost = missing_files(info, record)
    return (int(info.n_tasks - record.n_done + len(lost)), info.n_tasks,
            read_complete(info) is not None)


def _absent(info: StoreInfo, coords: np.ndarray) -> np.ndarray:
    """For each row of storage-chunk coordinates: whether some variable's chunk file there is
    missing (one directory listing per variable)."""
    absent = np.zeros(len(coords), dtype=bool)
    for var in info.variables:
        try:
            names = {e.name for e in os.scandir(info.path / var.name)}
        except FileNotFoundError:
            names = set()
        ndim = len(var.dims)
        keys = ["c" + "".join(f".{i}" for i in row[:ndim]) for row in coords]
        absent |= ~np.fromiter((k in names for k in keys), dtype=bool, count=len(keys))
    return absent
