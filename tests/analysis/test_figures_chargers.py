"""The charger comparison of ``qbfast figures`` (qbfast.figures.write_charger_figure): a real
PNG, and data that are the three chargers at one mean photon number, checked against facts
that do not come from the figure code (docs/chargers.md, physics.md section 7)."""

from __future__ import annotations

import matplotlib.image
import numpy as np

from qbfast.figures import CHARGER_FIGURE, charger_datasets, write_charger_figure


def test_writes_a_png(tmp_path):
    path = write_charger_figure(tmp_path / "figs", n_t=51)
    assert path == tmp_path / "figs" / CHARGER_FIGURE
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 10_000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600


def test_data_are_the_three_chargers_at_one_mean_photon_number():
    data = charger_datasets(n_t=201, nbar=4)
    assert data["fock"].attrs["charger"] == "fock" and int(data["fock"].n) == 4
    for charger in ("coherent", "thermal"):
        assert data[charger].attrs["charger"] == charger and float(data[charger].nbar) == 4.0
    for ds in data.values():
        assert ds.attrs["battery_hamiltonian"] == "bare"
        assert float(np.abs(ds.energy.isel(t=0)).max()) < 1e-12  # rho_B(0) = |gg><gg|
        assert bool((ds.ergotropy <= ds.energy + 1e-12).all())  # W <= E from |gg>
    # J2 = 1, n = 4: the first energy maximum of docs/chargers.md's table (Fock 1.959,
    # coherent 1.650, thermal 1.088 at t ~ 0.84, 0.78, 0.69): Fock > coherent > thermal
    first = {c: float(ds.energy.sel(J2=1.0).sel(t=slice(0, 1.2)).max()) for c, ds in data.items()}
    assert first["fock"] > first["coherent"] > first["thermal"] > 0.5
