"""``qbfast verify``: decode every chunk file of a store and check it against the completion
record (its own CRC-32C, and the checksum the record holds for it); and every other file a
reader needs, the metadata (``zarr.json`` of the root, of every array and of the bookkeeping
group) and the coordinate chunks, against a rebuild of them from the store's layout
(:func:`verify_files`: built in a scratch directory exactly as :func:`.layout.create` builds a
store, with the store's own id and creation times), which :func:`repair_files` copies back
byte for byte. The journal is checked entry by entry when read (:mod:`.record`), and the
completion record by :func:`.record.read_complete`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunk_files import ChunkError, ChunkFiles
from .layout import StoreInfo, StoreLayout, create
from .record import Record


@dataclass(frozen=True)
class Damage:
    """One chunk file that is missing, damaged, or not the one recorded."""

    task: int
    variable: str
    problem: str


def verify(info: StoreInfo, record: Record) -> list[Damage]:
    """Every recorded task's chunk files decoded and checked; tasks not recorded are not
    damage (they are missing, and ``Record.missing`` lists them)."""
    damage: list[Damage] = []
    files = [ChunkFiles.open(info.path / v.name) for v in info.variables]
    if info.grouped:  # one storage chunk per group; a damaged group is named by its tasks
        assert record.group_done is not None and record.group_crc is not None
        for group in np.flatnonzero(record.group_done):
            coords = info.group_coords(int(group))
            for j, (var, f) in enumerate(zip(info.variables, files)):
                try:
                    f.read(coords[:len(var.dims)], int(record.group_crc[group, j]))
                except ChunkError as e:
                    damage.extend(Damage(int(t), var.name, str(e))
                                  for t in info.group_tasks(int(group)))
        return damage
    done = np.flatnonzero(record.done)
    for task in done:
        coords = info.task_coords(int(task))
        for j, (var, f) in enumerate(zip(info.variables, files)):
            try:
                f.read(coords[:len(var.dims)], int(record.crc[task, j]))
            except ChunkError as e:
                damage.append(Damage(int(task), var.name, str(e)))
    return damage


@dataclass(frozen=True)
class FileDamage:
    """A metadata file or coordinate chunk (``file``: relative to the store) that is missing or
    differs from its rebuild."""

    file: str
    problem: str


def _rebuild(info: StoreInfo, layout: StoreLayout, directory: Path) -> Path:
    scratch = directory / "rebuilt.zarr"
    create(layout, scratch, store_id=info.store_id, created=info.meta.get("created"))
    return scratch


def _reader_files(scratch: Path) -> list[str]:
    """Every file of a freshly built store: metadata and coordinate chunks (no data chunk,
    no journal)."""
    return sorted(p.relative_to(scratch).as_posix() for p in scratch.rglob("*") if p.is_file())


def _same(mine: Path, rebuilt: Path, rel: str) -> bool:
    """Whether ``mine`` holds what ``rebuilt`` holds: the same bytes, or (written by another
    version of zarr or zstd) the same JSON document, or the same decoded coordinate values."""
    a, b = mine.read_bytes(), rebuilt.read_bytes()
    if a == b:
        return True
    if mine.name == "zarr.json":
        try:
            return bool(json.loads(a) == json.loads(b))
        except (ValueError, UnicodeDecodeError):
            return False
    import zarr

    array = rel.split("/")[0]
    try:
        got = np.asarray(zarr.open_array(_array_dir(mine, array), mode="r")[...])
    except Exception:  # a damaged chunk fails to decode (zarr raises several types)
        return False
    want = np.asarray(zarr.open_array(_array_dir(rebuilt, array), mode="r")[...])
    return bool(got.dtype == want.dtype and np.array_equal(got, want))


def _array_dir(file: Path, array: str) -> Path:
    """The directory of the array ``array`` that ``file`` (one of its chunks) belongs to."""
    while file.name != array:
        file = file.parent
    return file


def verify_files(info: StoreInfo, layout: StoreLayout) -> list[FileDamage]:
    """Every metadata file and coordinate chunk of the store compared with its rebuild from
    ``layout`` (the store's layout, rebuilt by the runner from the store's spec with the store's
    own ``created``, ``kernels_digest`` and ``qbfast_version`` attrs)."""
    damage: list[FileDamage] = []
    with tempfile.TemporaryDirectory(prefix="qbfast-verify-") as d:
        scratch = _rebuild(info, layout, Path(d))
        for rel in _reader_files(scratch):
            mine = info.path / rel
            if not mine.is_file():
                damage.append(FileDamage(rel, f"{info.path}/{rel}: missing"))
            elif not _same(mine, scratch / rel, rel):
                damage.append(FileDamage(rel, f"{info.path}/{rel}: differs from its rebuild "
                                              f"from the store's spec"))
    return damage


def repair_files(info: StoreInfo, layout: StoreLayout, damage: list[FileDamage]) -> int:
    """Write each damaged file of ``damage`` again from its rebuild (byte for byte, atomically:
    a temporary file in its directory, flushed, renamed over it). Returns the files written.
    Only files qbfast wrote are replaced: those of a store's layout."""
    if not damage:
        return 0
    n = 0
    with tempfile.TemporaryDirectory(prefix="qbfast-repair-") as d:
        scratch = _rebuild(info, layout, Path(d))
        for item in damage:
            target = info.path / item.file
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
            try:
                with open(scratch / item.file, "rb") as src, open(tmp, "xb") as dst:
                    shutil.copyfileobj(src, dst)
                    dst.flush()
                    os.fsync(dst.fileno())
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            n += 1
    return n
