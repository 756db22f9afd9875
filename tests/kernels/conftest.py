"""Fixtures of the kernel tests."""

from __future__ import annotations

import pytest

from qbfast.kernels.grid import ROUTES


@pytest.fixture(params=tuple(ROUTES))
def route(request: pytest.FixtureRequest) -> str:
    """Every block route of the grid kernels ("auto", "staged", "fused"), as flox runs its
    tests on every engine: a test taking ``route`` runs once per route and checks its numbers
    against a route-independent expectation."""
    return request.param
