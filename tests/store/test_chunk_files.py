"""Chunk files written directly: the bytes zarr itself writes (zstd, blosc and no compressor,
each followed by zarr v3's crc32c), also what xarray's region writes give; a flipped byte, a
truncation and an empty file are each detected by ChunkFiles.read, by xarray/zarr and by
tensorstore (an independent Zarr v3 reader); arrays whose codecs are not handled are refused
before any chunk is written."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import qbstore
import xarray as xr

from qbfast import store
from qbfast.runner.spec import parse_spec
from qbfast.runner.tasks import compute_block
from qbfast.store.layout import CHUNK_KEY_ENCODING, compressors

SPEC = qbstore.SMALL_SPEC  # 3 tasks: J2 rows 0-2, 3-5, 6


def _chunk_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())
            if p.is_file() and p.name != "zarr.json"}


@pytest.mark.parametrize("dtype, codec, fill, shape, chunks", [
    ("float32", "zstd", np.nan, (5, 7), (2, 3)),       # edge chunks in both dims
    ("float32", "blosc-lz4", np.nan, (5, 7), (2, 3)),
    ("float64", "blosc-lz4", np.nan, (3, 4, 2), (2, 2, 2)),
    ("float64", "none", np.nan, (3, 4, 2), (2, 2, 2)),
    ("float64", "zstd", 0.0, (4, 3), (2, 2)),           # -0.0 is not the fill value 0.0
    ("int8", "zstd", 0, (4, 3), (1, 1)),
])
def test_chunk_files_are_the_bytes_zarr_writes(tmp_path, dtype, codec, fill, shape, chunks):
    """ChunkFiles writes each chunk (an all-fill one too) as the bytes zarr's own
    ``array[region] = values`` writes with write_empty_chunks; zarr reads them back."""
    import zarr

    rng = np.random.default_rng(3)
    values = (rng.normal(size=shape) * 50).astype(dtype)
    grid = tuple(-(-n // c) for n, c in zip(shape, chunks))
    values[tuple(slice(0, c) for c in chunks)] = fill  # the first chunk: all fill value
    if dtype.startswith("float"):
        second = tuple(slice(c, min(2 * c, n)) for c, n in zip(chunks, shape))
        values[second] = -0.0 if fill == 0.0 else np.nan
        values[(-1,) * len(shape)] = np.nan
    arrays = []
    for name in ("by_zarr", "direct"):
        group = zarr.open_group(tmp_path / name, mode="w", zarr_format=3)
        arrays.append(group.create_array(
            "x", shape=shape, chunks=chunks, dtype=dtype, fill_value=fill,
            compressors=compressors(codec, np.dtype(dtype).itemsize),
            chunk_key_encoding=CHUNK_KEY_ENCODING, config={"write_empty_chunks": True}))
    by_zarr, _ = arrays
    files = store.ChunkFiles.open(tmp_path / "direct" / "x")
    for coords in itertools.product(*map(range, grid)):
        region = tuple(slice(i * c, min((i + 1) * c, n))
                       for i, c, n in zip(coords, chunks, shape))
        by_zarr[region] = values[region]
        crc = files.write(coords, values[region])
        data = files.path(coords).read_bytes()
        assert crc == int.from_bytes(data[-4:], "little") == store.chunk_files.crc32c(data[:-4])
    expected = _chunk_files(tmp_path / "by_zarr" / "x")
    assert len(expected) == int(np.prod(grid))  # every chunk stored, the all-fill one too
    assert _chunk_files(tmp_path / "direct" / "x") == expected
    reread = zarr.open_array(tmp_path / "direct" / "x", mode="r")[...]
    np.testing.assert_array_equal(reread, values)
    assert np.array_equal(np.signbit(reread), np.signbit(values))
    for coords in itertools.product(*map(range, grid)):  # and ChunkFiles.read decodes them
        region = tuple(slice(i * c, min((i + 1) * c, n))
                       for i, c, n in zip(coords, chunks, shape))
        got = files.read(coords)[tuple(slice(0, s.stop - s.start) for s in region)]
        np.testing.assert_array_equal(got, values[region])


def test_chunk_writes_are_the_bytes_xarray_writes(tmp_path):
    """Tasks written in-process hold the same files, byte for byte, as xarray's
    ``to_zarr(region=...)`` of the same task data into a store made the same way."""
    spec = parse_spec(SPEC, name="small")
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    qbstore.create(spec, a)
    qbstore.create(spec, b)
    ctx = qbstore.write_tasks(spec, a)
    for task in range(spec.n_chunks):
        slices = ctx.slices(task)
        data, _ = compute_block(spec, slices)
        region = dict(zip(spec.dims, slices))
        ds = xr.Dataset({v.name: (v.dims, data[v.name].astype(spec.variable_dtype(v)))
                         for v in spec.variables()})
        with __import__("zarr").config.set({"array.write_empty_chunks": True}):
            ds.to_zarr(b, mode="r+", region={d: region[d] for d in ds.dims},
                       consolidated=False, zarr_format=3)
    files_a = qbstore.data_files(a)
    assert len(files_a) == 3 * 3 + 3  # 3 tasks x 3 variables, and the coordinates
    assert files_a == qbstore.data_files(b)


def test_writer_refuses_arrays_it_cannot_write_whole(tmp_path):
    """An array whose zarr.json is unreadable, or whose codecs ChunkFiles does not reproduce
    (no crc32c, or a codec it does not know), is refused with a StoreError naming it, before
    any chunk of the task is written; the task is not recorded."""
    import zarr
    from zarr.codecs import GzipCodec, ZstdCodec

    spec = parse_spec(SPEC, name="small")
    path = tmp_path / "s.zarr"
    qbstore.create(spec, path)
    (path / "power" / "zarr.json").write_text("{ not json")
    with pytest.raises(store.StoreError, match=r"power: not an array of a qbfast store"):
        qbstore.write_tasks(spec, path, [0])
    assert not [p for p in path.rglob("c.*") if p.is_file()]  # no chunk file at all
    assert qbstore.n_recorded(path) == 0
    for name, codecs in (("nocrc", (ZstdCodec(level=1),)), ("gzip", (GzipCodec(),))):
        other = zarr.create_array(tmp_path / name, shape=(4,), chunks=(2,), dtype="float32",
                                  compressors=codecs)
        assert not store.ChunkFiles.supports(other.metadata)
        with pytest.raises(store.StoreError, match=f"{name}: not an array of a qbfast store"):
            store.ChunkFiles.open(tmp_path / name)


# ---- damage: detected by every reader ------------------------------------------------------

def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "flip":
        k = len(data) // 2
        path.write_bytes(data[:k] + bytes([data[k] ^ 0x10]) + data[k + 1:])
    elif how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    spec = parse_spec(SPEC, name="small")
    path = tmp_path_factory.mktemp("clean") / "s.zarr"
    qbstore.create(spec, path)
    qbstore.write_tasks(spec, path)
    return spec, path


@pytest.mark.parametrize("how", ["flip", "truncate", "empty"])
def test_damaged_chunk_is_detected_by_every_reader(tmp_path, written, how):
    import shutil

    import tensorstore as ts

    _, clean = written
    path = tmp_path / "s.zarr"
    shutil.copytree(clean, path)
    info = store.open_info(path)
    record = store.read_record(info)
    victim = path / "ergotropy" / "c.0.1.0"
    _damage(victim, how)
    files = store.ChunkFiles.open(path / "ergotropy")
    with pytest.raises(store.ChunkError, match=r"ergotropy/c\.0\.1\.0"):
        files.read((0, 1, 0))
    damage = store.verify(info, record)
    assert [(d.task, d.variable) for d in damage] == [(1, "ergotropy")]
    assert "ergotropy/c.0.1.0" in damage[0].problem
    with pytest.raises(ValueError, match="checksum do not match"):  # xarray, zarr's crc32c
        xr.open_zarr(path).ergotropy.compute()
    xr.open_zarr(path).energy.compute()  # the other variables still read
    arr = ts.open({"driver": "zarr3", "kvstore": {"driver": "file",
                                                   "path": str(path / "ergotropy")}}).result()
    np.testing.assert_array_equal(arr[:, 6:].read().result(),  # an undamaged chunk reads
                                  xr.open_zarr(clean).ergotropy.values[:, 6:])
    with pytest.raises(ValueError, match=r"ergotropy/c\.0\.1\.0"):  # tensorstore
        arr[:, 3:6].read().result()


def test_tensorstore_reads_a_clean_store_as_xarray_does(written):
    import tensorstore as ts

    spec, path = written
    for v in spec.variables():
        arr = ts.open({"driver": "zarr3", "kvstore": {"driver": "file",
                                                       "path": str(path / v.name)}}).result()
        np.testing.assert_array_equal(arr.read().result(), xr.open_zarr(path)[v.name].values)


def test_chunk_replaced_by_another_valid_chunk_is_not_the_recorded_one(tmp_path, written):
    """A chunk file swapped for another valid chunk (its own crc32c is right) is found by the
    checksum the completion record holds."""
    import shutil

    _, clean = written
    path = tmp_path / "s.zarr"
    shutil.copytree(clean, path)
    shutil.copyfile(path / "energy" / "c.0.0.0", path / "energy" / "c.0.1.0")
    info = store.open_info(path)
    damage = store.verify(info, store.read_record(info))
    assert [(d.task, d.variable) for d in damage] == [(1, "energy")]
    assert "not the chunk the completion record holds" in damage[0].problem


def test_chunk_zarr_json_names_crc32c_last(written):
    _, path = written
    for name in ("energy", "ergotropy", "power", "n", "J2", "t"):
        codecs = json.loads((path / name / "zarr.json").read_text())["codecs"]
        assert codecs[0]["name"] == "bytes" and codecs[-1]["name"] == "crc32c"


def test_write_all_writes_every_part_in_order(tmp_path):
    """The parts of a chunk file (payload, checksum) are written in order with no copy
    joining them; empty parts are skipped."""
    rng = np.random.default_rng(5)
    parts = [b"", rng.bytes(3), b"", rng.bytes(300_001), rng.bytes(4)]
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        store.chunk_files.write_all(fd, [memoryview(p) for p in parts])
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(parts)
