"""bench.limits: the store-only kernel writes every element it claims to, and a tiny run works."""

from __future__ import annotations

import numpy as np
import pytest

from bench import limits


@pytest.mark.slow  # big output rows
@pytest.mark.parametrize("non_temporal", [False, True])
@pytest.mark.parametrize("n_t", [1000, 1003])  # partial last block; rows off 64-byte lines
def test_store_only_writes_every_metric_row_in_full(non_temporal, n_t):
    t = np.linspace(0.0, 1.0, n_t)
    out = np.full((15, 3, t.size), np.nan)
    limits.store_only(out, t, 2, non_temporal)
    expected = t[None, None, :] + np.arange(15)[:, None, None]
    np.testing.assert_array_equal(out, np.broadcast_to(expected, out.shape))


@pytest.mark.slow  # compiles and times the limits
def test_measure_runs_on_a_tiny_grid():
    for model in ("cavity", "drive"):
        rates = limits.measure(model, 16, 300, 1, 1)
        assert set(rates) == {"kernel", "compute only", "store ceiling", "no overlap",
                              "NT ceiling"}
        assert all(np.isfinite(v) and v > 0 for v in rates.values())
        assert rates["no overlap"] < min(rates["compute only"], rates["store ceiling"])
