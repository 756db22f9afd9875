"""Staging files of grouped stores (format 3): a task of a group writes its reduced variables
into one file, ``_qbfast/staging/<task>.stage``, that its group's merge later reads and
removes. No task ever touches a chunk file of a grouped store: a storage chunk has one writer,
the group's merge.

A staging file is every variable's region of the task (C order, the variable's storage dtype,
little-endian), in the store's variable order, then the CRC-32C of those bytes (4 bytes,
little-endian). It is written to a temporary name, ``fdatasync``-ed and renamed, like a chunk
file; its length and its CRC are checked whenever it is read.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .chunk_files import ChunkError, crc32c
from .layout import StoreInfo


def stage_name(task: int) -> str:
    return f"{int(task)}.stage"


def task_shapes(info: StoreInfo, task: int) -> list[tuple[int, ...]]:
    """The shape of each variable's region of ``task``."""
    coords = info.task_coords(task)
    full = tuple(min((i + 1) * c, s) - i * c
                 for i, c, s in zip(coords, info.chunks, info.shape))
    return [full[:len(v.dims)] for v in info.variables]


def encode(info: StoreInfo, task: int, data: Mapping[str, np.ndarray]) -> bytes:
    parts = []
    for var, shape in zip(info.variables, task_shapes(info, task)):
        a = np.ascontiguousarray(np.asarray(data[var.name], dtype=np.dtype(var.dtype)
                                            .newbyteorder("<")))
        if a.shape != shape:
            raise ValueError(f"data[{var.name!r}]: expected shape {shape}, got {a.shape}")
        parts.append(a.tobytes())
    body = b"".join(parts)
    return body + crc32c(body).to_bytes(4, "little")


def write(dir_fd: int | None, directory: Path, task: int, blob: bytes,
          durable: bool = True) -> int:
    """Write a staging file atomically (temporary name, fdatasync, rename); return its CRC."""
    name = stage_name(task)
    tmp = f"{name}.{uuid.uuid4().hex}.partial"
    if dir_fd is None:
        name, tmp = str(directory / name), str(directory / tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise
    return int.from_bytes(blob[-4:], "little")


def read(info: StoreInfo, directory: Path, task: int, dir_fd: int | None = None,
         expected_crc: int | None = None) -> dict[str, np.ndarray]:
    """Decode a staging file, checking its length and CRC (and the recorded CRC if given);
    :class:`ChunkError` naming the file otherwise."""
    name = stage_name(task)
    where = f"staging/{name}"
    try:
        if dir_fd is not None:
            fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as f:
                blob = f.read()
        else:
            blob = (directory / name).read_bytes()
    except FileNotFoundError:
        raise ChunkError(f"{where}: missing staging file") from None
    shapes = task_shapes(info, task)
    sizes = [int(np.prod(s, dtype=np.int64)) * np.dtype(v.dtype).itemsize
             for v, s in zip(info.variables, shapes)]
    if len(blob) != sum(sizes) + 4:
        raise ChunkError(f"{where}: {len(blob)} bytes, expected {sum(sizes) + 4}")
    stored = int.from_bytes(blob[-4:], "little")
    if crc32c(blob[:-4]) != stored:
        raise ChunkError(f"{where}: checksum mismatch (damaged staging file)")
    if expected_crc is not None and stored != expected_crc:
        raise ChunkError(f"{where}: not the file the record holds (checksum {stored:08x} != "
                         f"recorded {expected_crc:08x})")
    out = {}
    offset = 0
    for var, shape, size in zip(info.variables, shapes, sizes):
        dtype = np.dtype(var.dtype).newbyteorder("<")
        out[var.name] = np.frombuffer(blob, dtype=dtype, count=size // dtype.itemsize,
                                      offset=offset).reshape(shape)
        offset += size
    return out
