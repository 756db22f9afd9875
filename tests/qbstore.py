"""Helpers of the store and runner tests (tests/ is on pytest's pythonpath): create a store
from a spec and write its tasks in this process, exactly as a worker does (``run_task``), and
compare stores file by file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from qbfast import store
from qbfast.runner.driver import store_layout
from qbfast.runner.spec import Spec
from qbfast.runner.tasks import TaskContext, flush, kernels_digest, merge_task, run_task

#: A small cavity spec of 3 tasks (J2 rows 0-2, 3-5, 6), 3 float32 metrics: the store tests'
#: usual subject.
SMALL_SPEC = """
model = "cavity"
metrics = ["energy", "ergotropy", "power"]
dtype = "float32"
[params]
n = [1, 3]
J2 = { start = -1.0, stop = 2.0, num = 7 }
omega_g = 0.8
t = { start = 0.0, stop = 5.0, num = 51 }
[chunks]
J2 = 3
"""


#: A [reduce]-only cavity spec: task grid (3, 4, 3), 36 tasks; with :data:`GROUP` (2 x 2
#: tasks per storage chunk) its group grid is (3, 2, 2), edge groups smaller.
GROUPABLE_SPEC = """
model = "cavity"
metrics = ["energy", "ergotropy"]
dtype = "float32"
[params]
n = [1, 2, 3]
J2 = { start = -1.0, stop = 2.0, num = 7 }
J1 = { start = 0.5, stop = 1.5, num = 5 }
t = { start = 0.0, stop = 5.0, num = 41 }
[chunks]
n = 1
J2 = 2
J1 = 2
[reduce]
over = "t"
stats = ["max", "argmax", "first_max"]
"""
GROUP = "[group]\nJ2 = 2\nJ1 = 2\n"


def small_spec() -> Spec:
    from qbfast.runner.spec import parse_spec

    return parse_spec(SMALL_SPEC, name="small", source="small.toml")


def create(spec: Spec, path: Path) -> store.StoreInfo:
    store.create(store_layout(spec), path)
    return store.open_info(path)


def context(spec: Spec, path: Path, generation: int | None = None,
            run_id: str = "0123456789ab", kernels: str | None = None) -> TaskContext:
    info = store.open_info(path)
    return TaskContext(spec=spec, chunks=info.chunks, path=str(path), store_id=info.store_id,
                       generation=generation or store.next_generation(path), run_id=run_id,
                       kernels=kernels or kernels_digest(), numba_threads={})


def spec_file(directory: Path, text: str, name: str) -> Path:
    """The spec ``text`` written to ``directory / name.toml``."""
    p = Path(directory) / f"{name}.toml"
    p.write_text(text)
    return p


def reference_store(spec_path: Path, directory: Path) -> Path:
    """The spec written in this process, no cluster (the uninterrupted run): task by task, or
    group by group for a grouped store."""
    from qbfast.runner.spec import load_spec

    spec = load_spec(spec_path)
    path = Path(directory) / f"{spec_path.stem}.zarr"
    info = create(spec, path)
    if info.grouped:
        write_groups(spec, path)
    else:
        write_tasks(spec, path)
    return path


def write_tasks(spec: Spec, path: Path, tasks: Iterable[int] | None = None,
                **kw: object) -> TaskContext:
    """Compute and write ``tasks`` (default: all) in this process, as workers do, then wait
    for them to be recorded, as a run does at its end."""
    ctx = context(spec, path, **kw)  # type: ignore[arg-type]
    for t in (range(spec.n_chunks) if tasks is None else tasks):
        run_task(int(t), ctx)
    flush(ctx.run_id)
    return ctx


def write_groups(spec: Spec, path: Path, groups: Iterable[int] | None = None,
                 **kw: object) -> TaskContext:
    """Grouped stores: compute and stage every task of ``groups`` (default: all), then merge
    each group, in this process, as workers do."""
    info = store.open_info(path)
    ctx = context(spec, path, **kw)  # type: ignore[arg-type]
    chosen = range(info.n_groups) if groups is None else groups
    for g in chosen:
        for t in info.group_tasks(int(g)):
            run_task(int(t), ctx)
        merge_task(int(g), ctx)
    return ctx


def data_files(path: Path) -> dict[str, bytes]:
    """Every chunk file of the store's arrays (data variables and coordinates), by relative
    path: what must be bit for bit the same in two runs of one spec. Metadata (zarr.json: store
    id, creation time) and the bookkeeping group (journal names: run ids) are left out."""
    out = {}
    for p in sorted(Path(path).rglob("*")):
        rel = p.relative_to(path).as_posix()
        if (p.is_file() and p.name != "zarr.json" and not rel.startswith(store.META + "/")
                and not p.name.endswith(".partial")):
            out[rel] = p.read_bytes()
    return out


def tree_state(path: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``path`` with its size and mtime: to prove a store left untouched."""
    return {p.relative_to(path).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in Path(path).rglob("*")}


def n_recorded(path: Path) -> int:
    """Tasks the completion record holds (0 if the store does not exist yet)."""
    try:
        info = store.open_info(path)
    except store.StoreError:
        return 0
    return store.read_record(info).n_done


def is_complete(path: Path) -> bool:
    info = store.open_info(path)
    record = store.read_record(info)
    return (store.read_complete(info) is not None and bool(record.done.all())
            and not len(store.missing_files(info, record)))


def qbfast_proc(args: list[str], env: dict[str, str] | None = None,
                **kw: object) -> subprocess.Popen:
    """``python -m qbfast ARGS`` in its own session (so that a SIGKILL of its group takes its
    local workers too)."""
    return subprocess.Popen([sys.executable, "-m", "qbfast", *args],
                            env={**os.environ, **(env or {})}, start_new_session=True,
                            **kw)  # type: ignore[call-overload]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("qbfast: error: "), err
    assert "Traceback" not in err
    return lines[0]


SCHEDULER_AT = re.compile(r"Scheduler at:\s+(tcp://127\.0\.0\.1:\d+)")


def assert_every_reader_refuses(path: Path, tmp_path: Path, capsys, phrase: str, *,
                                also: Iterable[str] = (), never: Iterable[str] = ()) -> None:
    """An incomplete store ``path``: ``open_store`` and ``ds.qb`` raise IncompleteStoreError
    matching ``phrase``; ``extrema``, ``corr``, ``claims`` and ``plot`` exit 2 with one line
    holding ``phrase`` and each of ``also``, none of ``never``; the plot writes nothing."""
    import pytest
    import xarray as xr

    from qbfast.analysis._io import IncompleteStoreError, open_store
    from qbfast.cli import main

    with pytest.raises(IncompleteStoreError, match=phrase):
        open_store(path)
    with pytest.raises(IncompleteStoreError, match=phrase):  # ds.qb, as read
        xr.open_zarr(path).qb.extrema("energy")
    for argv in (["extrema", str(path), "--metric", "energy"],
                 ["corr", str(path), "energy", "ergotropy"],
                 ["claims", str(path)],
                 ["plot", str(path), "--y", "energy", "--out", str(tmp_path / "x.png")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and phrase in err, (argv, err)
        assert all(a in err for a in also) and not any(n in err for n in never), (argv, err)
    assert not (tmp_path / "x.png").exists()
