"""The work of one task, in this process: its block of the grid, its shapes and peaks, block
sizes that do not change the bits, and the refusals before anything is written (other kernel
code, a store created again at the same path)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import qbstore

import qbfast
from qbfast import store
from qbfast.runner.spec import parse_spec
from qbfast.runner.tasks import compute_block, flush, run_task

SPEC = qbstore.SMALL_SPEC  # 3 tasks: J2 rows 0-2, 3-5, 6


@pytest.fixture
def spec():
    return qbstore.small_spec()


def test_task_numbers_slices_and_evaluations(tmp_path, spec):
    qbstore.create(spec, tmp_path / "s.zarr")
    ctx = qbstore.context(spec, tmp_path / "s.zarr")
    assert ctx.chunk_grid == (1, 3, 1)
    assert [ctx.slices(t) for t in range(3)] == [
        (slice(0, 2), slice(j, min(j + 3, 7)), slice(0, 51)) for j in (0, 3, 6)]
    assert [ctx.evaluations(t) for t in range(3)] == [2 * 3 * 51, 2 * 3 * 51, 2 * 1 * 51]
    assert sum(ctx.evaluations(t) for t in range(3)) == spec.n_evaluations


def test_compute_block_shapes_values_and_peaks(spec):
    data, peaks = compute_block(spec, (slice(0, 2), slice(6, 7), slice(0, 51)))
    assert data["energy"].shape == (2, 1, 51) and data["energy"].dtype == np.float64
    g = spec.grid
    ref = qbfast.sweep("cavity", g.t, metrics=list(g.metrics), n=[1, 3], J2=g.swept["J2"][6:],
                       omega_g=0.8)
    for m in g.metrics:
        np.testing.assert_array_equal(data[m], ref[m].values)
    assert peaks.shape == (2, 2)  # energy and ergotropy: value, flat index in the full grid
    e = ref.energy.values
    k = int(np.argmax(e))
    i, _, it = np.unravel_index(k, e.shape)
    assert peaks[0, 0] == e.max()
    assert peaks[0, 1] == np.ravel_multi_index((i, 6, it), spec.shape)


def test_reduce_blocks_do_not_change_the_results():
    """[reduce] alone computes a task in blocks of bounded memory: any block size (down to
    one parameter point) gives the same bits, peaks included, as one block; and the same as
    reducing the kept series."""
    text = SPEC.replace("J2 = 3\n", "J2 = 4\n") + (
        '[reduce]\nstats = ["max", "argmax", "min", "argmin", "first_max"]\n')
    spec = parse_spec(text, name="blocks")
    assert spec.n_chunks == 2
    row = 8 * len(spec.grid.metrics) * spec.grid.t.size
    kept = parse_spec(text + "keep_series = true\n", name="kept")
    for j in (0, 4):
        slices = (slice(0, 2), slice(j, min(j + 4, 7)), slice(0, 51))
        whole, whole_peaks = compute_block(spec, slices, block_bytes=1 << 30)
        for rows in (1, 2, 3, 5):
            data, peaks = compute_block(spec, slices, block_bytes=rows * row)
            assert data.keys() == whole.keys()
            for k in data:
                np.testing.assert_array_equal(data[k], whole[k])
            np.testing.assert_array_equal(peaks, whole_peaks)
        series, series_peaks = compute_block(kept, slices)
        for k in whole:
            np.testing.assert_array_equal(whole[k], series[k])
        np.testing.assert_array_equal(whole_peaks, series_peaks)


def test_worker_with_other_kernels_writes_nothing(tmp_path, spec):
    path = tmp_path / "s.zarr"
    qbstore.create(spec, path)
    before = qbstore.tree_state(path)
    ctx = qbstore.context(spec, path, kernels="0" * 64)
    with pytest.raises(RuntimeError, match="differ from the store's"):
        run_task(0, ctx)
    assert qbstore.tree_state(path) == before


def test_task_of_a_store_created_again_writes_nothing(tmp_path, spec):
    """A task of a run planned on a store that has since been removed and created again at
    the same path (another store id) is refused; nothing is written in the new store."""
    path = tmp_path / "s.zarr"
    qbstore.create(spec, path)
    old = qbstore.context(spec, path, run_id="aaaaaaaaaaaa")
    store.remove(path)
    qbstore.create(spec, path)
    before = qbstore.tree_state(path)
    with pytest.raises(store.StoreChangedError, match="not the one this run was given"):
        run_task(0, dataclasses.replace(old, run_id="bbbbbbbbbbbb"))
    assert qbstore.tree_state(path) == before


def test_writer_opened_before_a_recreation_follows_the_old_directory(tmp_path, spec):
    """A worker that opened the store's writer (directory descriptors), then the store is
    removed and created again: its later writes never land in the new store."""
    path = tmp_path / "s.zarr"
    qbstore.create(spec, path)
    ctx = qbstore.context(spec, path, run_id="cccccccccccc")
    run_task(0, ctx)  # opens and keeps the writer
    flush(ctx.run_id)  # task 0 recorded (its run ended)
    store.remove(path)
    qbstore.create(spec, path)
    before = qbstore.tree_state(path)
    try:
        run_task(1, ctx)  # the old directory is gone: fails, or writes into the unlinked one
        flush(ctx.run_id)
    except (OSError, store.StoreError):
        pass
    assert qbstore.tree_state(path) == before
    assert qbstore.n_recorded(path) == 0
