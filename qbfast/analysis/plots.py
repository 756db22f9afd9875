"""Figures with matplotlib, labelled from the dataset's attrs (long_name [units]).

No pyplot and no global backend: figures are ``matplotlib.figure.Figure`` objects drawn by the
Agg canvas, so this works headless and leaves an interactive session's backend alone (pass
``ax=`` to draw into your own axes).

- ``plot_metric(ds, y, x="t", selection=...)``: one metric against t or a parameter; lines
  for one remaining dimension of at most ``MAX_LINES`` values, a colour map for more.
- ``figures(out_dir, data)``: the paper's Figs. 1 to 5, both battery Hamiltonian accountings
  where they differ, from datasets that :mod:`qbfast.figures` (the interface level: the specs
  ``sweeps/fig*.toml`` through ``qbfast run``'s engine, or in-process) provides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..params import MODELS, TIME
from ._io import check_metric, select
from .extrema import extrema
from .steering import STEERING_BOUND

__all__ = ["plot_metric", "figures", "label", "new_figure", "MAX_LINES"]

MAX_LINES = 12


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.0,
               height: float = 4.0) -> tuple[Figure, np.ndarray]:
    """A Figure on an Agg canvas and its axes as a 2-D array (no pyplot)."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def label(obj: xr.DataArray | xr.Variable, fallback: str = "") -> str:
    """``long_name [units]`` from the attrs (units "1" are dimensionless and omitted)."""
    name = obj.attrs.get("long_name", fallback or getattr(obj, "name", "") or "")
    units = obj.attrs.get("units", "")
    return f"{name} [{units}]" if units and units != "1" else str(name)


def _title(ds: xr.Dataset | xr.DataArray, attrs: Mapping[str, Any]) -> str:
    """Model, protocol and the parameter values that are fixed in the plot."""
    model = attrs.get("model", "")
    parts = [str(model)]
    protocol = attrs.get("protocol", "none")
    if protocol not in ("none", None, ""):
        parts[0] += f" ({protocol})"
    if attrs.get("battery_hamiltonian", "interacting") != "interacting":
        parts[0] += f", {attrs['battery_hamiltonian']} H"
    names = MODELS[model].parameter_names if model in MODELS else ()
    values = []
    for name in names:
        if name in ds.coords and ds[name].ndim == 0:
            values.append(f"{name}={ds[name].values.item():g}")
        elif name in attrs and name not in ds.dims:
            values.append(f"{name}={attrs[name]:g}")
    if TIME.name in ds.coords and ds[TIME.name].ndim == 0:
        values.append(f"t={ds[TIME.name].values.item():g}")
    return ": ".join([parts[0], ", ".join(values)]) if values else parts[0]


def plot_metric(ds: xr.Dataset, y: str, *, x: str = TIME.name,
                selection: Mapping[str, float] | None = None, ax: Axes | None = None,
                out: str | os.PathLike[str] | None = None) -> Axes:
    """Plot metric ``y`` against ``x`` (t or a swept parameter) after a selection.

    ``selection`` picks the nearest grid value per named dimension (values outside the
    coordinates are refused). The dimensions left besides ``x`` must be at most one: one
    line per value if it has at most ``MAX_LINES`` values, a colour map otherwise.
    Writes a PNG to ``out`` if given; returns the Axes.
    """
    if y not in ds.data_vars:
        check_metric(ds, y)  # raises with the list of metrics
    sub = select(ds, selection or {})
    da = sub[y]
    if x not in da.dims:
        dims = ", ".join(map(str, da.dims)) or "none"
        raise ValueError(f"--x {x}: not a dimension of {y} here; dims: {dims}")
    rest = [d for d in da.dims if d != x]
    if len(rest) > 1:
        raise ValueError(f"{y} still has dims {', '.join(map(str, rest))} besides {x}; "
                         f"pick values with --sel NAME=VALUE for all but one")
    da = da.load()
    fig = None
    if ax is None:
        fig, axes = new_figure()
        ax = axes[0, 0]
    if not rest:
        ax.plot(da[x].values, da.values)
    elif da.sizes[rest[0]] <= MAX_LINES:
        hue = rest[0]
        for value in da[hue].values:
            ax.plot(da[x].values, da.sel({hue: value}).values, label=f"{hue} = {value:g}")
        ax.legend(title=label(da[hue], hue), fontsize="small")
    else:
        other = rest[0]
        mesh = ax.pcolormesh(da[x].values, da[other].values, da.transpose(other, x).values,
                             shading="auto")
        ax.figure.colorbar(mesh, ax=ax, label=label(da, y))
        ax.set_ylabel(label(da[other], other))
    ax.set_xlabel(label(da[x], x))
    if len(rest) <= 1 and (not rest or da.sizes[rest[0]] <= MAX_LINES):
        ax.set_ylabel(label(da, y))
    ax.set_title(_title(sub, ds.attrs), fontsize="medium")
    if out is not None:
        ax.figure.savefig(out, dpi=120)
    return ax


# ---------------------------------------------------------------------------------------------
# The paper's figures

FIELD_DRIVES = (("harmonic", 2.0, 0.0), ("static", 0.0, 2.0), ("mixed", 1.0, 2.0))
CAVITY_J2 = (1.0, 0.0)
#: The figure datasets: the specs in sweeps/ (``fig1.toml`` ...) and their bare-accounting
#: variants, which ``figures`` needs; the field figures use g = 0, where both battery
#: Hamiltonians coincide, and purity does not depend on the accounting.
FIGURE_SPECS = ("fig1", "fig2", "fig3", "fig4", "fig5a_field", "fig5b_cavity")
BARE_VARIANTS = ("fig3", "fig4")


def _lines(ax: Axes, ds: xr.Dataset, names: Sequence[str], *, bound: bool = False,
           mark_max: str | None = None) -> None:
    """The metrics ``names`` (those present) of one grid point against t, labelled; optional
    steering bound, and a dotted line at the first local maximum of ``mark_max``."""
    names = [n for n in names if n in ds.data_vars]
    t = ds[TIME.name]
    units = {ds[n].attrs.get("units", "") for n in names}
    for name in names:
        ax.plot(t.values, ds[name].values, label=ds[name].attrs.get("long_name", name))
    if bound:
        ax.axhline(STEERING_BOUND, color="grey", lw=0.8, ls="--", label="steering bound 2")
    if mark_max is not None and mark_max in ds.data_vars:
        tm = float(extrema(ds[mark_max])[f"{mark_max}_t_first_max"])
        if np.isfinite(tm):
            ax.axvline(tm, color="k", lw=0.8, ls=":", label=f"first max of {mark_max}")
    ax.set_xlabel(label(t, TIME.name))
    if len(names) == 1:
        ax.set_ylabel(label(ds[names[0]]))
    elif len(units) == 1:
        (u,) = units
        ax.set_ylabel(f"[{u}]" if u and u != "1" else "")
    ax.legend(fontsize="x-small")
    ax.set_title(_title(ds, ds.attrs), fontsize="small")


def _save(fig: Figure, path: Path, title: str) -> Path:
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return path


def _drives(ds: xr.Dataset) -> list[tuple[str, xr.Dataset]]:
    return [(name, ds.sel(A=a, B=b).load()) for name, a, b in FIELD_DRIVES]


def figures(out_dir: str | os.PathLike[str], data: Mapping[str, xr.Dataset]) -> list[Path]:
    """Write PNGs of the paper's Figs. 1 to 5 into ``out_dir``; returns the paths.

    ``data``: {figure name: Dataset}, the keys ``FIGURE_SPECS`` and ``{name}_bare`` for
    ``BARE_VARIANTS``, as :func:`qbfast.figures.run_figure_specs` or
    :func:`qbfast.figures.figure_datasets` give them. Figs. 3 and 4 come in both battery
    Hamiltonian accountings (``fig3_interacting.png``, ``fig3_bare.png``, ...).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = dict(data)
    paths = []

    fig, axes = new_figure(3, 2, width=5.0, height=3.2)
    for row, (name, ds) in enumerate(_drives(data["fig1"])):
        _lines(axes[row, 0], ds, ["entropy_cell", "steering_ab", "steering_ba"], bound=True,
               mark_max="energy")
        _lines(axes[row, 1], ds, ["energy"], mark_max="energy")
    paths.append(_save(fig, out / "fig1.png", "Fig. 1: field battery, entanglement, steering "
                                             "and stored energy (harmonic, static, mixed drive)"))

    fig, axes = new_figure(1, 3, width=4.5, height=3.5)
    for col, (name, ds) in enumerate(_drives(data["fig2"])):
        _lines(axes[0, col], ds, ["ergotropy", "efficiency"], mark_max="ergotropy")
    paths.append(_save(fig, out / "fig2.png", "Fig. 2: field battery, ergotropy and efficiency"))

    for tag, suffix in (("interacting", ""), ("bare", "_bare")):
        cav = data[f"fig3{suffix}"]
        fig, axes = new_figure(2, 2, width=5.0, height=3.4)
        for row, j2 in enumerate(CAVITY_J2):
            ds = cav.sel(J2=j2).load()
            _lines(axes[row, 0], ds, ["entropy_battery", "steering_ab", "steering_ba"],
                   bound=True, mark_max="energy")
            _lines(axes[row, 1], ds, ["energy"], mark_max="energy")
        paths.append(_save(fig, out / f"fig3_{tag}.png",
                           f"Fig. 3: cavity battery, entanglement, steering and energy "
                           f"({tag} H_b)"))
        cav = data[f"fig4{suffix}"]
        fig, axes = new_figure(1, 2, width=5.0, height=3.5)
        for col, j2 in enumerate(CAVITY_J2):
            _lines(axes[0, col], cav.sel(J2=j2).load(), ["ergotropy", "efficiency"],
                   mark_max="ergotropy")
        paths.append(_save(fig, out / f"fig4_{tag}.png",
                           f"Fig. 4: cavity battery, ergotropy and efficiency ({tag} H_b)"))

    fig, axes = new_figure(1, 2, width=5.5, height=3.8)
    panels = [("(a) field battery", [(name, ds) for name, ds in _drives(data["fig5a_field"])]),
              ("(b) cavity battery, n = 7",
               [(f"J2 = {j2:g}", data["fig5b_cavity"].sel(J2=j2).load()) for j2 in CAVITY_J2])]
    for ax, (title, curves) in zip(axes[0], panels):
        for name, ds in curves:
            for var, style, what in (("purity_battery", "-", "battery"),
                                     ("purity_cell", "--", "cell")):
                if var in ds.data_vars:
                    ax.plot(ds[TIME.name].values, ds[var].values, ls=style,
                            label=f"{name}: {what}")
        ax.set_xlabel(label(curves[0][1][TIME.name]))
        ax.set_ylabel("purity Tr rho^2")
        ax.set_title(title, fontsize="small")
        ax.legend(fontsize="x-small")
    paths.append(_save(fig, out / "fig5.png", "Fig. 5: purity of the battery and of one cell"))
    return paths
