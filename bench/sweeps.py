"""Sweep throughput: in memory, the storage ceiling, and ``qbfast run`` with and without
[reduce]; plus the codec comparison that chose ``qbfast.store.CODEC``.

    python -m bench.sweeps                      # 1e7 and 1e8 points
    python -m bench.sweeps --points 1e7 --codecs

For each size N, on the cavity grid n = 1..8, J1 (21 values), J2 (61 values) and T = N / 10248
times, metrics energy and ergotropy, float32 storage:

1. ``qbfast.sweep`` in memory (float64, all cores; no storage; best of 3);
2. a plain ``to_zarr`` of those arrays cast to float32, same chunks and codec (storage ceiling:
   what writing costs without any computing);
3. ``qbfast run`` (a LocalCluster, as the CLI starts it), full series;
4. ``qbfast run`` with [reduce] stats = max, argmax, first_max (no series stored);

each run 3 times into a new store on the same cluster: the best "computing" time is reported
(as for the in-memory reference), next to the first run's, whose wall time also shows the
start-up (cluster, loading the kernels on the workers);

and prints throughputs (points/s = (parameter point, time) evaluations per second), ratios,
bytes on disk per point and the peak memory (max RSS) of each worker. Not a test: timings
depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import xarray as xr

import qbfast
from qbfast import store
from qbfast.runner.driver import available_cores, execute
from qbfast.runner.spec import parse_spec

N_PARAMS = 8 * 21 * 61


def spec_text(points: float, reduce: bool) -> str:
    n_t = max(2, round(points / N_PARAMS))
    text = f"""
model = "cavity"
metrics = ["energy", "ergotropy"]
dtype = "float32"
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
    return store.bytes_on_disk(path)


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


def plain_write(ds: xr.Dataset, spec, path: Path, codec) -> float:
    """to_zarr of float32 copies (cast not timed), chunks as the store's."""
    out = xr.Dataset({k: (v.dims, v.values.astype(spec.dtype)) for k, v in ds.data_vars.items()},
                     coords=ds.coords)
    enc = {k: {"chunks": spec.chunks, "compressors": (codec,) if codec is not None else None}
           for k in out.data_vars}
    start = time.perf_counter()
    out.to_zarr(path, mode="w", zarr_format=3, consolidated=False, encoding=enc)
    return time.perf_counter() - start


def qbfast_run(text: str, name: str, path: Path, n_workers: int, threads: int,
               repeats: int = 3):
    """``repeats`` runs of the spec into a fresh store at ``path`` on one new LocalCluster.
    Returns (spec, the report with the shortest computing time, the first report, the first
    run's wall time, the workers' max RSS in MiB)."""
    from distributed import Client, LocalCluster

    spec = parse_spec(text, name=name)
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(n_workers)
        reports, wall = [], 0.0
        for i in range(repeats):
            start = time.perf_counter()
            reports.append(execute(spec, path, client, overwrite=True))
            if i == 0:
                wall = time.perf_counter() - start
        rss = client.run(_maxrss_mib)
    best = min(reports, key=lambda r: r.compute_s)
    return spec, best, reports[0], wall, sorted(rss.values())


def codecs():
    from zarr.codecs import BloscCodec, ZstdCodec

    return {
        "none": None,
        "zstd level 0 (= 3) [zarr default]": ZstdCodec(level=0),
        "zstd level 1 [chosen]": ZstdCodec(level=1),
        "zstd level 5": ZstdCodec(level=5),
        "blosc lz4 shuffle": BloscCodec(typesize=4, cname="lz4", clevel=5, shuffle="shuffle"),
        "blosc zstd(1) shuffle": BloscCodec(typesize=4, cname="zstd", clevel=1,
                                            shuffle="shuffle"),
        "blosc zstd(3) bitshuffle": BloscCodec(typesize=4, cname="zstd", clevel=3,
                                               shuffle="bitshuffle"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweeps", description=__doc__)
    parser.add_argument("--points", type=float, nargs="+", default=[1e7, 1e8])
    parser.add_argument("--codecs", action="store_true", help="compare codecs (first size)")
    parser.add_argument("--workers", type=int, default=None,
                        help="LocalCluster workers (default: one per core)")
    parser.add_argument("--threads-per-worker", type=int, default=1)
    args = parser.parse_args(argv)
    cores = available_cores()
    n_workers = args.workers or max(1, cores // args.threads_per_worker)
    tmp = Path(tempfile.mkdtemp(prefix="qbfast-bench-"))
    print(f"cores {cores}; LocalCluster {n_workers} workers x {args.threads_per_worker} "
          f"threads; store codec {store.CODEC.to_dict()}")
    if args.codecs:
        print("(codec write times: best of 3; ratio = raw float32 bytes / bytes on disk)")
    try:
        for i, points in enumerate(args.points):
            text = spec_text(points, reduce=False)
            spec = parse_spec(text, name="bench")
            n = spec.n_evaluations
            print(f"\n== {n:,} points {dict(zip(spec.dims, spec.shape))}, chunks {spec.chunks} "
                  f"({spec.n_chunks} tasks)")
            ds, t_mem = in_memory(spec)
            print(f"qbfast.sweep in memory     {t_mem:7.3f} s  {n / t_mem / 1e6:7.2f} M points/s"
                  f"  (client max RSS {_maxrss_mib():.0f} MiB)")
            t_zarr = plain_write(ds, spec, tmp / "plain.zarr", store.CODEC)
            b_zarr = du(tmp / "plain.zarr")
            print(f"plain to_zarr (ceiling)    {t_zarr:7.3f} s  {n / t_zarr / 1e6:7.2f} M points/s"
                  f"  {b_zarr / n:.3f} bytes/point")
            if args.codecs and i == 0:
                for label, codec in codecs().items():
                    t_c = min(plain_write(ds, spec, tmp / "codec.zarr", codec) for _ in range(3))
                    b_c = du(tmp / "codec.zarr")
                    print(f"  codec {label:<32} write {t_c:6.2f} s "
                          f"{n / t_c / 1e6:7.2f} M points/s  {b_c / n:.3f} bytes/point "
                          f"(ratio {8 * n / b_c:.2f})")
                    shutil.rmtree(tmp / "codec.zarr")
            del ds
            shutil.rmtree(tmp / "plain.zarr")
            for label, reduce in (("qbfast run, series", False), ("qbfast run, [reduce]", True)):
                rtext = spec_text(points, reduce=reduce)
                rspec, report, first, wall, rss = qbfast_run(
                    rtext, "bench", tmp / "run.zarr", n_workers, args.threads_per_worker)
                b = report.bytes_on_disk
                print(f"{label:<26} {report.compute_s:7.3f} s  "
                      f"{n / report.compute_s / 1e6:7.2f} M points/s computing, best of 3 "
                      f"(first run {n / first.compute_s / 1e6:.2f}, or {n / wall / 1e6:.2f} incl. "
                      f"start-up {wall - first.compute_s:.1f} s); "
                      f"x{t_mem / report.compute_s:.2f} of in-memory, "
                      f"x{t_zarr / report.compute_s:.2f} of the ceiling; {b / n:.3f} bytes/point;"
                      f" worker max RSS {', '.join(f'{r:.0f}' for r in rss)} MiB; "
                      f"{rspec.n_chunks} tasks")
                shutil.rmtree(tmp / "run.zarr")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
