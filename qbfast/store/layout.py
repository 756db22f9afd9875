"""The store's layout (format 2): what a qbfast store holds, how it is created, recognised and
removed. Pure description (:class:`StoreLayout`) plus the few I/O functions that act on the
whole directory; chunk files are in :mod:`.chunk_files`, the completion record in
:mod:`.record`, the writer lock in :mod:`.lock`. The format is documented in
``docs/store-format.md``.

Layout of ``NAME.zarr``::

    zarr.json            root group: Dataset attrs (spec text and hash, model, charger,
                         protocol, fixed parameters, qbfast version, kernels digest, store
                         format) and consolidated metadata, so ``xr.open_zarr`` opens it
    <dim>/               one coordinate array per dimension (swept parameters, then t), one
                         chunk each, with long_name and units
    <variable>/          one data variable per metric (dims (*swept, t)) and per [reduce]
                         statistic (dims (*swept)); one chunk per task; codecs: bytes
                         (little-endian), then zstd / blosc / nothing, then crc32c
    _qbfast/zarr.json    bookkeeping group (invisible to xarray): marker, format, store id,
                         dims, shape, chunks, variables, peak metrics, codec
    _qbfast/journal/     the completion record: append-only journal files, one per writing
                         process and run (:mod:`.record`)
    _qbfast/staging/     grouped stores (format 3) only: one staging file per staged task,
                         removed by its group's merge (:mod:`.staging`)
    _qbfast/complete.json  written once every task is recorded and every chunk file exists

Creation writes metadata and coordinates only, through zarr's API (cost O(arrays), never
O(chunks)), in a temporary directory beside the target, renamed into place: the store exists
whole or not at all.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The store format this qbfast writes and reads (recorded in both zarr.json files): 2 for
#: stores where a task writes its own chunk files, GROUPED_FORMAT for stores whose storage
#: chunks span groups of tasks (staged, then merged); this qbfast reads both.
STORE_FORMAT = 2
GROUPED_FORMAT = 3
STORE_FORMATS = (STORE_FORMAT, GROUPED_FORMAT)
#: Staging directory of grouped stores (in the bookkeeping group): one file per staged task.
STAGING = "staging"
#: The bookkeeping group's directory of where each task ran (one JSON-lines file per run,
#: ``<run id>.jsonl``, written by the run's client; diagnostics, not part of the record).
PLACEMENT = "placement"
_PLACEMENT_NAME = re.compile(r"[0-9a-f]{12}\.jsonl")
#: Name of the bookkeeping group.
META = "_qbfast"
#: Value of the ``marker`` attribute of the bookkeeping group: qbfast's own mark, written at
#: creation; ``--overwrite`` removes nothing that lacks it.
MARKER = "qbfast-store"
#: Chunk files named ``c.0.3.1`` in the array's directory (no directory per chunk).
CHUNK_KEY_ENCODING: Any = {"name": "default", "separator": "."}
#: Codecs a spec may choose (``codec = ...``), each followed by zarr v3's ``crc32c`` checksum.
#: "zstd": Zstandard level 1; "blosc-lz4": Blosc with LZ4 and byte shuffling (level 5), much
#: cheaper in CPU; "none": no compression. "auto" picks by the work per byte stored
#: (:func:`auto_codec`).
CODECS = ("auto", "zstd", "blosc-lz4", "none")
#: "auto": series of more metrics than this are stored with "blosc-lz4" (zstd on many float32
#: streams costs more CPU than computing them; ``python -m bench.sweeps --codecs``), others
#: with "zstd".
AUTO_ZSTD_MAX_SERIES = 4
ZSTD_LEVEL = 1
BLOSC_LEVEL = 5

_CHUNK_NAME = re.compile(r"c(\.\d+)*")
_PARTIAL = re.compile(r".+\.[0-9a-f]{32}\.partial")
#: The lease inside a store (:data:`.lock.INNER_LEASE`) and its heartbeat / takeover files.
_LEASE_NAME = re.compile(r"lease(\.[0-9a-f]{8}\.(beat|stale))?")
_STAGE_NAME = re.compile(r"\d+\.stage")


class StoreError(ValueError):
    """A store that cannot be used for this request (one-line message)."""


def store_path(store: str | os.PathLike[str], option: str = "--store") -> Path:
    """The store's path, checked before anything is read or written: ``~`` expanded, made
    absolute and normalized (a trailing slash, ``./`` and ``a/../`` spell the same store).
    Raises :class:`StoreError` (one line naming ``option``) for an empty path, a path whose
    last component is no name (``/``, ``..``), a name longer than the file system allows, or
    one that is not valid UTF-8 (a store's name is written into its metadata)."""
    allowed = "allowed: a directory path whose last part is a name (e.g. runs/scan.zarr)"
    raw = os.fspath(store)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StoreError(f"{option}: {raw!r} is not valid UTF-8; {allowed}") from None
    if not raw.strip():
        raise StoreError(f"{option}: expected a path, got {raw!r}; {allowed}")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes: bytes from the command line that are not UTF-8
        shown = raw.encode("utf-8", "surrogateescape")
        raise StoreError(f"{option}: {shown!r} is not valid UTF-8; {allowed}") from None
    path = Path(os.path.abspath(os.path.expanduser(raw)))
    if not path.name or raw.rstrip("/").split("/")[-1] == "..":
        raise StoreError(f"{option}: {raw!r} names no store (the file system root or a "
                         f"parent directory); {allowed}")
    try:
        name_max = os.pathconf(_existing_parent(path), "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    # the lease file beside the store adds 15 bytes to the name ("." + ".qbfast-lock")
    longest = name_max - len(".") - len(".qbfast-lock")
    if len(path.name.encode("utf-8")) > longest:
        raise StoreError(f"{option}: the name {path.name[:40]!r}... is "
                         f"{len(path.name.encode('utf-8'))} bytes long; allowed: at most "
                         f"{longest} bytes (the file system's {name_max}, less the lease "
                         f"file's prefix and suffix)")
    return path


def _existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path("/")


def is_grouped(group: tuple[int, ...]) -> bool:
    """Whether tasks per storage chunk ``group`` (one per dim) make storage chunks span more
    than one task."""
    return any(f > 1 for f in group)


def storage_chunks(shape: tuple[int, ...], chunks: tuple[int, ...], group: tuple[int, ...]
                   ) -> tuple[int, ...]:
    """Chunk lengths of the stored arrays: ``group[i] x chunks[i]`` (task length) clipped to
    ``shape[i]``; an empty ``group`` is all 1 (one task, one chunk)."""
    group = group or (1,) * len(chunks)
    return tuple(min(s, f * c) for s, f, c in zip(shape, group, chunks))


def auto_codec(n_series: int) -> str:
    """The codec "auto" stands for, given the number of stored series variables."""
    return "blosc-lz4" if n_series > AUTO_ZSTD_MAX_SERIES else "zstd"


@dataclass(frozen=True)
class VariableLayout:
    """One stored data variable: its name, dims (a prefix of the store's dims), storage dtype
    and attrs (long_name, units, ...)."""

    name: str
    dims: tuple[str, ...]
    dtype: str
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreLayout:
    """Everything a store's structure depends on: dims, shape, task (= chunk) shape, the
    variables, coordinates, global attrs, codec and the metrics whose peaks the record keeps.
    Built by the runner from a spec and its plan; the store layer knows nothing of specs."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    variables: tuple[VariableLayout, ...]
    coords: Mapping[str, tuple[np.ndarray, Mapping[str, Any]]]
    attrs: Mapping[str, Any]
    codec: str = "zstd"
    peak_metrics: tuple[str, ...] = ()
    #: tasks per storage chunk along each dim (empty or all 1: not grouped)
    group: tuple[int, ...] = ()

    @property
    def chunk_grid(self) -> tuple[int, ...]:
        return tuple(-(-s // c) for s, c in zip(self.shape, self.chunks))

    @property
    def grouped(self) -> bool:
        return is_grouped(self.group)

    @property
    def storage_chunks(self) -> tuple[int, ...]:
        return storage_chunks(self.shape, self.chunks, self.group)

    @property
    def n_tasks(self) -> int:
        return int(np.prod(self.chunk_grid, dtype=np.int64))

    def task_coords(self, task: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(task, self.chunk_grid))

    def chunk_name(self, variable: VariableLayout, task: int) -> str:
        """The file name (in the variable's directory) of the chunk that ``task`` writes."""
        coords = self.task_coords(task)[:len(variable.dims)]
        return "c" + "".join(f".{i}" for i in coords)

    def meta(self) -> dict[str, Any]:
        """The attrs of the bookkeeping group (also how a store is read back)."""
        extra: dict[str, Any] = {"group": list(self.group)} if self.grouped else {}
        return {
            **extra,
            "marker": MARKER,
            "qbfast_store_format": GROUPED_FORMAT if self.grouped else STORE_FORMAT,
            "dims": list(self.dims),
            "shape": list(self.shape),
            "chunks": list(self.chunks),
            "n_tasks": self.n_tasks,
            "variables": [[v.name, list(v.dims), v.dtype] for v in self.variables],
            "peak_metrics": list(self.peak_metrics),
            "codec": self.codec,
        }


@dataclass(frozen=True)
class StoreInfo:
    """What the bookkeeping group of an existing store says (see :meth:`StoreLayout.meta`)."""

    path: Path
    attrs: dict[str, Any]
    meta: dict[str, Any]

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.meta["dims"])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.meta["shape"])

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.meta["chunks"])

    @property
    def chunk_grid(self) -> tuple[int, ...]:
        return tuple(-(-s // c) for s, c in zip(self.shape, self.chunks))

    @property
    def n_tasks(self) -> int:
        return int(self.meta["n_tasks"])

    @property
    def store_id(self) -> str:
        return str(self.meta["store_id"])

    @property
    def variables(self) -> tuple[VariableLayout, ...]:
        return tuple(VariableLayout(n, tuple(d), t) for n, d, t in self.meta["variables"])

    @property
    def peak_metrics(self) -> tuple[str, ...]:
        return tuple(self.meta.get("peak_metrics", ()))

    @property
    def group(self) -> tuple[int, ...]:
        """Tasks per storage chunk along each dim (all 1 when the store is not grouped)."""
        g = self.meta.get("group")
        return tuple(int(f) for f in g) if g else (1,) * len(self.chunks)

    @property
    def grouped(self) -> bool:
        return is_grouped(self.group)

    @property
    def storage_chunks(self) -> tuple[int, ...]:
        return storage_chunks(self.shape, self.chunks, self.group)

    @property
    def group_grid(self) -> tuple[int, ...]:
        """Groups (= storage chunks) along each dim."""
        return tuple(-(-n // f) for n, f in zip(self.chunk_grid, self.group))

    @property
    def n_groups(self) -> int:
        return int(np.prod(self.group_grid, dtype=np.int64))

    def task_coords(self, task: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(task, self.chunk_grid))

    def group_of(self, tasks: Any) -> np.ndarray:
        """The group number of each task (C order over ``group_grid``), vectorized."""
        tasks = np.asarray(tasks, dtype=np.int64)
        if not tasks.size:
            return np.zeros(tasks.shape, dtype=np.int64)
        coords = np.unravel_index(tasks, self.chunk_grid)
        return np.ravel_multi_index(tuple(c // f for c, f in zip(coords, self.group)),
                                    self.group_grid).astype(np.int64)

    def group_coords(self, group: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(group, self.group_grid))

    def group_tasks(self, group: int) -> np.ndarray:
        """The task numbers of a group, ascending."""
        ranges = [np.arange(i * f, min((i + 1) * f, n))
                  for i, f, n in zip(self.group_coords(group), self.group, self.chunk_grid)]
        mesh = np.meshgrid(*ranges, indexing="ij")
        return np.sort(np.ravel_multi_index(tuple(m.ravel() for m in mesh),
                                            self.chunk_grid).astype(np.int64))

    def tasks_of_groups(self, groups: Any) -> np.ndarray:
        """Every task of the given groups, ascending."""
        groups = np.unique(np.asarray(groups, dtype=np.int64))
        if not groups.size:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self.group_tasks(int(g)) for g in groups])

    def chunk_name(self, variable: VariableLayout, task: int) -> str:
        """The chunk file (in the variable's directory) holding ``task``'s region."""
        coords = self.task_coords(task)[:len(variable.dims)]
        return "c" + "".join(f".{i // f}" for i, f in zip(coords, self.group))


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def compressors(codec: str, itemsize: int) -> tuple[Any, ...]:
    """The zarr v3 bytes-to-bytes codecs of ``codec`` (crc32c last)."""
    from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

    if codec == "zstd":
        return (ZstdCodec(level=ZSTD_LEVEL, checksum=False), Crc32cCodec())
    if codec == "blosc-lz4":
        return (BloscCodec(cname="lz4", clevel=BLOSC_LEVEL, shuffle="shuffle",
                           typesize=itemsize, blocksize=0), Crc32cCodec())
    if codec == "none":
        return (Crc32cCodec(),)
    raise StoreError(f"codec: unknown codec {codec!r}; allowed: "
                     + ", ".join(repr(c) for c in CODECS[1:]))


def _fill_attr(dtype: np.dtype) -> str:
    """xarray's encoding of a NaN ``_FillValue`` (base64 of a float64 NaN), as ``to_zarr``
    writes it for float variables: xarray then reads the fill value as missing."""
    return base64.b64encode(np.array(np.nan).tobytes()).decode()


def _json_safe(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def create(layout: StoreLayout, path: str | Path, store_id: str | None = None,
           created: str | None = None) -> str:
    """Create the store at ``path`` (which must not exist): metadata, coordinates, the
    bookkeeping group and its empty journal directory; return the new store's id. Atomic: built
    beside ``path`` and renamed into place. Cost: O(arrays), whatever the number of chunks.
    ``store_id`` and ``created`` (the bookkeeping group's): a new id and now, unless given (to
    rebuild an existing store's files for ``qbfast verify``, :mod:`.verify`)."""
    import zarr

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    store_id = store_id or uuid.uuid4().hex
    attrs = dict(_json_safe(layout.attrs))
    attrs["qbfast_store_format"] = GROUPED_FORMAT if layout.grouped else STORE_FORMAT
    try:
        root = zarr.create_group(tmp, zarr_format=3, attributes=attrs)
        for name, (values, cattrs) in layout.coords.items():
            values = np.asarray(values)
            a = dict(_json_safe(cattrs))
            if values.dtype.kind == "f":
                a["_FillValue"] = _fill_attr(values.dtype)
            arr = root.create_array(
                name, shape=values.shape, chunks=values.shape or (1,), dtype=values.dtype,
                fill_value=np.nan if values.dtype.kind == "f" else 0,
                compressors=compressors("zstd", values.dtype.itemsize),
                dimension_names=(name,), attributes=a)
            arr[...] = values
        for var in layout.variables:
            ndim = len(var.dims)
            dtype = np.dtype(var.dtype)
            a = dict(_json_safe(var.attrs))
            a["_FillValue"] = _fill_attr(dtype)
            root.create_array(
                var.name, shape=layout.shape[:ndim], chunks=layout.storage_chunks[:ndim],
                dtype=dtype,
                fill_value=np.nan, compressors=compressors(layout.codec, dtype.itemsize),
                chunk_key_encoding=CHUNK_KEY_ENCODING, dimension_names=var.dims,
                attributes=a)
        meta = dict(layout.meta(), store_id=store_id, created=created or now())
        zarr.create_group(tmp / META, zarr_format=3, attributes=meta)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata",
                                    category=UserWarning)
            zarr.consolidate_metadata(tmp, zarr_format=3)
        (tmp / META / "journal").mkdir()  # after consolidating: not a Zarr node
        if layout.grouped:
            (tmp / META / STAGING).mkdir()
        _fsync_tree(tmp)
        os.rename(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return store_id


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for root, _dirs, files in os.walk(path):
        for f in files:
            fd = os.open(os.path.join(root, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: unreadable metadata ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(doc, dict):
        raise StoreError(f"{path}: unreadable metadata (not a JSON object)")
    return doc


def is_zarr(path: str | Path) -> bool:
    return (Path(path) / "zarr.json").is_file()


def open_info(path: str | Path) -> StoreInfo:
    """The attrs and bookkeeping of the qbfast store at ``path``; :class:`StoreError` (one line)
    if it is missing, not a Zarr store, not a qbfast store, of another format or tampered with."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such store")
    if not path.is_dir():
        raise StoreError(f"{path}: not a directory, so not a Zarr store")
    if not is_zarr(path):
        raise StoreError(f"{path}: not a Zarr store (no zarr.json)")
    root = _read_json(path / "zarr.json")
    attrs = root.get("attributes")
    if not isinstance(attrs, dict):
        raise StoreError(f"{path}/zarr.json: not a Zarr v3 group with attributes")
    meta_path = path / META / "zarr.json"
    if not meta_path.is_file():
        if "spec_hash" in attrs:
            raise StoreError(f"{path}: a qbfast store without its {META} group; it is left "
                             f"untouched")
        raise StoreError(f"{path}: a Zarr store, but not one written by qbfast run")
    meta = _read_json(meta_path).get("attributes")
    if not isinstance(meta, dict):
        raise StoreError(f"{meta_path}: no attributes: not a qbfast store's bookkeeping")
    fmt = meta.get("qbfast_store_format", attrs.get("qbfast_store_format"))
    if fmt not in STORE_FORMATS:
        raise StoreError(
            f"{path}: store format {fmt!r}, written by another qbfast; this qbfast reads "
            f"formats {', '.join(map(str, STORE_FORMATS))} only: rerun the spec into a new "
            f"--store (an old store's data stay readable with xr.open_zarr)")
    if (fmt == GROUPED_FORMAT) != bool(meta.get("group")):
        raise StoreError(f"{meta_path}: tampered or damaged bookkeeping (format {fmt} with "
                         f"group {meta.get('group')!r})")
    if meta.get("marker") != MARKER:
        raise StoreError(f"{meta_path}: no qbfast marker: not a qbfast store")
    try:
        info = StoreInfo(path, attrs, meta)
        dims, shape, chunks = info.dims, info.shape, info.chunks
        if not (len(dims) == len(shape) == len(chunks)) or min(chunks, default=1) < 1:
            raise ValueError("dims, shape and chunks disagree")
        if info.n_tasks != int(np.prod(info.chunk_grid, dtype=np.int64)):
            raise ValueError("n_tasks disagrees with the chunks")
        if len(info.group) != len(chunks) or min(info.group, default=1) < 1:
            raise ValueError("group disagrees with the chunks")
        info.variables  # noqa: B018 - parse them
        if not isinstance(meta.get("store_id"), str):
            raise ValueError("no store_id")
    except (KeyError, TypeError, ValueError) as e:
        raise StoreError(f"{meta_path}: tampered or damaged bookkeeping ({e})") from None
    return info


# ---- removal -----------------------------------------------------------------------------

def _protected(path: Path) -> str | None:
    """Why ``path`` must never be removed, or None."""
    real = Path(os.path.realpath(path))
    cwd = Path(os.path.realpath(os.getcwd()))
    if real == Path(real.anchor):
        return "it is the file system root"
    if real == cwd or real in cwd.parents:
        return "it is the current directory or one of its parents"
    home = Path(os.path.realpath(os.path.expanduser("~")))
    if real == home or real in home.parents:
        return "it is the home directory or one of its parents"
    return None


def foreign_files(path: Path, info: StoreInfo) -> list[str]:
    """Files and directories under ``path`` that a store of this layout cannot hold (paths
    relative to the store): anything not written by qbfast."""
    allowed_arrays = {*info.dims, *(v.name for v in info.variables)}
    foreign: list[str] = []
    for entry in os.scandir(path):
        name = entry.name
        if entry.is_symlink():
            foreign.append(name)
        elif name == "zarr.json" and entry.is_file():
            continue
        elif name == META and entry.is_dir():
            for sub in os.scandir(entry.path):
                if sub.is_symlink():
                    foreign.append(f"{META}/{sub.name}")
                elif sub.is_file() and (sub.name in ("zarr.json", "complete.json")
                                        or _PARTIAL.fullmatch(sub.name)
                                        or _LEASE_NAME.fullmatch(sub.name)):
                    continue
                elif sub.name == STAGING and sub.is_dir() and info.grouped:
                    for j in os.scandir(sub.path):
                        if not (j.is_file() and not j.is_symlink()
                                and (_STAGE_NAME.fullmatch(j.name)
                                     or _PARTIAL.fullmatch(j.name))):
                            foreign.append(f"{META}/{STAGING}/{j.name}")
                elif sub.name == PLACEMENT and sub.is_dir():  # the runner's task records
                    for j in os.scandir(sub.path):
                        if not (j.is_file() and not j.is_symlink()
                                and _PLACEMENT_NAME.fullmatch(j.name)):
                            foreign.append(f"{META}/{PLACEMENT}/{j.name}")
                elif sub.name == "journal" and sub.is_dir():
                    from .record import JOURNAL_NAME

                    for j in os.scandir(sub.path):
                        if not (j.is_file() and not j.is_symlink()
                                and JOURNAL_NAME.fullmatch(j.name)):
                            foreign.append(f"{META}/journal/{j.name}")
                else:
                    foreign.append(f"{META}/{sub.name}")
        elif name in allowed_arrays and entry.is_dir():
            for sub in os.scandir(entry.path):
                ok = sub.is_file() and not sub.is_symlink() and (
                    sub.name == "zarr.json" or _CHUNK_NAME.fullmatch(sub.name)
                    or _PARTIAL.fullmatch(sub.name))
                if not ok and sub.name == "c" and sub.is_dir() and not sub.is_symlink():
                    # coordinates: zarr's default "/" keys, one chunk c/0
                    ok = all(c.is_file() and c.name == "0" for c in os.scandir(sub.path))
                if not ok:
                    foreign.append(f"{name}/{sub.name}")
        else:
            foreign.append(name)
    return sorted(foreign)


def check_removable(path: str | Path) -> StoreInfo:
    """Check that ``path`` is a qbfast store that may be removed whole: not a symlink, not a
    protected directory (/, home, the working directory or a parent of either), carrying
    qbfast's marker, and holding only files a store of its format holds. One-line
    :class:`StoreError` otherwise; nothing is touched."""
    path = Path(path)
    if path.is_symlink():
        raise StoreError(f"{path}: is a symbolic link; --overwrite removes only a qbfast store "
                         f"directory itself: nothing was deleted")
    why = _protected(path)
    if why is not None:
        raise StoreError(f"{path}: refusing to remove it: {why}; nothing was deleted")
    try:
        info = open_info(path)
    except StoreError as e:
        raise StoreError(f"{e}; --overwrite removes only qbfast stores: nothing was "
                         f"deleted") from None
    foreign = foreign_files(path, info)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise StoreError(f"{path}: holds files that qbfast did not write ({shown}); "
                         f"--overwrite removes only qbfast stores: nothing was deleted")
    return info


def remove(path: str | Path) -> None:
    """Remove the qbfast store at ``path`` after :func:`check_removable`: renamed aside first
    (one atomic step: a crash leaves the store whole or gone from ``path``), then deleted."""
    path = Path(path)
    check_removable(path)
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.removing")
    os.rename(path, aside)
    shutil.rmtree(aside)


def remove_stale(path: str | Path) -> int:
    """Delete what qbfast left beside ``path`` when killed: temporary build directories
    (``.NAME.<12 hex>.partial``) and stores renamed aside for removal
    (``.NAME.<12 hex>.removing``). Only call while holding the store's lock."""
    path = Path(path)
    n = 0
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{12}}\.(partial|removing)")
    for p in path.parent.glob(f".{path.name}.*"):
        if (p.is_dir() and not p.is_symlink() and pattern.fullmatch(p.name)
                and _only_store_files(p)):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


def _only_store_files(path: Path) -> bool:
    """Whether everything under ``path`` (a build or removal directory) has the name of a
    file a qbfast store, or its build, holds: ``zarr.json`` files, chunk files and their
    temporary files in array directories, the bookkeeping group's files and journals; no
    symbolic link. qbfast deletes no file it did not create, whatever the directory's name."""
    from .record import JOURNAL_NAME

    for root, dirs, files in os.walk(path):
        rel = Path(root).relative_to(path).parts
        if any(os.path.islink(os.path.join(root, d)) for d in dirs):
            return False
        for f in files:
            full = os.path.join(root, f)
            if os.path.islink(full):
                return False
            if f == "zarr.json" or _PARTIAL.fullmatch(f):
                continue
            if rel == (META,) and (f == "complete.json" or _LEASE_NAME.fullmatch(f)):
                continue
            if rel == (META, "journal") and JOURNAL_NAME.fullmatch(f):
                continue
            if len(rel) == 1 and rel[0] != META and _CHUNK_NAME.fullmatch(f):
                continue
            if len(rel) == 2 and rel[0] != META and rel[1] == "c" and f == "0":
                continue  # a coordinate's chunk (zarr's default "/" keys)
            return False
    return True


def remove_partial_files(path: str | Path, info: StoreInfo) -> int:
    """Delete the temporary files of chunk writes killed mid-file (``NAME.<32 hex>.partial``
    in the store's array directories); only call while no task writes to the store."""
    n = 0
    dirs: Iterable[str] = (*info.dims, *(v.name for v in info.variables), META,
                           f"{META}/{STAGING}")
    for d in dirs:
        try:
            entries = list(os.scandir(Path(path) / d))
        except FileNotFoundError:
            continue
        for e in entries:
            if e.is_file() and not e.is_symlink() and _PARTIAL.fullmatch(e.name):
                os.unlink(e.path)
                n += 1
    return n


def bytes_on_disk(path: str | Path) -> tuple[int, int]:
    """(total apparent size in bytes, number of files) of the store."""
    total = files = 0
    for root, _, names in os.walk(path):
        for f in names:
            try:
                total += os.stat(os.path.join(root, f)).st_size
                files += 1
            except FileNotFoundError:
                pass
    return total, files
