"""Command-line glue of ``qbfast.analysis``: ``extrema``, ``corr``, ``claims``, ``plot``,
``figures``.

``add_commands(sub)`` adds the subcommands to the ``qbfast`` parser's subparsers; each sets
``func``, which returns the exit status. User errors (missing store, unknown metric, a
selection outside the coordinates, ...) print one line ``qbfast: error: ...`` on stderr and
return 2. Numbers are printed with 10 significant digits.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_commands"]

DIGITS = 10
DEFAULT_SPECS = "sweeps"


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.{DIGITS}g}"
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn ValueError/OSError (user errors) into one line on stderr and status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except BrokenPipeError:  # e.g. piped into head: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (ValueError, OSError) as e:
            text = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"qbfast: error: {text}", file=sys.stderr)
            return 2

    run.__doc__ = fn.__doc__
    return run


def _open(args: argparse.Namespace) -> Any:
    from .analysis import open_store, select
    from .analysis._io import merge_stores, parse_selection

    stores = args.store if isinstance(args.store, list) else [args.store]
    allow = bool(getattr(args, "allow_incomplete", False))
    ds = merge_stores([open_store(s, allow_incomplete=allow) for s in stores])
    return select(ds, parse_selection(getattr(args, "sel", None)))


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], csv_path: str | None) -> None:
    """Print an aligned table on stdout, or write it as CSV (then print where)."""
    rows = [[_fmt(v) for v in row] for row in rows]
    if csv_path:
        with open(csv_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
        print(f"wrote {len(rows)} rows to {csv_path}")
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)))


def _grid_rows(res: Any, columns: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    """One row per grid point: the coordinates, then the columns' values."""
    dims = [str(d) for d in res[columns[0]].dims]
    header = dims + list(columns)
    values = [np.asarray(res[c].transpose(*dims).values).ravel() for c in columns]
    coords = [np.asarray(res[d].values) for d in dims]
    rows = []
    for flat, index in enumerate(np.ndindex(*[c.size for c in coords])):
        rows.append([c[i].item() for c, i in zip(coords, index)] + [v[flat].item() for v in values])
    return header, rows


@_guard
def _extrema(args: argparse.Namespace) -> int:
    """Extrema along t of one metric per grid point."""
    from .analysis import extrema
    from .analysis.extrema import EXTREMA_SUFFIXES, REFINED

    ds = _open(args)
    res = extrema(ds, args.metric, refine=args.refine)
    if args.refine != "kernel":
        res = res.compute()
    suffixes = list(EXTREMA_SUFFIXES)
    if args.refine != "none":
        suffixes += [f"{suffix}{REFINED}" for suffix in EXTREMA_SUFFIXES]
    header, rows = _grid_rows(res, [f"{args.metric}_{suffix}" for suffix in suffixes])
    _table(header, rows, args.csv)
    return 0


@_guard
def _corr(args: argparse.Namespace) -> int:
    """Correlations of two metrics along t per grid point, and their summary."""
    from .analysis import correlation, correlation_summary

    ds = _open(args)
    res = correlation(ds, args.a, args.b).compute()
    if args.per_point or args.csv:
        header, rows = _grid_rows(res, ["pearson", "spearman", "count"])
        _table(header, rows, args.csv)
        if args.csv is None:
            print()
    summary = correlation_summary(res)
    print(f"correlation of {args.a} and {args.b} along t over "
          f"{int(summary.pearson.sel(stat='points'))} grid points:")
    stats = [str(s) for s in summary.stat.values]
    _table(["coefficient"] + stats,
           [[name] + [float(v) for v in summary[name].values] for name in ("pearson", "spearman")],
           None)
    return 0


@_guard
def _claims(args: argparse.Namespace) -> int:
    """The paper's claims tested at every grid point."""
    from .analysis import claims, format_claims

    ds = _open(args)
    kwargs: dict[str, Any] = {"examples": args.examples}
    if args.time_tol is not None:
        kwargs["time_tol"] = args.time_tol
    checks = claims(ds, **kwargs)
    print(f"store{'s' if len(args.store) > 1 else ''} {', '.join(args.store)}")
    print(format_claims(checks, ds))
    return 0


@_guard
def _plot(args: argparse.Namespace) -> int:
    """One metric against t or a parameter, to a PNG."""
    from .analysis import open_store
    from .analysis._io import parse_selection
    from .analysis.plots import plot_metric

    ds = open_store(args.store, allow_incomplete=bool(getattr(args, "allow_incomplete", False)))
    out = args.out or f"{args.y}_vs_{args.x}.png"
    _check_png(out)
    plot_metric(ds, args.y, x=args.x, selection=parse_selection(args.sel), out=out)
    print(f"wrote {out}")
    return 0


@_guard
def _figures(args: argparse.Namespace) -> int:
    """The paper's Figs. 1 to 5 as PNGs."""
    from .figures import FIGURE_SPECS, figure_datasets, run_figure_specs, write_figures

    if args.n_t < 3:
        raise ValueError(f"--n-t: expected an integer >= 3, got {args.n_t}")
    specs = Path(args.specs if args.specs is not None else DEFAULT_SPECS)
    have = all((specs / f"{name}.toml").is_file() for name in FIGURE_SPECS)
    if args.in_process or (not have and args.specs is None):
        if not args.in_process:
            print(f"no figure specs in {specs}/; computing the figure data in-process")
        data = figure_datasets(args.n_t)
    else:
        missing = [name for name in FIGURE_SPECS if not (specs / f"{name}.toml").is_file()]
        if missing:
            raise ValueError(f"figure spec {str(specs / (missing[0] + '.toml'))!r}: no such file")
        stores = Path(args.stores) if args.stores else Path(args.out) / "stores"
        print(f"running the figure specs {specs}/fig*.toml into {stores}/")
        data = run_figure_specs(specs, stores)
    for p in write_figures(args.out, data):
        print(f"wrote {p}")
    from .figures import open_maps_datasets, write_open_maps

    print(f"wrote {write_open_maps(args.out, open_maps_datasets(n_t=min(args.n_t, 201)))}")
    return 0


def _check_png(path: str) -> None:
    if Path(path).suffix.lower() != ".png":
        raise ValueError(f"--out {path}: expected a .png file name")
    parent = Path(path).parent
    if not parent.is_dir():
        raise ValueError(f"--out {path}: directory {str(parent)!r} does not exist")


def _add_sel(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sel", nargs="+", action="extend", metavar="NAME=VALUE", default=[],
                   help="restrict to the nearest grid value of a dimension, e.g. --sel J2=1 n=7")


def _allow_incomplete(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-incomplete", action="store_true",
                   help="analyse a store with tasks missing (a warning says how many; the "
                        "missing region reads as NaN and is left out of every statistic)")


def add_commands(subparsers: Any) -> None:
    """Add the analysis subcommands to ``qbfast``'s argparse subparsers."""
    p = subparsers.add_parser(
        "extrema", help="extrema along t of a metric, per grid point",
        description="Maximum and minimum (value, time) and first local maximum and minimum "
                    "of a metric along t, for every grid point of a store. The columns "
                    "METRIC_max, METRIC_t_max, ... are sample values at grid times, the same "
                    "numbers as the [reduce] variables of those names in a store written by "
                    "qbfast run. --refine parabolic or kernel adds the columns "
                    "METRIC_..._refined: refined between grid times (parabola through the "
                    "sampled extremum and its neighbours; kernel: then Newton on the model "
                    "itself).")
    p.add_argument("store", help="a Zarr store written by qbfast run")
    _allow_incomplete(p)
    p.add_argument("--metric", required=True, help="the metric, e.g. energy")
    p.add_argument("--csv", metavar="FILE", help="write the table as CSV instead of printing")
    p.add_argument("--refine", choices=("none", "parabolic", "kernel"), default="none",
                   help="also print the refined extrema, METRIC_..._refined: parabolic "
                        "(between grid times, cheap) or kernel (to ~1e-10 in t by "
                        "re-evaluating the model: a few ms per extremum, for small "
                        "selections); default none")
    _add_sel(p)
    p.set_defaults(func=_extrema)

    p = subparsers.add_parser(
        "corr", help="Pearson and Spearman correlation of two metrics along t",
        description="Correlation of two metrics along t at each grid point, summarised over "
                    "the grid.")
    p.add_argument("store")
    _allow_incomplete(p)
    p.add_argument("a", metavar="METRIC")
    p.add_argument("b", metavar="METRIC")
    p.add_argument("--per-point", action="store_true", help="also print one row per grid point")
    p.add_argument("--csv", metavar="FILE", help="write the per-point table as CSV")
    _add_sel(p)
    p.set_defaults(func=_corr)

    p = subparsers.add_parser(
        "claims", help="test the paper's qualitative claims at every grid point",
        description="For each claim of the paper: at how many grid points it holds, and the "
                    "worst counterexamples with their coordinates. Several stores of one grid "
                    "(e.g. figure specs that split the metrics) are merged.")
    p.add_argument("store", nargs="+", help="one or more Zarr stores of the same grid")
    _allow_incomplete(p)
    p.add_argument("--time-tol", type=float, metavar="DT",
                   help="extrema closer than DT coincide (default: two grid steps)")
    p.add_argument("--examples", type=int, default=3, metavar="K",
                   help="counterexamples shown per check (default 3)")
    _add_sel(p)
    p.set_defaults(func=_claims)

    p = subparsers.add_parser(
        "plot", help="plot a metric against t or a parameter, to a PNG",
        description="Plot one metric against t (or a swept parameter); dimensions left over "
                    "must be fixed with --sel except one, drawn as lines or a colour map.")
    p.add_argument("store")
    _allow_incomplete(p)
    p.add_argument("--y", required=True, metavar="METRIC")
    p.add_argument("--x", default="t", metavar="DIM", help="the x axis (default t)")
    p.add_argument("--out", metavar="FILE.png", help="default: METRIC_vs_X.png")
    _add_sel(p)
    p.set_defaults(func=_plot)

    p = subparsers.add_parser(
        "figures", help="write the paper's Figs. 1 to 5 as PNGs",
        description="Run the paper's figure specs (sweeps/fig*.toml, and bare-accounting "
                    "variants of Figs. 3 and 4) into Zarr stores and write fig1.png ... "
                    "fig5.png from them (Figs. 3 and 4 in the interacting and the bare "
                    "accounting); without the specs, compute the same data in-process. The "
                    "efficiency is masked where the energy is small "
                    "(each caption states its rules; see docs/figures.md); and open_maps.png, "
                    "the open batteries' maximum ergotropy and steering over (gamma_phi, "
                    "gamma), computed in-process (docs/guide/open.md).")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--specs", metavar="DIR",
                   help=f"directory of the figure specs (default: {DEFAULT_SPECS}, if present)")
    p.add_argument("--stores", metavar="DIR", help="where the stores go (default: OUT/stores)")
    p.add_argument("--in-process", action="store_true",
                   help="compute the figure data with qbfast.sweep, without specs or stores")
    p.add_argument("--n-t", type=int, default=1001, metavar="N",
                   help="--in-process: time samples per curve (default 1001)")
    p.set_defaults(func=_figures)
