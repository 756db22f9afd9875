"""Whole-chunk writes of one Zarr v3 array straight to its chunk files: the bytes zarr itself
writes (``tests/store/test_chunk_files.py`` compares them file by file), without zarr's event
loop (1-3 ms per small chunk, as long as computing a [reduce] chunk took).

Codec chain handled: ``bytes`` (little-endian), then ``zstd`` or ``blosc`` or nothing, then
``crc32c`` (zarr v3's checksum codec: the CRC-32C of the encoded bytes appended as 4
little-endian bytes; every Zarr reader verifies it). An edge chunk is padded with the fill
value; every chunk is stored, also one that is the fill value everywhere (completeness is then
checked by the files' existence). A file is written to a temporary name, flushed to disk
(``fsync``) and renamed into place: a killed writer leaves old bytes or new bytes, never a mix.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c
import numcodecs
import numpy as np
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ZstdCodec
from zarr.codecs.bytes import Endian
from zarr.core.metadata.v3 import ArrayV3Metadata

from .layout import StoreError


class ChunkError(StoreError):
    """A chunk file that is missing, truncated or fails its checksum (names the file)."""


def crc32c(data: Any) -> int:
    return int(google_crc32c.value(np.frombuffer(data, dtype=np.uint8)))


def _blosc(codec: BloscCodec, itemsize: int) -> numcodecs.Blosc:
    shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[codec.shuffle.name]
    typesize = codec.typesize if codec.typesize else itemsize
    return numcodecs.Blosc(cname=codec.cname.name, clevel=codec.clevel, shuffle=shuffle,
                           blocksize=codec.blocksize, typesize=typesize)


class ChunkFiles:
    """The chunk files of one array, opened from its ``zarr.json``; :meth:`supports` says
    whether its codecs are the ones handled here."""

    def __init__(self, meta: ArrayV3Metadata, directory: Path, durable: bool = True,
                 dir_fd: int | None = None) -> None:
        if not self.supports(meta):
            raise ValueError(f"codecs {[type(c).__name__ for c in meta.codecs]} not handled")
        self.directory = directory
        self.durable = durable
        #: an open descriptor of the array's directory: writes follow the directory itself,
        #: so a store renamed aside (removed) and created again at the same path is never
        #: written through arrays opened in the old one
        self.dir_fd = dir_fd
        self.dtype = np.dtype(meta.dtype.to_native_dtype()).newbyteorder("<")
        self.chunk_shape = tuple(getattr(meta.chunk_grid, "chunk_shape"))  # noqa: B009 (RegularChunkGrid)
        self.fill = np.asarray(meta.fill_value, dtype=self.dtype)
        self.key = meta.encode_chunk_key
        #: per thread: the chunk buffer that values are cast and padded into (reused: see
        #: :meth:`chunk_values`)
        self._scratch = threading.local()
        middle = meta.codecs[1:-1]
        self.compressor: Any = None
        if middle and isinstance(middle[0], ZstdCodec):
            self.compressor = numcodecs.Zstd(level=middle[0].level, checksum=middle[0].checksum)
        elif middle and isinstance(middle[0], BloscCodec):
            self.compressor = _blosc(middle[0], self.dtype.itemsize)

    @classmethod
    def open(cls, directory: Path, durable: bool = True, root_fd: int | None = None
             ) -> ChunkFiles:
        """The chunk files of the array at ``directory``, from its ``zarr.json`` alone;
        :class:`StoreError` naming the array if it cannot be written here. With ``root_fd``
        (an open descriptor of the store's root), ``directory`` is taken relative to it and the
        array's directory is held open (see ``dir_fd``)."""
        dir_fd = None
        try:
            if root_fd is not None:
                dir_fd = os.open(directory.name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd)
                fd = os.open("zarr.json", os.O_RDONLY, dir_fd=dir_fd)
                with os.fdopen(fd, "rb") as f:
                    meta = ArrayV3Metadata.from_dict(json.load(f))
            else:
                with open(directory / "zarr.json", "rb") as f:
                    meta = ArrayV3Metadata.from_dict(json.load(f))
            return cls(meta, directory, durable, dir_fd)
        except (OSError, ValueError, KeyError, TypeError) as e:
            if dir_fd is not None:
                os.close(dir_fd)
            raise StoreError(f"{directory}: not an array of a qbfast store ({e})") from e

    def close(self) -> None:
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None

    @staticmethod
    def supports(meta: Any) -> bool:
        codecs: tuple[Any, ...] = tuple(getattr(meta, "codecs", ()))
        if not (isinstance(meta, ArrayV3Metadata)
                and isinstance(getattr(meta.chunk_grid, "chunk_shape", None), tuple)
                and 2 <= len(codecs) <= 3 and type(codecs[0]) is BytesCodec
                and codecs[0].endian in (Endian.little, None)
                and type(codecs[-1]) is Crc32cCodec):
            return False
        return len(codecs) == 2 or type(codecs[1]) in (ZstdCodec, BloscCodec)

    def path(self, coords: tuple[int, ...]) -> Path:
        return self.directory / self.key(coords)

    def chunk_values(self, values: np.ndarray, reuse: bool = True) -> np.ndarray:
        """``values`` (the chunk's region of the array: the chunk shape, or less at the
        array's edge) cast to the storage dtype (as ``astype`` rounds) and padded with the fill
        value, in this thread's reused chunk buffer, valid until the thread's next call. Reused
        because a fresh array per chunk pays a page fault per 4 KiB page: Dask's nanny sets
        ``MALLOC_TRIM_THRESHOLD_``, which makes every allocation above 128 KiB a new mapping
        (``bench.sweeps --grid many-metrics``: see docs/performance.md). ``values`` that
        already are the whole chunk in the storage dtype are taken as they are;
        ``reuse=False``: a fresh buffer, not kept (a group's merge: chunks of tens of MiB,
        once per group)."""
        values = np.asarray(values)
        if (values.shape == self.chunk_shape and values.dtype == self.dtype
                and values.flags.c_contiguous):
            return values
        buf = getattr(self._scratch, "chunk", None) if reuse else None
        if buf is None:
            buf = np.empty(self.chunk_shape, dtype=self.dtype)
            if reuse:
                self._scratch.chunk = buf
        if values.shape == self.chunk_shape:
            np.copyto(buf, values, casting="unsafe")
        else:
            buf.fill(self.fill)
            np.copyto(buf[tuple(slice(0, n) for n in values.shape)], values, casting="unsafe")
        return buf

    def encoded(self, values: np.ndarray, reuse: bool = True) -> tuple[memoryview, int]:
        """The stored bytes of a chunk holding ``values`` (see :meth:`chunk_values`) but its
        last 4, and the checksum those 4 hold: the payload may be this thread's chunk buffer
        (no compressor), valid until its next call."""
        data: Any = self.chunk_values(values, reuse)
        if self.compressor is not None:
            data = self.compressor.encode(data)
        raw = memoryview(data).cast("B")
        return raw, crc32c(raw)

    def encode(self, values: np.ndarray) -> bytes:
        """The stored bytes of a chunk holding ``values`` (its region of the array: the chunk
        shape, or less at the array's edge)."""
        raw, crc = self.encoded(values)
        return bytes(raw) + crc.to_bytes(4, "little")

    def write(self, coords: tuple[int, ...], values: np.ndarray) -> int:
        """Write chunk ``coords``; return the checksum stored in its last 4 bytes."""
        staged = self.stage(coords, values)
        commit([staged])
        return staged.crc

    def stage(self, coords: tuple[int, ...], values: np.ndarray, reuse: bool = True
              ) -> StagedChunk:
        """The first half of :meth:`write`: chunk ``coords`` written to a temporary name (not
        yet flushed); :func:`commit` flushes and renames many of them at once, so that the
        disk writes them together instead of one flush after another (15 chunk files of a
        task: ~4x less time waiting for the disk, ``bench.sweeps --grid many-metrics``)."""
        raw, crc = self.encoded(values, reuse)
        name = self.key(coords)
        tmp = f"{name}.{uuid.uuid4().hex}.partial"
        if self.dir_fd is None:
            name, tmp = str(self.directory / name), str(self.directory / tmp)
        d = self.dir_fd
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=d)
        staged = StagedChunk(fd, tmp, name, d, crc, self.durable)
        try:
            write_all(fd, [raw, memoryview(crc.to_bytes(4, "little"))])
        except BaseException:
            discard([staged])
            raise
        return staged

    def read(self, coords: tuple[int, ...], expected_crc: int | None = None) -> np.ndarray:
        """Decode chunk ``coords``, checking its checksum (and, if given, that it is the one
        recorded); :class:`ChunkError` naming the array and the chunk key otherwise."""
        target = self.path(coords)
        where = f"{self.directory.name}/{target.name}"
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise ChunkError(f"{where}: missing chunk file") from None
        if len(data) < 4:
            raise ChunkError(f"{where}: truncated chunk file ({len(data)} bytes)")
        stored = int.from_bytes(data[-4:], "little")
        if crc32c(data[:-4]) != stored:
            raise ChunkError(f"{where}: checksum mismatch (damaged chunk file)")
        if expected_crc is not None and stored != expected_crc:
            raise ChunkError(f"{where}: not the chunk the completion record holds (checksum "
                             f"{stored:08x} != recorded {expected_crc:08x})")
        raw = data[:-4]
        try:
            if self.compressor is not None:
                raw = self.compressor.decode(raw)
            out = np.frombuffer(raw, dtype=self.dtype)
            return out.reshape(self.chunk_shape)
        except (ValueError, RuntimeError) as e:
            raise ChunkError(f"{where}: cannot be decoded ({e})") from None


@dataclass
class StagedChunk:
    """A chunk file written to its temporary name ``tmp`` (``fd`` still open), to be renamed
    to ``name`` (both relative to ``dir_fd`` when it is not None) by :func:`commit`."""

    fd: int | None
    tmp: str
    name: str
    dir_fd: int | None
    crc: int
    durable: bool


def write_all(fd: int, parts: list[memoryview]) -> None:
    """Write the byte buffers ``parts`` to ``fd``, in order, with no copy joining them (one
    ``writev`` each time, again after a partial write)."""
    views = [p for p in parts if len(p)]
    while views:
        n = os.writev(fd, views)
        while views and n >= len(views[0]):
            n -= len(views.pop(0))
        if views and n:
            views[0] = views[0][n:]


def commit(staged: list[StagedChunk]) -> None:
    """Flush (``fdatasync``, if durable) every staged chunk file, then rename each into place:
    a kill leaves old bytes or new bytes in every file, never a mix. On an error, the staged
    files not yet renamed are removed."""
    try:
        for s in staged:
            assert s.fd is not None
            if s.durable:
                os.fdatasync(s.fd)
            os.close(s.fd)
            s.fd = None
        for s in staged:
            os.replace(s.tmp, s.name, src_dir_fd=s.dir_fd, dst_dir_fd=s.dir_fd)
            s.tmp = ""
    except BaseException:
        discard(staged)
        raise


def discard(staged: list[StagedChunk]) -> None:
    """Close and remove staged chunk files not yet renamed into place."""
    for s in staged:
        if s.fd is not None:
            os.close(s.fd)
            s.fd = None
        if s.tmp:
            try:
                os.unlink(s.tmp, dir_fd=s.dir_fd)
            except FileNotFoundError:
                pass
            s.tmp = ""
