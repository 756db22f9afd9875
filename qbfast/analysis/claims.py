"""The paper's qualitative claims, tested at every grid point of a dataset.

Each claim becomes one or more *checks*. A check decides, per grid point, whether it applies
there and whether it holds, and keeps one number (``detail``) saying by how much it fails, so
that the worst counterexamples can be shown with their coordinates. Everything per grid point
is reduced along t chunk by chunk (lazy for dask-backed input); one ``dask.compute`` then
loads the grid-sized results of all checks together.

Claims (paper section numbers in the seed text):

1. The minimum of entanglement coincides with the maximum of stored energy (Figs. 1, 3).
2. Maximum purity coincides with maximum energy and with maximum ergotropy (Fig. 5).
3. Within the steerable range, the a->b steering maximum and the b->a steering minimum
   coincide with the energy maximum (Figs. 1, 3).
4. J2 = 1 reaches full charge, J2 != 1 does not (cavity, Fig. 3).
5. The efficiency is 1 when the purity is 1 (Figs. 2, 4, 5).

"Coincide" compares every local maximum of energy (or ergotropy) in the time window with the
nearest local extremum of the other metric (``correlation.coincidence``, column dt_worst);
it holds where that distance is at most ``time_tol`` (default: two grid steps). A metric
that is constant along t is at its extremum everywhere, so it coincides trivially.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import xarray as xr

from ..params import TIME
from .correlation import coincidence
from .extrema import ATOL, RTOL
from .steering import STEERING_BOUND, STEERING_TOL

__all__ = ["Check", "claims", "format_claims", "CLAIMS"]

CLAIMS: dict[int, str] = {
    1: "the minimum of entanglement coincides with the maximum of stored energy",
    2: "maximum purity coincides with maximum energy and ergotropy",
    3: "within the steerable range, the a->b steering maximum and the b->a minimum coincide "
       "with the energy maximum",
    4: "J2 = 1 reaches full charge and J2 != 1 does not",
    5: "the efficiency is 1 when the purity is 1",
}

# Entanglement measures the paper plots: battery-battery S(t) for the field model (Fig. 1),
# charger-battery S(t) for the cavity (Fig. 3); the concurrence is the model-free check.
ENTANGLEMENT = {"field": ("entropy_cell", "concurrence"),
                "cavity": ("entropy_battery", "concurrence")}


@dataclass
class Check:
    """One tested statement of a claim over the grid.

    ``applies``, ``holds`` and ``detail`` are boolean/float arrays over the grid dims (lazy
    until ``claims`` computes them); ``detail_name`` says what ``detail`` measures (larger is
    worse). ``skipped`` gives the reason when the dataset cannot test it.
    """

    claim: int
    label: str
    criterion: str
    applies: Any = None
    holds: Any = None
    detail: Any = None
    detail_name: str = ""
    skipped: str = ""
    counterexamples: list[dict[str, float]] = field(default_factory=list)
    trivial: Any = None
    trivial_reason: str = ""

    @property
    def n_applicable(self) -> int:
        return 0 if self.skipped else int(np.count_nonzero(self.applies))

    @property
    def n_holds(self) -> int:
        return 0 if self.skipped else int(np.count_nonzero(self.applies & self.holds))

    @property
    def n_trivial(self) -> int:
        """Applicable grid points where the check holds trivially (``trivial_reason``)."""
        if self.skipped or self.trivial is None:
            return 0
        return int(np.count_nonzero(self.applies & self.trivial))

    @property
    def fraction(self) -> float:
        n = self.n_applicable
        return self.n_holds / n if n else float("nan")


def _param(ds: xr.Dataset, name: str, dim: str) -> xr.DataArray | None:
    """A model parameter as an array over the grid (a swept coord or a fixed attr)."""
    if name in ds.coords:
        return ds[name]
    if name in ds.attrs:
        return xr.DataArray(float(ds.attrs[name]))
    return None


def _missing(ds: xr.Dataset, names: tuple[str, ...]) -> str:
    gone = [n for n in names if n not in ds.data_vars]
    return f"the store lacks {', '.join(gone)}" if gone else ""


def _coincide(ds: xr.Dataset, claim: int, a: str, kind_a: str, b: str, kind_b: str,
              time_tol: float, dim: str, only: xr.DataArray | None = None,
              where: str = "") -> Check:
    label = f"{b} {kind_b} vs {a} {kind_a}"
    check = Check(claim, label, f"|dt| <= {time_tol:.3g} at every local {kind_a} of {a}{where}")
    check.skipped = _missing(ds, (a, b))
    if check.skipped:
        return check
    c = coincidence(ds, a, b, kind_a=kind_a, kind_b=kind_b, dim=dim)
    check.applies = c["count_a"] > 0
    if only is not None:
        check.applies = check.applies & only
    check.detail = c["dt_worst"]
    check.holds = c["dt_worst"] <= time_tol
    check.detail_name = "|dt|"
    y = ds[b]
    spread = y.max(dim) - y.min(dim)
    check.trivial = spread <= ATOL + RTOL * abs(y).max(dim)
    check.trivial_reason = f"{b} is constant along {dim}"
    return check


def _checks(ds: xr.Dataset, time_tol: float, steering_tol: float, charge_tol: float,
            purity_tol: float, efficiency_tol: float, energy_floor: float,
            dim: str) -> list[Check]:
    model = str(ds.attrs.get("model", ""))
    checks: list[Check] = []
    for s in ENTANGLEMENT.get(model, ("entropy_cell", "entropy_battery", "concurrence")):
        checks.append(_coincide(ds, 1, "energy", "max", s, "min", time_tol, dim))
    for a in ("energy", "ergotropy"):
        checks.append(_coincide(ds, 2, a, "max", "purity_battery", "max", time_tol, dim))

    steer = None
    if not _missing(ds, ("steering_ab", "steering_ba")):
        below = STEERING_BOUND - steering_tol
        steer = ((ds["steering_ab"] < below) | (ds["steering_ba"] < below)).any(dim)
    where = f", where I_ab or I_ba < 2 - {steering_tol:g} at some t"
    for b, kind in (("steering_ab", "max"), ("steering_ba", "min")):
        check = _coincide(ds, 3, "energy", "max", b, kind, time_tol, dim, only=steer,
                          where=where)
        if steer is None and not check.skipped:
            check.skipped = _missing(ds, ("steering_ab", "steering_ba"))
        checks.append(check)

    j2, delta = _param(ds, "J2", dim), _param(ds, "Delta", dim)
    check = Check(4, "max energy >= (1 - tol) 2 Delta iff J2 = 1",
                  f"full charge: max_t energy >= {1 - charge_tol:g} x 2 Delta")
    if model != "cavity" or j2 is None:
        check.skipped = "only for the cavity model (J2)"
    elif "energy" not in ds.data_vars:
        check.skipped = _missing(ds, ("energy",))
    else:
        ratio = ds["energy"].max(dim) / (2.0 * (delta if delta is not None else 1.0))
        full = ratio >= 1.0 - charge_tol
        unit = np.abs(j2 - 1.0) <= 1e-9
        check.applies = xr.ones_like(ratio, dtype=bool)
        check.holds = full == unit
        # how far on the wrong side of the threshold
        check.detail = xr.where(unit, (1.0 - charge_tol) - ratio, ratio - (1.0 - charge_tol))
        check.detail_name = "charge margin"
    checks.append(check)

    check = Check(5, "efficiency vs purity_battery",
                  f"|efficiency - 1| <= {efficiency_tol:g} wherever purity_battery >= "
                  f"1 - {purity_tol:g} and energy > {energy_floor:g} x 2 Delta")
    check.skipped = _missing(ds, ("efficiency", "purity_battery", "energy"))
    if not check.skipped:
        # below the floor, efficiency = ergotropy / energy is rounding noise over rounding noise
        eff, pur = ds["efficiency"], ds["purity_battery"]
        floor = energy_floor * 2.0 * np.abs(delta if delta is not None else 1.0)
        pure = (pur >= 1.0 - purity_tol) & np.isfinite(eff) & (ds["energy"] > floor)
        miss = xr.where(pure, np.abs(eff - 1.0), 0.0).max(dim)
        check.applies = pure.any(dim)
        check.holds = miss <= efficiency_tol
        check.detail = miss
        check.detail_name = "max |efficiency - 1|"
    checks.append(check)
    return checks


def claims(ds: xr.Dataset, *, time_tol: float | None = None,
           steering_tol: float = STEERING_TOL, charge_tol: float = 0.01,
           purity_tol: float = 1e-9, efficiency_tol: float = 1e-6, energy_floor: float = 1e-6,
           examples: int = 3, dim: str = TIME.name) -> list[Check]:
    """Test the paper's claims (``CLAIMS``) at every grid point of ``ds``.

    Parameters
    ----------
    time_tol : largest time between extrema that still "coincide"; default two grid steps
        (the largest step of ``ds[dim]``).
    steering_tol : steerable means I < 2 - steering_tol.
    charge_tol : "full charge" means max_t energy >= (1 - charge_tol) * 2 Delta.
    purity_tol, efficiency_tol : "purity 1" and "efficiency 1" tolerances.
    energy_floor : claim 5 skips times where energy <= energy_floor * 2 Delta (there the
        ratio ergotropy / energy is dominated by rounding).
    examples : how many counterexamples (the worst ones) to keep per check.

    Returns
    -------
    list of computed ``Check``: per check the number of applicable grid points, how many
    hold, and up to ``examples`` counterexamples as {coordinate: value, ..., detail: value}.
    """
    t = np.asarray(ds[dim].values, dtype=np.float64)
    if time_tol is None:
        time_tol = 2.0 * float(np.max(np.diff(t))) if t.size > 1 else 0.0
    checks = _checks(ds, float(time_tol), steering_tol, charge_tol, purity_tol,
                     efficiency_tol, energy_floor, dim)
    live = [c for c in checks if not c.skipped]
    none = xr.DataArray(False)
    lazy = [(c.applies, c.holds, c.detail, none if c.trivial is None else c.trivial)
            for c in live]
    computed = dask.compute(*lazy)
    for check, arrays in zip(live, computed):
        applies, holds, detail, trivial = xr.broadcast(*arrays)
        check.applies = np.asarray(applies.values, dtype=bool)
        check.holds = np.asarray(holds.values, dtype=bool)
        check.detail = np.asarray(detail.values, dtype=np.float64)
        check.trivial = np.asarray(trivial.values, dtype=bool)
        check.counterexamples = _worst(check, detail, examples)
    return checks


def _worst(check: Check, detail: xr.DataArray, k: int) -> list[dict[str, float]]:
    """The k applicable grid points where the check fails worst, with their coordinates."""
    bad = check.applies & ~check.holds
    if not bad.any() or k <= 0:
        return []
    score = np.where(bad, np.nan_to_num(check.detail, nan=np.inf), -np.inf).ravel()
    order = np.argsort(-score, kind="stable")[: min(k, int(bad.sum()))]
    rows = []
    for flat in order:
        index = np.unravel_index(flat, check.applies.shape)
        row = {str(d): detail[d].values[i].item() for d, i in zip(detail.dims, index)}
        row[check.detail_name] = float(check.detail.ravel()[flat])
        rows.append(row)
    return rows


def format_claims(checks: list[Check], ds: xr.Dataset | None = None) -> str:
    """The report ``qbfast claims`` prints: per claim, per check, fraction and counterexamples."""
    lines: list[str] = []
    if ds is not None:
        grid = [d for d in ds.dims if d != TIME.name]
        points = int(np.prod([ds.sizes[d] for d in grid])) if grid else 1
        dims = ", ".join(f"{d}[{ds.sizes[d]}]" for d in grid) or "a single point"
        a = {k: ds.attrs.get(k, "?") for k in ("model", "protocol", "battery_hamiltonian")}
        lines.append(f"model {a['model']}, protocol {a['protocol']}, battery_hamiltonian "
                     f"{a['battery_hamiltonian']}; {points} grid points over {dims}; "
                     f"t[{ds.sizes.get(TIME.name, 0)}]")
    for number, text in CLAIMS.items():
        lines.append(f"[{number}] {text}")
        for c in (c for c in checks if c.claim == number):
            if c.skipped:
                lines.append(f"    {c.label}: not tested ({c.skipped})")
                continue
            n = c.n_applicable
            if n == 0:
                lines.append(f"    {c.label}: applies at no grid point ({c.criterion})")
                continue
            trivial = (f"; trivially at {c.n_trivial}: {c.trivial_reason}"
                       if c.n_trivial else "")
            lines.append(f"    {c.label}: holds at {c.n_holds}/{n} grid points "
                         f"({100.0 * c.fraction:.1f}%{trivial})  [{c.criterion}]")
            for row in c.counterexamples:
                text_row = ", ".join(f"{k}={_fmt(v)}" for k, v in row.items())
                lines.append(f"        fails at {text_row}")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float) and np.isnan(v):
        return "none"
    if isinstance(v, float):
        return f"{v:.7g}"
    return str(v)
