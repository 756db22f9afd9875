"""Scale of the orchestration: ``qbfast run`` on 1e12- and 1e13-point specs, for a bounded time.

    python -m bench.scale                     # both specs, killed after 60 s each
    python -m bench.scale --seconds 30 --specs 1e12

For each spec (issue 9's five-parameter field scan, [reduce] max/argmax/first_max of energy
and ergotropy over t = 10,000 times, float32; 40 values per parameter = 1.0e12 points, 64
values = 1.07e13), a real ``qbfast run`` process on a local cluster (one worker per core):

- the time from the command's start to the first finished task (its journal entry);
- the client's peak RSS (VmHWM of the ``qbfast run`` process: client and scheduler);
- the number of tasks, the points per task, and the files and bytes per file the finished store
  will have (from the plan and the chunk files written so far);
- the steady throughput (the least-squares slope of finished tasks against time, x points
  per task; finished tasks are DONE entries, or STAGED ones in a grouped store) against the
  in-memory ``[reduce]`` kernel on the grids of the same finished tasks (the work per point
  varies between tasks), run by as many single-threaded processes as workers at the same
  time (same run; beside it, task 0 timed alone on one thread x workers, the older figure);
- after a SIGKILL of the whole process group at ``--seconds``: the time of ``qbfast info``,
  and the time from a resumed run's start until it finishes a new task.

``--grouped-files N``: instead, the bytes per file of the 1.07e13 spec's grouped store, on
finished groups of its REAL data: the store is created with the planned group
(``qbfast.runner.plan``, automatic grouping on), N whole groups from the middle of the group
grid (group numbers ``n_groups // 2`` onward) are computed and staged in this process, task by
task as a worker does, then merged; it prints the mean size of their chunk files, and the mean
bytes per file of the complete store projected from them (chunk files at that mean, plus the
metadata, coordinate and journal files, per file of the complete store). About 64 tasks of
5 core-seconds per group; on a shared machine run it with ``NUMBA_NUM_THREADS=1``.

Then the scheduler's cost per task here (a flood of no-op tasks on a LocalCluster) and the
model of the efficiency at 100, 1,000 and 10,000 workers for the planned task sizes:
throughput = min(workers x rate per core, tasks per second the scheduler sustains x points per
task). Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SPEC = """model = "field"
metrics = ["energy", "ergotropy"]
dtype = "float32"
[params]
A = {{ start = 0.0, stop = 2.0, num = {n} }}
B = {{ start = 0.0, stop = 2.0, num = {n} }}
omega = {{ start = 0.5, stop = 2.0, num = {n} }}
g = {{ start = -1.0, stop = 1.0, num = {n} }}
Delta = {{ start = 0.5, stop = 1.5, num = {n} }}
t = {{ start = 0.0, stop = 20.0, num = 10000 }}
[reduce]
over = "t"
stats = ["max", "argmax", "first_max"]
"""
SIZES = {"1e12": 40, "1e13": 64}


def _vmhwm_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _finished(store: Path, entry: np.dtype, generation: int | None = None) -> np.ndarray:
    """The task numbers of the DONE entries (ungrouped stores) and STAGED entries (grouped:
    the task's staging file is written; its group's merge writes a GROUP_DONE entry, not a
    task) of the store's journals, of one generation if given."""
    from qbfast.store.record import DONE, STAGED

    jdir = store / "_qbfast" / "journal"
    try:
        names = os.listdir(jdir)
    except FileNotFoundError:
        return np.zeros(0, dtype=np.int64)
    found = []
    for name in names:
        if generation is not None and not name.startswith(f"g{generation:06d}-"):
            continue
        try:
            with open(jdir / name, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            continue
        e = np.frombuffer(raw, dtype=entry, count=len(raw) // entry.itemsize)
        found.append(e["task"][(e["kind"] == DONE) | (e["kind"] == STAGED)])
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _entries(store: Path, entry: np.dtype, generation: int | None = None) -> int:
    """Tasks finished so far (of one generation if given): see :func:`_finished`."""
    return len(_finished(store, entry, generation))


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "qbfast.cli", *args]


def _kill(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def in_memory_rate(text: str, threads: int) -> float:
    """Points/s of the fused [reduce] kernel on task 0's grid, in this process, on one
    thread, times ``threads`` (the older reference: one single-threaded task per core; the
    kernel's own threads split blocks of a few points at T = 10,000 and scale poorly)."""
    seconds, points = _tasks_in_memory(text, [0])
    return threads * points / seconds


def _tasks_in_memory(text: str, tasks: list[int], barrier: Any = None) -> tuple[float, int]:
    """The [reduce] kernel on the grids of ``tasks`` (as the spec's plan cuts them), on one
    thread of this process, started with the other processes (``barrier``, if given);
    returns its seconds and points."""
    import numba

    from qbfast.reduce import reduce_grid
    from qbfast.runner.spec import parse_spec

    numba.set_num_threads(1)
    spec = parse_spec(text)
    assert spec.reduce is not None
    stats, plan = spec.reduce.stats, spec.plan()
    metrics = ("energy", "ergotropy")
    grids = [spec.grid.subgrid(plan.task_slices(plan.task_coords(t))) for t in tasks]
    reduce_grid(grids[0].subgrid((slice(0, 1),) * (len(spec.dims) - 1) + (slice(0, 4),)),
                stats, metrics)  # load the kernel
    if barrier is not None:
        barrier.wait()
    start = time.perf_counter()
    for grid in grids:
        reduce_grid(grid, stats, metrics)
    return time.perf_counter() - start, sum(g.n_points * g.t.size for g in grids)


def in_memory_concurrent_rate(text: str, tasks: list[int], processes: int) -> float:
    """Points/s of ``processes`` single-threaded processes running the [reduce] kernel on the
    grids of ``tasks`` (dealt round-robin) at the same time (no Dask, no store): the same work
    as the run's, on all cores at once as in a run (shared caches, memory bandwidth, clock).
    The work per point differs between tasks (task 0 of these specs is among the cheapest:
    compare this rate with :func:`in_memory_rate`'s), so the reference must be the run's own
    tasks."""
    import multiprocessing as mp

    parts = [tasks[i::processes] for i in range(processes)]
    parts = [p for p in parts if p]
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(len(parts))
        with ctx.Pool(len(parts)) as pool:
            timed = pool.starmap(_tasks_in_memory, [(text, part, barrier) for part in parts])
    return sum(points for _, points in timed) / max(seconds for seconds, _ in timed)


def scheduler_tasks_per_s(n_tasks: int = 4000) -> float:
    """No-op tasks per second through a LocalCluster's scheduler (2 workers)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        client.gather(client.map(_noop, range(100), pure=False))  # warm
        start = time.perf_counter()
        client.gather(client.map(_noop, range(n_tasks), pure=False))
        return n_tasks / (time.perf_counter() - start)


def _noop(i: int) -> int:
    return i


def run_one(label: str, n: int, seconds: float, workdir: Path, workers: int) -> dict:
    from qbfast.runner.driver import store_layout
    from qbfast.runner.spec import parse_spec
    from qbfast.store.record import entry_dtype

    text = SPEC.format(n=n)
    spec_path = workdir / f"scale{label}.toml"
    spec_path.write_text(text)
    store = workdir / f"scale{label}.zarr"
    spec = parse_spec(text, name=spec_path.stem)
    layout = store_layout(spec)
    entry = entry_dtype(len(layout.variables), len(layout.peak_metrics))
    per_task = int(np.prod(spec.chunks))
    out: dict = {"spec": label, "points": spec.n_evaluations, "tasks": spec.n_chunks,
                 "points_per_task": per_task, "chunks": list(spec.chunks)}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(workdir / f"run{label}.log", "w")
    start = time.perf_counter()
    p = subprocess.Popen(_cmd("run", str(spec_path), "--store", str(store), "--workers",
                              str(workers)), stdout=log, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    first = None
    seen: list[tuple[float, int]] = []  # (time a new entry count was first seen, count)
    rss = float("nan")
    try:
        while time.perf_counter() - start < seconds and p.poll() is None:
            time.sleep(0.05)
            rss = max(_vmhwm_mib(p.pid), rss) if rss == rss else _vmhwm_mib(p.pid)
            k = _entries(store, entry)
            if k and (not seen or k > seen[-1][1]):
                seen.append((time.perf_counter(), k))
                if first is None:
                    first = seen[0][0]
        rss = _vmhwm_mib(p.pid) if p.poll() is None else rss
    finally:
        _kill(p)
        log.close()
    out["first_task_s"] = None if first is None else first - start
    out["client_peak_rss_mib"] = rss
    if len(seen) >= 3:
        # the slope of finished tasks against time (least squares over every new count):
        # W workers finish their tasks in W interleaved sequences, so a difference between
        # the first finish and the end of the run (mid-task) is biased low by up to a task
        # per worker; the slope is not
        ts = np.array([t for t, _ in seen])
        ns = np.array([n for _, n in seen], dtype=float)
        out["steady_points_per_s"] = float(np.polyfit(ts, ns, 1)[0]) * per_task
        out["steady_tasks_measured"] = int(ns[-1])
    # files and bytes
    chunk_files = [f for v in layout.variables for f in (store / v.name).glob("c.*")
                   if not f.name.endswith(".partial")]
    mean_file = float(np.mean([f.stat().st_size for f in chunk_files])) if chunk_files else None
    storage_chunks = int(np.prod([-(-n // c) for n, c in zip(spec.shape[:-1],
                                                               layout.storage_chunks[:-1])]))
    out["tasks_per_storage_chunk"] = int(np.prod(spec.group))
    files = storage_chunks * len(layout.variables) + 3 * len(spec.dims) \
        + len(layout.variables) + 3 + workers
    out["files_when_complete"] = files
    out["files_per_1e9_points"] = files / spec.n_evaluations * 1e9
    out["mean_chunk_file_bytes"] = mean_file
    finished = sorted({int(t) for t in _finished(store, entry)})  # the run's work
    # info on the partial store
    t0 = time.perf_counter()
    r = subprocess.run(_cmd("info", str(store)), capture_output=True, text=True)
    out["info_s"] = time.perf_counter() - t0
    out["info_tasks_line"] = next((ln for ln in r.stdout.splitlines()
                                   if ln.startswith("tasks")), r.stderr.strip()[-200:])
    # resume until a new task is finished
    gens = [int(x.name[1:7]) for x in (store / "_qbfast" / "journal").glob("g*.log")]
    gen = max(gens, default=0) + 1
    log = open(workdir / f"resume{label}.log", "w")
    start = time.perf_counter()
    p = subprocess.Popen(_cmd("run", str(spec_path), "--store", str(store), "--workers",
                              str(workers)), stdout=log, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    try:
        out["resume_first_task_s"] = None
        while time.perf_counter() - start < max(60.0, seconds) and p.poll() is None:
            time.sleep(0.05)
            if _entries(store, entry, gen):
                out["resume_first_task_s"] = time.perf_counter() - start
                break
    finally:
        _kill(p)
        log.close()
    out["in_memory_one_thread_x_workers_points_per_s"] = in_memory_rate(text, workers)
    out["in_memory_reduce_points_per_s"] = in_memory_concurrent_rate(text, finished or [0],
                                                                     workers)
    out["in_memory_tasks"] = len(finished or [0])
    if "steady_points_per_s" in out:
        out["steady_vs_in_memory"] = (out["steady_points_per_s"]
                                      / out["in_memory_reduce_points_per_s"])
        out["steady_vs_one_thread_x_workers"] = (
            out["steady_points_per_s"] / out["in_memory_one_thread_x_workers_points_per_s"])
    return out


def model(rate_per_core: float, tasks_per_s: float, points_per_task: int) -> list[dict]:
    rows = []
    for workers in (100, 1000, 10000):
        ideal = workers * rate_per_core
        thr = min(ideal, tasks_per_s * points_per_task)
        rows.append({"workers": workers, "throughput": thr, "efficiency": thr / ideal})
    return rows


def grouped_files(n_groups: int, workdir: Path) -> dict:
    """Compute ``n_groups`` whole groups of the 1.07e13 spec's grouped store in this process and
    measure its files (see the module docstring)."""
    from qbfast.runner import plan as plan_mod
    from qbfast.runner.driver import store_layout
    from qbfast.runner.spec import parse_spec
    from qbfast.runner.tasks import TaskContext, kernels_digest, merge_task, run_task
    from qbfast.store import bytes_on_disk, create, next_generation, open_info

    plan_mod.AUTO_GROUP = True
    text = SPEC.format(n=SIZES["1e13"])
    spec = parse_spec(text, name="scale1e13")
    path = workdir / "grouped1e13.zarr"
    create(store_layout(spec), path)
    info = open_info(path)
    assert info.grouped, spec.group
    ctx = TaskContext(spec=spec, chunks=info.chunks, path=str(path), store_id=info.store_id,
                      generation=next_generation(path), run_id="0123456789ab",
                      kernels=kernels_digest(), numba_threads={})
    chosen = [info.n_groups // 2 + k for k in range(n_groups)]
    t0 = time.perf_counter()
    for g in chosen:
        for t in info.group_tasks(g):
            run_task(int(t), ctx)
        merge_task(g, ctx)
    seconds = time.perf_counter() - t0
    chunk_sizes = [(path / v.name / info.chunk_name(v, int(info.group_tasks(g)[0]))).stat().st_size
                   for g in chosen for v in info.variables]
    mean_chunk = float(np.mean(chunk_sizes))
    total, files = bytes_on_disk(path)
    other_bytes, other_files = total - sum(chunk_sizes), files - len(chunk_sizes)
    n_chunk_files = info.n_groups * len(info.variables)
    journal = 64 * info.n_tasks + 64 * info.n_groups  # entries of ~56 B: 1 MB, few files
    projected = (mean_chunk * n_chunk_files + other_bytes + journal) / (n_chunk_files
                                                                        + other_files)
    return {"spec": "1e13", "group": list(info.group), "storage_chunks":
            list(info.storage_chunks), "tasks_per_group": int(np.prod(info.group)),
            "n_groups": info.n_groups, "groups_measured": chosen, "seconds": seconds,
            "chunk_files_measured": len(chunk_sizes), "mean_chunk_file_bytes": mean_chunk,
            "min_chunk_file_bytes": int(min(chunk_sizes)),
            "max_chunk_file_bytes": int(max(chunk_sizes)),
            "files_when_complete": n_chunk_files + other_files,
            "projected_mean_bytes_per_file": projected}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--grouped-files", type=int, default=0, metavar="N",
                        help="measure the 1.07e13 grouped store's files on N whole groups")
    parser.add_argument("--specs", nargs="+", choices=tuple(SIZES), default=list(SIZES))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.grouped_files:
        with tempfile.TemporaryDirectory(prefix="qbfast-scale-") as tmp:
            r = grouped_files(args.grouped_files, Path(tmp))
        print(f"== 1e13 grouped: group {tuple(r['group'])} ({r['tasks_per_group']} tasks), "
              f"storage chunks {tuple(r['storage_chunks'])}, {r['n_groups']:,} groups")
        print(f"  groups {r['groups_measured']} computed and merged in {r['seconds']:.0f} s")
        print(f"  their {r['chunk_files_measured']} chunk files: mean "
              f"{r['mean_chunk_file_bytes'] / 1024:.0f} KiB (min "
              f"{r['min_chunk_file_bytes'] / 1024:.0f} KiB, max "
              f"{r['max_chunk_file_bytes'] / 1024:.0f} KiB)")
        print(f"  complete store, projected: {r['files_when_complete']:,} files, mean "
              f"{r['projected_mean_bytes_per_file'] / 1024:.0f} KiB per file")
        if args.json is not None:
            args.json.write_text(json.dumps(r, indent=1))
        from bench._results import record

        record("scale", argv, [{"table": "grouped_files", **{k: v for k, v in r.items()
                                                              if not isinstance(v, list)}}],
               notes="--grouped-files: whole groups of the 1.07e13 spec computed in-process",
               variant="grouped-files")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="qbfast-scale-") as tmp:
        for label in args.specs:
            r = run_one(label, SIZES[label], args.seconds, Path(tmp), args.workers)
            results.append(r)
            print(f"== {label}: {r['points']:.3g} points, {r['tasks']:,} tasks of "
                  f"{r['points_per_task']:,} points (chunks {tuple(r['chunks'])}), "
                  f"{r['tasks_per_storage_chunk']} tasks per storage chunk")
            f = r["first_task_s"]
            print(f"  first task finished      {'never' if f is None else f'{f:.1f} s'} "
                  f"after the command started")
            print(f"  client peak RSS          {r['client_peak_rss_mib']:.0f} MiB")
            if "steady_points_per_s" in r:
                print(f"  steady throughput        {r['steady_points_per_s'] / 1e6:.1f} M "
                      f"points/s = x{r['steady_vs_in_memory']:.2f} the in-memory [reduce] "
                      f"kernel on the same tasks "
                      f"({r['in_memory_reduce_points_per_s'] / 1e6:.1f} M points/s: the "
                      f"run's {r['in_memory_tasks']} finished tasks, {args.workers} "
                      f"single-threaded processes at once); "
                      f"x{r['steady_vs_one_thread_x_workers']:.2f} one thread timed alone "
                      f"x {args.workers} "
                      f"({r['in_memory_one_thread_x_workers_points_per_s'] / 1e6:.1f} M)")
            mean = r["mean_chunk_file_bytes"]
            print(f"  files                    {r['files_when_complete']:,} when complete "
                  f"({r['files_per_1e9_points']:.1f} per 1e9 points); chunk files so far "
                  f"average {'-' if mean is None else f'{mean:.0f} bytes'} (the first tasks' data)")
            print(f"  qbfast info (partial)    {r['info_s']:.2f} s: {r['info_tasks_line']}")
            rf = r["resume_first_task_s"]
            print(f"  resumed run, first task  {'never' if rf is None else f'{rf:.1f} s'}")
        tps = scheduler_tasks_per_s()
        print(f"\nscheduler: {tps:,.0f} no-op tasks/s here ({1e3 / tps:.2f} ms per task)")
        for r in results:
            rate = r["in_memory_reduce_points_per_s"] / args.workers
            r["model"] = model(rate, tps, r["points_per_task"])
            print(f"model for {r['spec']} ({r['points_per_task']:,} points per task, "
                  f"{rate / 1e6:.0f} M points/s per core):")
            for row in r["model"]:
                print(f"  {row['workers']:>6} workers: {row['throughput'] / 1e9:8.2f} G points/s,"
                      f" efficiency {row['efficiency']:.0%}")
    if args.json is not None:
        args.json.write_text(json.dumps({"scheduler_tasks_per_s": tps, "specs": results},
                                        indent=1))
    record_results(results, tps, argv)
    return 0


def record_results(results: list[dict], tps: float, argv: list[str] | None) -> None:
    """bench/results/scale.json: one row per spec, one per (spec, workers) of the model."""
    from bench._results import record

    rows: list[dict] = []
    for r in results:
        row = {k: v for k, v in r.items() if k not in ("model", "chunks")}
        row["table"] = "runs"
        row["chunks"] = " x ".join(str(c) for c in r["chunks"])
        rows.append(row)
        rows.extend({"table": "model", "spec": r["spec"], "scheduler_tasks_per_s": tps, **m}
                    for m in r["model"])
    record("scale", argv, rows, notes="qbfast run killed after --seconds; the model assumes "
           "the scheduler rate measured here")


if __name__ == "__main__":
    raise SystemExit(main())
