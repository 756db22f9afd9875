"""A store larger than the memory allowed is reduced chunk by chunk.

The store holds 512 MB of float64 (64 chunks of 8 MB) but compresses to a few MB: each row is
a parabolic cap on exact zeros, at a known time. It is reduced twice: on the synchronous
scheduler under tracemalloc (numpy's allocations are traced; the peak stays near one chunk),
and on a one-worker distributed cluster whose memory limit (400 MiB) is below the store size.
"""

from __future__ import annotations

import tracemalloc
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import qbfast
import qbfast.analysis as qa

pytestmark = pytest.mark.slow  # a store bigger than memory, a Dask worker

T = np.linspace(0.0, 10.0, 8000)
ROWS, CHUNK = 8192, 128


def _caps(centers: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - 4.0 * (T[None, :] - centers[:, 0][:, None]) ** 2)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    j2 = np.linspace(0.0, 2.0, ROWS)
    labels = qbfast.sweep("cavity", T[:3], J2=j2[:2], metrics=["energy"])  # attrs and labels
    centers = da.from_array(1.0 + 4.0 * j2, chunks=CHUNK)[:, None]
    energy = centers.map_blocks(_caps, chunks=(CHUNK, T.size), dtype=np.float64)
    ds = xr.Dataset({"energy": (("J2", "t"), energy, labels.energy.attrs)},
                    coords={"J2": ("J2", j2, labels.J2.attrs), "t": ("t", T, labels.t.attrs)},
                    attrs=labels.attrs)
    path = tmp_path_factory.mktemp("big") / "big.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path)
    return path, 1.0 + 4.0 * j2


def test_store_is_bigger_than_the_memory_allowed(big_store):
    ds = qa.open_store(big_store[0])
    assert ds.energy.nbytes == ROWS * T.size * 8 == 524_288_000
    assert len(ds.energy.chunks[0]) == ROWS // CHUNK


def test_synchronous_peak_memory_is_a_few_chunks(big_store):
    path, centers = big_store
    ds = qa.open_store(path)
    qa.extrema(ds.isel(J2=slice(0, 2)), "energy").compute()  # load numba's cache first
    tracemalloc.start()
    try:
        with dask.config.set(scheduler="synchronous"):
            ext = qa.extrema(ds, "energy").compute()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < ds.energy.nbytes / 10  # 52 MB; one chunk is 8 MB
    np.testing.assert_allclose(ext.energy_t_max_refined, centers, atol=1e-9)
    np.testing.assert_allclose(ext.energy_t_first_max_refined, centers, atol=1e-9)
    np.testing.assert_allclose(ext.energy_max_refined, 1.0, atol=1e-12)
    # the sample extrema: within half a grid step
    np.testing.assert_allclose(ext.energy_t_max, centers, atol=0.5 * (T[1] - T[0]) + 1e-12)


def test_distributed_worker_with_small_memory_limit(big_store):
    distributed = pytest.importorskip("distributed")
    path, centers = big_store
    config = {"distributed.worker.memory.pause": False,  # fail loudly rather than hang
              "distributed.worker.memory.spill": False,
              "distributed.worker.memory.target": False}
    with dask.config.set(config), distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, memory_limit="400MiB",
            dashboard_address=":0") as cluster, distributed.Client(cluster):
        ds = qa.open_store(path)
        assert ds.energy.nbytes > 400 * 2**20
        ext = qa.extrema(ds, "energy").compute()
    np.testing.assert_allclose(ext.energy_t_max_refined, centers, atol=1e-9)
