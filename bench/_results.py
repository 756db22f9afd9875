"""Record a benchmark's figures in ``bench/results/<bench>.json``, the source of
``docs/performance.md`` (the docs hook ``docs/hooks.py`` renders these files into tables).

Each bench's ``main()`` ends with one call of :func:`record`. A file holds:

- ``bench``, ``command`` (the command line that produced it), ``date`` (UTC, ISO 8601);
- ``machine``: usable cores, online CPUs, CPU model, load average at the end, and a note that
  the machine may be shared (timings then vary from run to run);
- ``versions``: qbfast, numba, numpy, python (and xarray, zarr, dask, qutip when loaded);
- ``columns``: optional header (with unit) for each figure key;
- ``figures``: a list of rows, each a flat mapping of names to numbers or strings;
- ``notes``: free text; ``options``: every option of the run, defaults included.

Smoke runs (``--quick``) are not recorded: their figures measure overheads, not kernels.
``QBFAST_BENCH_RESULTS`` (a directory) redirects the files, e.g. in tests.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULTS_ENV = "QBFAST_BENCH_RESULTS"
SHARED_NOTE = ("measured on a machine whose cores may be shared with other jobs: repeated runs "
               "can differ by tens of percent")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Cores usable by this process, CPUs online, CPU model, load average."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {"cores": cores, "cpus_online": os.cpu_count(), "cpu_model": cpu_model(),
            "load_average_1_5_15_min": load, "note": SHARED_NOTE}


def versions() -> dict[str, str]:
    """Versions of qbfast, numba, numpy, python, and of the other libraries already loaded."""
    import numba
    import numpy

    import qbfast

    found = {"qbfast": qbfast.__version__, "numba": numba.__version__,
             "numpy": numpy.__version__, "python": platform.python_version()}
    for name in ("xarray", "zarr", "dask", "qutip"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = str(getattr(module, "__version__", "?"))
    return found


def record(bench: str, argv: Sequence[str] | None, figures: Sequence[Mapping[str, Any]], *,
           columns: Mapping[str, str] | None = None, notes: str = "",
           options: Mapping[str, Any] | None = None, smoke: bool = False,
           variant: str | None = None) -> Path | None:
    """Write ``<results dir>/<bench>.json`` (``<bench>-<variant>.json`` for a variant of the
    bench, e.g. another grid) and return its path (None for a smoke run).

    ``argv``: the arguments given to the bench's ``main`` (None: ``sys.argv[1:]``); the
    command is recorded as ``python -m bench.<bench> ARGS``. ``figures``: one mapping per
    table row; ``columns``: header text, with units, per key; ``options``: every option the
    bench ran with, defaults included (recorded, not shown on the page).
    """
    if smoke:
        print(f"(smoke run: not recorded in bench/results/{bench}.json)")
        return None
    args = list(sys.argv[1:] if argv is None else argv)
    doc = {
        "bench": bench,
        "command": shlex.join(["python", "-m", f"bench.{bench}", *args]),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "columns": dict(columns or {}),
        "figures": [dict(row) for row in figures],
        "notes": notes,
        "options": dict(options or {}),
    }
    directory = Path(os.environ.get(RESULTS_ENV) or RESULTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (f"{bench}-{variant}.json" if variant else f"{bench}.json")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=_plain) + "\n")
    tmp.replace(path)
    print(f"recorded in {path}")
    return path


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers (json's fallback)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
