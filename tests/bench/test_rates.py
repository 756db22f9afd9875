"""bench.rates: the grids it times are of the kernel and metrics it names; a tiny run prints
the RATES lines."""

from __future__ import annotations

import pytest

from bench import rates
from qbfast.runner.plan import RATES


@pytest.mark.parametrize("kernel", rates.CLOSED_KERNELS)
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


@pytest.mark.parametrize("kernel", rates.OPEN_KERNELS)
def test_open_kernels_have_cases_and_rates(kernel):
    """Each open kernel is timed on a case of its own route, and planned from its own entry."""
    from bench.open import rate_case

    case = rate_case(kernel)
    assert case.route == kernel
    table = case.table(rates.OPEN_GRIDS[kernel][0])
    assert table.shape[1] == len(case.columns)
    assert (kernel, True) in RATES and (kernel, False) in RATES


def test_tiny_open_run_prints_the_table(capsys):
    rates.main(["--kernels", "open_cavity", "--metrics", "2", "--min-time", "0.001",
                "--repeats", "1"])
    out = capsys.readouterr().out
    assert "('open_cavity', True): {2: " in out and "('open_cavity', False): {2: " in out
