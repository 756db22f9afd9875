"""The steerable region against numpy masks."""

from __future__ import annotations

import numpy as np
import xarray as xr

import qbfast
import qbfast.analysis as qa


def test_masks_fractions_and_per_parameter():
    rng = np.random.default_rng(0)
    ab = 2.0 + rng.normal(scale=0.5, size=(3, 4, 10))
    ab[0, 0] = 2.0 - 1e-14  # rounding noise on the bound is not steering
    ba = ab[:, :, ::-1].copy()
    ds = xr.Dataset({"steering_ab": (("x", "y", "t"), ab), "steering_ba": (("x", "y", "t"), ba)},
                    coords={"x": [0.0, 1.0, 2.0], "y": np.arange(4.0), "t": np.arange(10.0)})
    region = qa.steerable(ds.chunk({"x": 1}))
    either = (ab < 2 - 1e-9) | (ba < 2 - 1e-9)
    np.testing.assert_array_equal(region.either.values, either)
    assert not region.ab.values[0, 0].any()
    np.testing.assert_allclose(region.fraction_ab.values, (ab < 2 - 1e-9).mean(-1))
    np.testing.assert_allclose(region.min_ba.values, ba.min(-1))
    per = qa.steerable_by_parameter(ds)
    np.testing.assert_allclose(per["x"].grid_fraction_either.values, either.mean(axis=(1, 2)))
    np.testing.assert_allclose(per["y"].grid_min_ab.values, ab.min(axis=(0, 2)))


def test_cavity_is_steerable_only_for_one_photon():
    # physics: product states never steer; in the cavity the battery-charger entanglement
    # keeps I >= 2 for n = 7 while n = 1 dips below 2
    t = np.linspace(0.0, 5.0, 201)
    ds = qbfast.sweep("cavity", t, n=[1, 7], J2=[0.0, 1.0], metrics=["steering_ab", "steering_ba"])
    per = qa.steerable_by_parameter(ds)
    assert per["n"].grid_fraction_either.sel(n=1) > 0
    assert per["n"].grid_fraction_either.sel(n=7) == 0
