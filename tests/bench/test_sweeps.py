"""bench.sweeps on a tiny grid: the repeated runs on one LocalCluster finish and report."""

from __future__ import annotations

import pytest

from bench import sweeps

pytestmark = pytest.mark.slow  # a Dask cluster


def test_qbfast_run_repeats_on_one_cluster(tmp_path):
    spec, best, first, wall, rss = sweeps.qbfast_run(sweeps.spec_text(2e4, reduce=True), "bench",
                                                     tmp_path / "run.zarr", 2, 1, repeats=2)
    assert best.compute_s <= first.compute_s
    assert wall >= first.compute_s > 0
    assert best.evaluations == first.evaluations == spec.n_evaluations
    assert len(rss) == 2 and all(r > 0 for r in rss)
