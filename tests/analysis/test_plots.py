"""Plots are labelled from the attrs; lines for a few values, a colour map for many."""

from __future__ import annotations

import numpy as np
import pytest

import qbfast
from qbfast.analysis.plots import MAX_LINES, new_figure, plot_metric


def test_lines_labelled_from_attrs(cavity_store):
    ax = cavity_store.qb.plot("energy", selection={"n": 7})
    assert ax.get_xlabel() == "charging time [1/Delta]"
    assert ax.get_ylabel() == "stored energy [Delta]"
    assert len(ax.get_lines()) == 3  # one per J2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["J2 = 0", "J2 = 0.5",
                                                                   "J2 = 1"]
    assert ax.get_title() == "cavity: n=7, J1=1, omega_g=1, omega_a=1, Delta=1"
    np.testing.assert_array_equal(ax.get_lines()[2].get_ydata(),
                                  cavity_store.energy.sel(n=7, J2=1.0).values)


def test_against_a_parameter_and_into_given_axes(cavity_store):
    fig, axes = new_figure()
    ax = plot_metric(cavity_store, "ergotropy", x="J2", selection={"t": 0.6, "n": 1},
                     ax=axes[0, 0])
    assert ax is axes[0, 0]
    assert ax.get_xlabel() == "ZZ anisotropy (in units of Delta)"
    assert "t=0.6" in ax.get_title()


def test_title_names_the_charger_its_parameter_and_the_rates(tmp_path):
    """A dissipative thermal-charger plot says so: the charger, nbar, the rates fixed above 0
    (gamma, fixed at 0, is left out) and a swept rate's selected value, even 0."""
    t = np.linspace(0, 1, 3)
    ds = qbfast.sweep("cavity", t, charger="thermal", nbar=1.0, J2=[0.0, 1.0],
                      gamma_phi=0.1, kappa=0.2, metrics=["energy"])
    out = tmp_path / "thermal.png"
    ax = plot_metric(ds, "energy", selection={"J2": 0.0}, out=out)
    assert ax.get_title() == ("cavity, thermal charger: nbar=1, J1=1, J2=0, omega_g=1, "
                              "omega_a=1,\nDelta=1, gamma_phi=0.1, kappa=0.2")  # TITLE_WIDTH
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    swept = qbfast.sweep("field", t, A=[1.0, 2.0], gamma=[0.0, 0.1], metrics=["energy"])
    title = plot_metric(swept, "energy", selection={"A": 1.0, "gamma": 0.0}).get_title()
    assert title == "field (drive): A=1, B=2, omega=1, g=0, Delta=1, gamma=0"


def test_colour_map_for_many_values(tmp_path):
    ds = qbfast.sweep("cavity", np.linspace(0, 2, 21), J2=np.linspace(0, 2, MAX_LINES + 1))
    ax = plot_metric(ds, "energy", out=tmp_path / "map.png")
    assert len(ax.collections) == 1 and not ax.get_lines()
    assert ax.get_ylabel() == "ZZ anisotropy (in units of Delta)"
    assert (tmp_path / "map.png").stat().st_size > 1000


def test_too_many_dims(cavity_store):
    with pytest.raises(ValueError, match="still has dims J2, n besides t"):
        plot_metric(cavity_store, "energy")


# --- the paper's figures -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def paper_figures():
    from qbfast.analysis.plots import draw_figures
    from qbfast.figures import figure_datasets

    data = figure_datasets(n_t=201)
    return data, draw_figures(data)


def test_every_figure_has_finite_axis_ranges(paper_figures):
    _, figs = paper_figures
    assert sorted(figs) == ["fig1", "fig2", "fig3_bare", "fig3_interacting", "fig4_bare",
                            "fig4_interacting", "fig5"]
    for stem, fig in figs.items():
        for ax in fig.axes:
            assert np.isfinite(ax.get_xlim()).all() and np.isfinite(ax.get_ylim()).all(), stem
            assert ax.get_lines(), stem


def test_efficiency_is_masked_by_the_stated_rule_on_a_bounded_axis(paper_figures):
    from qbfast.analysis.plots import ENERGY_MASK_FRACTION

    data, figs = paper_figures
    seen = 0
    for stem in ("fig2", "fig4_interacting", "fig4_bare"):
        eff_axes = [ax for ax in figs[stem].axes
                    if ax.get_ylabel().startswith("ergotropy / energy")]
        assert eff_axes, stem
        for ax in eff_axes:
            lo, hi = ax.get_ylim()
            assert -1.0 < lo <= 0.0 and 1.0 < hi < 1e3, (stem, lo, hi)  # 1e5 spikes unmasked
            (line,) = [ln for ln in ax.get_lines() if "where energy" in ln.get_label()]
            y = np.asarray(line.get_ydata(), dtype=float)
            assert np.isfinite(y).any()
            seen += 1
    assert seen == 3 + 2 + 2
    # the rule itself, on one curve: finite exactly where energy >= fraction * max energy
    ds = data["fig4"].sel(J2=0.0)
    ax = [a for a in figs["fig4_interacting"].axes
          if a.get_ylabel().startswith("ergotropy / energy")][1]
    y = np.asarray(ax.get_lines()[0].get_ydata(), dtype=float)
    keep = ds.energy.values >= ENERGY_MASK_FRACTION * ds.energy.values.max()
    np.testing.assert_array_equal(np.isfinite(y), keep & np.isfinite(ds.efficiency.values))
    assert not keep.all()  # the mask does remove the 0/0 stretches
    assert np.nanmax(ds.efficiency.values) > np.nanmax(y)  # and there the largest ratios


def test_fig5a_shows_the_dephased_cell_of_eq_18(paper_figures):
    data, figs = paper_figures
    ax = figs["fig5"].axes[0]
    t = data["fig5a_field"].t.values
    dephased = {ln.get_label(): np.asarray(ln.get_ydata()) for ln in ax.get_lines()
                if "dephased cell (eq. 18 state)" in ln.get_label()}
    assert len(dephased) == 3
    for (name, a, b), (label_text, y) in zip((("harmonic", 2.0, 0.0), ("static", 0.0, 2.0),
                                              ("mixed", 1.0, 2.0)), dephased.items()):
        assert name in label_text
        a1 = (b * t + a * np.sin(t)) / 2  # omega = 1 (physics.md section 2)
        np.testing.assert_allclose(y, (1 + np.cos(2 * a1) ** 2) / 2, atol=1e-9)
    pure = [ln for ln in ax.get_lines() if "every drive" in ln.get_label()]
    assert len(pure) == 2
    for ln in pure:
        np.testing.assert_allclose(ln.get_ydata(), 1.0, atol=1e-12)


def test_binary_entropy_inverse_round_trip():
    from qbfast.analysis.plots import binary_entropy_inverse

    p = np.random.default_rng(3).uniform(0, 0.5, 1000)
    h = -p * np.log2(p) - (1 - p) * np.log2(1 - p)
    np.testing.assert_allclose(binary_entropy_inverse(h), p, atol=1e-7)
    assert binary_entropy_inverse(np.array([0.0]))[0] < 1e-15
    assert binary_entropy_inverse(np.array([1.0]))[0] == pytest.approx(0.5)
