"""``qbfast figures`` from specs: the figure specs run through ``qbfast run``'s engine into
stores, bare variants of Figs. 3 and 4 included, and every figure is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbfast.figures import BARE_VARIANTS, FIGURE_SPECS, run_figure_specs, write_figures

REPO_SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"

FIELD = """model = "field"
protocol = "drive"
metrics = {metrics}
[params]
A = [0.0, 1.0, 2.0]
B = [0.0, 2.0]
t = {{ start = 0.0, stop = 10.0, num = 101 }}
"""
CAVITY = """model = "cavity"
metrics = {metrics}
[params]
J2 = [1.0, 0.0]
n = 7
t = {{ start = 0.0, stop = 5.0, num = 101 }}
"""
SMALL = {
    "fig1": FIELD.format(metrics='["entropy_cell", "steering_ab", "steering_ba", "energy"]'),
    "fig2": FIELD.format(metrics='["ergotropy", "efficiency"]'),
    "fig3": CAVITY.format(metrics='["entropy_battery", "steering_ab", "steering_ba", "energy"]'),
    "fig4": CAVITY.format(metrics='["ergotropy", "efficiency"]'),
    "fig5a_field": FIELD.format(metrics='["purity_battery", "purity_cell", "entropy_diag_cell"]'),
    "fig5b_cavity": CAVITY.format(metrics='["purity_battery"]'),
}


def test_the_repository_has_every_figure_spec():
    if not REPO_SWEEPS.is_dir():
        pytest.skip("no sweeps/ directory next to the tests")
    for name in FIGURE_SPECS:
        assert (REPO_SWEEPS / f"{name}.toml").is_file(), name


@pytest.mark.slow  # every figure spec through the engine
def test_figures_from_specs_through_the_engine(tmp_path):
    distributed = pytest.importorskip("distributed")
    specs = tmp_path / "specs"
    specs.mkdir()
    for name, text in SMALL.items():
        (specs / f"{name}.toml").write_text(text)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        data = run_figure_specs(specs, tmp_path / "stores", client)
    assert set(data) == set(FIGURE_SPECS) | {f"{n}_bare" for n in BARE_VARIANTS}
    assert data["fig3_bare"].attrs["battery_hamiltonian"] == "bare"
    assert data["fig3"].attrs["battery_hamiltonian"] == "interacting"
    assert data["fig3"].energy.chunks is not None  # opened lazily from the store
    paths = write_figures(tmp_path / "figs", data, n_t=51)
    assert len(paths) == 8  # Figs. 1-5 (3 and 4 in both accountings) and the chargers
    for p in paths:
        assert p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 1000


def test_missing_spec_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="fig1.toml'?: no such file"):
        run_figure_specs(tmp_path, tmp_path / "stores")
