"""Sweep throughput: in memory, the storage ceiling, and ``qbfast run`` with and without
[reduce]; plus the codecs of full-series stores for 2 and for 15 metrics.

    python -m bench.sweeps                      # 1e7 and 1e8 points, energy + ergotropy
    python -m bench.sweeps --points 1e7 --codecs          # + qbfast run per codec
    python -m bench.sweeps --grid many-metrics --codecs   # issue 9 item 7: 9.9e7 points,
                                                          # all 15 metrics, per codec

Grids (float32 storage): "cavity8": n = 1..8, J1 (21 values), J2 (61 values) and
T = N / 10248 times, metrics energy and ergotropy; "many-metrics": n = 1..64, J2 (193 values
in [-1, 2]), J1 (16 values in [0.5, 1.5]), t (500 values in [0, 20]), all 15 metrics.

1. ``qbfast.sweep`` in memory (float64, all cores; no storage; best of 3; "cavity8" only: the
   15-metric grid would take 12 GB);
2. the storage ceiling: a plain uncompressed zarr write of the same float32 arrays, same
   chunks, chunk by chunk (the data computed beforehand, untimed);
3. ``qbfast run`` (a LocalCluster, as the CLI starts it), full series, with the spec's default
   codec ("auto"), or with each codec (``--codecs``);
4. ``qbfast run`` with [reduce] stats = max, argmax, first_max (no series stored; "cavity8");

each run 3 times into a new store on the same cluster: the best "computing" time is reported
(as for the in-memory reference), next to the first run's, whose wall time also shows the
start-up (cluster, loading the kernels on the workers); and prints throughputs (points/s =
(parameter point, time) evaluations per second), ratios, bytes on disk per point and the peak
memory (max RSS) of each worker. Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

import qbfast
from qbfast import store
from qbfast.runner.driver import spec_codec
from qbfast.runner.spec import parse_spec
from qbfast.runner.tasks import available_cores

N_PARAMS = 8 * 21 * 61
CODECS = ("zstd", "blosc-lz4", "none")


def spec_text(points: float, reduce: bool, grid: str = "cavity8", codec: str = "auto") -> str:
    if grid == "many-metrics":
        text = f"""
model = "cavity"
dtype = "float32"
codec = "{codec}"
[params]
n = {list(range(1, 65))}
J2 = {{ start = -1.0, stop = 2.0, num = 193 }}
J1 = {{ start = 0.5, stop = 1.5, num = 16 }}
t = {{ start = 0.0, stop = 20.0, num = 500 }}
"""
    else:
        n_t = max(2, int(round(points / N_PARAMS)))
        text = f"""
model = "cavity"
metrics = ["energy", "ergotropy"]
dtype = "float32"
codec = "{codec}"
[params]
n = [1, 2, 3, 4, 5, 6, 7, 8]
J1 = {{ start = 0.0, stop = 2.0, num = 21 }}
J2 = {{ start = -1.0, stop = 2.0, num = 61 }}
t = {{ start = 0.0, stop = 20.0, num = {n_t} }}
"""
    if reduce:
        text += '[reduce]\nstats = ["max", "argmax", "first_max"]\n'
    return text


def du(path: Path) -> int:
    return store.bytes_on_disk(path)[0]


def _maxrss_mib() -> float:
    """Peak resident memory of this process (VmHWM: of this address space, unlike ru_maxrss,
    which a spawned worker inherits from the process that forked it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_memory(spec, repeats: int = 3) -> tuple[xr.Dataset, float]:
    """``qbfast.sweep`` of the grid: the best of ``repeats`` timings (the first call of a
    process also pays the page faults of its fresh output, 0.04-0.2 s at 1e7 points depending
    on huge pages: the best is the kernel's throughput, and the strictest reference)."""
    g = spec.grid
    kw = dict(metrics=list(g.metrics), **g.swept)
    qbfast.sweep("cavity", g.t[:2], **kw)  # load the kernel
    best = float("inf")
    for _ in range(repeats):
        ds = None  # free the previous output first
        start = time.perf_counter()
        ds = qbfast.sweep("cavity", g.t, **kw)
        best = min(best, time.perf_counter() - start)
    assert ds is not None  # repeats >= 1
    return ds, best


def plain_write(spec, path: Path) -> float:
    """Seconds to write the spec's float32 series uncompressed with zarr, chunk by chunk,
    chunks as the store's; the data of each chunk are computed first (untimed)."""
    import zarr

    from qbfast.runner.tasks import TaskContext, compute_block

    root = zarr.create_group(path, zarr_format=3, overwrite=True)
    arrays = {m: root.create_array(m, shape=spec.shape, chunks=spec.chunks, dtype=spec.dtype,
                                   compressors=None, fill_value=np.nan)
              for m in spec.grid.metrics}
    ctx = TaskContext(spec, spec.chunks, str(path), "", 0, "", "", {})
    total = 0.0
    for task in range(spec.n_chunks):
        slices = ctx.slices(task)
        data, _ = compute_block(spec, slices)
        data = {m: data[m].astype(spec.dtype) for m in arrays}
        start = time.perf_counter()
        for m, arr in arrays.items():
            arr[slices] = data[m]
        total += time.perf_counter() - start
    return total


def qbfast_run(text: str, name: str, path: Path, n_workers: int, threads: int,
               repeats: int = 3, durable: bool = True):
    """``repeats`` runs of the spec into a fresh store at ``path`` on one new LocalCluster.
    Returns (spec, the report with the shortest computing time, the first report, the first
    run's wall time, the workers' max RSS in MiB)."""
    from distributed import Client, LocalCluster

    from qbfast.runner.driver import execute

    spec = parse_spec(text, name=name)
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(n_workers)
        reports, wall = [], 0.0
        for i in range(repeats):
            start = time.perf_counter()
            reports.append(execute(spec, path, client, overwrite=True, durable=durable))
            if i == 0:
                wall = time.perf_counter() - start
        rss = client.run(_maxrss_mib)
    best = min(reports, key=lambda r: r.compute_s)
    return spec, best, reports[0], wall, sorted(rss.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweeps", description=__doc__)
    parser.add_argument("--points", type=float, nargs="+", default=[1e7, 1e8])
    parser.add_argument("--codecs", action="store_true",
                        help="qbfast run of the full series once per codec")
    parser.add_argument("--grid", choices=("cavity8", "many-metrics"), default="cavity8")
    parser.add_argument("--workers", type=int, default=None,
                        help="LocalCluster workers (default: one per core)")
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--no-fsync", action="store_true",
                        help="qbfast run without fsync of chunk files and journal entries "
                             "(durable=False: measures what the disk flushes cost)")
    args = parser.parse_args(argv)
    cores = available_cores()
    n_workers = args.workers or max(1, cores // args.threads_per_worker)
    tmp = Path(tempfile.mkdtemp(prefix="qbfast-bench-"))
    rows: list[dict] = []  # -> bench/results/sweeps.json (docs/performance.md)
    print(f"cores {cores}; LocalCluster {n_workers} workers x {args.threads_per_worker} "
          f"threads; grid {args.grid}")
    sizes = args.points if args.grid == "cavity8" else [0]
    try:
        for points in sizes:
            text = spec_text(points, reduce=False, grid=args.grid)
            spec = parse_spec(text, name="bench")
            n = spec.n_evaluations
            m = len(spec.grid.metrics)
            print(f"\n== {n:,} points {dict(zip(spec.dims, spec.shape))}, {m} metrics, chunks "
                  f"{spec.chunks} ({spec.n_chunks} tasks); default codec {spec_codec(spec)!r}")
            t_mem = None
            size_row: dict = {"table": "throughput" if args.grid == "cavity8" else args.grid,
                              "points": n, "metrics": m}
            rows.append(size_row)
            if args.grid == "cavity8":
                ds, t_mem = in_memory(spec)
                size_row["in_memory_points_per_s"] = n / t_mem
                print(f"qbfast.sweep in memory     {t_mem:7.3f} s  {n / t_mem / 1e6:7.2f} M "
                      f"points/s  (client max RSS {_maxrss_mib():.0f} MiB)")
                del ds
            t_zarr = plain_write(spec, tmp / "plain.zarr")
            b_zarr = du(tmp / "plain.zarr")
            size_row["plain_to_zarr_points_per_s"] = n / t_zarr
            shutil.rmtree(tmp / "plain.zarr")
            print(f"plain uncompressed zarr write (ceiling) {t_zarr:7.3f} s  "
                  f"{n / t_zarr / 1e6:7.2f} M points/s  {b_zarr / n:.3f} bytes/point")
            runs = [("qbfast run, series, codec " + c, False, c)
                    for c in (CODECS if args.codecs else ("auto",))]
            if args.grid == "cavity8":
                runs.append(("qbfast run, [reduce]", True, "auto"))
            for label, reduce, codec in runs:
                rtext = spec_text(points, reduce=reduce, grid=args.grid, codec=codec)
                rspec, report, first, wall, rss = qbfast_run(
                    rtext, "bench", tmp / "run.zarr", n_workers, args.threads_per_worker,
                    durable=not args.no_fsync)
                b = report.bytes_on_disk
                vs_mem = f"x{t_mem / report.compute_s:.2f} of in-memory, " if t_mem else ""
                if reduce or codec == "auto":
                    key = "reduce" if reduce else "series"
                    size_row.update({
                        f"run_{key}_points_per_s": n / report.compute_s,
                        f"run_{key}_first_points_per_s": n / first.compute_s,
                        f"run_{key}_tasks": rspec.n_chunks, f"run_{key}_bytes_per_point": b / n,
                        f"run_{key}_worker_max_rss_mib": max(rss)})
                else:
                    rows.append({"table": "codec", "points": n, "metrics": m, "codec": codec,
                                 "run_points_per_s": n / report.compute_s,
                                 "vs_uncompressed_ceiling": t_zarr / report.compute_s,
                                 "bytes_per_point": b / n})
                print(f"{label:<32} {report.compute_s:7.3f} s  "
                      f"{n / report.compute_s / 1e6:7.2f} M points/s computing, best of 3 "
                      f"(first run {n / first.compute_s / 1e6:.2f}, or {n / wall / 1e6:.2f} incl. "
                      f"start-up {wall - first.compute_s:.1f} s); {vs_mem}"
                      f"x{t_zarr / report.compute_s:.2f} of the ceiling; {b / n:.3f} bytes/point;"
                      f" worker max RSS {', '.join(f'{r:.0f}' for r in rss)} MiB; "
                      f"{rspec.n_chunks} tasks, codec {spec_codec(rspec)}")
                shutil.rmtree(tmp / "run.zarr")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from bench._results import record

    record("sweeps", argv, rows, variant=None if args.grid == "cavity8" else args.grid,
           notes=f"grid {args.grid}, float32 storage; LocalCluster {n_workers} workers x "
                 f"{args.threads_per_worker} threads; qbfast run: best of 3 runs on one "
                 "cluster (computing time), first run beside it; ceiling: a plain "
                 "uncompressed zarr write of the same arrays")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
