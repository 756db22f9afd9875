"""Open-system rows of ``bench.kernels`` (issue 18): ``python -m bench.kernels --open-only``.

Every open route (the names of :attr:`qbfast.core.Grid.kernel`: ``open_field_drive``,
``open_field_full``, ``open_cavity``, ``open_cavity_thermal``), all 15 metrics, float64, t =
linspace(0, 20, 1000) by default, with the rates of the issue's targets. Each row times, in the
same run:

- the open kernel itself (``qbfast.kernels.open_field.open_field_grid`` /
  ``open_cavity.open_cavity_grid``, called directly with a reused ``out`` buffer on every
  Numba thread; warmed up first), and the same kernel computing the energy only (the metric
  block's share of the time: the row's bound);
- the closed kernel of the same model on the same grid with the rates dropped
  (``qbfast.sweep`` with a reused ``out=``): what the dissipation costs;
- QuTiP ``mesolve`` with the jump operators of physics.md section 8 on the full Hilbert space
  (field: 2 x 2; cavity: Fock(n + 1) x 2 x 2, for the thermal start Fock(U + 1) x 2 x 2 with U
  the kernel's thermal window) returning the states only, and ``mesolve`` followed by the 15
  metrics from QuTiP's functions on rho_B = ptrace of each state
  (``bench.baselines.qutip_rho_metrics``: expect, eigenenergies, entropy_vn, concurrence,
  purity). QuTiP has no batching: it runs on a few parameter sets, same times.

Each mesolve+metrics row's 15 metrics are compared with the open kernel on its grid ("max dev",
``bench.kernels.max_dev``: '!' past 1e-8 abs + 1e-6 rel). The targets of the issue are printed
with the measured figures (never asserted), the absolute ones also scaled by the closed cavity
kernel's rate of the same run (the issue's figures assume >= 100 M points/s for it).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

import qbfast
from bench import baselines as bl
from bench.kernels import Timer, cavity_params, fmt_rate, fmt_ratio, interleaved, max_dev
from qbfast.kernels.chargers import sector_window
from qbfast.kernels.open_cavity import OPEN_CAVITY_COLUMNS, open_cavity_grid
from qbfast.kernels.open_field import OPEN_FIELD_COLUMNS, open_field_grid
from qbfast.params import N_METRICS

#: The open routes, as :attr:`qbfast.core.Grid.kernel` names them.
OPEN_ROUTES = ("open_field_drive", "open_field_full", "open_cavity", "open_cavity_thermal")
#: The closed cavity kernel rate the issue's absolute targets assume.
CAVITY_REFERENCE_RATE = 100e6
ALL_METRICS = np.arange(N_METRICS, dtype=np.int64)
ENERGY_ONLY = np.array([0] + [-1] * (N_METRICS - 1), dtype=np.int64)
#: mesolve options of the rows (QuTiP 5; the closed rows' sesolve options).
MESOLVE_OPTIONS: dict[str, Any] = {**bl.QUTIP_OPTIONS}
#: Fixed model parameters of the rows (the swept ones come from ``OpenCase.swept``).
FIELD_FIXED = {"omega": 1.0, "g": 0.5, "Delta": 1.0}
CAVITY_FIXED = {"J1": 0.75, "omega_g": 1.0, "omega_a": 1.0, "Delta": 1.0}


@dataclass
class OpenCase:
    """One bench row: a route, its fixed parameters and rates, a sweep of model parameters."""

    name: str
    route: str
    fixed: dict[str, float]
    swept: Callable[[int], dict[str, np.ndarray]]
    sizes: dict[str, int]  # main / qutip / qutip_full parameter-set counts
    target_rate: float | None = None
    target_ratio: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return "field" if self.route.startswith("open_field") else "cavity"

    @property
    def columns(self) -> tuple[str, ...]:
        return OPEN_FIELD_COLUMNS if self.model == "field" else OPEN_CAVITY_COLUMNS

    @property
    def flag(self) -> bool:
        """The kernel's ``full`` (field) or ``thermal`` (cavity) argument."""
        return self.route in ("open_field_full", "open_cavity_thermal")

    def values(self, n_points: int) -> dict[str, Any]:
        """Every column's value(s): the fixed ones and about ``n_points`` swept sets."""
        return {**self.fixed, **self.swept(n_points)}

    def table(self, n_points: int) -> np.ndarray:
        """The kernel's parameter table (columns :attr:`columns`, last swept fastest, as
        ``qbfast.sweep`` orders its points)."""
        values = self.values(n_points)
        first = "nbar" if self.route == "open_cavity_thermal" else self.columns[0]
        axes = [np.atleast_1d(np.asarray(values[first if c == "n" else c], dtype=float))
                for c in self.columns]
        return np.array(list(itertools.product(*axes)), dtype=float)

    def run(self, table: np.ndarray, t: np.ndarray, slot: np.ndarray, out: np.ndarray) -> None:
        """The open kernel on ``table``."""
        threads = numba.get_num_threads()
        if self.model == "field":
            open_field_grid(table, t, self.flag, False, slot, out, threads)
        else:
            open_cavity_grid(table, t, self.flag, False, slot, out, threads)

    def closed_call(self, n_points: int, t: np.ndarray) -> tuple[Callable[[], Any], int]:
        """qbfast.sweep of the closed model on the same grid, the rates dropped."""
        rates = set(self.columns[5:] if self.model == "field" else self.columns[6:])
        kw = {k: v for k, v in self.values(n_points).items() if k not in rates}
        if self.model == "field":
            kw["protocol"] = "full" if self.flag else "drive"
        elif self.flag:
            kw["charger"] = "thermal"
        shape = _shape(kw)
        out = np.empty((N_METRICS, *shape, t.size))

        def call() -> Any:
            return qbfast.sweep(self.model, t, out=out, **kw)

        return call, int(np.prod(shape))


def _shape(kw: dict[str, Any]) -> tuple[int, ...]:
    return tuple(np.size(v) for k, v in kw.items()
                 if k not in ("protocol", "charger") and np.ndim(v) > 0)


def _field_sweep(n_points: int) -> dict[str, np.ndarray]:
    n_a = max(1, int(np.sqrt(max(n_points, 1))))
    return {"A": np.linspace(0.5, 2.0, n_a), "B": np.linspace(0.0, 2.0, max(1, n_points // n_a))}


def _j2_sweep(n_points: int) -> dict[str, np.ndarray]:
    return {"J2": np.linspace(0.0, 2.0, max(1, n_points))}


FIELD_RATES = {"gamma": 0.1, "n_th": 0.2, "gamma_phi": 0.1, "gamma_c": 0.05}


def build_open_cases(args: argparse.Namespace) -> list[OpenCase]:
    """The rows: the issue's four targets and the field "drive" route (no target)."""
    field_sizes = {"main": args.open_field_points, "qutip": args.qutip_points,
                   "qutip_full": args.qutip_full_points}
    cases = [
        OpenCase("field full, every channel", "open_field_full",
                 {**FIELD_FIXED, **FIELD_RATES}, _field_sweep, field_sizes, 1e6, 100),
        OpenCase("field drive, every channel", "open_field_drive",
                 {**FIELD_FIXED, **FIELD_RATES}, _field_sweep, field_sizes),
        OpenCase("cavity Fock n=7, gamma_phi", "open_cavity",
                 {"n": 7.0, **CAVITY_FIXED, "gamma": 0.0, "gamma_phi": 0.1, "gamma_c": 0.0,
                  "kappa": 0.0}, _j2_sweep,
                 {"main": args.open_cavity_points, "qutip": args.qutip_points,
                  "qutip_full": args.qutip_full_points}, 10e6, 1000),
        OpenCase("cavity Fock n=7, gamma+kappa+gamma_phi", "open_cavity",
                 {"n": 7.0, **CAVITY_FIXED, "gamma": 0.1, "gamma_phi": 0.1, "gamma_c": 0.0,
                  "kappa": 0.2}, _j2_sweep,
                 {"main": args.open_lossy_points, "qutip": args.qutip_points,
                  "qutip_full": args.qutip_full_points}, 0.5e6, 100),
        OpenCase(f"cavity thermal nbar={args.open_thermal_nbar:g}, kappa+gamma_phi",
                 "open_cavity_thermal",
                 {"nbar": args.open_thermal_nbar, **CAVITY_FIXED, "gamma": 0.0,
                  "gamma_phi": 0.1, "gamma_c": 0.0, "kappa": 0.2}, _j2_sweep,
                 {"main": args.open_thermal_points, "qutip": 1, "qutip_full": 1}, 20e3, 100),
    ]
    return [c for c in cases if c.route in args.open_routes]


# --------------------------------------------------------------------------------------------
# QuTiP mesolve
# --------------------------------------------------------------------------------------------

def _qubit_ops(cavity_dim: int) -> dict[str, Any]:
    """sigma_i^-, sigma_z,i on (Fock(cavity_dim) x) 2 x 2, |e> = basis(2, 0)."""
    import qutip as qt

    e, g = qt.basis(2, 0), qt.basis(2, 1)
    sm, i2 = g * e.dag(), qt.qeye(2)
    pre = [qt.qeye(cavity_dim)] if cavity_dim else []
    return {"s1": qt.tensor(*pre, sm, i2), "s2": qt.tensor(*pre, i2, sm),
            "z1": qt.tensor(*pre, qt.sigmaz(), i2), "z2": qt.tensor(*pre, i2, qt.sigmaz())}


def mesolve_states(case: OpenCase, table: np.ndarray, t: np.ndarray,
                   options: dict[str, Any]) -> list[list[Any]]:
    """QuTiP mesolve per parameter set, the section-8 operators; returns rho_B(t) (Qobj 4x4,
    made exactly Hermitian) per set (the cavity traced out with ptrace)."""
    import qutip as qt

    ops2 = bl._qutip_ops()
    result = []
    for row in table:
        if case.model == "field":
            a, b, omega, _, _, gamma, n_th, gamma_phi, gamma_c = row
            q = _qubit_ops(0)
            terms: list[Any] = [[ops2["X"], bl._field_coefficient]]
            if case.flag:
                terms.insert(0, bl.qutip_battery("field", row[:5], False, ops2))
            h = qt.QobjEvo(terms, args={"A": a, "B": b, "omega": omega})
            c_ops = [np.sqrt(gamma * (1 + n_th)) * q["s1"], np.sqrt(gamma * (1 + n_th)) * q["s2"],
                     np.sqrt(gamma * n_th) * q["s1"].dag(), np.sqrt(gamma * n_th) * q["s2"].dag(),
                     np.sqrt(gamma_phi / 2) * q["z1"], np.sqrt(gamma_phi / 2) * q["z2"],
                     np.sqrt(gamma_c) * (q["s1"] + q["s2"])]
            rho0 = qt.ket2dm(ops2["gg"])
            res = qt.mesolve(h, rho0, t, [c for c in c_ops if c.norm() > 0], options=options)
            result.append([_hermitian(s) for s in res.states])
            continue
        first, _, _, omega_g, omega_a, _, gamma, gamma_phi, gamma_c, kappa = row
        if case.flag:
            top = sector_window(True, first)[1]
            photons = first ** np.arange(top + 1) / (1 + first) ** (np.arange(top + 1) + 1)
        else:
            photons = np.zeros(int(first) + 1)
            photons[int(first)] = 1.0
        dim = photons.size
        q = _qubit_ops(dim)
        a_op = qt.tensor(qt.destroy(dim), qt.qeye(2), qt.qeye(2))
        hb = qt.tensor(qt.qeye(dim), bl.qutip_battery("cavity", row[:6], False, ops2))
        h = (omega_a * a_op.dag() * a_op + hb
             + omega_g * sum(s.dag() * a_op + s * a_op.dag() for s in (q["s1"], q["s2"])))
        c_ops = [np.sqrt(gamma) * q["s1"], np.sqrt(gamma) * q["s2"],
                 np.sqrt(gamma_phi / 2) * q["z1"], np.sqrt(gamma_phi / 2) * q["z2"],
                 np.sqrt(gamma_c) * (q["s1"] + q["s2"]), np.sqrt(kappa) * a_op]
        rho0 = qt.tensor(qt.Qobj(np.diag(photons)), qt.ket2dm(ops2["gg"]))
        res = qt.mesolve(h, rho0, t, [c for c in c_ops if c.norm() > 0], options=options)
        result.append([_hermitian(s.ptrace([1, 2])) for s in res.states])
    return result


def _hermitian(rho: Any) -> Any:
    """(rho + rho^dag)/2: mesolve's states are Hermitian to its tolerance only, and QuTiP's
    expect returns complex numbers for a matrix it does not find Hermitian."""
    return 0.5 * (rho + rho.dag())


def mesolve_metrics(case: OpenCase, table: np.ndarray, t: np.ndarray,
                    states: list[list[Any]]) -> np.ndarray:
    """(15, P, T): the metrics of mesolve's rho_B from QuTiP's functions."""
    ops = bl._qutip_ops()
    out = np.empty((N_METRICS, table.shape[0], t.size))
    for p, row in enumerate(table):
        model_row = row[:5] if case.model == "field" else row[:6]
        bl.qutip_rho_metrics(bl.qutip_battery(case.model, model_row, False, ops), model_row[-1],
                             t, states[p], out[:, p], ops)
    return out


# --------------------------------------------------------------------------------------------
# the rows
# --------------------------------------------------------------------------------------------

def closed_cavity_rate(args: argparse.Namespace) -> float:
    """The closed cavity row of ``bench.kernels`` (its main grid, qbfast.sweep, reused out)."""
    t = np.linspace(0.0, args.cavity_tmax, args.cavity_times)
    params = cavity_params(args.cavity_points)
    shape = tuple(np.size(v) for v in params.values() if np.ndim(v) > 0)
    out = np.empty((N_METRICS, *shape, t.size))
    timer = Timer(lambda: qbfast.sweep("cavity", t, out=out, **params), args.min_time)
    interleaved([timer], args.repeats)
    return out[0].size / timer.median


def bench_open_case(case: OpenCase, t: np.ndarray, args: argparse.Namespace
                    ) -> dict[str, Any]:
    """Measure one row; print it; return its figures."""
    started = time.perf_counter()
    table = case.table(case.sizes["main"])
    n_p = table.shape[0]
    out = np.empty((N_METRICS, n_p, t.size))
    energy = np.empty((1, n_p, t.size))
    case.run(table, t, ALL_METRICS, out)  # compile (or load from cache), touch the buffers
    case.run(table, t, ENERGY_ONLY, energy)
    closed, n_closed = case.closed_call(case.sizes["main"], t)
    assert n_closed == n_p, (n_closed, n_p)
    closed()
    timers = [Timer(lambda: case.run(table, t, ALL_METRICS, out), args.min_time),
              Timer(lambda: case.run(table, t, ENERGY_ONLY, energy), args.min_time),
              Timer(closed, args.min_time)]
    interleaved(timers, args.repeats)
    points = n_p * t.size
    rate, rate_energy, rate_closed = (points / tm.median for tm in timers)
    row: dict[str, Any] = {"table": "open systems (issue 18)", "case": case.name,
                           "route": case.route, "numba_threads": numba.get_num_threads(),
                           "points": points, "qbfast": rate, "qbfast energy only": rate_energy,
                           "closed kernel": rate_closed,
                           "metric block share": max(0.0, 1.0 - rate / rate_energy)}
    if not args.skip_qutip:
        opts = {**MESOLVE_OPTIONS, "atol": args.qutip_atol, "rtol": args.qutip_rtol}
        mesolve_states(case, table[:1], t[:5], opts)  # warm up (imports, solver set-up)
        for key in ("qutip", "qutip_full"):
            q_table = case.table(case.sizes[key])[: case.sizes[key]]
            q_out = np.empty((N_METRICS, q_table.shape[0], t.size))
            tm_q = Timer(functools.partial(case.run, q_table, t, ALL_METRICS, q_out),
                         args.min_time)
            samples, result = [], None
            for _ in range(args.qutip_repeats):
                t0 = time.perf_counter()
                states = mesolve_states(case, q_table, t, opts)
                if key == "qutip_full":
                    result = mesolve_metrics(case, q_table, t, states)
                samples.append(time.perf_counter() - t0)
                tm_q.run()
            q_rate = q_table.shape[0] * t.size / statistics.median(samples)
            row["mesolve states" if key == "qutip" else "mesolve+metrics"] = q_rate
            if result is not None:
                row["max dev vs mesolve"] = max_dev(result, q_out)
    row["bound"] = bound(row)
    row["seconds"] = time.perf_counter() - started
    print_open_row(case, row, table, t)
    return row


def bound(row: dict[str, Any]) -> str:
    """What limits the route: the metric block when it takes over half the time (energy-only
    kernel twice as fast), otherwise the propagation (compute: a few hundred flops per point
    against 120 bytes of output, far below the store ceiling of ``bench.limits``)."""
    share = row["metric block share"]
    if share >= 0.5:
        return f"metric block ({share:.0%} of the time)"
    return f"compute: propagation (metric block {share:.0%})"


def print_open_row(case: OpenCase, row: dict[str, Any], table: np.ndarray,
                   t: np.ndarray) -> None:
    rate = row["qbfast"]
    print(f"\n== {case.name} ({case.route}): {table.shape[0]} parameter sets x {t.size} times "
          f"in [{t[0]:g}, {t[-1]:g}], measured in {row['seconds']:.1f} s")
    print(f"  qbfast open kernel        {fmt_rate(rate):>11} points/s   energy only "
          f"{fmt_rate(row['qbfast energy only'])}   bound: {row['bound']}")
    print(f"  closed kernel (rates 0)   {fmt_rate(row['closed kernel']):>11} points/s   "
          f"open/closed {fmt_ratio(rate / row['closed kernel'])}")
    for key in ("mesolve states", "mesolve+metrics"):
        if key in row:
            print(f"  QuTiP {key:<19} {fmt_rate(row[key]):>11} points/s   qbfast/QuTiP "
                  f"{fmt_ratio(rate / row[key]):>9}"
                  + (f"   max dev vs qbfast {row['max dev vs mesolve']}"
                     if key == "mesolve+metrics" else ""))
    sys.stdout.flush()


def open_targets(rows: list[dict[str, Any]], cavity_rate: float | None,
                 cases: list[OpenCase], quick: bool) -> list[dict[str, Any]]:
    """Print the issue's targets against the rows: the absolute ones as given and scaled by
    the closed cavity rate of the run (min(1, rate / 100 M)); the ratios against mesolve+
    metrics and against mesolve states-only. Returns the targets as rows to record."""
    scale = min(1.0, cavity_rate / CAVITY_REFERENCE_RATE) if cavity_rate else 1.0
    print("\n== open-system targets from the issue (2 cores, float64, 15 metrics); measured, "
          "not asserted" + ("  [--quick sizes: not representative]" if quick else ""))
    if cavity_rate:
        print(f"  closed cavity kernel of this run: {fmt_rate(cavity_rate).strip()} points/s: "
              f"absolute targets x {scale:.2f}")
    recorded = []
    for case, row in zip(cases, rows, strict=True):
        if case.target_rate is None:
            continue
        goal = case.target_rate * scale
        rate = row["qbfast"]
        line = (f"  {case.name:<42} {fmt_rate(rate)} points/s vs >= "
                f"{fmt_rate(case.target_rate).strip()} (scaled {fmt_rate(goal).strip()}): "
                f"{'met' if rate >= goal else 'NOT met'}")
        target: dict[str, Any] = {"table": "open systems: targets", "case": case.name,
                                  "qbfast": rate, "target points/s": case.target_rate,
                                  "scaled target points/s": goal,
                                  "rate met": "met" if rate >= goal else "NOT met",
                                  "target ratio vs mesolve": case.target_ratio}
        for key, short in (("mesolve+metrics", "+metrics"), ("mesolve states", "states")):
            if key in row:
                r = rate / row[key]
                assert case.target_ratio is not None
                met = "met" if r >= case.target_ratio else "NOT met"
                line += f"; /mesolve {short} {fmt_ratio(r)} (>= {case.target_ratio:g}x {met})"
                target[key] = row[key]
                target[f"ratio met vs {key}"] = met
        print(line)
        recorded.append(target)
    return recorded


def bench_open(args: argparse.Namespace, cavity_rate: float | None
               ) -> tuple[list[dict[str, Any]], float]:
    """Every open row, then the targets; ``cavity_rate``: the closed cavity row of the run
    (None: measured here on bench.kernels' cavity grid). Returns (rows to record, the cavity
    rate used)."""
    if cavity_rate is None:
        cavity_rate = closed_cavity_rate(args)
        print(f"\nclosed cavity kernel (bench.kernels' cavity grid, {args.cavity_points} sets x "
              f"{args.cavity_times} times): {fmt_rate(cavity_rate).strip()} points/s")
    t = np.linspace(0.0, args.open_tmax, args.open_times)
    print(f"\n== open systems (issue 18): open kernels vs the closed kernels and QuTiP "
          f"mesolve (adams atol={args.qutip_atol:g} rtol={args.qutip_rtol:g}), "
          f"{numba.get_num_threads()} threads")
    cases = build_open_cases(args)
    rows = [bench_open_case(case, t, args) for case in cases]
    return rows + open_targets(rows, cavity_rate, cases, args.quick), cavity_rate


def add_open_arguments(p: argparse.ArgumentParser) -> None:
    """The open rows' options of ``python -m bench.kernels``."""
    p.add_argument("--open-only", action="store_true",
                   help="only the open-system rows (recorded in bench/results/kernels-open.json)")
    p.add_argument("--skip-open", action="store_true", help="skip the open-system rows")
    p.add_argument("--open-routes", nargs="+", default=list(OPEN_ROUTES), choices=OPEN_ROUTES)
    p.add_argument("--open-times", type=int, default=1000)
    p.add_argument("--open-tmax", type=float, default=20.0)
    p.add_argument("--open-field-points", type=int, default=64,
                   help="parameter sets of the open field rows")
    p.add_argument("--open-cavity-points", type=int, default=512,
                   help="parameter sets of the cavity gamma_phi row")
    p.add_argument("--open-lossy-points", type=int, default=64,
                   help="parameter sets of the cavity gamma+kappa+gamma_phi row")
    p.add_argument("--open-thermal-points", type=int, default=8,
                   help="parameter sets of the thermal row")
    p.add_argument("--open-thermal-nbar", type=float, default=1.0,
                   help="nbar of the thermal row (the target's is 1; --quick: 0.1, so that "
                        "mesolve's Fock space stays small)")


def quick_open_sizes(args: argparse.Namespace) -> None:
    args.open_times, args.open_tmax = 16, 2.0
    args.open_field_points = args.open_cavity_points = args.open_lossy_points = 4
    args.open_thermal_points, args.open_thermal_nbar = 2, 0.1


def rate_case(route: str) -> OpenCase:
    """The case ``bench.rates`` times for ``route`` (RATES of :mod:`qbfast.runner.plan`): every
    channel of the field model; the cavity's lossy cascade (gamma + kappa + gamma_phi, n = 7:
    the slower of its two regimes, so that tasks err on the short side); thermal nbar = 1."""
    sizes = {"main": 1, "qutip": 1, "qutip_full": 1}
    lossy = {**CAVITY_FIXED, "gamma": 0.1, "gamma_phi": 0.1, "gamma_c": 0.0, "kappa": 0.2}
    cases = {
        "open_field_drive": OpenCase(route, route, {**FIELD_FIXED, **FIELD_RATES}, _field_sweep,
                                     sizes),
        "open_field_full": OpenCase(route, route, {**FIELD_FIXED, **FIELD_RATES}, _field_sweep,
                                    sizes),
        "open_cavity": OpenCase(route, route, {"n": 7.0, **lossy}, _j2_sweep, sizes),
        "open_cavity_thermal": OpenCase(route, route, {"nbar": 1.0, **lossy, "gamma": 0.0},
                                        _j2_sweep, sizes),
    }
    return cases[route]
