"""Sweep specs: one TOML file describes one sweep (parsing and validation, nothing is computed).

A spec is checked completely before anything is written; every problem is reported as one
:class:`SpecError` line ``FILE: KEY: what is wrong; what is allowed``. The checks of values reuse
:mod:`qbfast.validate` and the tables of :mod:`qbfast.params` through :class:`qbfast.core.Grid`.

Format (see the README)::

    model = "cavity"                      # "field" | "cavity"            (required)
    protocol = "drive"                    # field only: "drive" | "full"
    battery_hamiltonian = "interacting"   # or "bare"
    charger = "coherent"                  # cavity only: "fock" (default, n) | "coherent" |
                                          # "thermal" (nbar under [params])
    metrics = ["energy", "ergotropy"]     # default: all
    dtype = "float32"                     # storage dtype, default "float64"
    codec = "auto"                        # "auto" | "zstd" | "blosc-lz4" | "none" (+ crc32c)
    description = "free text"             # optional, stored in the attrs
    max_step = 0.01                       # field "full" only, closed points only
    [params]                              # omitted parameters take their defaults
    gamma_phi = [0.0, 0.1, 0.5]           # the rates (physics.md s.8) too: default 0
    n = [1, 2, 4, 8]                      # a list: a dimension
    J2 = { start = -1.0, stop = 2.0, num = 61 }   # np.linspace(start, stop, num): a dimension
    omega_g = 1.0                         # a scalar: fixed
    t = { start = 0.0, stop = 20.0, num = 401 }   # required, always the last dimension
    [chunks]                              # optional chunk length per dimension
    J2 = 16
    [group]                               # optional, [reduce]-only: tasks per storage chunk
    J2 = 4                                # (see docs/planning.md; default: planned)
    [reduce]                              # optional reductions along t, computed per task
    over = "t"
    stats = ["max", "argmax", "min", "argmin", "first_max"]
    keep_series = false
    [cluster]                             # optional: batch jobs (dask-jobqueue), as the
    kind = "slurm"                        # run flags --cluster, --cores, ... name them;
    cores = 32                            # the flags override it; not part of the spec's
    memory = "64GB"                       # identity (hash): a store resumes under another
    walltime = "01:00:00"                 # [cluster]

Dimensions are the swept parameters in the order of ``[params]``, then ``t``: ``t`` is moved
last wherever it appears, because the kernels run along t innermost. A dimension (``t``
included) holds at most :data:`MAX_DIMENSION_LENGTH` values: a longer range is refused before
any array is made. A UTF-8 byte order mark at the start of the file is accepted (skipped).
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..core import Grid
from ..params import METRICS, TIME
from ..reduce import REDUCTIONS
from ..store.layout import CODECS
from ..validate import (
    check_charger,
    check_metrics,
    check_model,
    check_parameters,
    check_times,
)
from .plan import DEFAULT_THREADS, Plan, Work, plan

#: Top-level keys of a spec and what they hold (used in the "allowed" part of messages).
TOP_KEYS = ("model", "protocol", "battery_hamiltonian", "charger", "metrics", "dtype",
            "description", "max_step", "params", "chunks", "reduce", "codec",
            "group", "cluster")
#: Keys of ``[cluster]``: the ``qbfast run`` batch-job flags (dask-jobqueue's option names;
#: ``kind`` is ``--cluster``), integers >= 1 or strings.
CLUSTER_INT_KEYS = ("cores", "processes", "jobs", "adapt_max")
CLUSTER_KEYS = ("kind", *CLUSTER_INT_KEYS, "memory", "walltime", "account", "queue")
RANGE_KEYS = ("start", "stop", "num")
REDUCE_KEYS = ("over", "stats", "keep_series")
#: Most values along one dimension (a range's ``num`` or a list's length): 10**7 values are
#: 80 MB of float64 coordinates, checked and stored whole; larger grids add dimensions.
MAX_DIMENSION_LENGTH = 10**7
DTYPES = ("float32", "float64")
DEFAULT_DTYPE = "float64"

class SpecError(ValueError):
    """A spec that cannot be run; the message is one line: ``FILE: KEY: problem; allowed``."""


def _choices(names: Any) -> str:
    return ", ".join(repr(n) for n in names)


@dataclass(frozen=True)
class Reduce:
    """Reductions along t computed inside each task (see :mod:`qbfast.reduce`)."""

    over: str
    stats: tuple[str, ...]
    keep_series: bool


@dataclass(frozen=True)
class Variable:
    """One stored data variable: name, dims, attrs, and where its data come from."""

    name: str
    dims: tuple[str, ...]
    attrs: dict[str, Any]
    metric: str
    stat: str | None = None  # None: the time series itself
    suffix: str | None = None


class Spec:
    """A validated sweep spec: the full :class:`~qbfast.core.Grid`, storage dtype, the
    ``[chunks]`` overrides and reductions. ``chunks[i]`` is the chunk length along
    ``grid.dims[i]``, as :func:`qbfast.runner.plan.plan` plans it."""

    def __init__(self, *, name: str, source: str, text: str, grid: Grid, dtype: str,
                 chunk_overrides: dict[str, int], reduce: Reduce | None,
                 description: str, codec: str = "auto",
                 group_overrides: dict[str, int] | None = None,
                 cluster: dict[str, Any] | None = None) -> None:
        self.name = name
        self.source = source
        self.text = text
        self.grid = grid
        self.dtype = np.dtype(dtype)
        #: The ``[chunks]`` table as given (dim -> length, clipped to the dim's size).
        self.chunk_overrides = dict(chunk_overrides)
        self.reduce = reduce
        self.description = description
        self.codec = codec
        #: The ``[group]`` table as given (swept dim -> tasks per storage chunk), or None.
        self.group_overrides = None if group_overrides is None else dict(group_overrides)
        #: The ``[cluster]`` table as given (key -> value; ``{}`` without one): where the
        #: sweep runs, not what it computes, so outside :meth:`canonical` and the hash.
        self.cluster = dict(cluster or {})

    # ---- planning -------------------------------------------------------------------------
    def plan(self, threads: int = DEFAULT_THREADS) -> Plan:
        """The tasks of this sweep on ``threads`` threads (:mod:`qbfast.runner.plan`)."""
        return plan(Work.from_spec(self), threads=threads)

    @cached_property
    def chunks(self) -> tuple[int, ...]:
        """Chunk (= task) lengths per dim, planned for ``DEFAULT_THREADS`` threads."""
        return self.plan(DEFAULT_THREADS).chunks

    @cached_property
    def group(self) -> tuple[int, ...]:
        """Tasks per storage chunk along each dim (all 1: one task writes one chunk)."""
        return self.plan(DEFAULT_THREADS).group

    # ---- geometry -------------------------------------------------------------------------
    @property
    def dims(self) -> tuple[str, ...]:
        return self.grid.dims

    @property
    def shape(self) -> tuple[int, ...]:
        return self.grid.shape

    @property
    def chunk_grid(self) -> tuple[int, ...]:
        """Number of chunks along each dim."""
        return tuple(-(-s // c) for s, c in zip(self.shape, self.chunks))

    @property
    def n_chunks(self) -> int:
        return int(np.prod(self.chunk_grid, dtype=np.int64))

    @property
    def n_evaluations(self) -> int:
        """Grid points including t: the number of (parameters, time) evaluations."""
        return int(np.prod(self.shape, dtype=np.int64))

    def chunk_indices(self) -> list[tuple[int, ...]]:
        return [tuple(int(i) for i in idx) for idx in np.ndindex(*self.chunk_grid)]

    def chunk_slices(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(i * c, min((i + 1) * c, s))
                     for i, c, s in zip(index, self.chunks, self.shape))

    def chunk_grid_request(self, index: tuple[int, ...]) -> Grid:
        """The sub-grid of one chunk, as a checked :class:`Grid` (same parameter order)."""
        slices = self.chunk_slices(index)
        g = self.grid
        swept = {name: values[s] for (name, values), s in zip(g.swept.items(), slices)}
        fixed = dict(g.fixed)
        return Grid(g.model.name, g.t[slices[-1]], protocol=g.protocol,
                    battery_hamiltonian=g.battery_hamiltonian, metrics=g.metrics,
                    max_step=g.max_step, charger=g.charger, **swept, **fixed)

    # ---- stored variables -----------------------------------------------------------------
    @property
    def keep_series(self) -> bool:
        return self.reduce is None or self.reduce.keep_series

    def variables(self) -> list[Variable]:
        """The data variables of the store, in order: series, then reductions."""
        out: list[Variable] = []
        if self.keep_series:
            for m in self.grid.metrics:
                meta = METRICS[m]
                out.append(Variable(m, self.dims, {"long_name": meta.long_name,
                                                   "units": meta.units,
                                                   "description": meta.description}, m))
        if self.reduce is not None:
            for m in self.grid.metrics:
                meta = METRICS[m]
                for stat in self.reduce.stats:
                    for suffix, is_time, template in REDUCTIONS[stat]:
                        attrs = {"long_name": template.format(meta.long_name),
                                 "units": TIME.units if is_time else meta.units,
                                 "metric": m, "reduction": stat, "over": self.reduce.over}
                        out.append(Variable(f"{m}_{suffix}", self.dims[:-1], attrs, m, stat,
                                            suffix))
        return out

    def variable_dtype(self, var: Variable) -> np.dtype:
        """Times of extrema are stored as float64 (exact coordinate values); the rest in
        the spec's dtype."""
        if var.suffix is not None and var.suffix.startswith("t_"):
            return np.dtype(np.float64)
        return self.dtype

    # ---- identity ---------------------------------------------------------------------------
    def canonical(self) -> dict[str, Any]:
        """Everything that determines the stored data and layout (not comments or key order
        of scalars): two specs with the same canonical form make identical stores."""
        g = self.grid
        # the charger only where it is not the default, so that existing specs keep their hash
        charger = {} if g.charger in (None, g.model.default_charger) else {"charger": g.charger}
        return {
            **charger,
            "format": 1,
            "model": g.model.name,
            "protocol": g.protocol,
            "battery_hamiltonian": g.battery_hamiltonian,
            "metrics": list(g.metrics),
            "max_step": g.max_step,
            "dtype": self.dtype.name,
            "dims": [[name, [float(v).hex() for v in values]]
                     for name, values in (*g.swept.items(), (TIME.name, g.t))],
            # rates fixed at 0 (the closed model) left out, so that closed specs keep their hash
            "fixed": {k: float(v).hex() for k, v in sorted(g.fixed.items())
                      if not (k in g.model.rate_names and v == 0)},
            "chunks": list(self.chunks),
            "codec": self.codec,
            **({"group": list(self.group)} if any(f > 1 for f in self.group) else {}),
            "reduce": None if self.reduce is None else {
                "over": self.reduce.over, "stats": list(self.reduce.stats),
                "keep_series": self.reduce.keep_series},
        }

    @property
    def hash(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{d}={s}" for d, s in zip(self.dims, self.shape))
        return f"<Spec {self.name!r}: {self.grid.model.name} ({sizes}), chunks {self.chunks}>"


# ---- parsing --------------------------------------------------------------------------------

def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; raise :class:`SpecError` (one line) if it is bad."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise SpecError(f"{p}: cannot read the spec: {reason}") from None
    return parse_spec(text, name=p.stem, source=str(p))


def parse_spec(text: str, *, name: str = "sweep", source: str = "<spec>") -> Spec:
    """Validate the TOML ``text`` of a spec (a leading UTF-8 byte order mark is skipped)."""
    text = text.removeprefix("\ufeff")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{source}: invalid TOML: {e}") from None
    try:
        return _build(doc, name=name, source=source, text=text)
    except SpecError:
        raise
    except ValueError as e:  # from qbfast.validate, via Grid
        raise SpecError(f"{source}: {e}") from None


def _fail(source: str, key: str, message: str) -> SpecError:
    return SpecError(f"{source}: {key}: {message}")


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _param_values(source: str, name: str, value: object) -> object:
    """A TOML parameter value -> scalar or list (ranges expanded with np.linspace)."""
    key = f"params.{name}"
    if isinstance(value, dict):
        for k in value:
            if k not in RANGE_KEYS:
                raise _fail(source, f"{key}.{k}", f"unknown key; a range has keys "
                                                  f"{_choices(RANGE_KEYS)}")
        for k in RANGE_KEYS:
            if k not in value:
                raise _fail(source, key, f"missing {k!r}; a range is "
                                         f"{{ start = x0, stop = x1, num = N }}")
        for k in ("start", "stop"):
            if not _is_number(value[k]) or not math.isfinite(value[k]):
                raise _fail(source, f"{key}.{k}", f"expected a finite number, got {value[k]!r}")
        num = value["num"]
        if (not isinstance(num, int) or isinstance(num, bool) or num < 1
                or num > MAX_DIMENSION_LENGTH):
            raise _fail(source, f"{key}.num", f"expected an integer >= 1 and <= "
                                              f"{MAX_DIMENSION_LENGTH}, got {num!r}")
        return np.linspace(float(value["start"]), float(value["stop"]), num)
    if isinstance(value, list) and len(value) > MAX_DIMENSION_LENGTH:
        raise _fail(source, key, f"a list of {len(value)} values; at most "
                                 f"{MAX_DIMENSION_LENGTH} values per dimension")
    if isinstance(value, list) or _is_number(value):
        return value
    raise _fail(source, key, f"expected a number (fixed), a list of numbers or "
                             f"{{ start, stop, num }} (a dimension), got {value!r}")


def _build(doc: dict[str, Any], *, name: str, source: str, text: str) -> Spec:
    for key in doc:
        if key not in TOP_KEYS:
            raise _fail(source, key, f"unknown key; allowed: {_choices(TOP_KEYS)}")
    if "model" not in doc:
        raise _fail(source, "model", "missing; allowed: 'field', 'cavity'")
    model = check_model(doc["model"])
    for key in ("protocol", "battery_hamiltonian", "charger", "dtype", "description"):
        if key in doc and not isinstance(doc[key], str):
            raise _fail(source, key, f"expected a string, got {doc[key]!r}")
    if "metrics" in doc and not isinstance(doc["metrics"], list):
        raise _fail(source, "metrics", f"expected a list of metric names, got "
                                       f"{doc['metrics']!r}; allowed: {_choices(METRICS)}")
    check_metrics(doc.get("metrics"))
    dtype = doc.get("dtype", DEFAULT_DTYPE)
    if dtype not in DTYPES:
        raise _fail(source, "dtype", f"unknown dtype {dtype!r}; allowed: {_choices(DTYPES)}")

    # [params]
    params = doc.get("params")
    if not isinstance(params, dict):
        raise _fail(source, "params", "missing or not a table; give at least "
                                      "t = { start = ..., stop = ..., num = ... }")
    values = {k: _param_values(source, k, v) for k, v in params.items()}
    if TIME.name not in values:
        raise _fail(source, f"params.{TIME.name}", "missing; give the times as a list or "
                                                   "{ start, stop, num }")
    t_value = values.pop(TIME.name)
    if _is_number(t_value):
        raise _fail(source, f"params.{TIME.name}", "expected a list of times or "
                                                   "{ start, stop, num }, got a scalar")
    try:
        t = check_times(t_value)
        charger = check_charger(model, doc.get("charger"))
        check_parameters(model, values, charger)
    except ValueError as e:
        prefix = "" if str(e).startswith("charger:") else "params."
        raise SpecError(f"{source}: {prefix}{e}") from None
    try:
        grid = Grid(model.name, t, protocol=doc.get("protocol"),
                    battery_hamiltonian=doc.get("battery_hamiltonian", "interacting"),
                    metrics=doc.get("metrics"), max_step=doc.get("max_step"),
                    charger=charger, **values)
    except ValueError as e:  # the rates' checks (qbfast.validate.check_rates) name a param
        key = str(e).split(":", 1)[0]
        prefix = "params." if key in model.rate_names else ""
        raise SpecError(f"{source}: {prefix}{e}") from None

    # [reduce]
    reduce = _reduce(source, doc.get("reduce"), grid)
    # [chunks]
    chunk_overrides = _chunk_overrides(source, doc.get("chunks"), grid, reduce)
    description = doc.get("description", "")
    codec = doc.get("codec", "auto")
    if codec not in CODECS:
        raise _fail(source, "codec", f"unknown codec {codec!r}; allowed: {_choices(CODECS)}")
    group = _group_overrides(source, doc.get("group"), grid, reduce)
    cluster = _cluster(source, doc.get("cluster"))
    return Spec(name=name, source=source, text=text, grid=grid, dtype=dtype,
                chunk_overrides=chunk_overrides, reduce=reduce, description=description,
                codec=codec, group_overrides=group, cluster=cluster)


def _cluster(source: str, table: object) -> dict[str, Any]:
    """The ``[cluster]`` table, checked as the ``qbfast run`` flags it stands for are."""
    from .cluster import JOBQUEUE_KINDS, ClusterError, lifetime_margin, walltime_seconds

    if table is None:
        return {}
    if not isinstance(table, dict):
        raise _fail(source, "cluster", f"expected a table [cluster] with keys "
                                       f"{_choices(CLUSTER_KEYS)}")
    for k, v in table.items():
        if k not in CLUSTER_KEYS:
            raise _fail(source, f"cluster.{k}", f"unknown key; allowed: "
                                                f"{_choices(CLUSTER_KEYS)}")
        if k in CLUSTER_INT_KEYS:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise _fail(source, f"cluster.{k}", f"expected an integer >= 1, got {v!r}")
        elif not isinstance(v, str) or not v.strip():
            raise _fail(source, f"cluster.{k}", f"expected a non-empty string, got {v!r}")
    if "kind" not in table:
        raise _fail(source, "cluster.kind", f"missing; allowed: {_choices(JOBQUEUE_KINDS)}")
    if table["kind"] not in JOBQUEUE_KINDS:
        raise _fail(source, "cluster.kind", f"unknown kind {table['kind']!r}; allowed: "
                                            f"{_choices(JOBQUEUE_KINDS)}")
    if "jobs" in table and "adapt_max" in table:
        raise _fail(source, "cluster", "jobs (fixed) and adapt_max (adaptive): choose one")
    if "walltime" in table:
        try:
            lifetime_margin(walltime_seconds(table["walltime"]))
        except ClusterError as e:
            raise _fail(source, "cluster.walltime",
                        str(e).removeprefix("--walltime").lstrip(": ")) from None
    return dict(table)


def _group_overrides(source: str, table: object, grid: Grid,
                     reduce: Reduce | None) -> dict[str, int] | None:
    """The ``[group]`` table, checked: swept dim -> tasks per storage chunk (the others 1)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise _fail(source, "group", "expected a table [group] of swept dimension = tasks")
    if reduce is None or reduce.keep_series:
        raise _fail(source, "group", "task groups need [reduce] without keep_series (no "
                                     "stored series)")
    swept = grid.dims[:-1]
    given: dict[str, int] = {}
    for k, v in table.items():
        if k not in swept:
            raise _fail(source, f"group.{k}", f"not a swept dimension; allowed: "
                                              f"{_choices(swept)}")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise _fail(source, f"group.{k}", f"expected an integer >= 1, got {v!r}")
        given[k] = v
    return given


def _reduce(source: str, table: object, grid: Grid) -> Reduce | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise _fail(source, "reduce", "expected a table [reduce] with keys "
                                      f"{_choices(REDUCE_KEYS)}")
    for k in table:
        if k not in REDUCE_KEYS:
            raise _fail(source, f"reduce.{k}", f"unknown key; allowed: {_choices(REDUCE_KEYS)}")
    over = table.get("over", TIME.name)
    if over != TIME.name:
        raise _fail(source, "reduce.over", f"got {over!r}; allowed: 't'")
    stats = table.get("stats")
    if not isinstance(stats, list) or not stats:
        raise _fail(source, "reduce.stats", f"expected a non-empty list; allowed: "
                                            f"{_choices(REDUCTIONS)}")
    for s in stats:
        if not isinstance(s, str) or s not in REDUCTIONS:
            raise _fail(source, "reduce.stats", f"unknown statistic {s!r}; allowed: "
                                                f"{_choices(REDUCTIONS)}")
    if len(set(stats)) != len(stats):
        raise _fail(source, "reduce.stats", f"repeated statistics in {stats!r}")
    keep = table.get("keep_series", False)
    if not isinstance(keep, bool):
        raise _fail(source, "reduce.keep_series", f"expected true or false, got {keep!r}")
    if not grid.swept:
        raise _fail(source, "reduce", "needs at least one swept parameter (a list or range "
                                      "in [params]) besides t")
    return Reduce(over=over, stats=tuple(stats), keep_series=keep)


def _chunk_overrides(source: str, table: object, grid: Grid,
                     reduce: Reduce | None) -> dict[str, int]:
    """The ``[chunks]`` table, checked: dim -> length (clipped to the dim's size); the planner
    (:mod:`qbfast.runner.plan`) plans the other dims around them."""
    dims, shape = grid.dims, grid.shape
    given: dict[str, int] = {}
    if table is None:
        return given
    if not isinstance(table, dict):
        raise _fail(source, "chunks", "expected a table [chunks] of dimension = length")
    for k, v in table.items():
        if k not in dims:
            raise _fail(source, f"chunks.{k}", f"not a dimension of this sweep; allowed: "
                                               f"{_choices(dims)}")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise _fail(source, f"chunks.{k}", f"expected an integer >= 1, got {v!r}")
        given[k] = min(v, shape[dims.index(k)])
    n_t = shape[-1]
    whole_t_reason = ("[reduce] reduces along all of t" if reduce is not None else
                      "protocol 'full' integrates from t = 0" if grid.protocol == "full"
                      else None)
    if TIME.name in given and given[TIME.name] < n_t and whole_t_reason:
        raise _fail(source, f"chunks.{TIME.name}",
                    f"{whole_t_reason}, so a chunk must span all of t ({n_t})")
    return given
