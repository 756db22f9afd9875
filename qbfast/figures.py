"""The data of the paper's figures, at the interface level: computed in-process
(:func:`figure_datasets`, through :func:`qbfast.api.sweep`) or by running the figure specs
``sweeps/fig*.toml`` with ``qbfast run``'s engine into Zarr stores (:func:`run_figure_specs`).
:func:`write_figures` draws them with :func:`qbfast.analysis.plots.figures`.

This module sits above the API, the runner and the analysis (imports point down only:
kernels <- core <- {api, runner, store, analysis} <- this module, the CLI), so that the
analysis never imports the runner.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .analysis.plots import BARE_VARIANTS, CAVITY_J2, FIGURE_SPECS, figures

__all__ = ["figure_datasets", "run_figure_specs", "write_figures", "FIGURE_SPECS",
           "BARE_VARIANTS", "charger_datasets", "write_charger_figure", "CHARGER_FIGURE",
           "open_maps_datasets", "write_open_maps"]


def figure_datasets(n_t: int = 1001) -> dict[str, xr.Dataset]:
    """The data of Figs. 1 to 5 computed in-process with ``qbfast.sweep`` (no specs, no store).

    Same keys and parameters as the specs ``sweeps/fig*.toml``: field A in {0, 1, 2} x B in
    {0, 2} (the paper's drives are (2, 0), (0, 2), (1, 2)), Delta = omega = 1, t in [0, 10];
    cavity n = 7, omega_g = J1 = Delta = omega_a = 1, J2 in {1, 0}, t in [0, 10]; the keys
    ``fig3_bare`` and ``fig4_bare`` use the bare battery Hamiltonian.
    """
    from .api import sweep

    t = np.linspace(0.0, 10.0, n_t)
    field = sweep("field", t, A=[0.0, 1.0, 2.0], B=[0.0, 2.0], omega=1.0, Delta=1.0, g=0.0)
    common: dict[str, Any] = dict(J2=list(CAVITY_J2), n=7, J1=1.0, omega_g=1.0, omega_a=1.0,
                                  Delta=1.0)
    cavity = sweep("cavity", t, **common)
    bare = sweep("cavity", t, battery_hamiltonian="bare", **common)
    data = {name: field for name in ("fig1", "fig2", "fig5a_field")}
    data.update({name: cavity for name in ("fig3", "fig4", "fig5b_cavity")})
    data.update({f"{name}_bare": bare for name in BARE_VARIANTS})
    return data


def run_figure_specs(spec_dir: str | os.PathLike[str], store_dir: str | os.PathLike[str],
                     client: Any = None) -> dict[str, xr.Dataset]:
    """Run the figure specs ``spec_dir/fig*.toml`` (and bare variants of Figs. 3, 4) with
    ``qbfast run``'s engine into Zarr stores under ``store_dir`` and open them lazily.

    A store that is already complete is reused. ``client``: a ``distributed.Client``; by
    default one local cluster serves all specs. Raises ``ValueError`` if a spec is missing.
    """
    from .analysis import open_store
    from .runner.driver import execute
    from .runner.spec import load_spec, parse_spec

    spec_dir, store_dir = Path(spec_dir), Path(store_dir)
    specs = {}
    for name in FIGURE_SPECS:
        path = spec_dir / f"{name}.toml"
        if not path.is_file():
            raise ValueError(f"figure spec {str(path)!r}: no such file")
        specs[name] = load_spec(path)
        if name in BARE_VARIANTS:
            text = 'battery_hamiltonian = "bare"\n' + path.read_text(encoding="utf-8")
            specs[f"{name}_bare"] = parse_spec(text, name=f"{name}_bare", source=str(path))
    store_dir.mkdir(parents=True, exist_ok=True)
    own = None
    if client is None:
        import distributed

        own = distributed.Client(distributed.LocalCluster(
            n_workers=min(2, os.cpu_count() or 1), threads_per_worker=1,
            dashboard_address=":0"))
        client = own
    try:
        for name, spec in specs.items():
            execute(spec, store_dir / f"{name}.zarr", client)
    finally:
        if own is not None:
            cluster = own.cluster
            own.close()
            cluster.close()
    return {name: open_store(store_dir / f"{name}.zarr") for name in specs}


def write_figures(out_dir: str | os.PathLike[str],
                  data: Mapping[str, xr.Dataset] | None = None, n_t: int = 1001) -> list[Path]:
    """:func:`qbfast.analysis.plots.figures` of ``data`` (default: :func:`figure_datasets`
    of ``n_t`` times) into ``out_dir``, then the charger comparison
    (:func:`write_charger_figure`, always computed in-process, ``n_t`` times); returns the
    paths of the PNGs."""
    paths = figures(out_dir, data if data is not None else figure_datasets(n_t))
    return [*paths, write_charger_figure(out_dir, n_t)]


# ---- the charger comparison (docs/chargers.md) ---------------------------------------------

#: File name of the charger comparison in ``qbfast figures``' output directory.
CHARGER_FIGURE = "chargers.png"
#: The chargers compared, with their line styles.
CHARGER_STYLES = (("fock", "-"), ("coherent", "--"), ("thermal", ":"))
#: Mean photon number of every charger (the Fock state |n> with n = nbar).
CHARGER_NBAR = 4
#: Columns of the figure.
CHARGER_J2 = (0.0, 1.0)


def charger_datasets(n_t: int = 1001, nbar: int = CHARGER_NBAR) -> dict[str, xr.Dataset]:
    """Energy and ergotropy of the cavity battery for the Fock (n = ``nbar``), coherent and
    thermal (mean photon number ``nbar``) chargers, J2 in :data:`CHARGER_J2`, J1 = omega_g =
    omega_a = Delta = 1, bare accounting, t in [0, 10] (``n_t`` times): {charger: Dataset}."""
    from .api import sweep

    t = np.linspace(0.0, 10.0, n_t)
    base: dict[str, Any] = dict(J2=list(CHARGER_J2), J1=1.0, omega_g=1.0, omega_a=1.0,
                                Delta=1.0, battery_hamiltonian="bare",
                                metrics=["energy", "ergotropy"])
    data = {}
    for charger, _ in CHARGER_STYLES:
        kw: dict[str, Any] = ({"n": int(nbar)} if charger == "fock"
                              else {"charger": charger, "nbar": float(nbar)})
        data[charger] = sweep("cavity", t, **base, **kw)
    return data


def write_charger_figure(out_dir: str | os.PathLike[str], n_t: int = 1001,
                         nbar: int = CHARGER_NBAR) -> Path:
    """The charger comparison as ``out_dir``/:data:`CHARGER_FIGURE`: energy (top row) and
    ergotropy (bottom row) against t of the three chargers of :func:`charger_datasets`, one
    column per J2; returns the path."""
    from .analysis.plots import label, new_figure

    data = charger_datasets(n_t, nbar)
    fig, axes = new_figure(2, len(CHARGER_J2), width=5.5, height=3.4)
    for col, j2 in enumerate(CHARGER_J2):
        for row, name in enumerate(("energy", "ergotropy")):
            ax = axes[row, col]
            for charger, style in CHARGER_STYLES:
                ds = data[charger].sel(J2=j2)
                what = f"Fock n = {nbar}" if charger == "fock" else f"{charger} nbar = {nbar}"
                ax.plot(ds.t, ds[name], style, label=what)
            ax.set_ylabel(label(data["fock"][name], name))
            ax.set_xlim(float(ds.t[0]), float(ds.t[-1]))
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(f"J2 = {j2:g}")
            else:
                ax.set_xlabel(label(data["fock"].t, "t"))
    axes[0, 0].legend(loc="best", fontsize="small")
    fig.suptitle(f"cavity battery, three chargers at mean photon number {nbar} "
                 "(J1 = omega_g = omega_a = Delta = 1, bare accounting)", fontsize="medium")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / CHARGER_FIGURE
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


# ---- open batteries: maximum ergotropy and steering over (gamma_phi, gamma) -----------------

#: The settings of the open-battery maps (docs/guide/open.md): the field model's "full"
#: protocol with the default drive (A = 1, B = 2, omega = 1) and g = 0.5; the cavity with one
#: photon, n = 1, omega_g = Delta = omega_a = 1 and J1 = J2 = 0.25, where |gg> is the battery's
#: ground state (2 (J1 + J2) <= 1: no ergotropy at t = 0).
OPEN_MAP_MODELS: dict[str, dict[str, Any]] = {
    "field": dict(protocol="full", g=0.5),
    "cavity": dict(n=1, J1=0.25, J2=0.25, omega_g=1.0, omega_a=1.0, Delta=1.0),
}
OPEN_MAP_RATE_MAX = 1.0
OPEN_MAP_T_MAX = 10.0


def open_maps_datasets(n_rates: int = 21, n_t: int = 201) -> dict[str, xr.Dataset]:
    """Per model (:data:`OPEN_MAP_MODELS`), over gamma_phi x gamma in [0, 1] (``n_rates``
    values each): the maximum over t in [0, 10] (``n_t`` times) of the ergotropy
    (``ergotropy_max``) and the minimum of the a->b steering sum (``steering_ab_min``; a
    steers b iff < 2), computed in-process with ``qbfast.sweep``."""
    from .api import sweep

    t = np.linspace(0.0, OPEN_MAP_T_MAX, n_t)
    rates = np.linspace(0.0, OPEN_MAP_RATE_MAX, n_rates)
    data = {}
    for model, kwargs in OPEN_MAP_MODELS.items():
        ds = sweep(model, t, gamma_phi=rates, gamma=rates, metrics=["ergotropy", "steering_ab"],
                   **kwargs)
        reduced = xr.Dataset({"ergotropy_max": ds.ergotropy.max("t"),
                              "steering_ab_min": ds.steering_ab.min("t")}, attrs=ds.attrs)
        reduced["ergotropy_max"].attrs = {"long_name": "maximum over t of the ergotropy",
                                          "units": ds.ergotropy.attrs["units"]}
        reduced["steering_ab_min"].attrs = {"long_name": "minimum over t of I_ab",
                                            "units": ds.steering_ab.attrs["units"]}
        data[model] = reduced
    return data


def write_open_maps(out_dir: str | os.PathLike[str],
                    data: Mapping[str, xr.Dataset] | None = None) -> Path:
    """The open-battery maps (:func:`open_maps_datasets`, or ``data`` of that form) as
    ``out_dir/open_maps.png``: one row per model, the maximum ergotropy and the minimum
    steering sum I_ab over (gamma_phi, gamma), the steering boundary I_ab = 2 drawn where the
    map crosses it. Returns the path."""
    from .analysis.plots import new_figure

    data = data if data is not None else open_maps_datasets()
    fig, axes = new_figure(len(data), 2, width=5.0, height=4.0)
    for row, (model, ds) in enumerate(data.items()):
        x, y = ds.gamma_phi.values, ds.gamma.values
        settings = ", ".join(f"{k}={v}" for k, v in OPEN_MAP_MODELS.get(model, {}).items())
        for col, name in enumerate(("ergotropy_max", "steering_ab_min")):
            ax = axes[row, col]
            z = ds[name].transpose("gamma", "gamma_phi").values
            mesh = ax.pcolormesh(x, y, z, shading="nearest",
                                 cmap="viridis" if col == 0 else "magma")
            bar = fig.colorbar(mesh, ax=ax)
            bar.set_label(f"{ds[name].attrs['long_name']} [{ds[name].attrs['units']}]")
            if col == 1 and np.nanmin(z) < 2.0 - 1e-6 and np.nanmax(z) > 2.0 - 1e-6:
                ax.contour(x, y, z, levels=[2.0 - 1e-6], colors="white", linewidths=1.5)
            if col == 1 and np.nanmin(z) >= 2.0 - 1e-9:
                ax.text(0.5, 0.5, "no steering (I_ab >= 2 everywhere)", color="white",
                        ha="center", va="center", transform=ax.transAxes)
            ax.set_xlabel("gamma_phi (pure dephasing) [Delta]")
            ax.set_ylabel("gamma (energy decay) [Delta]")
            ax.set_title(f"{model} ({settings})", fontsize=9)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "open_maps.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
