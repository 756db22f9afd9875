"""The open-battery maps of ``qbfast figures`` (qbfast.figures.open_maps_datasets and
write_open_maps): the maps are the t-extrema of the sweeps they claim to be, their rate-0
corner is the closed model's, dephasing and decay lower the maximum ergotropy, and the PNG is
written."""

from __future__ import annotations

import numpy as np

import qbfast
from qbfast.figures import OPEN_MAP_MODELS, open_maps_datasets, write_open_maps


def test_open_maps_are_the_extrema_of_their_sweeps_and_the_png_is_written(tmp_path):
    data = open_maps_datasets(n_rates=3, n_t=41)
    assert set(data) == {"field", "cavity"}
    t = np.linspace(0.0, 10.0, 41)
    for model, ds in data.items():
        assert ds.ergotropy_max.dims == ("gamma_phi", "gamma")
        closed = qbfast.sweep(model, t, metrics=["ergotropy", "steering_ab"],
                              **OPEN_MAP_MODELS[model])
        corner = ds.sel(gamma_phi=0.0, gamma=0.0)
        assert float(corner.ergotropy_max) == float(closed.ergotropy.max())
        assert float(corner.steering_ab_min) == float(closed.steering_ab.min())
        one = qbfast.sweep(model, t, metrics=["ergotropy"], gamma_phi=0.5, gamma=1.0,
                           **OPEN_MAP_MODELS[model])
        assert float(ds.ergotropy_max.sel(gamma_phi=0.5, gamma=1.0)) == float(
            one.ergotropy.max())
        assert float(ds.ergotropy_max.sel(gamma_phi=1.0, gamma=1.0)) < float(
            corner.ergotropy_max)
    path = write_open_maps(tmp_path / "figs", data)
    assert path.name == "open_maps.png"
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 10_000
