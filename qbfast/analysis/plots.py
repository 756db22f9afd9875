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
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

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


#: Characters per line of a plot's title (an open, thermal-charger title runs to two lines).
TITLE_WIDTH = 72


def _title(ds: xr.Dataset | xr.DataArray, attrs: Mapping[str, Any]) -> str:
    """Model, protocol, charger (if not the default) and the parameter values that are fixed
    in the plot: the charger's own parameter included, and the rates selected from a sweep or
    fixed above 0 (a rate fixed at 0, closed dynamics, is left out)."""
    model = attrs.get("model", "")
    parts = [str(model)]
    protocol = attrs.get("protocol", "none")
    if protocol not in ("none", None, ""):
        parts[0] += f" ({protocol})"
    charger = attrs.get("charger")
    spec = MODELS.get(model)
    if spec is not None and spec.chargers and charger and charger != spec.default_charger:
        parts[0] += f", {charger} charger"
    if attrs.get("battery_hamiltonian", "interacting") != "interacting":
        parts[0] += f", {attrs['battery_hamiltonian']} H"
    names = (tuple(p.name for p in spec.parameters_for(charger if spec.chargers else None))
             if spec is not None else ())
    rates = spec.rate_names if spec is not None else ()
    values = []
    for name in names:
        if name in ds.coords and ds[name].ndim == 0:
            values.append(f"{name}={ds[name].values.item():g}")
        elif name in attrs and name not in ds.dims and (name not in rates or attrs[name] != 0):
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
    if ax is None:
        _, axes = new_figure()
        ax = axes[0, 0]
    if not rest:
        ax.plot(da[x].values, da.values)
    elif da.sizes[rest[0]] <= MAX_LINES:
        hue = str(rest[0])
        for value in da[hue].values:
            ax.plot(da[x].values, da.sel({hue: value}).values, label=f"{hue} = {value:g}")
        ax.legend(title=label(da[hue], hue), fontsize="small")
    else:
        other = str(rest[0])
        mesh = ax.pcolormesh(da[x].values, da[other].values, da.transpose(other, x).values,
                             shading="auto")
        ax.figure.colorbar(mesh, ax=ax, label=label(da, y))
        ax.set_ylabel(label(da[other], other))
    ax.set_xlabel(label(da[x], x))
    if len(rest) <= 1 and (not rest or da.sizes[rest[0]] <= MAX_LINES):
        ax.set_ylabel(label(da, y))
    ax.set_title(textwrap.fill(_title(sub, ds.attrs), TITLE_WIDTH), fontsize="medium")
    if out is not None:
        root = ax.get_figure(root=True)
        assert root is not None  # an Axes always belongs to a Figure
        root.savefig(out, dpi=120)
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


#: Fig. 2 and 4 show the efficiency (ergotropy / energy) only where the energy is at least
#: this fraction of its maximum over t of the same curve: below it the ratio is 0/0-like
#: (both vanish at the returns to |gg>) and spikes to 1e5 without meaning anything.
ENERGY_MASK_FRACTION = 0.05
#: Natural value ranges of the metrics whose curves may be flat (drawn on that range, so
#: that a constant 0 or 1 reads as such and not as rounding noise blown up).
METRIC_RANGES = {"entropy_cell": (0.0, 1.0), "entropy_battery": (0.0, 2.0),
                 "purity_battery": (0.25, 1.0), "purity_cell": (0.5, 1.0)}
#: Ticks of the efficiency's symlog axis (those inside its range).
EFFICIENCY_TICKS = (-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
                    200.0, 500.0)
STEERING_STYLES = (("steering_ab", "-", 1.6), ("steering_ba", "--", 1.6))


def binary_entropy_inverse(h: np.ndarray) -> np.ndarray:
    """p in [0, 1/2] with h2(p) = -p log2 p - (1-p) log2 (1-p) = h, by bisection (60 halvings:
    to double precision); h is clipped to [0, 1]."""
    h = np.clip(np.asarray(h, dtype=np.float64), 0.0, 1.0)
    lo, hi = np.zeros_like(h), np.full_like(h, 0.5)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.nan_to_num(-mid * np.log2(mid) - (1 - mid) * np.log2(1 - mid))
        below = value < h
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def dephased_cell_purity(entropy_diag_cell: xr.DataArray) -> xr.DataArray:
    """Purity of cell 1 dephased in the sigma_z basis: the paper's eq. 18 state, which drops
    the coherences of rho_1 (physics.md section 6, misprint 6).

    With p the excited population, Tr rho_diag^2 = p^2 + (1 - p)^2; p (or 1 - p: the purity
    is symmetric) comes from the population entropy h2(p) = ``entropy_diag_cell`` (eq. 19).
    """
    p = xr.apply_ufunc(binary_entropy_inverse, entropy_diag_cell, dask="parallelized",
                       output_dtypes=[np.float64])
    out = p**2 + (1 - p) ** 2
    return out.assign_attrs(long_name="purity of the dephased cell 1 (paper's eq. 18 state)",
                            units="1")


def masked_efficiency(ds: xr.Dataset, fraction: float = ENERGY_MASK_FRACTION) -> xr.DataArray:
    """``ds.efficiency`` where ``ds.energy >= fraction * max_t energy``, NaN elsewhere."""
    energy = ds["energy"]
    keep = energy >= fraction * energy.max(TIME.name)
    return ds["efficiency"].where(keep).assign_attrs(ds["efficiency"].attrs)


def _first_max_time(ds: xr.Dataset, name: str) -> float:
    """Refined time of the first local maximum of ``name`` (NaN if none)."""
    return float(extrema(ds[name])[f"{name}_t_first_max_refined"])


def _mark(ax: Axes, t_mark: float, what: str) -> None:
    if np.isfinite(t_mark):
        ax.axvline(t_mark, color="k", lw=0.8, ls=":", label=f"first max of {what}")


def _panel(ax: Axes, ds: xr.Dataset, name: str, *, t_mark: float = np.nan,
           mark_of: str = "energy", values: xr.DataArray | None = None,
           style: str = "-", label_text: str | None = None) -> None:
    """One metric of one grid point against t on its own axes, labelled from its attrs."""
    da = ds[name] if values is None else values
    t = ds[TIME.name]
    ax.plot(t.values, da.values, ls=style, label=label_text or da.attrs.get("long_name", name))
    _mark(ax, t_mark, mark_of)
    if name in METRIC_RANGES:
        lo, hi = METRIC_RANGES[name]
        pad = 0.04 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(label(t, TIME.name))
    ax.set_ylabel(label(da, name), fontsize="small")
    ax.legend(fontsize="x-small")


def _steering_panel(ax: Axes, ds: xr.Dataset, t_mark: float) -> None:
    """I_ab (solid) and I_ba (dashed, so that equal curves both show) and the bound 2."""
    t = ds[TIME.name].values
    for name, style, width in STEERING_STYLES:
        if name in ds.data_vars:
            ax.plot(t, ds[name].values, ls=style, lw=width,
                    label=ds[name].attrs.get("long_name", name))
    ax.axhline(STEERING_BOUND, color="grey", lw=0.8, ls="-.",
               label="steering bound 2 (steerable below)")
    _mark(ax, t_mark, "energy")
    ax.set_xlabel(label(ds[TIME.name], TIME.name))
    ax.set_ylabel("entropic steering sum [bit]")
    ax.legend(fontsize="x-small")


def _efficiency_panel(ax: Axes, ds: xr.Dataset, t_mark: float) -> None:
    """The masked efficiency on a bounded axis (``ENERGY_MASK_FRACTION``)."""
    eff = masked_efficiency(ds)
    _panel(ax, ds, "efficiency", t_mark=t_mark, mark_of="ergotropy", values=eff,
           label_text=f"ergotropy / energy where energy >= {ENERGY_MASK_FRACTION:g} max energy")
    finite = eff.values[np.isfinite(eff.values)]
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = max(1.0, float(finite.max())) if finite.size else 1.0
    # linear up to 1 (the efficiency of a pure charged state), logarithmic above: the ratio
    # exceeds 1 where the initial state already holds ergotropy and the energy is small
    ax.set_yscale("symlog", linthresh=1.0, linscale=1.0)
    ax.set_ylim(lo - 0.05, 1.3 * hi)
    ticks = [v for v in EFFICIENCY_TICKS if lo - 0.05 <= v <= 1.3 * hi]
    ax.set_yticks(ticks, [f"{v:g}" for v in ticks])
    ax.yaxis.set_minor_locator(NullLocator())


def _caption(fig: Figure, text: str) -> None:
    fig.text(0.01, 0.0, text, ha="left", va="top", fontsize="small", wrap=True)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _drives(ds: xr.Dataset) -> list[tuple[str, xr.Dataset]]:
    return [(f"{name} drive (A={a:g}, B={b:g})", ds.sel(A=a, B=b).load())
            for name, a, b in FIELD_DRIVES]


def _cavity(ds: xr.Dataset) -> list[tuple[str, xr.Dataset]]:
    return [(f"J2 = {j2:g}", ds.sel(J2=j2).load()) for j2 in CAVITY_J2]


def _with_energy(ds: xr.Dataset, companion: xr.Dataset | None) -> xr.Dataset:
    """``ds`` with an ``energy`` variable (for the efficiency mask), taken from a dataset of
    the same grid (Fig. 1 for Fig. 2, Fig. 3 for Fig. 4) when ``ds`` lacks it."""
    if "energy" in ds.data_vars:
        return ds
    if companion is None or "energy" not in companion.data_vars:
        raise ValueError("figures: the efficiency mask needs 'energy' in the dataset of "
                         "Fig. 2 / Fig. 4 or of Fig. 1 / Fig. 3 (same grid)")
    return ds.assign(energy=companion["energy"])


def _entanglement_rows(axes: np.ndarray, cases: list[tuple[str, xr.Dataset]],
                       entropy: str) -> None:
    for row, (_case, ds) in enumerate(cases):
        tm = _first_max_time(ds, "energy")
        _panel(axes[row, 0], ds, entropy, t_mark=tm)
        _steering_panel(axes[row, 1], ds, tm)
        _panel(axes[row, 2], ds, "energy", t_mark=tm)
        axes[row, 0].set_title(f"{_title(ds, ds.attrs)}", fontsize="small", loc="left")


def _ergotropy_columns(axes: np.ndarray, cases: list[tuple[str, xr.Dataset]]) -> None:
    for col, (_case, ds) in enumerate(cases):
        tm = _first_max_time(ds, "ergotropy")
        _panel(axes[0, col], ds, "ergotropy", t_mark=tm, mark_of="ergotropy")
        _efficiency_panel(axes[1, col], ds, tm)
        axes[0, col].set_title(_title(ds, ds.attrs), fontsize="small")


MASK_RULE = (f"The efficiency (ergotropy / energy) is drawn only where the energy is at "
             f"least {ENERGY_MASK_FRACTION:g} of its maximum over t on that curve: near the "
             f"zeros of the energy the ratio is 0/0-like and spikes without meaning. Its "
             f"axis is linear up to 1 and logarithmic above (symlog).")


def draw_figures(data: Mapping[str, xr.Dataset]) -> dict[str, Figure]:
    """The paper's Figs. 1 to 5 as matplotlib Figures, by file stem (``fig1``,
    ``fig3_interacting``, ...); ``data`` as for :func:`figures`."""
    out: dict[str, Figure] = {}

    fig, axes = new_figure(3, 3, width=4.6, height=3.0)
    _entanglement_rows(axes, _drives(data["fig1"]), "entropy_cell")
    fig.suptitle("Fig. 1: field battery: entanglement of the cells, steering, stored energy "
                 "(harmonic, static, mixed drive)")
    _caption(fig, "Rows: the three drives. The entropy of cell 1 is 0 at all t: the field "
                  "model's state is the product |phi>|phi> (no entanglement). I_ab = I_ba "
                  "here (dashed over solid); both stay >= 2, so neither cell steers the other. "
                  "Dotted: the first maximum of the stored energy.")
    out["fig1"] = fig

    fig, axes = new_figure(2, 3, width=4.6, height=3.0)
    field = _with_energy(data["fig2"], data.get("fig1"))
    _ergotropy_columns(axes, _drives(field))
    fig.suptitle("Fig. 2: field battery: ergotropy and efficiency")
    _caption(fig, MASK_RULE + " Columns: the three drives; with g = 0 the state is pure and "
                              "every bit of stored energy is ergotropy, so the efficiency is 1. "
                              "Dotted: the first maximum of the ergotropy.")
    out["fig2"] = fig

    for tag, suffix in (("interacting", ""), ("bare", "_bare")):
        fig, axes = new_figure(2, 3, width=4.6, height=3.0)
        _entanglement_rows(axes, _cavity(data[f"fig3{suffix}"]), "entropy_battery")
        fig.suptitle(f"Fig. 3: cavity battery (n = 7): charger-battery entanglement, steering, "
                     f"stored energy ({tag} H_b accounting)")
        _caption(fig, "Rows: J2 = 1 and J2 = 0. Left: von Neumann entropy of the battery "
                      "(its entanglement with the cavity). Dotted: the first maximum of the "
                      "stored energy.")
        out[f"fig3_{tag}"] = fig
        fig, axes = new_figure(2, 2, width=5.0, height=3.0)
        cav = _with_energy(data[f"fig4{suffix}"], data.get(f"fig3{suffix}"))
        _ergotropy_columns(axes, _cavity(cav))
        fig.suptitle(f"Fig. 4: cavity battery (n = 7): ergotropy and efficiency ({tag} H_b "
                     f"accounting)")
        why = (" Under the interacting H_b the initial |gg> already holds ergotropy "
               "Delta (2 J1 + 2 J2 - 1) (the singlet lies below it), so the ratio exceeds 1."
               if tag == "interacting" else "")
        _caption(fig, MASK_RULE + " Columns: J2 = 1 and J2 = 0." + why + " Dotted: the first "
                                  "maximum of the ergotropy.")
        out[f"fig4_{tag}"] = fig

    out["fig5"] = _purity_figure(data["fig5a_field"], data["fig5b_cavity"])
    return out


def _purity_figure(field: xr.Dataset, cavity: xr.Dataset) -> Figure:
    cells = "purity_cell" in cavity.data_vars
    fig, axes = new_figure(1, 3 if cells else 2, width=4.6, height=3.4)
    ax = axes[0, 0]
    drives = _drives(field)
    t = field[TIME.name].values
    first = drives[0][1]
    for var, style in (("purity_battery", "-"), ("purity_cell", "--")):
        if var in first.data_vars:  # 1 for every drive: drawn once
            ax.plot(t, first[var].values, ls=style, color="k", lw=1.2,
                    label=f"{first[var].attrs.get('long_name', var)} (every drive)")
    if "entropy_diag_cell" in field.data_vars:
        for name, ds in drives:
            ax.plot(t, dephased_cell_purity(ds["entropy_diag_cell"]).values, ls=":",
                    label=f"dephased cell (eq. 18 state), {name.split(' (')[0]}")
    ax.set_ylim(0.45, 1.05)
    ax.set_xlabel(label(field[TIME.name], TIME.name))
    ax.set_ylabel("purity Tr rho^2")
    ax.set_title("(a) field battery", fontsize="small")
    ax.legend(fontsize="x-small", loc="lower left")
    for ax, var, what in zip(axes[0, 1:], ("purity_battery", "purity_cell"),
                             ("battery", "cell 1")):
        for case, ds in _cavity(cavity):
            ax.plot(ds[TIME.name].values, ds[var].values, label=case)
        lo, hi = METRIC_RANGES[var]
        ax.set_ylim(lo - 0.03, hi + 0.03)
        ax.set_xlabel(label(cavity[TIME.name], TIME.name))
        ax.set_ylabel(label(cavity[var], var))
        ax.set_title(f"(b) cavity battery, n = 7: {what}", fontsize="small")
        ax.legend(fontsize="x-small")
    fig.suptitle("Fig. 5: purity")
    _caption(fig, "(a) The field model's state is pure at all t (the product |phi>|phi>, "
                  "physics.md section 2), so the purity of the battery and of each cell is 1 "
                  "for every drive. The paper's curve came from its eq. 18, which drops the "
                  "cell's coherences; dotted: the purity p^2 + (1-p)^2 of that dephased cell "
                  "(p: its excited population, from the population entropy of eq. 19), per "
                  "drive. (b) Cavity: the battery is entangled with the charger, so its "
                  "purity drops below 1.")
    return fig


def figures(out_dir: str | os.PathLike[str], data: Mapping[str, xr.Dataset]) -> list[Path]:
    """Write PNGs of the paper's Figs. 1 to 5 into ``out_dir``; returns the paths.

    ``data``: {figure name: Dataset}, the keys ``FIGURE_SPECS`` and ``{name}_bare`` for
    ``BARE_VARIANTS``, as :func:`qbfast.figures.run_figure_specs` or
    :func:`qbfast.figures.figure_datasets` give them. Figs. 3 and 4 come in both battery
    Hamiltonian accountings (``fig3_interacting.png``, ``fig3_bare.png``, ...). What each
    figure shows, and the efficiency mask: docs/figures.md.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [_save(fig, out / f"{stem}.png") for stem, fig in draw_figures(data).items()]
