"""Grouped stores (format 3): storage chunks that span a block of tasks. Tasks stage their
data (one staging file each, then a STAGED entry); a group's merge writes its chunk files, then
a GROUP_DONE entry, then removes the staging files. Checked here without a cluster: the
planner's group rule, the layout read by plain xarray against the ungrouped layout of the same
spec, and the record at every point where a kill can land."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import qbstore
import xarray as xr

from qbfast import store
from qbfast.runner import plan as plan_mod
from qbfast.runner.spec import SpecError, parse_spec
from qbfast.runner.tasks import merge_task, run_task
from qbfast.store import record as record_mod

BASE = qbstore.GROUPABLE_SPEC  # 36 tasks; with GROUP, group grid (3, 2, 2)
GROUP = qbstore.GROUP

BIG = """
model = "field"
metrics = ["energy", "ergotropy"]
dtype = "float32"
[params]
A = { start = 0.0, stop = 2.0, num = 64 }
B = { start = 0.0, stop = 2.0, num = 64 }
omega = { start = 0.5, stop = 2.0, num = 64 }
g = { start = -1.0, stop = 1.0, num = 64 }
Delta = { start = 0.5, stop = 1.5, num = 64 }
t = { start = 0.0, stop = 20.0, num = 10000 }
[reduce]
over = "t"
stats = ["max", "argmax", "first_max"]
"""


@pytest.fixture
def specs():
    return parse_spec(BASE, name="flat"), parse_spec(BASE + GROUP, name="grouped")


# ---- the planner's rule (pure) ---------------------------------------------------------------

def test_planner_groups_the_1e13_reduced_spec(monkeypatch):
    monkeypatch.setattr(plan_mod, "AUTO_GROUP", True)
    p = parse_spec(BIG, name="big").plan()
    assert p.chunks == (1, 1, 32, 64, 64, 10000)  # tasks: unchanged by grouping
    # widest reduced variable: float64 times, 32 x 64 x 64 x 8 B = 1 MiB per task; a budget
    # of min(64 tasks, 64 MiB / 1 MiB) = 64 tasks, taken from the last swept dim: Delta and
    # g have one task, omega 2, then B 32
    assert p.group == (1, 32, 2, 1, 1, 1)
    assert p.storage_chunks == (1, 32, 64, 64, 64, 10000)
    assert math.prod(p.group) <= plan_mod.GROUP_MAX_TASKS
    assert math.prod(p.storage_chunks[:-1]) * 8 == 64 << 20
    assert "groups of 64 tasks" in p.reason


def test_planner_keeps_group_1_for_series_small_grids_and_chunks(monkeypatch):
    monkeypatch.setattr(plan_mod, "AUTO_GROUP", False)
    assert parse_spec(BIG, name="big").plan().group == (1,) * 6
    monkeypatch.setattr(plan_mod, "AUTO_GROUP", True)
    given = parse_spec(BIG + "[chunks]\nomega = 16\n", name="c").plan()
    assert given.group == (1,) * 6 and given.chunks[2] == 16
    series = BIG.replace("[reduce]", "[reduce]\nkeep_series = true")
    assert parse_spec(series, name="s").plan().group == (1,) * 6
    small = parse_spec(BASE.split("[chunks]")[0] + BASE.split("J1 = 2\n")[1], name="small")
    assert small.plan().group == (1,) * 4  # rule 1: today's sizes, today's layout


def test_group_override_is_clipped_to_the_task_grid(specs):
    _, grouped = specs
    assert grouped.group == (1, 2, 2, 1)
    wide = parse_spec(BASE + "[group]\nJ2 = 100\nn = 2\n", name="w")
    assert wide.group == (2, 4, 1, 1)  # task grid (3, 4, 3)
    assert wide.plan().storage_chunks == (2, 7, 2, 41)
    assert wide.hash != parse_spec(BASE, name="flat").hash
    assert parse_spec(BASE + "[group]\nJ2 = 1\n", name="o").group == (1,) * 4


@pytest.mark.parametrize("table, match", [
    ("[group]\nt = 2\n", "group.t: not a swept dimension"),
    ("[group]\nJ2 = 0\n", "group.J2: expected an integer >= 1"),
    ("[group]\nJ2 = true\n", "group.J2: expected an integer >= 1"),
    ("group = 3\n", "group: expected a table"),
])
def test_bad_group_tables_are_refused_in_one_line(table, match):
    text = table + BASE if not table.startswith("[") else BASE + table
    with pytest.raises(SpecError, match=match) as e:
        parse_spec(text, name="bad")
    assert "\n" not in str(e.value)


def test_group_needs_reduce_without_series():
    text = BASE.replace("[reduce]", "[reduce]\nkeep_series = true") + GROUP
    with pytest.raises(SpecError, match="group: task groups need \\[reduce\\]"):
        parse_spec(text, name="bad")


# ---- the store ------------------------------------------------------------------------------

def test_grouped_store_reads_as_the_ungrouped_one(tmp_path, specs):
    flat, grouped = specs
    qbstore.create(flat, tmp_path / "a.zarr")
    qbstore.write_tasks(flat, tmp_path / "a.zarr")
    info = qbstore.create(grouped, tmp_path / "b.zarr")
    assert info.grouped and info.meta["qbfast_store_format"] == 3
    assert info.attrs["qbfast_store_format"] == 3
    assert info.n_groups == 12 and info.n_tasks == 36
    qbstore.write_groups(grouped, tmp_path / "b.zarr")
    a, b = xr.open_zarr(tmp_path / "a.zarr"), xr.open_zarr(tmp_path / "b.zarr")
    assert set(a.data_vars) == set(b.data_vars) and len(a.data_vars) == 8
    for name in a.data_vars:
        assert b[name].encoding["chunks"] == (1, 4, 4)
        assert a[name].encoding["chunks"] == (1, 2, 2)
        xr.testing.assert_identical(a[name].load(), b[name].load())
        assert np.isfinite(b[name].values).mean() > 0.5  # not a comparison of fill values
    # one file per group and variable, nothing left in staging
    assert len(list((tmp_path / "b.zarr" / "energy_max").glob("c.*"))) == 12
    assert not list(record_mod.staging_dir(tmp_path / "b.zarr").iterdir())
    record = store.read_record(info)
    assert record.done.all() and record.n_groups_done == 12
    assert not len(store.missing_files(info, record)) and not store.verify(info, record)
    store.write_complete(info, record)
    assert qbstore.is_complete(tmp_path / "b.zarr")
    # an ungrouped store keeps format 2 and no group attribute
    flat_info = store.open_info(tmp_path / "a.zarr")
    assert flat_info.meta["qbfast_store_format"] == 2 and "group" not in flat_info.meta
    assert flat_info.attrs["qbfast_store_format"] == 2
    assert flat_info.group == (1,) * 4 and not flat_info.grouped


@pytest.fixture
def grouped_store(tmp_path, specs):
    _, grouped = specs
    info = qbstore.create(grouped, tmp_path / "g.zarr")
    ref = tmp_path / "ref.zarr"
    qbstore.create(grouped, ref)
    qbstore.write_groups(grouped, ref)
    return grouped, info, ref


def test_staged_tasks_count_only_with_their_entry_and_file(grouped_store, monkeypatch):
    spec, info, _ = grouped_store
    ctx = qbstore.context(spec, info.path)
    tasks = info.group_tasks(0)
    assert list(tasks) == [0, 1, 3, 4]  # (n 0, J2 0-1, J1 0-1) in the task grid (3, 4, 3)
    for t in tasks:
        run_task(int(t), ctx)
    r = store.read_record(info)
    assert r.n_staged == 4 and r.n_done == 0 and not r.group_done.any()
    assert set(r.missing) == set(range(36)) - set(tasks.tolist())
    # a kill between a staging file and its STAGED entry: the file alone does not count
    monkeypatch.setattr(record_mod.Journal, "append", lambda self, *a, **k: None)
    run_task(2, ctx)
    assert (record_mod.staging_dir(info.path) / "2.stage").exists()
    assert not store.read_record(info).staged[2]
    monkeypatch.undo()
    # a STAGED entry whose file is gone does not count
    (record_mod.staging_dir(info.path) / "4.stage").unlink()
    assert not store.read_record(info).staged[4]
    # a damaged staging file is found and deleted at resume (check_staged)
    p = record_mod.staging_dir(info.path) / "3.stage"
    blob = bytearray(p.read_bytes())
    blob[0] ^= 1
    p.write_bytes(bytes(blob))
    r = store.read_record(info)
    assert r.staged[3]
    assert record_mod.check_staged(info, r) == 1
    r = store.read_record(info)
    assert list(np.flatnonzero(r.staged)) == [0, 1]


def test_kill_mid_merge_then_remerge_is_bit_for_bit(grouped_store, monkeypatch):
    spec, info, ref = grouped_store
    ctx = qbstore.context(spec, info.path)
    for t in info.group_tasks(0):
        run_task(int(t), ctx)
    # killed after the chunk files, before the GROUP_DONE entry
    append = record_mod.Journal.append

    def no_group_entry(self, task, kind=record_mod.DONE, *a, **k):
        if kind == record_mod.GROUP_DONE:
            raise KeyboardInterrupt("killed")
        return append(self, task, kind, *a, **k)

    monkeypatch.setattr(record_mod.Journal, "append", no_group_entry)
    with pytest.raises(KeyboardInterrupt):
        merge_task(0, ctx)
    monkeypatch.undo()
    r = store.read_record(info)
    assert not r.group_done[0] and r.n_staged == 4  # staging kept: the group merges again
    # killed after the entry, before the staging files are removed
    monkeypatch.setattr(os, "unlink", lambda *a, **k: None)  # the merge's only unlinks
    merge_task(0, qbstore.context(spec, info.path))
    monkeypatch.undo()
    r = store.read_record(info)
    assert r.group_done[0] and r.n_staged == 0 and r.done[[0, 1, 3, 4]].all()
    assert len(record_mod.staged_files(info)) == 4  # left over
    assert record_mod.check_staged(info, r) == 4
    assert not len(record_mod.staged_files(info))
    qbstore.write_groups(spec, info.path, groups=range(1, info.n_groups))
    assert qbstore.data_files(info.path) == qbstore.data_files(ref)


def test_a_merge_retried_after_its_staging_files_are_gone(grouped_store):
    """A merge whose worker is lost after it recorded the group and removed the staging
    files is retried by Dask: the retry finds the group recorded and does nothing. A group
    never recorded whose staging file is gone is refused, naming the file."""
    spec, info, ref = grouped_store
    ctx = qbstore.context(spec, info.path)
    for t in info.group_tasks(0):
        run_task(int(t), ctx)
    merge_task(0, ctx)
    before = qbstore.tree_state(info.path)
    assert not len(record_mod.staged_files(info))
    merge_task(0, qbstore.context(spec, info.path))  # the retry, on another worker
    assert qbstore.tree_state(info.path) == before
    for t in info.group_tasks(1):
        run_task(int(t), ctx)
    first = int(info.group_tasks(1)[0])
    (record_mod.staging_dir(info.path) / f"{first}.stage").unlink()
    with pytest.raises(store.ChunkError, match="missing staging file"):
        merge_task(1, ctx)
    r = store.read_record(info)
    assert r.group_done[0] and not r.group_done[1]


def test_no_complete_while_a_group_is_unmerged_or_its_chunk_lost(grouped_store):
    spec, info, _ = grouped_store
    ctx = qbstore.context(spec, info.path)
    qbstore.write_groups(spec, info.path, groups=range(info.n_groups - 1))
    last = info.n_groups - 1
    for t in info.group_tasks(last):
        run_task(int(t), ctx)
    r = store.read_record(info)
    assert not r.done.all() and r.n_staged == len(info.group_tasks(last))
    assert not len(r.missing)  # nothing to compute, but a merge to run
    with pytest.raises(RuntimeError, match="tasks are missing"):
        store.write_complete(info, r)
    merge_task(last, ctx)
    r = store.read_record(info)
    store.write_complete(info, r)
    assert qbstore.is_complete(info.path)
    (info.path / "ergotropy_t_max" / "c.1.1.0").unlink()  # group (1, 1, 0)
    r = store.read_record(info)
    lost = store.missing_files(info, r)
    assert list(lost) == list(info.group_tasks(int(np.ravel_multi_index((1, 1, 0, 0),
                                                                         info.group_grid))))
    assert not qbstore.is_complete(info.path)
    assert store.completeness(info.path) == (len(lost), 36, True)


def test_verify_names_every_task_of_a_damaged_group(grouped_store):
    spec, info, _ = grouped_store
    qbstore.write_groups(spec, info.path)
    p = info.path / "energy_max" / "c.2.1.1"
    blob = bytearray(p.read_bytes())
    blob[3] ^= 0xFF
    p.write_bytes(bytes(blob))
    damage = store.verify(info, store.read_record(info))
    group = int(np.ravel_multi_index((2, 1, 1, 0), info.group_grid))
    assert sorted(d.task for d in damage) == list(info.group_tasks(group))
    assert {d.variable for d in damage} == {"energy_max"}


def test_overwrite_accepts_a_grouped_store_with_staging_files(grouped_store):
    spec, info, _ = grouped_store
    ctx = qbstore.context(spec, info.path)
    run_task(0, ctx)
    assert store.check_removable(info.path).grouped
    (record_mod.staging_dir(info.path) / "notes.txt").write_text("x")
    with pytest.raises(store.StoreError, match="staging/notes.txt"):
        store.check_removable(info.path)


def test_reading_a_1e5_task_grouped_record_stays_within_the_ratio_bound(tmp_path):
    """1e5 staged tasks in 4 journals plus a group done entry for each of 1,563 groups of 64:
    read_record costs at most 2000x reading the journals' bytes (the bound of the ungrouped
    test, tests/store/test_record.py) and at most 8x one journal of a quarter of the tasks."""
    import time

    from qbfast.store import StoreLayout, VariableLayout
    from qbfast.store.record import GROUP_DONE, MAGIC, STAGED, crc32c_rows, entry_dtype

    n = 100_000

    def bare(path):
        dims = ("a", "t")
        layout = StoreLayout(dims=dims, shape=(n, 2), chunks=(1, 2),
                             variables=(VariableLayout("e_max", ("a",), "float32"),
                                        VariableLayout("e_t_max", ("a",), "float64")),
                             coords={"a": (np.arange(float(n)), {}), "t": (np.arange(2.0), {})},
                             attrs={}, peak_metrics=("energy",), group=(64, 1))
        store.create(layout, path)
        return store.open_info(path)

    def entries(kind, numbers):
        e = np.zeros(len(numbers), entry_dtype(2, 1))
        e["magic"], e["kind"], e["task"], e["generation"] = MAGIC, kind, numbers, 1
        e["crc"] = numbers[:, None]
        e["peaks"] = 1.0
        raw = e.view(np.uint8).reshape(len(numbers), e.dtype.itemsize)
        e["check"] = crc32c_rows(raw[:, :-4])
        return e.tobytes()

    info = bare(tmp_path / "s.zarr")
    assert info.n_groups == 1563
    jdir = record_mod.journal_dir(info.path)
    for k in range(4):
        blob = entries(STAGED, np.arange(k, n, 4))
        if k == 0:
            blob += entries(GROUP_DONE, np.arange(info.n_groups))
        (jdir / f"g000001-{'a' * 12}-w{k}-1.log").write_bytes(blob)
    record = store.read_record(info)
    assert record.n_done == n and record.n_groups_done == 1563 and record.torn == 0

    def best(f):
        t = np.inf
        for _ in range(5):
            t0 = time.perf_counter()
            f()
            t = min(t, time.perf_counter() - t0)
        return t

    files = sorted(jdir.iterdir())
    t_bytes = best(lambda: [f.read_bytes() for f in files])
    t_record = best(lambda: store.read_record(info))
    one = bare(tmp_path / "one.zarr")
    os.link(files[1], record_mod.journal_dir(one.path) / files[1].name)
    t_one = best(lambda: store.read_record(one))
    assert t_record < 2000 * t_bytes, (t_record, t_bytes)
    assert t_record < 8 * t_one, (t_record, t_one)


def test_info_and_verify_on_a_partial_grouped_store(grouped_store, capsys):
    from qbfast.cli import main

    spec, info, _ = grouped_store
    qbstore.write_groups(spec, info.path, groups=[0, 1])  # 4 + 2 tasks merged
    ctx = qbstore.context(spec, info.path)
    run_task(int(info.group_tasks(2)[0]), ctx)  # 1 task staged
    assert main(["info", str(info.path)]) == 0
    out = capsys.readouterr().out
    assert "qbfast store format 3" in out
    assert ("tasks       6/36 done, 1 more staged (their groups not merged yet) (incomplete)"
            in out)
    assert "groups      (1, 2, 2, 1) tasks per storage chunk (1, 4, 4, 41) (12 groups, 2 " \
           "merged; 1 tasks staged)" in out
    assert main(["verify", str(info.path)]) == 1
    out = capsys.readouterr().out
    assert ("6 of 36 tasks verified, 0 damaged, 29 not computed, 1 staged (their groups not "
            "merged yet)") in out
