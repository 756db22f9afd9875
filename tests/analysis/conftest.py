"""Stores shared by the analysis tests: qbfast.sweep datasets written to Zarr in several chunks
and opened lazily with xr.open_zarr, as ``qbfast run`` leaves them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import qbfast

T_CAVITY = np.linspace(0.0, 5.0, 501)
T_FIELD = np.linspace(0.0, 10.0, 1001)


def write_store(ds: xr.Dataset, path, chunks: dict[str, int]) -> xr.Dataset:
    """Write ``ds`` chunked as given and reopen it lazily (dask-backed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: consolidated metadata is not in the v3 spec
        ds.chunk(chunks).to_zarr(path, mode="w")
    return xr.open_zarr(path)


@pytest.fixture(scope="session")
def cavity_path(tmp_path_factory):
    """Fig. 3 parameters (n = 7, omega_g = J1 = Delta = omega_a = 1), J2 in {0, 0.5, 1} and
    n in {1, 7}, t in [0, 5]; one chunk per J2 value."""
    ds = qbfast.sweep("cavity", T_CAVITY, J2=[0.0, 0.5, 1.0], n=[1, 7])
    path = tmp_path_factory.mktemp("stores") / "cavity.zarr"
    write_store(ds, path, {"J2": 1, "n": 2})
    return path


@pytest.fixture
def cavity_store(cavity_path):
    return xr.open_zarr(cavity_path)


@pytest.fixture(scope="session")
def field_path(tmp_path_factory):
    """The paper's three field drives (A, B) in {0, 1, 2} x {0, 2}, Delta = omega = 1."""
    ds = qbfast.sweep("field", T_FIELD, A=[0.0, 1.0, 2.0], B=[0.0, 2.0])
    path = tmp_path_factory.mktemp("stores") / "field.zarr"
    write_store(ds, path, {"A": 1, "B": 1})
    return path


@pytest.fixture
def field_store(field_path):
    return xr.open_zarr(field_path)


@pytest.fixture
def writer():
    """``write_store`` for tests that build their own stores."""
    return write_store
