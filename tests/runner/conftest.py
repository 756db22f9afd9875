"""Fixtures of the runner tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster (2 single-threaded worker processes) and its client, per module."""
    distributed = pytest.importorskip("distributed")
    # ":0": dashboard_address=None still binds port 8787, and warns when it is taken
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c
