"""bench.scale's bookkeeping on small in-process stores: finished tasks are the DONE entries
of an ungrouped store and the STAGED ones of a grouped store (a group's merge entry is not a
task)."""

from __future__ import annotations

import qbstore

from bench import scale
from qbfast.runner.driver import store_layout
from qbfast.runner.spec import parse_spec
from qbfast.runner.tasks import merge_task, run_task
from qbfast.store.record import entry_dtype


def _entry(spec):
    layout = store_layout(spec)
    return entry_dtype(len(layout.variables), len(layout.peak_metrics))


def test_finished_tasks_of_an_ungrouped_store(tmp_path):
    spec = qbstore.small_spec()
    path = tmp_path / "s.zarr"
    qbstore.create(spec, path)
    assert scale._entries(path, _entry(spec)) == 0
    qbstore.write_tasks(spec, path, tasks=[2, 0])
    assert sorted(scale._finished(path, _entry(spec))) == [0, 2]
    assert scale._entries(path, _entry(spec)) == 2


def test_finished_tasks_of_a_grouped_store_count_staged_not_merges(tmp_path):
    spec = parse_spec(qbstore.GROUPABLE_SPEC + qbstore.GROUP, name="grouped")
    path = tmp_path / "g.zarr"
    info = qbstore.create(spec, path)
    ctx = qbstore.context(spec, path)
    group0 = [int(t) for t in info.group_tasks(0)]
    for t in group0 + [2]:
        run_task(t, ctx)
    merge_task(0, ctx)  # a GROUP_DONE entry; the group's tasks were STAGED before
    entry = _entry(spec)
    assert sorted(scale._finished(path, entry)) == sorted(group0 + [2])
    assert scale._entries(path, entry) == len(group0) + 1
    gen = ctx.generation
    assert scale._entries(path, entry, gen) == len(group0) + 1
    assert scale._entries(path, entry, gen + 1) == 0

