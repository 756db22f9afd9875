"""MkDocs hooks (``hooks:`` in mkdocs.yml): the generated parts of two pages.

- ``<!-- bench: NAME -->`` becomes the tables of ``bench/results/NAME.json`` (written by
  ``python -m bench.NAME`` through ``bench/_results.py``), with the command, date, machine and
  versions that produced them. A missing or unreadable file is a warning, so
  ``mkdocs build --strict`` fails instead of publishing a page without its figures.
- ``<!-- qbfast-help: COMMAND -->`` becomes the ``--help`` text of ``qbfast COMMAND``, from the
  parser in ``qbfast/cli.py`` itself.
- ``<!-- qbfast-table: models -->`` / ``metrics`` become the tables of ``qbfast.params``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.qbfast")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_MARK = re.compile(r"<!--\s*bench:\s*([A-Za-z0-9_-]+)\s*-->")
HELP_MARK = re.compile(r"<!--\s*qbfast-help:\s*([A-Za-z0-9_-]+)\s*-->")
HELP_WIDTH = "96"


# ---- number formats --------------------------------------------------------------------------

def rate(x: Any) -> str:
    """Points (or elements) per second: '31.0 M/s', '24.7 k/s'."""
    if not isinstance(x, (int, float)):
        return str(x)
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}/s"
    return f"{x:.3g} /s"


def number(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.3g}"


def ratio(a: Any, b: Any) -> str:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0:
        r = a / b
        return f"{r:,.0f}x" if r >= 100 else f"{r:.2g}x" if r < 10 else f"{r:.3g}x"
    return ""


# ---- per-bench columns: key -> (header, format) ----------------------------------------------

Columns = dict[str, tuple[str, Callable[[Any], str]]]

KERNELS: Columns = {
    "case": ("kernel", str),
    "numba_threads": ("threads", number),
    "qbfast": ("qbfast.sweep", rate),
    "numpy": ("strongest NumPy", rate),
    "eigh": ("NumPy batched eigh", rate),
    "qutip": ("QuTiP states only", rate),
    "qutip_full": ("QuTiP + metric functions", rate),
}
LIMITS: Columns = {
    "model": ("kernel", str),
    "threads": ("threads", number),
    "kernel": ("kernel", rate),
    "compute only": ("compute only", rate),
    "store ceiling": ("store ceiling", rate),
    "no overlap": ("no overlap 1/(1/c + 1/s)", rate),
    "NT ceiling": ("NT ceiling", rate),
}
SWEEPS: Columns = {
    "points": ("points", number),
    "in_memory_points_per_s": ("in-memory sweep", rate),
    "plain_to_zarr_points_per_s": ("plain to_zarr (ceiling)", rate),
    "run_series_points_per_s": ("qbfast run, series", rate),
    "run_series_first_points_per_s": ("(first run)", rate),
    "run_reduce_points_per_s": ("qbfast run, [reduce]", rate),
    "run_reduce_first_points_per_s": ("(first run)", rate),
    "run_series_tasks": ("tasks, series", number),
    "run_reduce_tasks": ("tasks, [reduce]", number),
    "run_series_bytes_per_point": ("bytes/point, series", number),
    "run_reduce_bytes_per_point": ("bytes/point, [reduce]", number),
    "run_series_worker_max_rss_mib": ("worker max RSS, series (MiB)", number),
    "run_reduce_worker_max_rss_mib": ("worker max RSS, [reduce] (MiB)", number),
    "codec": ("codec", str),
    "write_points_per_s": ("write", rate),
    "bytes_per_point": ("bytes/point", number),
}
FASTMATH: Columns = {
    "function": ("function", str),
    "ns_per_element": ("ns per element", number),
}
#: tables too wide for a page, split: (bench, "table" key) -> [(title, keys), ...]
SPLIT: dict[tuple[str, str], list[tuple[str, list[str]]]] = {
    ("sweeps", "throughput"): [
        ("throughput", ["points", "in_memory_points_per_s", "plain_to_zarr_points_per_s",
                        "run_series_points_per_s", "run_series_first_points_per_s",
                        "run_reduce_points_per_s", "run_reduce_first_points_per_s"]),
        ("tasks, bytes on disk and worker memory",
         ["points", "run_series_tasks", "run_reduce_tasks", "run_series_bytes_per_point",
          "run_reduce_bytes_per_point", "run_series_worker_max_rss_mib",
          "run_reduce_worker_max_rss_mib"]),
    ],
}
COLUMNS: dict[str, Columns] = {"kernels": KERNELS, "limits": LIMITS, "sweeps": SWEEPS,
                               "fastmath": FASTMATH}
#: ratio columns added after the figures: (numerator key, denominator key, header)
RATIOS: dict[str, list[tuple[str, str, str]]] = {
    "kernels": [("qbfast", "numpy", "qbfast / NumPy"), ("qbfast", "eigh", "qbfast / eigh"),
                ("qbfast", "qutip", "qbfast / QuTiP states"),
                ("qbfast", "qutip_full", "qbfast / QuTiP + metrics")],
    "limits": [("kernel", "compute only", "kernel / compute only"),
               ("kernel", "store ceiling", "kernel / store ceiling")],
    "sweeps": [("run_series_points_per_s", "plain_to_zarr_points_per_s", "series / ceiling"),
               ("run_reduce_points_per_s", "in_memory_points_per_s", "[reduce] / in-memory")],
}

#: bench/results/kernels-open.json (``python -m bench.kernels --open-only``, bench/open.py)
OPEN: Columns = {
    "case": ("case", str),
    "route": ("route", str),
    "numba_threads": ("threads", number),
    "qbfast": ("open kernel", rate),
    "qbfast energy only": ("open kernel, energy only", rate),
    "closed kernel": ("closed kernel, rates 0", rate),
    "mesolve states": ("QuTiP mesolve states", rate),
    "mesolve+metrics": ("QuTiP mesolve + metrics", rate),
    "max dev vs mesolve": ("max dev vs mesolve", str),
    "bound": ("bound", str),
    "target points/s": ("target", rate),
    "scaled target points/s": ("target scaled by the cavity row", rate),
    "rate met": ("rate", str),
    "target ratio vs mesolve": ("target ratio", number),
    "ratio met vs mesolve+metrics": ("ratio vs mesolve + metrics", str),
    "ratio met vs mesolve states": ("ratio vs mesolve states", str),
    "closed cavity kernel": ("closed cavity kernel (the targets' scale)", rate),
}
COLUMNS["kernels-open"] = OPEN
RATIOS["kernels-open"] = [("qbfast", "mesolve+metrics", "open / mesolve + metrics"),
                          ("qbfast", "mesolve states", "open / mesolve states"),
                          ("qbfast", "closed kernel", "open / closed")]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(bench: str, rows: list[dict[str, Any]], only: list[str] | None = None) -> str:
    """A Markdown table of ``rows``: known keys first (in their order), then any others
    (``only``: just these keys, and no ratio columns)."""
    known = COLUMNS.get(bench, {})
    if only is not None:
        keys = [k for k in only if any(k in r for r in rows)]
        ratios: list[tuple[str, str, str]] = []
    else:
        keys = [k for k in known if any(k in r for r in rows)]
        keys += sorted({k for r in rows for k in r} - set(keys) - {"table"})
        ratios = [(a, b, h) for a, b, h in RATIOS.get(bench, [])
                  if any(a in r and b in r for r in rows)]
    header = [known.get(k, (k, number))[0] for k in keys] + [h for _, _, h in ratios]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    for r in rows:
        cells = [known.get(k, (k, number))[1](r[k]) if k in r else "" for k in keys]
        cells += [ratio(r.get(a), r.get(b)) for a, b, _ in ratios]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def provenance(doc: dict[str, Any]) -> str:
    m, v = doc.get("machine", {}), doc.get("versions", {})
    load = m.get("load_average_1_5_15_min")
    load_text = ("/".join(f"{x:.2f}" for x in load) if load else "unknown")
    versions = ", ".join(f"{k} {val}" for k, val in v.items())
    text = (f"Command `{doc.get('command', '?')}`, {doc.get('date', '?')}; "
            f"{m.get('cores', '?')} cores ({m.get('cpu_model', '?')}), load average "
            f"{load_text} (1/5/15 min) at the end of the run; {versions}.")
    if m.get("note"):
        text += f" Note: {m['note']}."
    if doc.get("notes"):
        text += f" {doc['notes']}."
    return text


def render_bench(name: str) -> str:
    path = RESULTS / f"{name}.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        log.warning("performance page: cannot read %s (%s); run `python -m bench.%s`",
                    path, e, name)
        return f"*No results: `bench/results/{name}.json` is missing.*"
    rows = doc.get("figures", [])
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r.get("table", "")), []).append(r)
    parts = [provenance(doc)]
    for title, group in groups.items():
        split = SPLIT.get((name, title))
        if split is None:
            if title and len(groups) > 1:
                parts.append(f"*{title}*")
            parts.append(table(name, group))
            continue
        listed = {k for _, keys in split for k in keys}
        for i, (sub_title, keys) in enumerate(split):
            parts.append(f"*{sub_title}*")
            extra = sorted({k for r in group for k in r} - listed - {"table"})
            parts.append(table(name, group, keys + (extra if i == len(split) - 1 else [])))
    return "\n\n".join(parts)


# ---- qbfast --help -------------------------------------------------------------------------

@contextlib.contextmanager
def _columns(width: str) -> Iterator[None]:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def command_help(command: str) -> str:
    import argparse

    from qbfast.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if command not in sub.choices:
        log.warning("cli page: qbfast has no command %r (commands: %s)", command,
                    ", ".join(sub.choices))
        return f"*No command `qbfast {command}`.*"
    with _columns(HELP_WIDTH):
        text = sub.choices[command].format_help()
    return "```text\n" + text.rstrip() + "\n```"


# ---- the tables of qbfast.params ----------------------------------------------------------

TABLE_MARK = re.compile(r"<!--\s*qbfast-table:\s*(models|metrics)\s*-->")


def params_table(which: str) -> str:
    """The models' parameters or the metrics, from ``qbfast.params`` (the single source)."""
    from qbfast.params import METRIC_LIST, MODELS

    if which == "models":
        lines = ["| model | parameter | default | units | meaning | allowed |",
                 "|---|---|---|---|---|---|"]
        for model in MODELS.values():
            for p in (*model.parameters, *model.rates):
                lines.append(f"| {model.name} | `{p.name}` | {p.default:g} | {p.units} | "
                             f"{_cell(p.long_name)} | {_cell(p.allowed)} |")
        return "\n".join(lines)
    lines = ["| metric | units | name | definition |", "|---|---|---|---|"]
    for m in METRIC_LIST:
        lines.append(f"| `{m.name}` | {m.units} | {_cell(m.long_name)} | "
                     f"{_cell(m.description)} |")
    return "\n".join(lines)


# ---- the hooks -------------------------------------------------------------------------------

#: Pages written on other branches: listed in the nav after "Physics" once their file exists
#: (a page missing from the nav fails the strict build, and so would a nav entry without its
#: file). Move them into mkdocs.yml's nav once every branch is merged.
OPTIONAL_PAGES = {"chargers.md": "Chargers of the cavity model",
                  "figures.md": "The paper's figures"}


def on_config(config: Any) -> Any:
    nav = config.get("nav")
    if not nav:
        return config
    listed = json.dumps(nav)
    docs = Path(config["docs_dir"])
    after = next((i for i, item in enumerate(nav)
                  if isinstance(item, dict) and "physics.md" in item.values()), len(nav) - 1)
    for offset, (page, title) in enumerate(
            (p, t) for p, t in OPTIONAL_PAGES.items()
            if (docs / p).exists() and json.dumps(p) not in listed):
        nav.insert(after + 1 + offset, {title: page})
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    markdown = BENCH_MARK.sub(lambda m: render_bench(m.group(1)), markdown)
    markdown = TABLE_MARK.sub(lambda m: params_table(m.group(1)), markdown)
    return HELP_MARK.sub(lambda m: command_help(m.group(1)), markdown)
