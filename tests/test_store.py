"""The Zarr store, written in-process (no cluster): template, labels, per-chunk completion,
idempotent chunk writes, repair of damaged chunks, refusal of a mismatched store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import qbfast
from qbfast import store
from qbfast.runner.driver import chunk_task, compute_chunk, prepare
from qbfast.reduce import reduce_t
from qbfast.runner.spec import parse_spec

SPEC = """
model = "cavity"
metrics = ["energy", "ergotropy", "power"]
dtype = "float32"
[params]
n = [1, 3]
J2 = { start = -1.0, stop = 2.0, num = 7 }
omega_g = 0.8
t = { start = 0.0, stop = 5.0, num = 51 }
[chunks]
J2 = 3
"""


def write_all(path: Path, spec, skip=()):
    for idx in spec.chunk_indices():
        if idx not in skip:
            chunk_task(idx, str(path), spec, {})


def data_files(path: Path) -> dict[str, bytes]:
    """Every chunk file of the store's variables and bookkeeping, by relative path."""
    out = {}
    for p in sorted(Path(path).rglob("*")):
        rel = p.relative_to(path).as_posix()
        if p.is_file() and p.name != "zarr.json" and not p.name.endswith(".partial"):
            out[rel] = p.read_bytes()
    return out


def tree_state(path: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(path).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in Path(path).rglob("*")}


@pytest.fixture
def spec():
    return parse_spec(SPEC, name="small", source="small.toml")


@pytest.mark.parametrize("dtype, codec, fill, shape, chunks, separator", [
    ("float32", store.CODEC, np.nan, (5, 7), (2, 3), "."),   # edge chunks in both dims
    ("float64", None, np.nan, (3, 4, 2), (2, 2, 2), "/"),
    ("float64", None, 0.0, (4, 3), (2, 2), "."),              # -0.0 is not the fill value 0.0
    ("int8", None, 0, (4, 3), (1, 1), "."),                   # the ``done`` marker's layout
])
def test_chunk_files_are_the_bytes_zarr_writes(tmp_path, dtype, codec, fill, shape, chunks,
                                               separator):
    """ChunkFiles writes each chunk as the bytes zarr's own ``array[region] = values`` writes
    (and leaves no file where zarr leaves none: a chunk all fill value); zarr reads them back."""
    import itertools

    import zarr

    rng = np.random.default_rng(3)
    values = (rng.normal(size=shape) * 50).astype(dtype)
    grid = tuple(-(-n // c) for n, c in zip(shape, chunks))
    first = tuple(slice(0, c) for c in chunks)
    values[first] = fill  # the first chunk: all fill value
    if dtype.startswith("float"):
        second = tuple(slice(c, min(2 * c, n)) for c, n in zip(chunks, shape))
        values[second] = -0.0 if fill == 0.0 else np.nan
        values[(-1,) * len(shape)] = np.nan
    arrays = []
    for name in ("by_zarr", "direct"):
        group = zarr.open_group(tmp_path / name, mode="w", zarr_format=3)
        arrays.append(group.create_array(
            "x", shape=shape, chunks=chunks, dtype=dtype, fill_value=fill, compressors=codec,
            chunk_key_encoding={"name": "default", "separator": separator}))
    by_zarr, direct = arrays
    files = store.ChunkFiles.open(tmp_path / "direct" / "x")
    for coords in itertools.product(*map(range, grid)):
        region = tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(coords, chunks, shape))
        by_zarr[region] = values[region]
        files.write(coords, values[region])
    expected = data_files(tmp_path / "by_zarr" / "x")
    empty = files.path((0,) * len(shape)).relative_to(tmp_path / "direct" / "x").as_posix()
    assert empty not in expected and len(expected) > 2  # zarr stored no all-fill chunk
    assert data_files(tmp_path / "direct" / "x") == expected
    reread = zarr.open_array(tmp_path / "direct" / "x", mode="r")[...]
    np.testing.assert_array_equal(reread, values)
    assert np.array_equal(np.signbit(reread), np.signbit(values))


def test_template_labels_and_empty_state(tmp_path, spec):
    path = tmp_path / "s.zarr"
    store.create(spec, path)
    ds = xr.open_zarr(path)  # plain call: consolidated metadata, no warning
    assert dict(ds.sizes) == {"n": 2, "J2": 7, "t": 51}
    assert list(ds.data_vars) == ["energy", "ergotropy", "power"]
    assert ds.energy.dtype == np.float32 and ds.energy.chunks == ((2,), (3, 3, 1), (51,))
    for name in ("n", "J2", "t"):
        assert {"long_name", "units"} <= set(ds[name].attrs)
    assert ds.n.dtype == np.int64 and ds.t.attrs["units"] == "1/Delta"
    assert ds.energy.attrs["units"] == "Delta" and ds.energy.attrs["long_name"]
    for key in ("spec", "spec_hash", "model", "protocol", "qbfast_version", "created"):
        assert key in ds.attrs
    assert ds.attrs["spec"] == SPEC and ds.attrs["model"] == "cavity"
    assert ds.attrs["omega_g"] == 0.8 and ds.attrs["qbfast_version"] == qbfast.__version__
    assert np.isnan(ds.energy.values).all()  # nothing written: fill value
    assert store.done_mask(path).tolist() == [[[0], [0], [0]]]
    assert not store.is_complete(path)
    assert not store.mark_complete(path)  # refuses while chunks are missing
    assert not list(tmp_path.glob(".*partial"))  # the temporary build dir is gone


def test_chunks_written_in_process_equal_sweep(tmp_path, spec):
    path = tmp_path / "s.zarr"
    store.create(spec, path)
    write_all(path, spec, skip={(0, 1, 0)})
    assert store.missing_chunks(path, spec) == [(0, 1, 0)]
    assert not store.mark_complete(path) and not store.is_complete(path)
    write_all(path, spec)
    assert store.mark_complete(path) and store.is_complete(path)
    ds = xr.open_zarr(path)
    g = spec.grid
    ref = qbfast.sweep("cavity", g.t, metrics=list(g.metrics), n=[1, 3], J2=g.swept["J2"],
                       omega_g=0.8)
    for name in g.metrics:
        np.testing.assert_array_equal(ds[name].values, ref[name].values.astype(np.float32))
    for c in ref.coords:
        xr.testing.assert_identical(ds[c], ref[c])
    peaks = store.peaks(path, spec)
    e = ref.energy
    where = {k: float(e[k][int(v)]) for k, v in e.argmax(...).items()}
    assert peaks["energy"] == (float(e.max()), where)


def test_chunk_write_is_idempotent(tmp_path, spec):
    path = tmp_path / "s.zarr"
    store.create(spec, path)
    metadata = {k: v for k, v in tree_state(path).items() if k.endswith("zarr.json")}
    write_all(path, spec)
    first = data_files(path)
    write_all(path, spec)
    assert data_files(path) == first
    # chunk writers never rewrite metadata (no races between concurrent tasks)
    assert {k: v for k, v in tree_state(path).items() if k.endswith("zarr.json")} == metadata


def test_damaged_unmarked_chunk_is_found_and_repaired(tmp_path, spec):
    """A chunk file cut short by a kill (no done marker yet) is rewritten on resume."""
    path = tmp_path / "s.zarr"
    store.create(spec, path)
    write_all(path, spec)
    reference = data_files(path)
    victim = store.ChunkFiles.open(path / "energy").path((0, 1, 0))
    victim.write_bytes(victim.read_bytes()[:7])
    store.ChunkFiles.open(path / store.META / "done").path((0, 1, 0)).unlink()
    partial = store.ChunkFiles.open(path / "ergotropy").path((0, 1, 0))
    partial.with_name(partial.name + ".abc.partial").write_bytes(b"junk")
    missing = prepare(spec, path)
    assert missing == [(0, 1, 0)]
    assert not list(path.rglob("*.partial"))  # leftovers of killed writes are cleaned
    for idx in missing:
        chunk_task(idx, str(path), spec, {})
    assert data_files(path) == reference


def test_mismatched_store_is_refused_and_untouched(tmp_path, spec):
    path = tmp_path / "s.zarr"
    store.create(spec, path)
    write_all(path, spec, skip={(0, 2, 0)})
    before = tree_state(path)
    other = parse_spec(SPEC.replace("omega_g = 0.8", "omega_g = 0.9"), name="small")
    with pytest.raises(store.StoreError, match="made from a different spec.*--overwrite"):
        prepare(other, path)
    assert tree_state(path) == before
    # --overwrite replaces it
    assert len(prepare(other, path, overwrite=True)) == other.n_chunks
    assert xr.open_zarr(path).attrs["spec_hash"] == other.hash


def test_complete_store_needs_nothing(tmp_path, spec):
    path = tmp_path / "s.zarr"
    store.create(spec, path)
    write_all(path, spec)
    store.mark_complete(path)
    before = tree_state(path)
    assert prepare(spec, path) is None
    assert tree_state(path) == before


def test_not_a_store_is_refused(tmp_path, spec):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "keep.txt").write_text("x")
    with pytest.raises(store.StoreError, match="not a Zarr store"):
        prepare(spec, plain)
    with pytest.raises(store.StoreError, match="refusing to delete"):
        prepare(spec, plain, overwrite=True)
    assert (plain / "keep.txt").read_text() == "x"
    foreign = tmp_path / "foreign.zarr"
    xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(foreign, zarr_format=3, consolidated=False)
    with pytest.raises(store.StoreError, match="not one written by qbfast"):
        store.read_attrs(foreign)
    with pytest.raises(store.StoreError, match="no such store"):
        store.info(tmp_path / "none.zarr")


def test_reduced_store_matches_reductions_of_sweep(tmp_path):
    text = SPEC.replace('dtype = "float32"', 'dtype = "float64"') + (
        '[reduce]\nover = "t"\nstats = ["max", "argmax", "min", "argmin", "first_max"]\n')
    spec = parse_spec(text, name="red")
    path = tmp_path / "r.zarr"
    store.create(spec, path)
    write_all(path, spec)
    assert store.mark_complete(path)
    ds = xr.open_zarr(path)
    assert "energy" not in ds and ds.energy_max.dims == ("n", "J2")
    assert "t" not in ds.energy_max.dims and ds.energy_t_max.attrs["units"] == "1/Delta"
    g = spec.grid
    ref = qbfast.sweep("cavity", g.t, metrics=list(g.metrics), n=[1, 3], J2=g.swept["J2"],
                       omega_g=0.8)
    for m in g.metrics:
        x = ref[m].values
        np.testing.assert_array_equal(ds[f"{m}_max"].values, reduce_t(x, g.t, "max")[0])
        np.testing.assert_array_equal(ds[f"{m}_t_max"].values, reduce_t(x, g.t, "argmax")[0])
        np.testing.assert_array_equal(ds[f"{m}_min"].values, reduce_t(x, g.t, "min")[0])
        np.testing.assert_array_equal(ds[f"{m}_t_min"].values, reduce_t(x, g.t, "argmin")[0])
        fv, ft = reduce_t(x, g.t, "first_max")
        np.testing.assert_array_equal(ds[f"{m}_first_max"].values, fv)
        np.testing.assert_array_equal(ds[f"{m}_t_first_max"].values, ft)
    np.testing.assert_array_equal(ds.energy_max.values, ref.energy.max("t").values)
    np.testing.assert_array_equal(ds.energy_t_max.values, ref.energy.idxmax("t").values)


def test_compute_chunk_shapes(spec):
    data, peaks = compute_chunk(spec, (0, 2, 0))
    assert data["energy"].shape == (2, 1, 51) and data["energy"].dtype == np.float64
    assert peaks.shape == (2, 2)


def test_bytes_and_info(tmp_path, spec):
    path = tmp_path / "s.zarr"
    store.create(spec, path)
    write_all(path, spec, skip={(0, 0, 0)})
    d = store.info(path)
    assert (d["chunks_done"], d["chunks_total"], d["complete"]) == (2, 3, False)
    assert d["sizes"] == {"n": 2, "J2": 7, "t": 51}
    assert d["bytes"] == sum(os.path.getsize(p) for p in path.rglob("*") if p.is_file())


def test_killed_creation_leaves_nothing_that_counts(tmp_path, spec):
    """A build directory left by a creation killed before its rename is not a store, and the
    next run removes it."""
    path = tmp_path / "s.zarr"
    stale = tmp_path / ".s.zarr.0123456789ab.partial"
    (stale / "energy").mkdir(parents=True)
    other = tmp_path / ".other.zarr.0123456789ab.partial"
    other.mkdir()
    assert not path.exists()
    assert len(prepare(spec, path)) == spec.n_chunks
    assert not stale.exists() and other.exists()


def test_unreachable_scheduler_writes_nothing(tmp_path, spec):
    from qbfast.runner.driver import execute

    path = tmp_path / "s.zarr"
    with pytest.raises(OSError):
        execute(spec, path, scheduler="tcp://127.0.0.1:1", connect_timeout="0.5s")
    assert list(tmp_path.iterdir()) == []


def test_all_chunks_written_but_flag_unset_needs_no_cluster(tmp_path, spec):
    """A client killed after the last chunk but before the flag: the next run only checks."""
    from qbfast.runner.driver import execute

    path = tmp_path / "s.zarr"
    store.create(spec, path)
    write_all(path, spec)
    assert not store.is_complete(path)
    report = execute(spec, path, scheduler="tcp://127.0.0.1:1", connect_timeout="0.5s")
    assert (report.status, report.chunks_computed) == ("resumed", 0)
    assert store.is_complete(path)


def test_writer_refuses_arrays_it_cannot_write_whole(tmp_path, spec):
    """An array whose zarr.json is missing or unreadable, or whose codecs ChunkFiles does not
    reproduce (here Blosc), is refused with a StoreError naming it, before any chunk is
    written."""
    import zarr
    from zarr.codecs import BloscCodec

    path = tmp_path / "s.zarr"
    store.create(spec, path)
    (path / "power" / "zarr.json").write_text("{ not json")
    with pytest.raises(store.StoreError, match=r"power: not an array of a qbfast store"):
        chunk_task((0, 0, 0), str(path), spec, {})
    assert store.done_mask(path).sum() == 0
    assert not [p for p in path.rglob("c*") if p.is_file()]  # no chunk file at all
    other = zarr.create_array(tmp_path / "blosc", shape=(4,), chunks=(2,), dtype="float32",
                              compressors=BloscCodec(cname="lz4"))
    assert not store.ChunkFiles.supports(other.metadata)
    with pytest.raises(store.StoreError, match="blosc: not an array of a qbfast store"):
        store._files(tmp_path / "blosc")


def test_marker_is_written_only_after_the_data(tmp_path, spec, monkeypatch):
    path = tmp_path / "s.zarr"
    store.create(spec, path)

    write = store.ChunkFiles.write

    def crash(self, coords, values):
        if self.directory.name != "done":  # the data writes fail, the marker's would not
            raise OSError("disk full")
        write(self, coords, values)

    monkeypatch.setattr(store.ChunkFiles, "write", crash)
    with pytest.raises(OSError, match="disk full"):
        chunk_task((0, 0, 0), str(path), spec, {})
    assert store.done_mask(path).sum() == 0
    assert store.missing_chunks(path, spec) == spec.chunk_indices()


def test_other_kernel_code_is_refused(tmp_path, spec, monkeypatch):
    """Finishing a store with other kernels would mix versions: refused, store untouched;
    a worker whose kernels differ from the store's refuses its task."""
    path = tmp_path / "s.zarr"
    store.create(spec, path)
    assert xr.open_zarr(path).attrs["kernels_digest"] == store.kernels_digest()
    write_all(path, spec, skip={(0, 2, 0)})
    before = tree_state(path)
    with pytest.raises(RuntimeError, match="differ from the store's"):
        chunk_task((0, 2, 0), str(path), spec, {}, kernels="0" * 64)
    monkeypatch.setattr(store._legacy, "kernels_digest", lambda: "f" * 64)
    with pytest.raises(store.StoreError, match="other kernel code.*--overwrite"):
        prepare(spec, path)
    assert tree_state(path) == before


def test_chunk_writer_writes_the_bytes_xarray_writes(tmp_path, spec):
    """The arrays written directly (store.write_chunk) hold the same files, byte for byte, as
    xarray's ``to_zarr(region=...)`` of the same chunk data into a store made the same way."""
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    store.create(spec, a)
    store.create(spec, b)
    for idx in spec.chunk_indices():
        data, peaks = compute_chunk(spec, idx)
        store.write_chunk(a, spec, idx, data, peaks, store.store_id(a))
        region = dict(zip(spec.dims, spec.chunk_slices(idx)))
        ds = xr.Dataset({v.name: (v.dims, data[v.name].astype(spec.variable_dtype(v)))
                         for v in spec.variables()})
        ds.to_zarr(b, mode="r+", region={d: region[d] for d in ds.dims}, consolidated=False,
                   zarr_format=3)
    variables = {k: v for k, v in data_files(a).items() if not k.startswith(store.META)}
    assert variables and variables == {k: v for k, v in data_files(b).items()
                                       if not k.startswith(store.META)}


def test_writers_are_kept_per_store_identity(tmp_path, spec):
    """A worker keeps a store's arrays open under its id; a store created again at the same
    path (here from another spec, with other variables) has a new id and gets new arrays."""
    path = tmp_path / "s.zarr"
    store.create(spec, path)
    first = store.store_id(path)
    assert first and store.chunk_writer(path, spec, first) is store.chunk_writer(path, spec, first)
    write_all(path, spec)
    store.remove(path)
    other = parse_spec(SPEC.replace('"power"]', '"concurrence"]'), name="other")
    store.create(other, path)
    second = store.store_id(path)
    assert second != first
    assert store.chunk_writer(path, other, second) is not store.chunk_writer(path, spec, first)
    for idx in other.chunk_indices():
        data, peaks = compute_chunk(other, idx)
        store.write_chunk(path, other, idx, data, peaks, second)
    assert store.mark_complete(path)
    ds = xr.open_zarr(path)
    assert "power" not in ds
    g = other.grid
    ref = qbfast.sweep("cavity", g.t, metrics=list(g.metrics), n=[1, 3], J2=g.swept["J2"],
                       omega_g=0.8)
    np.testing.assert_array_equal(ds.concurrence.values,
                                  ref.concurrence.values.astype(np.float32))


def test_reduce_blocks_do_not_change_the_results(tmp_path):
    """[reduce] alone computes a chunk in blocks of bounded memory: any block size (down to
    one parameter point) gives the same bits, peaks included, as one block for the chunk."""
    text = SPEC.replace("J2 = 3\n", "J2 = 4\n") + (
        '[reduce]\nstats = ["max", "argmax", "min", "argmin", "first_max"]\n')
    spec = parse_spec(text, name="blocks")
    assert spec.n_chunks == 2
    row = 8 * len(spec.grid.metrics) * spec.grid.t.size
    for idx in spec.chunk_indices():
        whole, whole_peaks = compute_chunk(spec, idx, block_bytes=1 << 30)
        for rows in (1, 2, 3, 5):
            data, peaks = compute_chunk(spec, idx, block_bytes=rows * row)
            assert data.keys() == whole.keys()
            for k in data:
                np.testing.assert_array_equal(data[k], whole[k])
            np.testing.assert_array_equal(peaks, whole_peaks)
    kept = parse_spec(text + "keep_series = true\n", name="kept")
    for idx in kept.chunk_indices():
        series, series_peaks = compute_chunk(kept, idx)
        blocked, blocked_peaks = compute_chunk(spec, idx, block_bytes=2 * row)
        for k in blocked:
            np.testing.assert_array_equal(blocked[k], series[k])
        np.testing.assert_array_equal(blocked_peaks, series_peaks)
