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


def test_colour_map_for_many_values(tmp_path):
    ds = qbfast.sweep("cavity", np.linspace(0, 2, 21), J2=np.linspace(0, 2, MAX_LINES + 1))
    ax = plot_metric(ds, "energy", out=tmp_path / "map.png")
    assert len(ax.collections) == 1 and not ax.get_lines()
    assert ax.get_ylabel() == "ZZ anisotropy (in units of Delta)"
    assert (tmp_path / "map.png").stat().st_size > 1000


def test_too_many_dims(cavity_store):
    with pytest.raises(ValueError, match="still has dims J2, n besides t"):
        plot_metric(cavity_store, "energy")
