"""bench.rates: the grids it times are of the kernel and metrics it names; a tiny run prints
the RATES lines."""

from __future__ import annotations

import pytest

from bench import rates
from qbfast.runner.plan import RATES


@pytest.mark.parametrize("kernel", rates.KERNELS)
@pytest.mark.parametrize("k", [1, 2, 15])
def test_grids_are_of_the_kernel_and_metrics_named(kernel, k):
    grid = rates.grid_for(kernel, k, 64, 10)
    assert grid.kernel == kernel
    assert grid.metrics == tuple(rates.METRIC_NAMES[:k])
    assert grid.n_points == 64 and grid.t.size == 10
    assert (kernel, True) in RATES and (kernel, False) in RATES


def test_tiny_run_prints_the_table(capsys):
    rates.main(["--kernels", "cavity", "--metrics", "1", "--min-time", "0.001", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "('cavity', True): {1: " in out and "('cavity', False): {1: " in out
