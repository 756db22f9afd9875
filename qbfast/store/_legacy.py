"""The sweep store: one Zarr v3 directory holding one xarray Dataset, written chunk by chunk.

Layout of ``NAME.zarr``::

    zarr.json              root group: Dataset attrs (spec text, spec hash, model, protocol,
                           fixed parameters, qbfast version, creation time) and consolidated
                           metadata, so ``xr.open_zarr(path)`` opens it lazily with its labels
    <dim>/                 one coordinate array per dimension (swept parameters, then t),
                           with long_name and units
    <metric>/              one data variable per metric, dims (*swept, t), chunked as the spec
    <metric>_<stat>/       [reduce] variables, dims (*swept)
    _qbfast/               bookkeeping group, invisible to ``xr.open_zarr``:
      done/                int8, one element (one chunk file) per chunk of the grid; 1 once
                           the chunk's data are written. Written after the data, never
                           inferred from them. Attrs of _qbfast: ``complete``, and
                           ``store_id`` (random, per creation: workers keep a store's
                           arrays open under it between tasks, see :func:`chunk_writer`).
      peak/                float64 (*chunk grid, n, 2): per chunk, value and flat grid index
                           of the maximum of energy and ergotropy (for the run summary)

Invariants: the store is created from a lazy template in a temporary directory and renamed
into place, so it either exists whole or not at all; every Zarr chunk has exactly one writer
(sweep chunks are Zarr chunks); every chunk file is written atomically (temp file + rename, by
:class:`ChunkFiles` as by Zarr's local store), so a killed writer leaves old or new bytes, never
a mix; ``complete`` is set only after every ``done`` element is read back as 1.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import re
import shutil
import threading
import uuid
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BytesCodec, ZstdCodec
from zarr.codecs.bytes import Endian
from zarr.core.metadata.v3 import ArrayV3Metadata

from ..runner.spec import Spec

#: Codec of the data variables, chosen with ``python -m bench.sweeps --codecs`` (README,
#: "Codec"): plain Zstandard at level 1 stores these smooth float32 series in about half their
#: raw size, as small as levels 3-5 and faster; byte-shuffling (Blosc) makes them larger.
CODEC = ZstdCodec(level=1, checksum=False)
#: Chunk files named ``c.0.3.1`` in the array's directory rather than ``c/0/3/1``: a chunk
#: write then creates no directories (a mkdir costs as much as writing a small chunk here).
CHUNK_KEY_ENCODING = {"name": "default", "separator": "."}
META = "_qbfast"
STORE_FORMAT = 1
#: Metrics whose location of the maximum the run summary reports.
PEAK_METRICS = ("energy", "ergotropy")


class StoreError(ValueError):
    """A store that cannot be used for this request (one-line message)."""


@functools.lru_cache(maxsize=1)
def kernels_digest() -> str:
    """SHA-256 of the kernel sources of this process's qbfast (computed once per process).
    Recorded in the store: resuming with other kernel code would mix results."""
    from ..kernels._cache import sources_digest

    return sources_digest()


def peak_metrics(spec: Spec) -> tuple[str, ...]:
    return tuple(m for m in PEAK_METRICS if m in spec.grid.metrics)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def template(spec: Spec) -> xr.Dataset:
    """The lazy Dataset the store is created from: coords, attrs, and dask placeholders
    chunked exactly as the sweep's chunks (nothing is computed)."""
    import dask.array as da

    data_vars = {}
    for var in spec.variables():
        ndim = len(var.dims)
        data_vars[var.name] = xr.Variable(
            var.dims,
            da.empty(spec.shape[:ndim], chunks=spec.chunks[:ndim], dtype=spec.variable_dtype(var)),
            var.attrs)
    attrs: dict[str, Any] = {"title": spec.description or f"qbfast sweep {spec.name}"}
    attrs.update(spec.grid.attrs())
    attrs.update({
        "storage_dtype": spec.dtype.name,
        "spec_name": spec.name,
        "spec": spec.text,
        "spec_hash": spec.hash,
        "kernels_digest": kernels_digest(),
        "created": _now(),
        "qbfast_store_format": STORE_FORMAT,
    })
    return xr.Dataset(data_vars, coords=spec.grid.coords(), attrs=attrs)


def create(spec: Spec, path: str | Path) -> None:
    """Create the store at ``path`` (which must not exist): metadata, coordinates, and empty
    bookkeeping arrays. Atomic: built beside ``path`` and renamed into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    ds = template(spec)
    encoding = {v.name: {"chunks": spec.chunks[:len(v.dims)], "compressors": (CODEC,),
                         "chunk_key_encoding": CHUNK_KEY_ENCODING}
                for v in spec.variables()}
    try:
        with warnings.catch_warnings():
            # Consolidated metadata lets a plain xr.open_zarr(path) open the store quietly;
            # zarr warns that it is not (yet) part of the v3 specification.
            warnings.filterwarnings("ignore", message="Consolidated metadata",
                                    category=UserWarning)
            ds.to_zarr(tmp, mode="w-", compute=False, zarr_format=3, consolidated=True,
                       encoding=encoding)
        meta = zarr.create_group(tmp / META, zarr_format=3,
                                 attributes={"complete": False, "n_chunks": spec.n_chunks,
                                             "store_id": uuid.uuid4().hex})
        grid = spec.chunk_grid
        meta.create_array("done", shape=grid, chunks=(1,) * len(grid), dtype="int8",
                          fill_value=0, compressors=None, chunk_key_encoding=CHUNK_KEY_ENCODING,
                          dimension_names=tuple(f"chunk_{d}" for d in spec.dims))
        peaks = peak_metrics(spec)
        if peaks:
            meta.create_array("peak", shape=(*grid, len(peaks), 2),
                              chunks=(1,) * len(grid) + (len(peaks), 2), dtype="float64",
                              fill_value=np.nan, compressors=None,
                              chunk_key_encoding=CHUNK_KEY_ENCODING,
                              dimension_names=(*(f"chunk_{d}" for d in spec.dims), "metric",
                                               "value_index"),
                              attributes={"metrics": list(peaks)})
        os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def is_store(path: str | Path) -> bool:
    return (Path(path) / "zarr.json").is_file()


def read_attrs(path: str | Path) -> dict[str, Any]:
    """Root attrs of a qbfast store; :class:`StoreError` if ``path`` is not one."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such store")
    if not is_store(path):
        raise StoreError(f"{path}: not a Zarr store (no zarr.json)")
    attrs = dict(zarr.open_group(path, mode="r").attrs)
    if "spec_hash" not in attrs or not (path / META / "zarr.json").is_file():
        raise StoreError(f"{path}: a Zarr store, but not one written by qbfast run")
    return attrs


def check_spec(path: str | Path, spec: Spec) -> None:
    """Refuse (without touching it) a store that was made from a different spec, or whose
    chunks were computed by other kernel code (finishing it would mix two versions)."""
    attrs = read_attrs(path)
    if attrs["spec_hash"] != spec.hash:
        raise StoreError(
            f"{path}: this store was made from a different spec (spec {attrs.get('spec_name')!r}, "
            f"hash {attrs['spec_hash'][:12]} != {spec.hash[:12]}); it is left untouched: "
            f"use --overwrite to replace it or --store to choose another path")
    digest = attrs.get("kernels_digest")
    if digest is not None and digest != kernels_digest() and not is_complete(path):
        raise StoreError(
            f"{path}: this incomplete store was computed by other kernel code (qbfast "
            f"{attrs.get('qbfast_version')}, kernels {digest[:12]} != {kernels_digest()[:12]}); "
            f"finishing it would mix two versions; it is left untouched: use --overwrite")


def _meta(path: Path, mode: str = "r") -> zarr.Group:
    return zarr.open_group(path / META, mode=mode, zarr_format=3, use_consolidated=False)


def done_mask(path: str | Path) -> np.ndarray:
    """int8 array of the chunk grid's shape: 1 where the chunk is recorded as written."""
    return np.asarray(_meta(Path(path))["done"][...])


def missing_chunks(path: str | Path, spec: Spec) -> list[tuple[int, ...]]:
    mask = done_mask(path)
    return [tuple(int(i) for i in idx) for idx in zip(*np.nonzero(mask == 0))]


def is_complete(path: str | Path) -> bool:
    return bool(_meta(Path(path)).attrs.get("complete", False))


def store_id(path: str | Path) -> str | None:
    """The identity of this store (a random id recorded at creation; None for stores made
    before it was recorded): a store removed and created again at the same path has another."""
    return _meta(Path(path)).attrs.get("store_id")


class ChunkFiles:
    """Whole-chunk writes of one Zarr v3 array straight to its chunk files, the bytes zarr
    itself writes: the ``bytes`` codec (little-endian), then ``zstd`` if the array has it; an
    edge chunk padded with the fill value; a chunk that is the fill value everywhere not stored
    (its file removed: zarr's default ``write_empty_chunks=False``); each file written
    atomically, temp file then rename, as zarr's local store does. Zarr's own route spends
    1-3 ms per chunk in its event loop, as long as computing a [reduce] chunk takes.
    :meth:`supports` says whether an array's codecs are the ones handled here."""

    def __init__(self, meta: ArrayV3Metadata, directory: Path) -> None:
        if not self.supports(meta):
            raise ValueError(f"{directory}: codecs {meta.codecs} not handled")
        self.directory = directory
        self.dtype = np.dtype(meta.dtype.to_native_dtype()).newbyteorder("<")
        self.chunk_shape = tuple(meta.chunk_grid.chunk_shape)
        self.fill = np.asarray(meta.fill_value, dtype=self.dtype)
        self.key = meta.encode_chunk_key
        zstd = meta.codecs[1] if len(meta.codecs) == 2 else None
        self.zstd = (numcodecs.Zstd(level=zstd.level, checksum=zstd.checksum)
                     if zstd is not None else None)
        self._made: set[Path] = set()

    @classmethod
    def open(cls, directory: Path) -> ChunkFiles:
        """The chunk files of the array at ``directory``, from its ``zarr.json`` alone."""
        with open(directory / "zarr.json", "rb") as f:
            return cls(ArrayV3Metadata.from_dict(json.load(f)), directory)

    def path(self, coords: tuple[int, ...]) -> Path:
        """The file of chunk ``coords``."""
        return self.directory / self.key(coords)

    @staticmethod
    def supports(meta: Any) -> bool:
        codecs = getattr(meta, "codecs", ())
        return (isinstance(meta, ArrayV3Metadata)
                and isinstance(getattr(meta.chunk_grid, "chunk_shape", None), tuple)
                and 1 <= len(codecs) <= 2 and type(codecs[0]) is BytesCodec
                and codecs[0].endian in (Endian.little, None)
                and (len(codecs) == 1 or type(codecs[1]) is ZstdCodec))

    def _empty(self, chunk: np.ndarray) -> bool:
        if self.fill.dtype.kind == "f" and self.fill == 0.0:  # +0.0 and -0.0 differ: bits
            view = f"V{chunk.dtype.itemsize}"
            return bool(np.all(chunk.view(view) == self.fill.view(view)))
        return bool(np.array_equal(chunk, np.broadcast_to(self.fill, chunk.shape),
                                   equal_nan=True))

    def write(self, coords: tuple[int, ...], values: np.ndarray) -> None:
        """Write chunk ``coords`` (chunk grid coordinates) holding ``values`` (the chunk's
        region of the array: its chunk shape, or less at the array's edge)."""
        chunk = np.asarray(values, dtype=self.dtype)
        if chunk.shape != self.chunk_shape:
            padded = np.full(self.chunk_shape, self.fill, dtype=self.dtype)
            padded[tuple(slice(0, n) for n in chunk.shape)] = chunk
            chunk = padded
        target = self.path(coords)
        if self._empty(chunk):
            target.unlink(missing_ok=True)
            return
        data = np.ascontiguousarray(chunk)  # its buffer, not a bytes copy
        if self.zstd is not None:
            data = self.zstd.encode(data)
        if target.parent not in self._made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(target.parent)
        tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


class ChunkWriter:
    """The chunk files of one store's arrays, to write sweep chunks into: each data variable,
    then ``_qbfast/peak``, then ``_qbfast/done``. Opening reads every array's metadata (a few
    ms); :func:`chunk_writer` keeps writers per process so that a worker opens a store once per
    run, not once per chunk. A sweep chunk is one Zarr chunk of every array (the first dims of
    the chunk index for reduced variables), written whole by :class:`ChunkFiles`."""

    def __init__(self, path: str | Path, spec: Spec) -> None:
        path = Path(path)
        self.variables = [(len(var.dims), _files(path / var.name), var.name)
                          for var in spec.variables()]
        self.peak = _files(path / META / "peak") if peak_metrics(spec) else None
        self.done = _files(path / META / "done")

    def write(self, index: tuple[int, ...], data: dict[str, np.ndarray],
              peaks: np.ndarray | None = None) -> None:
        # data and peaks first, the ``done`` marker last; each cast to its array's dtype (the
        # spec's storage dtype) by ChunkFiles.write
        for ndim, files, name in self.variables:
            files.write(index[:ndim], data[name])
        if peaks is not None and self.peak is not None:
            self.peak.write((*index, 0, 0), peaks.reshape((1,) * len(index) + peaks.shape))
        self.done.write(index, np.ones((1,) * len(index), dtype=np.int8))


def _files(directory: Path) -> ChunkFiles:
    try:
        return ChunkFiles.open(directory)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{directory}: not an array of a qbfast store ({e})") from e


_WRITERS: OrderedDict[tuple[str, str], ChunkWriter] = OrderedDict()
_WRITERS_LOCK = threading.Lock()
_WRITERS_KEPT = 4


def chunk_writer(path: str | Path, spec: Spec, identity: str | None = None) -> ChunkWriter:
    """A :class:`ChunkWriter` of the store at ``path``. With ``identity`` (the store's
    :func:`store_id`, read by the client when it planned the run), the writer is cached in this
    process under (path, identity), so a store created again at the same path (a new id) is
    never written through arrays opened in the old one; without it, a fresh one. (A store is
    made from one spec, checked by the client before it plans the run.)"""
    if identity is None:
        return ChunkWriter(path, spec)
    key = (os.path.abspath(path), identity)
    with _WRITERS_LOCK:
        writer = _WRITERS.get(key)
        if writer is not None:
            _WRITERS.move_to_end(key)
            return writer
    writer = ChunkWriter(path, spec)
    with _WRITERS_LOCK:
        _WRITERS[key] = writer
        while len(_WRITERS) > _WRITERS_KEPT:
            _WRITERS.popitem(last=False)
    return writer


def write_chunk(path: str | Path, spec: Spec, index: tuple[int, ...],
                data: dict[str, np.ndarray], peaks: np.ndarray | None = None,
                identity: str | None = None) -> None:
    """Write one chunk: every data variable's region (cast to its storage dtype), then its
    peaks, then its ``done`` marker. Idempotent: the same inputs give the same bytes.
    ``identity``: the store's :func:`store_id`, to reuse the arrays this process opened."""
    chunk_writer(path, spec, identity).write(index, data, peaks)


def mark_complete(path: str | Path) -> bool:
    """Set ``complete`` if and only if every chunk is recorded as done; return it."""
    path = Path(path)
    if not np.all(done_mask(path) == 1):
        return False
    meta = _meta(path, "r+")
    meta.attrs.update({"complete": True, "completed": _now()})
    return True


def remove(path: str | Path) -> None:
    """Delete a Zarr store directory (refuses anything that is not one)."""
    path = Path(path)
    if not path.exists():
        return
    if not is_store(path):
        raise StoreError(f"{path}: exists and is not a Zarr store; refusing to delete it")
    shutil.rmtree(path)


def remove_partial_files(path: str | Path) -> int:
    """Delete leftovers of writes killed mid-file (``*.partial`` temp files); only call this
    while no task writes to the store. Returns how many were removed."""
    n = 0
    for p in Path(path).rglob("*.partial"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


def remove_stale_builds(path: str | Path) -> int:
    """Delete temporary build directories of ``path`` left by a creation that was killed."""
    path = Path(path)
    n = 0
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{12}}\.partial")
    for p in path.parent.glob(f".{path.name}.*.partial"):
        if p.is_dir() and pattern.fullmatch(p.name):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


def bytes_on_disk(path: str | Path) -> int:
    """Total size of the store's files (apparent sizes, in bytes)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except FileNotFoundError:
                pass
    return total


def peaks(path: str | Path, spec: Spec) -> dict[str, tuple[float, dict[str, float]]]:
    """Maximum of energy / ergotropy over the recorded chunks: metric -> (value, coords)."""
    meta = _meta(Path(path))
    if "peak" not in meta:
        return {}
    arr = np.asarray(meta["peak"][...])
    names = list(meta["peak"].attrs["metrics"])
    coords = [*spec.grid.swept.values(), spec.grid.t]
    out = {}
    for j, name in enumerate(names):
        values = arr[..., j, 0].ravel()
        index = arr[..., j, 1].ravel()
        if np.all(np.isnan(values)):
            continue
        k = int(np.nanargmax(values))
        where = np.unravel_index(int(index[k]), spec.shape)
        out[name] = (float(values[k]),
                     {d: float(c[i]) for d, c, i in zip(spec.dims, coords, where)})
    return out


def info(path: str | Path) -> dict[str, Any]:
    """What ``qbfast info`` prints: attrs, sizes, chunks complete/total, bytes on disk."""
    path = Path(path)
    attrs = read_attrs(path)
    ds = xr.open_zarr(path)
    mask = done_mask(path)
    first = next(iter(ds.data_vars.values()), None)
    return {
        "store": str(path),
        "attrs": attrs,
        "sizes": dict(ds.sizes),
        "variables": list(ds.data_vars),
        "chunk_shape": tuple(first.encoding.get("chunks", ())) if first is not None else (),
        "chunks_done": int(mask.sum()),
        "chunks_total": int(mask.size),
        "complete": is_complete(path),
        "bytes": bytes_on_disk(path),
    }
