"""Command-line interface: ``qbfast demo`` (more commands are added by the sweep engine)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    from . import sweep

    t = np.linspace(0.0, 20.0, 2001)
    j2 = np.linspace(-1.0, 2.0, 61)
    n = [1, 2, 4, 7, 8]
    sweep("cavity", t[:2], n=n, J2=j2)  # compile / load the cache
    start = time.perf_counter()
    ds = sweep("cavity", t, n=n, J2=j2)
    wall = time.perf_counter() - start
    points = ds.energy.size
    print(f"cavity sweep: dims {dict(ds.sizes)}, {points} points x {len(ds.data_vars)} metrics "
          f"in {wall:.3f} s ({points / wall / 1e6:.1f} M points/s)")
    for name in ("energy", "ergotropy"):
        da = ds[name]
        where = da.argmax(...)
        loc = {k: float(da[k][int(v)]) for k, v in where.items()}
        print(f"max {name} = {float(da.max()):.7g} at {loc}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qbfast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run an in-process demo sweep and print a summary")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
