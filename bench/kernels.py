"""Throughput of qbfast's kernels against NumPy and QuTiP baselines: ``python -m bench.kernels``.

How to run (from the repository root, with the project's virtual environment active)::

    python -m bench.kernels            # full run, about 1-3 minutes on 2 cores (load dependent)
    python -m bench.kernels --quick    # small smoke run, a few seconds
    python -m bench.kernels --help     # grid sizes, repeats, which models, QuTiP options
    python -m bench.kernels --route staged   # qbfast rows in one block route (default auto)
    python -m bench.kernels --routes   # staged vs fused points/s per number of metrics: the
                                       # measurement behind qbfast.kernels.grid's thresholds
    python -m bench.kernels --open-only   # only the open-system rows (bench/open.py, issue 18)
    python -m bench.kernels --skip-open   # everything but them

What it measures. A *point* is one (parameter set, time) pair with all 15 metrics of
physics.md section 4 computed, so a grid of P parameter sets and T times is P*T points. For each
of the cavity model, the field model with protocol "drive" and the field model with protocol
"full" it prints points per second of

- ``qbfast.sweep`` through the public API with a reused ``out=`` buffer (warmed up first, so
  compile time and first-touch page faults are excluded; median of several repeats);
- the strongest NumPy-vectorized implementation we could write (``bench.baselines.*_numpy``:
  closed-form X state / closed-form product state / vectorized 4th-order Magnus), on one thread
  and, where it helps, chunks on a thread pool using every core;
- a plain density-matrix version with batched ``numpy.linalg.eigh`` (``*_eigh``);
- QuTiP ``sesolve`` returning the states only, and ``sesolve`` followed by QuTiP's metric
  functions (ptrace, expect, eigenenergies, entropy_vn, concurrence, purity). QuTiP is slow, so
  it runs on a few parameter sets (same times).

and the ratios qbfast/baseline. The main ratio divides qbfast's throughput on the main grid by
the baseline's (throughput is per point; the smaller baseline grids still batch thousands of
points, QuTiP has no batching); the "same grid" column reruns qbfast on the baseline's grid.
Every baseline's 15 metrics are compared with qbfast on its grid ("max dev" column; the NumPy
baselines are held to 1e-8 abs / 1e-6 rel by tests/bench/test_baselines.py). Implementations
are timed in interleaved rounds so that load from other processes hits all of them alike; the
machine line shows the load average at the start. Nothing is asserted: targets from the issue
are printed with the measured values.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
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
from qbfast.core import Grid
from qbfast.kernels.grid import (
    CAVITY_FUSED_MIN_METRICS,
    DRIVE_FUSED_MIN_METRICS,
    LOG_METRICS,
    ROUTES,
    _cavity_fused,
    _drive_fused,
)
from qbfast.params import METRIC_INDEX, METRIC_LIST, N_METRICS

METRIC_NAMES = [m.name for m in METRIC_LIST]


# --------------------------------------------------------------------------------------------
# grids
# --------------------------------------------------------------------------------------------

def cavity_params(n_points: int) -> dict[str, Any]:
    """About ``n_points`` parameter sets: n = 1..8 times a J2 sweep (J1 = 0.75)."""
    n_n = max(1, min(8, n_points))
    n_j2 = max(1, n_points // n_n)
    return {"n": list(range(1, n_n + 1)), "J2": np.linspace(0.0, 2.0, n_j2), "J1": 0.75}


def field_params(n_points: int) -> dict[str, Any]:
    """About ``n_points`` parameter sets: A in [0.5, 2] times B in [0, 2] (g = 0.5), so the
    default Magnus step 0.02/max(|A|+|B|, ...) varies 4x across the grid."""
    n_a = max(1, math.isqrt(max(n_points, 1)))
    n_b = max(1, n_points // n_a)
    return {"A": np.linspace(0.5, 2.0, n_a), "B": np.linspace(0.0, 2.0, n_b), "g": 0.5}


@dataclass
class Case:
    name: str
    model: str
    protocol: str | None
    t: np.ndarray
    params: Callable[[int], dict[str, Any]]
    sizes: dict[str, int]  # main / eigh / qutip / qutip_full parameter-set counts
    note: str = ""
    numpy_fn: Callable[..., np.ndarray] | None = None
    numpy_threads_ok: bool = True
    eigh_fn: Callable[..., np.ndarray] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def sweep_kwargs(self) -> dict[str, Any]:
        return {"protocol": self.protocol} if self.protocol else {}


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------

class Timer:
    """Median wall time per call of a callable, with an inner loop for very fast calls."""

    def __init__(self, fn: Callable[[], Any], min_time: float) -> None:
        self.fn = fn
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        self.inner = max(1, int(min_time / max(dt, 1e-9)))
        self.samples: list[float] = []

    def run(self) -> None:
        t0 = time.perf_counter()
        for _ in range(self.inner):
            self.fn()
        self.samples.append((time.perf_counter() - t0) / self.inner)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def interleaved(timers: list[Timer], rounds: int) -> None:
    for _ in range(rounds):
        for tm in timers:
            tm.run()


# --------------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------------

RATIO_METRICS = ("efficiency", "efficiency_incoherent")
WELL_CONDITIONED_ENERGY = 1e-6


def max_dev(a: np.ndarray, b: np.ndarray, names=METRIC_NAMES) -> str:
    """Worst metric by the isclose ratio |a-b| / (1e-8 + 1e-6 |b|) (NaN == NaN, NaN vs number
    is inf), shown as 'largest abs dev (metric)' with '!' when it exceeds 1e-8 abs / 1e-6 rel.

    The efficiencies are ratios by the energy and are compared where |energy| > 1e-6 only:
    near energy 0 (t = 0, or the energy crossing 0) their relative error is eps / energy.
    """
    conditioned = np.abs(b[names.index("energy")]) > WELL_CONDITIONED_ENERGY
    worst, worst_name, worst_abs = -1.0, "", 0.0
    for i, name in enumerate(names):
        x, y = a[i], b[i]
        if name in RATIO_METRICS:
            x, y = x[conditioned], y[conditioned]
        both_nan = np.isnan(x) & np.isnan(y)
        one_nan = np.isnan(x) ^ np.isnan(y)
        with np.errstate(invalid="ignore"):
            d = np.where(both_nan, 0.0, np.abs(x - y))
        d = np.where(one_nan, np.inf, d)
        ratio = d / (1e-8 + 1e-6 * np.nan_to_num(np.abs(y), nan=0.0))
        r = float(ratio.max()) if ratio.size else 0.0
        if r > worst:
            worst, worst_name, worst_abs = r, name, float(d.max()) if d.size else 0.0
    flag = "" if worst <= 1.0 else " !"
    return f"{worst_abs:.1e} {worst_name}{flag}"


def energy_dev(a: np.ndarray, b: np.ndarray) -> str:
    return f"{float(np.abs(a - b).max()):.1e} energy"


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------

def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:8.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:8.2f} k"
    return f"{x:8.2f}  "


def fmt_ratio(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}x"
    return f"{x:.2f}x"


def machine_line() -> str:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cores = os.cpu_count() or 1
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover
        pass
    layer: str
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not started"
    load = "/".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    import qutip

    return (f"machine: {cores} cores ({os.cpu_count()} online), {cpu}; numba {numba.__version__} "
            f"threads={numba.get_num_threads()} layer={layer}; numpy {np.__version__}; "
            f"qutip {qutip.__version__}; python {platform.python_version()}; "
            f"load avg {load} (1/5/15 min)")


def describe(params: dict[str, Any]) -> str:
    """'n = 1..8 (8) x J2 in [0, 2] (128), J1 = 0.75'."""
    swept, fixed = [], []
    for k, v in params.items():
        if np.ndim(v) == 0:
            fixed.append(f"{k} = {v:g}")
        else:
            v = np.asarray(v, dtype=float)
            swept.append(f"{k} in [{v.min():g}, {v.max():g}] ({v.size})")
    return " x ".join(swept) + (", " if fixed and swept else "") + ", ".join(fixed)


@dataclass
class Row:
    label: str
    n_params: int
    n_t: int
    seconds: float
    same_grid_qbfast: float | None  # qbfast points/s on this row's grid
    dev: str

    @property
    def points(self) -> int:
        return self.n_params * self.n_t

    @property
    def rate(self) -> float:
        return self.points / self.seconds


def print_table(title: str, rows: list[Row], main_rate: float) -> None:
    print(f"\n== {title}")
    head = (f"{'implementation':<42} {'grid P x T':>13} {'points':>10} {'s/call':>9} "
            f"{'points/s':>11} {'qbfast/impl':>12} {'same grid':>10}  max dev vs qbfast")
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = main_rate / r.rate
        same = "" if r.same_grid_qbfast is None else fmt_ratio(r.same_grid_qbfast / r.rate)
        qb = r.same_grid_qbfast is None and r.label.startswith("qbfast")
        print(f"{r.label:<42} {f'{r.n_params} x {r.n_t}':>13} {r.points:>10,} {r.seconds:>9.4f} "
              f"{fmt_rate(r.rate):>11} {'' if qb else fmt_ratio(ratio):>12} {same:>10}  {r.dev}")


# --------------------------------------------------------------------------------------------
# one model
# --------------------------------------------------------------------------------------------

def qbfast_runner(case: Case, params: dict[str, Any], route: str = "auto"
                  ) -> tuple[Callable[[], Any], np.ndarray, int]:
    """A closure calling qbfast.sweep with a reused out buffer (``route`` other than "auto":
    ``Grid.compute(out, route=route)``, the sweep's kernel call); the buffer as (15, P, T)."""
    table, sizes = bl.parameter_table(case.model, params)
    out = np.empty((N_METRICS, *sizes, case.t.size))
    kw = {**case.sweep_kwargs(), **params}
    if route != "auto":
        grid = Grid(case.model, case.t, **kw)
        flat = out.reshape(N_METRICS, grid.n_points, case.t.size)
        return (lambda: grid.compute(flat, route=route)), flat, grid.n_points

    def call() -> Any:
        return qbfast.sweep(case.model, case.t, out=out, **kw)

    return call, out.reshape(N_METRICS, table.shape[0], case.t.size), table.shape[0]


def bench_case(case: Case, args: argparse.Namespace) -> dict[str, float]:
    """Measure one model; print its table; return the rates used for the targets."""
    t, n_t = case.t, case.t.size
    started = time.perf_counter()
    rows: list[Row] = []
    rates: dict[str, float] = {}

    # main grid: qbfast and the strongest NumPy, interleaved
    params = case.params(case.sizes["main"])
    table, _ = bl.parameter_table(case.model, params)
    qcall, qout, n_main = qbfast_runner(case, params, args.route)
    qcall()  # compile (or load from cache) and touch the buffer
    timers = [Timer(qcall, args.min_time)]
    ref = qout.copy()
    numpy_variants: list[tuple[str, Timer, np.ndarray]] = []
    if case.numpy_fn is not None and not args.skip_numpy:
        threads = [1]
        cores = numba.get_num_threads()
        if case.numpy_threads_ok and cores > 1 and args.numpy_threads:
            threads.append(cores)
        for th in threads:
            nout = np.empty_like(qout)
            kw = {"threads": th} if case.numpy_threads_ok else {}
            fn = functools.partial(case.numpy_fn, table, t, nout, **kw)
            fn()
            numpy_variants.append((f"{th} thread{'s' if th > 1 else ''}", Timer(fn, args.min_time),
                                   nout))
            timers.append(numpy_variants[-1][1])
    interleaved(timers, args.repeats)
    main_rate = n_main * n_t / timers[0].median
    rates["qbfast"] = main_rate
    label = ("qbfast.sweep (public API, reused out=)" if args.route == "auto"
             else f"qbfast Grid.compute(route={args.route!r})")
    rows.append(Row(label, n_main, n_t, timers[0].median, None,
                    f"(reference; {numba.get_num_threads()} threads)"))
    best = 0.0
    for label, tm, nout in numpy_variants:
        rows.append(Row(f"numpy {case.extra['numpy_label']} ({label})", n_main, n_t, tm.median,
                        main_rate, max_dev(nout, ref)))
        best = max(best, rows[-1].rate)
    if numpy_variants:
        rates["numpy"] = best
    del ref

    # plain batched eigh on a smaller grid
    if case.eigh_fn is not None and not args.skip_eigh:
        params = case.params(case.sizes["eigh"])
        table, _ = bl.parameter_table(case.model, params)
        qcall, qout, n_p = qbfast_runner(case, params, args.route)
        qcall()
        eout = np.empty_like(qout)
        tm_e = Timer(functools.partial(case.eigh_fn, table, t, eout), args.min_time)
        tm_q = Timer(qcall, args.min_time)
        interleaved([tm_q, tm_e], max(1, args.repeats // 2))
        rows.append(Row("numpy batched eigh on rho_B (4x4 per point)", n_p, n_t, tm_e.median,
                        n_p * n_t / tm_q.median, max_dev(eout, qout)))
        rates["eigh"] = rows[-1].rate

    # QuTiP
    if not args.skip_qutip:
        opts = {"method": args.qutip_method, "atol": args.qutip_atol, "rtol": args.qutip_rtol}
        if case.model == "cavity":
            opts["method"] = args.qutip_cavity_method

        def states_fn(tab: np.ndarray, times: np.ndarray = t) -> list[list[Any]]:
            if case.model == "cavity":
                return bl.qutip_cavity_states(tab, times, opts)
            assert case.protocol is not None  # the field model's cases name their protocol
            return bl.qutip_field_states(tab, times, case.protocol, opts)

        # warm up QuTiP (imports, solver set-up) on one point and a few times
        states_fn(bl.parameter_table(case.model, case.params(1))[0], t[:5])
        for key, label in (("qutip", "states only"), ("qutip_full", "+ QuTiP metric functions")):
            params = case.params(case.sizes[key])
            table, _ = bl.parameter_table(case.model, params)
            qcall, qout, n_p = qbfast_runner(case, params, args.route)
            qcall()
            tm_q = Timer(qcall, args.min_time)
            samples, result = [], None
            for _ in range(args.qutip_repeats):
                t0 = time.perf_counter()
                states = states_fn(table)
                if key == "qutip_full":
                    result = bl.qutip_metrics(case.model, table, t, states)
                samples.append(time.perf_counter() - t0)
                tm_q.run()
            sec = statistics.median(samples)
            if key == "qutip":
                dev = energy_dev(bl.qutip_energy(case.model, table, states), qout[0])
            else:
                assert result is not None  # computed in every round
                dev = max_dev(result, qout)
            rows.append(Row(f"qutip sesolve {label}", n_p, n_t, sec, n_p * n_t / tm_q.median,
                            dev))
            rates[key] = rows[-1].rate

    title = (f"{case.name}: {case.note}\n   t = linspace({t[0]:g}, {t[-1]:g}, {n_t}); "
             f"main grid {describe(case.params(case.sizes['main']))}; "
             f"measured in {time.perf_counter() - started:.1f} s")
    print_table(title, rows, main_rate)
    sys.stdout.flush()
    return rates


# --------------------------------------------------------------------------------------------
# the two block routes (--routes)
# --------------------------------------------------------------------------------------------

#: Metric orders whose prefixes are the metric sets of ``--routes``: "log first" puts a metric
#: that needs the logarithms (entropy_battery) first, so every prefix holds one (the cavity's
#: "auto" takes the fused route only then); "log last" holds none in its first 10.
ROUTE_ORDERS = {
    "log first": ("entropy_battery",
                  *(m for m in METRIC_NAMES if METRIC_INDEX[m] not in LOG_METRICS),
                  *(m for m in METRIC_NAMES
                    if METRIC_INDEX[m] in LOG_METRICS and m != "entropy_battery")),
    "log last": (*(m for m in METRIC_NAMES if METRIC_INDEX[m] not in LOG_METRICS),
                 *(m for m in METRIC_NAMES if METRIC_INDEX[m] in LOG_METRICS)),
}


def _route_timer(grid: Grid, out: np.ndarray, route: str, min_time: float) -> Timer:
    """A Timer of ``grid.compute(out, route=route)``."""
    return Timer(lambda: grid.compute(out, route=route), min_time)


def bench_routes(args: argparse.Namespace) -> None:
    """Points/s of the staged and the fused route (``Grid.compute(out, route=...)``) for 1..15
    requested metrics, on the cavity and field "drive" grids of ``--route-points`` parameter
    sets (times as the main run), both routes timed in interleaved rounds; the fused/staged
    ratio is what CAVITY_FUSED_MIN_METRICS / DRIVE_FUSED_MIN_METRICS are read from. A point =
    (parameter set, time) with the requested metrics only."""
    cases = [c for c in build_cases(args) if c.name in ("cavity", "field-drive")]
    thresholds = {"cavity": CAVITY_FUSED_MIN_METRICS, "field-drive": DRIVE_FUSED_MIN_METRICS}
    choose = {"cavity": _cavity_fused, "field-drive": _drive_fused}
    for case in cases:
        params = case.params(args.route_points)
        print(f"\n== {case.name}: route staged vs fused, t = linspace({case.t[0]:g}, "
              f"{case.t[-1]:g}, {case.t.size}), grid {describe(params)}; auto: fused from "
              f"{thresholds[case.name]} metrics"
              + (" with a log metric among them" if case.name == "cavity" else ""))
        head = (f"{'metric order':<10} {'n':>3} {'staged points/s':>16} {'fused points/s':>15} "
                f"{'fused/staged':>13} {'auto takes':>11}")
        print(head)
        print("-" * len(head))
        for order, names in ROUTE_ORDERS.items():
            for n in range(1, len(names) + 1):
                grid = Grid(case.model, case.t, metrics=names[:n], **case.sweep_kwargs(),
                            **params)
                points = grid.n_points * grid.t.size
                out = np.empty((n, grid.n_points, grid.t.size))
                timers = {route: _route_timer(grid, out, route, args.min_time)
                          for route in ("staged", "fused")}
                interleaved(list(timers.values()), args.repeats)
                staged, fused = (points / timers[r].median for r in ("staged", "fused"))
                slot = grid.kernel_inputs()[2]
                auto = "fused" if choose[case.name](slot, ROUTES["auto"]) else "staged"
                print(f"{order:<10} {n:>3} {fmt_rate(staged):>16} {fmt_rate(fused):>15} "
                      f"{fmt_ratio(fused / staged):>13} {auto:>11}")
                sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def build_cases(args: argparse.Namespace) -> list[Case]:
    cases = [
        Case("cavity", "cavity", None, np.linspace(0.0, args.cavity_tmax, args.cavity_times),
             cavity_params,
             {"main": args.cavity_points, "eigh": args.eigh_points, "qutip": args.qutip_points,
              "qutip_full": args.qutip_full_points},
             note="exact in the 4-state sector; QuTiP sesolve in the 4-state sector (eq. 24), "
                  f"method={args.qutip_cavity_method!r}, metrics after embedding the kets in "
                  "Fock(n+1) x 2 x 2 and ptrace",
             numpy_fn=bl.cavity_numpy, eigh_fn=bl.cavity_eigh,
             extra={"numpy_label": "closed-form X state"}),
        Case("field-drive", "field", "drive", np.linspace(0.0, args.field_tmax, args.drive_times),
             field_params,
             {"main": args.drive_points, "eigh": args.eigh_points, "qutip": args.qutip_points,
              "qutip_full": args.qutip_full_points},
             note="closed form (eq. 16); QuTiP sesolve with H_a(t) (Python-function coefficient), "
                  f"{args.qutip_method} atol={args.qutip_atol:g} rtol={args.qutip_rtol:g}",
             numpy_fn=bl.field_drive_numpy, eigh_fn=bl.field_drive_eigh,
             extra={"numpy_label": "closed-form product state"}),
        Case("field-full", "field", "full", np.linspace(0.0, args.field_tmax, args.full_times),
             field_params,
             {"main": args.full_points, "eigh": min(args.full_points, args.full_eigh_points),
              "qutip": args.qutip_points, "qutip_full": args.qutip_full_points},
             note="H_a(t) + H_b, qbfast 4th-order Magnus (default step, ~1e-9); QuTiP sesolve "
                  f"{args.qutip_method} atol={args.qutip_atol:g} rtol={args.qutip_rtol:g}",
             numpy_fn=bl.field_full_numpy, numpy_threads_ok=False, eigh_fn=bl.field_full_eigh,
             extra={"numpy_label": "vectorized Magnus-4"}),
    ]
    return [c for c in cases if c.name in args.models]


# --------------------------------------------------------------------------------------------
# cavity chargers in coherent and thermal states (issue 11)
# --------------------------------------------------------------------------------------------

CHARGER_NBARS = (1.0, 10.0, 100.0)


def charger_params(charger: str, nbar: float, n_points: int) -> dict[str, Any]:
    """``n_points`` parameter sets at one nbar: a J2 sweep (J1 = 0.75, off-resonant wa)."""
    return {"nbar": nbar, "J2": np.linspace(0.0, 2.0, n_points), "J1": 0.75, "omega_a": 1.1}


def qutip_charger_states(charger: str, nbar: float, t: np.ndarray, params: dict[str, float],
                         with_metrics: bool) -> list[Any]:
    """The brute force: the full Tavis-Cummings H on (Fock cutoff) x 2 qubits from QuTiP
    operators, one diagonalization, every state (the thermal one a sum over its Fock
    components), the cavity traced out; with ``with_metrics`` QuTiP's metric functions on
    each rho_B. Cutoff: the kernel's window end + 12 (rho_B converged to < 1e-12,
    tests/test_chargers_reference.py)."""
    import qutip

    from qbfast.kernels.chargers import sector_window
    _, hi = sector_window(charger == "thermal", nbar)
    dim = int(hi) + 12
    iq = qutip.qeye(2)
    a = qutip.tensor(qutip.destroy(dim), iq, iq)
    sp = [qutip.tensor(qutip.qeye(dim), qutip.sigmap(), iq),
          qutip.tensor(qutip.qeye(dim), iq, qutip.sigmap())]
    sz = [qutip.tensor(qutip.qeye(dim), qutip.sigmaz(), iq),
          qutip.tensor(qutip.qeye(dim), iq, qutip.sigmaz())]
    sx = [qutip.tensor(qutip.qeye(dim), qutip.sigmax(), iq),
          qutip.tensor(qutip.qeye(dim), iq, qutip.sigmax())]
    sy = [qutip.tensor(qutip.qeye(dim), qutip.sigmay(), iq),
          qutip.tensor(qutip.qeye(dim), iq, qutip.sigmay())]
    d, j1, j2 = params["Delta"], params["J1"], params["J2"]
    h = (params["omega_a"] * a.dag() * a
         + params["omega_g"] * sum(s * a + s.dag() * a.dag() for s in sp)
         + (d / 2) * (sz[0] + sz[1]) + d * (j1 * (sx[0] * sx[1] + sy[0] * sy[1])
                                            + j2 * sz[0] * sz[1]))
    energies, vecs = np.linalg.eigh(h.full())
    gg = qutip.tensor(qutip.basis(2, 1), qutip.basis(2, 1))
    if charger == "coherent":
        kets = [(1.0, qutip.tensor(qutip.coherent(dim, np.sqrt(nbar), method="analytic"), gg))]
    else:
        pn = np.diag(qutip.thermal_dm(dim, nbar, method="analytic").full()).real
        kets = [(p, qutip.tensor(qutip.basis(dim, k), gg)) for k, p in enumerate(pn) if p > 1e-30]
    coeffs = [(p, vecs.conj().T @ k.full().ravel()) for p, k in kets]
    hb_matrix = np.diag([d * (1 + j2), -j2 * d, -j2 * d, d * (j2 - 1)]).astype(complex)
    hb_matrix[1, 2] = hb_matrix[2, 1] = 2 * j1 * d
    hb = qutip.Qobj(hb_matrix, dims=[[2, 2], [2, 2]])
    out = []
    for tk in t:
        phase = np.exp(-1j * energies * tk)
        rho: Any = 0
        for p, c in coeffs:
            psi = qutip.Qobj((vecs @ (phase * c)).reshape(-1, 1), dims=[[dim, 2, 2], [1, 1, 1]])
            rho = rho + p * psi.ptrace([1, 2])
        if with_metrics:
            out.append((qutip.expect(hb, rho), qutip.entropy_vn(rho, base=2),
                        qutip.entropy_vn(rho.ptrace(0), base=2), qutip.concurrence(rho),
                        (rho * rho).tr(), rho.eigenenergies()))
        else:
            out.append(rho)
    return out


def bench_chargers(args: argparse.Namespace) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Rows: coherent and thermal at nbar = 1, 10, 100 (API, reused out, all 15 metrics),
    with the sectors per point and the time per (point, sector) per thread; the Fock kernel
    at n = 10 on the same grid; the QuTiP brute force (states only, states + metrics) at
    nbar = 10. Returns the rates by label and the rows to record (table "cavity chargers")."""
    from qbfast.kernels.chargers import sector_window

    threads = numba.get_num_threads()
    t = np.linspace(0.0, args.charger_tmax, args.charger_times)
    print(f"\n== cavity chargers (issue 11): {args.charger_points} parameter sets x "
          f"{t.size} times, all 15 metrics, {threads} threads")
    print(f"  {'case':<26}{'sectors':>9}{'points/s':>16}{'ns/(point,sector)/thread':>28}")
    rates: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    table = "cavity chargers (issue 11)"

    def timed(fn: Callable[[], Any]) -> float:
        timer = Timer(fn, args.min_time)
        interleaved([timer], args.repeats)
        return timer.median

    for charger in ("coherent", "thermal"):
        for nbar in CHARGER_NBARS:
            n_points = args.charger_points if not (charger == "thermal" and nbar >= 100) \
                else max(1, args.charger_points // 8)
            kw = charger_params(charger, nbar, n_points)
            out = np.empty((N_METRICS, n_points, t.size))
            qbfast.sweep("cavity", t[:2], charger=charger, **kw)  # compile / warm
            seconds = timed(functools.partial(qbfast.sweep, "cavity", t, charger=charger,
                                              out=out, **kw))
            lo, hi = sector_window(charger == "thermal", nbar)
            sectors = int(hi - lo + 1)
            rate = n_points * t.size / seconds
            rates[f"{charger} nbar={nbar:g}"] = rate
            per = threads / rate / sectors * 1e9
            rates[f"{charger} nbar={nbar:g} ns per sector"] = per
            print(f"  {charger + f' nbar={nbar:g}':<26}{sectors:>9}{fmt_rate(rate):>16}"
                  f"{per:>28.2f}")
            rows.append({"table": table, "case": f"{charger} nbar={nbar:g}",
                         "numba_threads": threads, "points": n_points * t.size,
                         "sectors": sectors, "qbfast": rate,
                         "ns per (point, sector) per thread": per})
    kw = {"n": 10, "J2": np.linspace(0.0, 2.0, args.charger_points), "J1": 0.75, "omega_a": 1.1}
    out = np.empty((N_METRICS, args.charger_points, t.size))
    seconds = timed(lambda: qbfast.sweep("cavity", t, out=out, **kw))
    rates["fock n=10"] = args.charger_points * t.size / seconds
    print(f"  {'fock n=10':<26}{1:>9}{fmt_rate(rates['fock n=10']):>16}")
    rows.append({"table": table, "case": "fock n=10", "numba_threads": threads,
                 "points": args.charger_points * t.size, "sectors": 1,
                 "qbfast": rates["fock n=10"]})
    if not args.skip_qutip:
        t_q = t[: args.charger_qutip_times]
        base = {"J1": 0.75, "J2": 0.5, "omega_g": 1.0, "omega_a": 1.1, "Delta": 1.0}
        for charger in ("coherent", "thermal"):
            # --quick: the states+metrics baseline alone (the thermal one is the slow half)
            for with_metrics in ((True,) if args.quick else (False, True)):
                label = f"QuTiP {charger} nbar=10 " + ("states+metrics" if with_metrics
                                                        else "states")
                t0 = time.perf_counter()
                qutip_charger_states(charger, 10.0, t_q, base, with_metrics)
                rate = t_q.size / (time.perf_counter() - t0)
                rates[label] = rate
                rows.append({"table": table, "case": label, "numba_threads": 1,
                             "points": t_q.size, "qutip": rate})
                print(f"  {label:<40}{fmt_rate(rate):>16}   (1 parameter set x {t_q.size} "
                      "times, cutoff = window end + 12)")
    return rates, rows


def charger_targets(r: dict[str, float], target: Callable[[str, float | None, float, str],
                                                         None]) -> None:
    """The issue's charger targets from :func:`bench_chargers`' rates."""
    target("coherent nbar=10 >= 2 M points/s", r.get("coherent nbar=10"), 2e6, "rate")
    target("thermal nbar=10 >= 0.5 M points/s", r.get("thermal nbar=10"), 0.5e6, "rate")
    for c in ("coherent", "thermal"):
        a, b = r.get(f"{c} nbar=100 ns per sector"), r.get(f"{c} nbar=10 ns per sector")
        target(f"{c}: 1.5 x (ns/sector at 100) / (at 10) >= 1",
               1.5 * b / a if a and b else None, 1.0,
               "x")
        q = r.get(f"QuTiP {c} nbar=10 states")
        target(f"{c} nbar=10: qbfast/QuTiP states-only >= 300x",
               r[f"{c} nbar=10"] / q if q else None, 300, "x")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.kernels", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small smoke run (overrides the sizes below with tiny ones)")
    p.add_argument("--models", nargs="+", default=["cavity", "field-drive", "field-full"],
                   choices=["cavity", "field-drive", "field-full"])
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (median reported)")
    p.add_argument("--min-time", type=float, default=0.05,
                   help="seconds per timed sample; fast calls are looped to reach it")
    p.add_argument("--threads", type=int, default=None, help="numba threads (default: all)")
    p.add_argument("--cavity-points", type=int, default=1024, help="cavity parameter sets")
    p.add_argument("--cavity-times", type=int, default=2048)
    p.add_argument("--cavity-tmax", type=float, default=20.0)
    p.add_argument("--drive-points", type=int, default=1024, help="field drive parameter sets")
    p.add_argument("--drive-times", type=int, default=2048)
    p.add_argument("--full-points", type=int, default=64, help="field full parameter sets")
    p.add_argument("--full-times", type=int, default=1000)
    p.add_argument("--field-tmax", type=float, default=10.0)
    p.add_argument("--eigh-points", type=int, default=16,
                   help="parameter sets for the batched-eigh baseline (cavity, drive)")
    p.add_argument("--full-eigh-points", type=int, default=16,
                   help="parameter sets for the batched-eigh baseline (field full)")
    p.add_argument("--qutip-points", type=int, default=4, help="parameter sets, QuTiP states")
    p.add_argument("--qutip-full-points", type=int, default=1,
                   help="parameter sets, QuTiP states + metric functions")
    p.add_argument("--qutip-repeats", type=int, default=3)
    p.add_argument("--qutip-method", default=bl.QUTIP_OPTIONS["method"],
                   help="sesolve method for the field model")
    p.add_argument("--qutip-cavity-method", default=bl.QUTIP_CAVITY_METHOD,
                   help="sesolve method for the cavity (time-independent H; 'diag' is exact)")
    p.add_argument("--qutip-atol", type=float, default=bl.QUTIP_OPTIONS["atol"])
    p.add_argument("--qutip-rtol", type=float, default=bl.QUTIP_OPTIONS["rtol"])
    p.add_argument("--no-numpy-threads", dest="numpy_threads", action="store_false",
                   help="skip the thread-pool NumPy variant")
    p.add_argument("--skip-numpy", action="store_true")
    p.add_argument("--skip-eigh", action="store_true")
    p.add_argument("--skip-qutip", action="store_true")
    p.add_argument("--skip-chargers", action="store_true", help="skip the charger rows")
    p.add_argument("--chargers-only", action="store_true",
                   help="only the charger rows (no model cases; recorded in "
                        "bench/results/kernels-chargers.json)")
    p.add_argument("--charger-points", type=int, default=256,
                   help="parameter sets per charger row (thermal nbar=100: 1/8 of them)")
    p.add_argument("--charger-times", type=int, default=512)
    p.add_argument("--charger-tmax", type=float, default=10.0)
    p.add_argument("--charger-qutip-times", type=int, default=16)
    p.add_argument("--route", choices=list(ROUTES), default="auto",
                   help="block route of qbfast's cavity and field-drive kernels; other than "
                        "auto, qbfast's rows call Grid.compute(out, route=ROUTE)")
    p.add_argument("--routes", action="store_true",
                   help="instead of the comparison: staged vs fused points/s for 1..15 "
                        "metrics (the measurement behind the route thresholds)")
    p.add_argument("--route-points", type=int, default=256,
                   help="parameter sets of the --routes grids")
    from bench.open import add_open_arguments, quick_open_sizes

    add_open_arguments(p)
    args = p.parse_args(argv)
    if args.chargers_only:
        args.models = []
        args.skip_open = True
    if args.open_only:
        args.models = []
        args.skip_chargers = True
    if args.quick:
        args.cavity_points, args.cavity_times = 16, 64
        args.drive_points, args.drive_times = 16, 64
        args.full_points, args.full_times = 4, 20
        args.eigh_points = args.full_eigh_points = 2
        args.qutip_points, args.qutip_full_points = 1, 1
        args.cavity_tmax = args.field_tmax = 2.0
        args.repeats, args.qutip_repeats, args.min_time = 2, 1, 0.0
        args.charger_points, args.charger_times, args.charger_qutip_times = 4, 32, 2
        args.route_points = 16
        quick_open_sizes(args)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        numba.set_num_threads(args.threads)
    t_start = time.perf_counter()
    qbfast.sweep("cavity", [0.0, 1.0])  # start the threading layer for the machine line
    if args.routes:
        print("qbfast block routes (python -m bench.kernels --routes); points/s = parameter "
              "sets x times / s, requested metrics only, float64, median of "
              f"{args.repeats} interleaved rounds")
        print(machine_line())
        bench_routes(args)
        return
    print("qbfast kernel benchmark (python -m bench.kernels); points = parameter sets x times, "
          "all 15 metrics, float64")
    print(machine_line())
    print(f"qbfast {qbfast.__version__}; repeats={args.repeats} (median), qutip repeats="
          f"{args.qutip_repeats}; numpy baselines single-threaded unless marked; ratios = qbfast "
          "main-grid points/s / impl points/s ('same grid': qbfast rerun on the impl's grid)")
    results = {}
    for case in build_cases(args):
        results[case.name] = bench_case(case, args)
    chargers, charger_rows = ({}, []) if args.skip_chargers else bench_chargers(args)
    open_rows: list[dict[str, Any]] = []
    if not args.skip_open:
        from bench.open import bench_open

        open_rows, cavity_rate = bench_open(args, results.get("cavity", {}).get("qbfast"))
        if "cavity" not in results:  # measured by bench_open: recorded with the open rows
            open_rows.append({"table": "open systems: closed cavity reference",
                              "case": "cavity (bench.kernels' main cavity grid)",
                              "closed cavity kernel": cavity_rate})

    if results or chargers:
        print("\n== targets from the issue (2 cores, float64, 15 metrics); measured, not asserted"
              + ("  [--quick sizes: overhead-bound, not representative]" if args.quick else ""))

        def target(label: str, value: float | None, goal: float, unit: str) -> None:
            if value is None:
                print(f"  {label:<52} (not measured)")
                return
            shown = f"{value / 1e6:.2f} M points/s" if unit == "rate" else f"{value:,.1f}x"
            print(f"  {label:<52} {shown:>18}   {'met' if value >= goal else 'NOT met'}")

        cav = results.get("cavity", {})
        full = results.get("field-full", {})
        def ratio(r, k):
            return r["qbfast"] / r[k] if k in r else None
        target("cavity: qbfast >= 100 M points/s (API, reused out)", cav.get("qbfast"), 100e6,
               "rate")
        target("cavity: qbfast/strongest numpy >= 20x", ratio(cav, "numpy") if cav else None,
               20, "x")
        target("cavity: qbfast/QuTiP states-only >= 1000x",
               ratio(cav, "qutip") if cav else None, 1000, "x")
        target("field-full: qbfast/QuTiP states-only >= 30x",
               ratio(full, "qutip") if full else None, 30, "x")
        if chargers:
            charger_targets(chargers, target)
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.1f} s")
    # -> bench/results/kernels.json, rendered on docs/performance.md
    from bench._results import record

    rows: list[dict[str, Any]] = [{"case": k, "numba_threads": numba.get_num_threads(), **v}
                                  for k, v in results.items()]
    variant = "chargers" if args.chargers_only else "open" if args.open_only else None
    record("kernels", argv, rows + charger_rows + open_rows, smoke=args.quick,
           notes="points/s, all 15 metrics, float64", options=vars(args), variant=variant)


if __name__ == "__main__":
    main()
