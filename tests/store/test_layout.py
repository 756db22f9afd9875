"""The store's layout (format 2): creation through zarr's API (labels, attrs, atomic, cost
independent of the number of chunks), recognition (open_info refuses what is not a qbfast
store of this format, in one line), and removal that deletes only a qbfast store holding only
its own files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import qbstore
import xarray as xr

import qbfast
from qbfast import store

SPEC = qbstore.SMALL_SPEC  # 3 tasks: J2 rows 0-2, 3-5, 6


@pytest.fixture
def spec():
    return qbstore.small_spec()


def test_created_store_labels_attrs_and_empty_state(tmp_path, spec):
    path = tmp_path / "s.zarr"
    info = qbstore.create(spec, path)
    ds = xr.open_zarr(path)  # plain call: consolidated metadata, no warning
    assert dict(ds.sizes) == {"n": 2, "J2": 7, "t": 51}
    assert list(ds.data_vars) == ["energy", "ergotropy", "power"]
    assert ds.energy.dtype == np.float32 and ds.energy.chunks == ((2,), (3, 3, 1), (51,))
    for name in ("n", "J2", "t"):
        assert {"long_name", "units"} <= set(ds[name].attrs)
    labels = qbfast.sweep("cavity", np.linspace(0, 5, 2), n=[1], J2=[0.0], omega_g=0.8,
                          metrics=["energy", "ergotropy", "power"])
    for name in ("n", "J2", "t"):  # the same labels as the in-memory sweep's
        assert ds[name].attrs == labels[name].attrs
    assert ds.n.dtype == np.int64 and ds.t.attrs["units"]
    for name in ("energy", "ergotropy", "power"):
        assert ds[name].attrs["units"] == labels[name].attrs["units"]
        assert ds[name].attrs["long_name"] == labels[name].attrs["long_name"]
    for key in ("spec", "spec_hash", "model", "protocol", "qbfast_version", "created",
                "kernels_digest"):
        assert key in ds.attrs
    assert ds.attrs["spec"] == SPEC and ds.attrs["model"] == "cavity"
    assert ds.attrs["omega_g"] == 0.8 and ds.attrs["qbfast_version"] == qbfast.__version__
    assert ds.attrs["qbfast_store_format"] == store.STORE_FORMAT == 2
    np.testing.assert_array_equal(ds.J2.values, np.linspace(-1, 2, 7))
    assert np.isnan(ds.energy.values).all()  # nothing written: fill value, read as missing
    assert "_qbfast" not in ds.variables  # the bookkeeping group is invisible to xarray
    assert (info.dims, info.shape, info.chunks, info.n_tasks) == (
        ("n", "J2", "t"), (2, 7, 51), (2, 3, 51), 3)
    assert [v.name for v in info.variables] == ["energy", "ergotropy", "power"]
    assert info.meta["marker"] == "qbfast-store" and len(info.store_id) == 32
    record = store.read_record(info)
    assert record.n_done == 0 and record.missing.tolist() == [0, 1, 2]
    assert store.read_complete(info) is None
    with pytest.raises(RuntimeError, match="tasks are missing"):
        store.write_complete(info, record)  # refuses while tasks are missing
    assert store.read_complete(info) is None
    assert not list(tmp_path.glob(".*"))  # the temporary build dir is gone
    # no chunk file of any data variable: creation writes metadata and coordinates only
    assert not [p for v in ds.data_vars for p in (path / v).iterdir() if p.name != "zarr.json"]


def test_two_creations_have_different_ids_same_coordinates(tmp_path, spec):
    a = qbstore.create(spec, tmp_path / "a.zarr")
    b = qbstore.create(spec, tmp_path / "b.zarr")
    assert a.store_id != b.store_id
    assert qbstore.data_files(a.path) == qbstore.data_files(b.path)  # the coordinates


def _layout(shape, chunks):
    from qbfast.store import StoreLayout, VariableLayout

    dims = tuple(f"d{i}" for i in range(len(shape) - 1)) + ("t",)
    coords = {d: (np.arange(n, dtype=np.float64), {"units": "1"}) for d, n in zip(dims, shape)}
    variables = (VariableLayout("energy", dims, "float32", {"units": "energy"}),
                 VariableLayout("energy_max", dims[:-1], "float32", {}))
    return StoreLayout(dims=dims, shape=shape, chunks=chunks, variables=variables,
                       coords=coords, attrs={"title": "x"}, codec="zstd")


def _create_time(layout, where: Path) -> float:
    best = float("inf")
    for i in range(3):
        t0 = time.perf_counter()
        store.create(layout, where / f"s{i}.zarr")
        best = min(best, time.perf_counter() - t0)
    return best


def test_creation_cost_does_not_depend_on_the_number_of_chunks(tmp_path):
    """A 1-task and a 1e6-task layout of the same arrays: the same files (metadata and
    coordinates only), and a creation time within a small factor (no absolute time)."""
    one = _layout((1000, 1000, 2), (1000, 1000, 2))
    many = _layout((1000, 1000, 2), (1, 1, 2))
    assert (one.n_tasks, many.n_tasks) == (1, 10**6)
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    t_one = _create_time(one, tmp_path / "one")
    t_many = _create_time(many, tmp_path / "many")
    files = [sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))
             for d in (tmp_path / "one" / "s0.zarr", tmp_path / "many" / "s0.zarr")]
    assert files[0] == files[1] and len(files[0]) <= 25  # entries, directories included
    assert store.open_info(tmp_path / "many" / "s0.zarr").n_tasks == 10**6
    assert t_many < 3 * t_one, (t_one, t_many)


def test_killed_creation_leaves_nothing_that_counts(tmp_path, spec):
    """A build directory left by a creation killed before its rename is not a store at the
    path, and remove_stale (run under the lock) removes it and nothing else."""
    path = tmp_path / "s.zarr"
    stale = tmp_path / ".s.zarr.0123456789ab.partial"
    (stale / "energy").mkdir(parents=True)
    aside = tmp_path / ".s.zarr.0123456789ab.removing"
    aside.mkdir()
    other = tmp_path / ".other.zarr.0123456789ab.partial"
    other.mkdir()
    keep = tmp_path / ".s.zarr.notes.partial"
    keep.mkdir()
    # a directory with the build name that holds a file no store holds is not qbfast's
    users = tmp_path / ".s.zarr.abcdefabcdef.partial"
    (users / "energy").mkdir(parents=True)
    (users / "energy" / "zarr.json").write_text("{}")
    (users / "energy" / "thesis.tex").write_text("mine")
    linked = tmp_path / ".s.zarr.abcdefabcde0.removing"
    linked.mkdir()
    (linked / "zarr.json").symlink_to(tmp_path / "elsewhere.json")
    assert not path.exists()
    with pytest.raises(store.StoreError, match="no such store"):
        store.open_info(path)
    built = tmp_path / ".s.zarr.fedcbafedcba.partial"  # a real build, with every file
    qbstore.create(spec, tmp_path / "b.zarr")
    qbstore.write_tasks(spec, tmp_path / "b.zarr", [0])
    (tmp_path / "b.zarr").rename(built)
    assert store.remove_stale(path) == 3
    assert not built.exists()
    assert not stale.exists() and not aside.exists() and other.exists() and keep.exists()
    assert (users / "energy" / "thesis.tex").read_text() == "mine" and linked.is_dir()
    qbstore.create(spec, path)
    assert store.open_info(path).n_tasks == 3


def test_creation_failure_leaves_nothing(tmp_path, spec):
    """A creation that fails midway (here: the target exists by then) leaves no build
    directory and no store."""
    from qbfast.runner.driver import store_layout

    path = tmp_path / "s.zarr"
    path.mkdir()
    (path / "x").write_text("mine")
    with pytest.raises(OSError):
        store.create(store_layout(spec), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
    assert (path / "x").read_text() == "mine"


def _format1_store(path: Path) -> None:
    """A store as the previous qbfast wrote it (format 1: a ``done`` array, no marker)."""
    import zarr

    root = zarr.create_group(path, zarr_format=3,
                             attributes={"spec_hash": "ab" * 32, "qbfast_store_format": 1})
    root.create_array("energy", shape=(4,), chunks=(2,), dtype="float32")
    meta = zarr.create_group(path / "_qbfast", zarr_format=3,
                             attributes={"qbfast_store_format": 1, "complete": True})
    done = meta.create_array("done", shape=(2,), chunks=(1,), dtype="int8")
    done[...] = 1


def test_open_info_refusals_are_one_line(tmp_path, spec):
    with pytest.raises(store.StoreError, match="no such store"):
        store.open_info(tmp_path / "none.zarr")
    (tmp_path / "file").write_text("x")
    with pytest.raises(store.StoreError, match="not a directory"):
        store.open_info(tmp_path / "file")
    (tmp_path / "plain").mkdir()
    with pytest.raises(store.StoreError, match="not a Zarr store"):
        store.open_info(tmp_path / "plain")
    foreign = tmp_path / "foreign.zarr"
    xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(foreign, zarr_format=3, consolidated=False)
    with pytest.raises(store.StoreError, match="not one written by qbfast"):
        store.open_info(foreign)
    old = tmp_path / "old.zarr"
    _format1_store(old)
    with pytest.raises(store.StoreError, match="store format 1.*formats 2, 3 only"):
        store.open_info(old)
    broken = tmp_path / "broken.zarr"
    broken.mkdir()
    (broken / "zarr.json").write_text("{ not json")
    with pytest.raises(store.StoreError, match="unreadable metadata"):
        store.open_info(broken)
    for key, value in (("shape", [2, 7]), ("n_tasks", 4), ("store_id", None),
                       ("marker", "other")):
        path = tmp_path / f"t-{key}.zarr"
        qbstore.create(spec, path)
        meta_file = path / "_qbfast" / "zarr.json"
        doc = json.loads(meta_file.read_text())
        doc["attributes"][key] = value
        meta_file.write_text(json.dumps(doc))
        with pytest.raises(store.StoreError) as e:
            store.open_info(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value)


# ---- removal (--overwrite) ------------------------------------------------------------------

def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not p.is_symlink()}


def _refused(path: Path, keep: Path | None = None, match: str = "nothing was deleted") -> None:
    keep = keep or path
    before = _files(keep)
    with pytest.raises(store.StoreError, match=match) as e:
        store.remove(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert _files(keep) == before  # every file survives


def test_remove_refuses_foreign_directories(tmp_path, spec, monkeypatch):
    xs = tmp_path / "xarray.zarr"  # a Zarr store written by xarray, a note beside the data
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_zarr(xs, zarr_format=3, consolidated=False)
    (xs / "notes.txt").write_text("my notes")
    _refused(xs)
    thesis = tmp_path / "thesis"  # an empty zarr.json beside someone's work
    (thesis / "sub").mkdir(parents=True)
    (thesis / "zarr.json").write_text("")
    (thesis / "thesis.txt").write_text("chapter 1")
    (thesis / "sub" / "results.csv").write_text("1,2\n")
    _refused(thesis)
    old = tmp_path / "old.zarr"
    _format1_store(old)
    _refused(old, match="store format 1")
    # a real qbfast store with a foreign file inside: refused, naming the file
    mixed = tmp_path / "mixed.zarr"
    qbstore.create(spec, mixed)
    qbstore.write_tasks(spec, mixed, [0])
    (mixed / "energy" / "mine.npy").write_text("x")
    (mixed / "_qbfast" / "journal" / "notes").write_text("x")
    with pytest.raises(store.StoreError, match=r"energy/mine\.npy") as e:
        store.check_removable(mixed)
    assert "_qbfast/journal/notes" in str(e.value)
    _refused(mixed)
    # the current directory and its parents, even when they are qbfast stores
    cwd_store = tmp_path / "cwd.zarr"
    qbstore.create(spec, cwd_store)
    (cwd_store / "energy").mkdir(exist_ok=True)
    monkeypatch.chdir(cwd_store / "energy")
    _refused(cwd_store, match="current directory or one of its parents")
    _refused(Path(".."), keep=cwd_store, match="current directory or one of its parents")
    monkeypatch.chdir(cwd_store)
    _refused(Path("."), keep=cwd_store, match="current directory")
    monkeypatch.chdir(tmp_path)
    _refused(Path(os.path.expanduser("~")), keep=tmp_path / "thesis",
             match="home directory")  # checked before anything is read
    _refused(Path("/"), keep=tmp_path / "thesis", match="file system root")
    # symbolic links, to a real store and dangling
    real = tmp_path / "real.zarr"
    qbstore.create(spec, real)
    link = tmp_path / "link.zarr"
    link.symlink_to(real)
    _refused(link, keep=real, match="symbolic link")
    assert link.is_symlink()
    dangling = tmp_path / "dangling.zarr"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(store.StoreError, match="symbolic link"):
        store.remove(dangling)
    assert dangling.is_symlink()
    # a qbfast store holding only its own files IS removed, and nothing beside it
    store.remove(real)
    assert not real.exists() and not list(tmp_path.glob(".real.zarr*"))
    assert (thesis / "thesis.txt").exists()


def test_remove_accepts_a_killed_runs_leftovers(tmp_path, spec):
    """A store with a torn journal, partial chunk files and a completion file is still only
    qbfast's files: removed whole."""
    path = tmp_path / "s.zarr"
    qbstore.create(spec, path)
    qbstore.write_tasks(spec, path)
    info = store.open_info(path)
    store.write_complete(info, store.read_record(info))
    (path / "energy" / "c.0.1.0.0123456789abcdef0123456789abcdef.partial").write_bytes(b"x")
    journal = next((path / "_qbfast" / "journal").iterdir())
    with open(journal, "ab") as f:
        f.write(b"torn")
    assert store.check_removable(path).store_id == info.store_id
    store.remove(path)
    assert list(tmp_path.iterdir()) == []


def test_remove_partial_files(tmp_path, spec):
    path = tmp_path / "s.zarr"
    info = qbstore.create(spec, path)
    qbstore.write_tasks(spec, path, [0])
    partial = path / "power" / "c.0.1.0.0123456789abcdef0123456789abcdef.partial"
    partial.write_bytes(b"junk")
    notes = path / "power" / "c.0.1.0.notes.partial"  # not qbfast's name: left alone
    notes.write_bytes(b"mine")
    before = qbstore.data_files(path)
    assert store.remove_partial_files(path, info) == 1
    assert not partial.exists() and notes.exists()
    assert dict(qbstore.data_files(path)) == {
        k: v for k, v in before.items() if not k.endswith(partial.name)}
