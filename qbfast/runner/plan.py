"""The sweep planner: a spec's dims and shape -> the task (= storage chunk) shape and the task list.

Pure: no I/O, no Dask, no Zarr, no clock; :func:`plan` is a function of its arguments (a
:class:`Work` and the number of threads), tested alone (``tests/runner/test_plan.py``).

The rule (``docs/planning.md`` explains it with figures). With N the grid's evaluations
(points x times), R the kernel's measured rate per core (:data:`RATES`, divided by
``Work.cost``), E a task's evaluations and ``threads`` the cluster's threads:

1. **Today's sizes for small grids.** The legacy target (the rule ``qbfast.runner.spec`` used
   before the planner) is ``E0 = clip(2**23 // n_metrics, 2**19, 2**21)``, divided by 4 for the
   ODE kernel "field_full" and by ``cost``, times 4 for [reduce]-only sweeps (which then also
   split dims evenly). If the legacy layout has at most ``F = min(max(PLATEAU_TASKS,
   TASKS_PER_THREAD x threads), MAX_TASKS)`` tasks, it is the plan, exactly as before.
2. **Bigger tasks for big grids.** Otherwise ``E = clip(N / F, E0, E_aim)``: the number of tasks
   stays at F (at least TASKS_PER_THREAD per thread) while the tasks grow from E0 to E_aim, then
   grows with N. ``E_aim``:

   - [reduce]-only (``keep_series`` false): the evaluations that give reduced chunk files of
     ``REDUCED_FILE_BYTES`` (1 MiB of the widest reduced variable: ``E = 1 MiB / itemsize x T``),
     kept within ``[MIN_TASK_SECONDS, MAX_TASK_SECONDS] x R`` (1-10 s of core time): a reduced
     file holds T times fewer values than its task computes, so small files come from short
     tasks;
   - series stored: ``MIN_TASK_SECONDS x R`` (1 s of core time), at most ``SERIES_TASK_BYTES``
     of float64 series per task (a task holds all its metrics' series in memory, and its
     storage: cast, compression and write, costs more than its kernel does).
3. **At most MAX_TASKS tasks.** ``E >= N / MAX_TASKS`` (1e5), whatever the rate: on the slowest
   kernels at 1e13 points this makes tasks longer than 10 s (said in :attr:`Plan.reason`).

E becomes a chunk shape as the legacy rule did: t is whole when ``Work.whole_t`` (or when it
fits in E), else split into chunks of E; then dims from the last swept one to the first take
as many values as the remaining budget ``E // t_chunk`` allows. From rule 2 on, every split is
even (a dim of 21 in chunks of at most 14 gives 11 + 10, not 14 + 7), so that tasks finish
together.

**Overrides.** A spec's ``[chunks]`` table (``Work.chunks``, dim -> length, validated by the
spec) fixes those dims' lengths as given (clipped to the dim); the other dims are planned as
above around them. :attr:`Plan.warnings` holds one line, with figures, for an override layout
that makes more than ``WARN_FILES`` (1e5) files per variable or files under ``WARN_FILE_BYTES``
(4 KiB): the latter only where the layout planned without ``[chunks]`` has larger files (a
tiny grid's files are small whatever the layout).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..params import TIME
from ..store.layout import is_grouped, storage_chunks

if TYPE_CHECKING:
    from .spec import Spec

# ---- measured rates ------------------------------------------------------------------------

#: Evaluations per core-second, (kernel, keep_series) -> {n_metrics: rate}, for the kernels
#: of :attr:`qbfast.core.Grid.kernel`: ``keep_series`` True is :meth:`Grid.compute` (the
#: series, before cast, compression and write), False is :func:`qbfast.reduce.reduce_grid`
#: (stats max, argmax, first_max). MEASURED with ``python -m bench.rates`` (1 Numba thread,
#: CPU time of the process, the first k metrics of ``qbfast.params.METRIC_LIST``; field "full"
#: with about 10 default Magnus steps per output interval, its cost grows with them),
#: 2026-12-02 00:16 UTC on this 2-core machine shared with other jobs (load average 9):
#: rounded to 2 digits, good to about +-30 %.
RATES: Mapping[tuple[str, bool], Mapping[int, float]] = MappingProxyType({
    ("cavity", True): {1: 1.5e8, 2: 1.3e8, 4: 1.1e8, 8: 6.2e7, 15: 4.6e7},
    ("cavity", False): {1: 1.5e8, 2: 1.3e8, 4: 9.0e7, 8: 4.4e7, 15: 3.4e7},
    ("field_drive", True): {1: 2.2e8, 2: 2.0e8, 4: 1.6e8, 8: 1.1e8, 15: 8.4e7},
    ("field_drive", False): {1: 2.3e8, 2: 1.7e8, 4: 1.2e8, 8: 8.3e7, 15: 3.8e7},
    ("field_full", True): {1: 9.2e5, 2: 9.2e5, 4: 8.8e5, 8: 9.3e5, 15: 8.3e5},
    ("field_full", False): {1: 8.9e5, 2: 9.9e5, 4: 8.9e5, 8: 8.3e5, 15: 9.1e5},
    # The open kernels (issue 18), MEASURED with ``python -m bench.rates --kernels
    # open_field_drive open_field_full open_cavity open_cavity_thermal`` 2026-12-07 16:16 UTC
    # (same machine, load average about 2-4), on the cases of ``bench.open.rate_case``, 1000
    # times in [0, 20]: every field channel; the cavity's lossy cascade at n = 7 (gamma_phi
    # alone runs about 6x faster); thermal nbar = 1 (69 sectors; the cost grows with the
    # sectors). Not yet routed by Grid: the series rate stands for both keep_series values.
    ("open_field_drive", True): {1: 5.2e5, 2: 5.0e5, 4: 5.0e5, 8: 5.0e5, 15: 4.8e5},
    ("open_field_drive", False): {1: 5.2e5, 2: 5.0e5, 4: 5.0e5, 8: 5.0e5, 15: 4.8e5},
    ("open_field_full", True): {1: 5.0e5, 2: 5.1e5, 4: 5.0e5, 8: 5.0e5, 15: 4.9e5},
    ("open_field_full", False): {1: 5.0e5, 2: 5.1e5, 4: 5.0e5, 8: 5.0e5, 15: 4.9e5},
    ("open_cavity", True): {1: 7.6e5, 2: 7.5e5, 4: 7.7e5, 8: 7.4e5, 15: 7.0e5},
    ("open_cavity", False): {1: 7.6e5, 2: 7.5e5, 4: 7.7e5, 8: 7.4e5, 15: 7.0e5},
    # open_cavity_thermal MEASURED again with ``python -m bench.rates --kernels open_cavity
    # open_cavity_thermal`` 2026-12-08 00:28 UTC (quiet machine), after its banded step matrix
    # (open_cavity was unchanged at 7.4e5-7.7e5).
    ("open_cavity_thermal", True): {1: 2.3e4, 2: 2.2e4, 4: 2.2e4, 8: 2.2e4, 15: 2.3e4},
    ("open_cavity_thermal", False): {1: 2.3e4, 2: 2.2e4, 4: 2.2e4, 8: 2.2e4, 15: 2.3e4},
})
#: A kernel missing from :data:`RATES` (e.g. a new charger kernel) is planned at the rate of
#: the slowest measured one, "field_full": its tasks err on the short side.
DEFAULT_RATE_KERNEL = "field_full"

# ---- the rule's constants ------------------------------------------------------------------

#: Legacy target (rule 1): evaluations per task 2**23 // n_metrics, within these bounds.
LEGACY_EVALUATIONS = 1 << 23
TARGET_CHUNK_EVALUATIONS = 1 << 21
MIN_CHUNK_EVALUATIONS = 1 << 19
#: Legacy: field "full" integrates the ODE, about this many times more work per evaluation.
FULL_PROTOCOL_COST = 4
#: Legacy: [reduce]-only tasks store T times less than they compute: this many times more
#: evaluations per task (and even splits).
REDUCE_CHUNK_FACTOR = 4
#: Rule 1/2: grids whose legacy layout has at most this many tasks (or TASKS_PER_THREAD per
#: thread, if more) keep it; bigger grids keep this many tasks while their tasks grow.
PLATEAU_TASKS = 1024
TASKS_PER_THREAD = 4
#: Rule 2: core-seconds of a grown task (at the measured rate).
MIN_TASK_SECONDS = 1.0
MAX_TASK_SECONDS = 10.0
#: Rule 2, [reduce]-only: raw bytes aimed at for a chunk file of the widest reduced variable
#: (zstd level 1 keeps about 70-80 % of such arrays, see docs/planning.md).
REDUCED_FILE_BYTES = 1 << 20
#: Rule 2, series stored: at most this many bytes of float64 series (all metrics) per task.
SERIES_TASK_BYTES = 512 << 20
#: Rule 3: no plan has more tasks than this (unless [chunks] forces it).
MAX_TASKS = 100_000
#: [chunks] warnings (issue 10): more files per variable than this, or files under this.
WARN_FILES = 100_000
WARN_FILE_BYTES = 4 << 10
#: Task groups ([reduce]-only sweeps past rule 1): a storage chunk of a reduced variable spans
#: a block of tasks holding about this many raw bytes of the widest reduced variable, and at
#: most GROUP_MAX_TASKS tasks (a group's staging files are held until it is merged).
GROUP_BYTES = 64 << 20
GROUP_MAX_TASKS = 64
#: Whether the planner groups tasks by itself (``[group]`` in a spec groups them regardless).
AUTO_GROUP = True
#: Threads assumed by :attr:`qbfast.runner.spec.Spec.chunks`; every ``threads`` up to
#: PLATEAU_TASKS / TASKS_PER_THREAD (256) gives the same plan.
DEFAULT_THREADS = 16


#: Cost of one excitation sector of a charger point, relative to a Fock point (the "cavity"
#: rate): ``python -m bench.kernels`` charger rows, ns per (point, sector) per thread against
#: the Fock row's ns per point (2026-12-02, 2 threads: coherent 102-133 ns per sector, thermal
#: 9.6-11 ns, Fock n = 10 about 150 ns per point).
SECTOR_COST = {"coherent": 1.0, "thermal": 0.1}


def charger_cost(spec: Any) -> float:
    """Relative cost per evaluation of a spec's charger: the mean number of sectors of its
    nbar values (the section 7 window) times :data:`SECTOR_COST`; 1 for the Fock charger and
    the field model."""
    charger = getattr(spec.grid, "charger", None)
    if charger not in SECTOR_COST:
        return 1.0
    from ..kernels.chargers import sector_window

    g = spec.grid
    values = g.swept.get("nbar", [g.fixed.get("nbar", 0.0)])
    sectors = [hi - lo + 1 for lo, hi in (sector_window(charger == "thermal", float(v))
                                          for v in values)]
    return max(1.0, SECTOR_COST[charger] * float(sum(sectors)) / len(sectors))


def kernel_rate(kernel: str, keep_series: bool, n_metrics: int) -> float:
    """Evaluations per second per core of ``kernel`` computing ``n_metrics`` metrics, from
    :data:`RATES`: seconds per evaluation interpolated linearly between the measured numbers of
    metrics (held constant beyond them); an unknown kernel takes DEFAULT_RATE_KERNEL's rate."""
    if n_metrics < 1:
        raise ValueError(f"n_metrics: expected an integer >= 1, got {n_metrics!r}")
    table = RATES.get((kernel, keep_series)) or RATES[(DEFAULT_RATE_KERNEL, keep_series)]
    counts = sorted(table)
    if n_metrics <= counts[0]:
        return table[counts[0]]
    if n_metrics >= counts[-1]:
        return table[counts[-1]]
    hi = next(k for k in counts if k >= n_metrics)
    lo = max(k for k in counts if k <= n_metrics)
    if hi == lo:
        return table[lo]
    w = (n_metrics - lo) / (hi - lo)
    return 1.0 / ((1 - w) / table[lo] + w / table[hi])


# ---- inputs and outputs --------------------------------------------------------------------


@dataclass(frozen=True)
class Work:
    """What planning needs to know of a sweep.

    ``dims``/``shape``: the swept dims then ``t`` (last); ``kernel``: a
    :attr:`qbfast.core.Grid.kernel` name (others plan at DEFAULT_RATE_KERNEL's rate);
    ``n_metrics``: metrics computed per evaluation; ``keep_series``: False for [reduce]-only
    (the series is never stored); ``whole_t``: a task must span all of t ([reduce], or protocol
    "full"); ``series_variables``/``reduced_variables``: stored variables with dims
    (*swept, t) and (*swept); ``itemsize``: bytes per stored value of the widest variable
    (times of extrema are float64); ``chunks``: ``[chunks]`` overrides, dim -> length;
    ``cost``: relative cost per evaluation (1 for the kernels of RATES).
    """

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    kernel: str
    n_metrics: int
    keep_series: bool
    whole_t: bool
    series_variables: int
    reduced_variables: int
    itemsize: int
    chunks: Mapping[str, int] = field(default_factory=dict)
    cost: float = 1.0
    group: Mapping[str, int] | None = None

    @classmethod
    def from_spec(cls, spec: Spec) -> Work:
        """The work of a validated :class:`qbfast.runner.spec.Spec`."""
        variables = spec.variables()
        return cls(dims=spec.dims, shape=spec.shape, kernel=spec.grid.kernel,
                   n_metrics=len(spec.grid.metrics), keep_series=spec.keep_series,
                   whole_t=spec.reduce is not None or spec.grid.protocol == "full",
                   series_variables=sum(v.stat is None for v in variables),
                   reduced_variables=sum(v.stat is not None for v in variables),
                   itemsize=max(spec.variable_dtype(v).itemsize for v in variables),
                   chunks=dict(spec.chunk_overrides), cost=charger_cost(spec),
                   group=None if spec.group_overrides is None else dict(spec.group_overrides))

    def check(self) -> None:
        """Raise ValueError (one line naming the field) if the fields do not fit together."""
        if len(self.dims) != len(self.shape) or not self.dims or self.dims[-1] != TIME.name:
            raise ValueError(f"Work.dims: expected the swept dims then {TIME.name!r}, one per "
                             f"length of shape {self.shape!r}; got {self.dims!r}")
        if len(set(self.dims)) != len(self.dims):
            raise ValueError(f"Work.dims: repeated dims in {self.dims!r}")
        if any(not isinstance(s, int) or s < 1 for s in self.shape):
            raise ValueError(f"Work.shape: expected integers >= 1, got {self.shape!r}")
        if not isinstance(self.n_metrics, int) or self.n_metrics < 1:
            raise ValueError(f"Work.n_metrics: expected an integer >= 1, got {self.n_metrics!r}")
        if self.itemsize not in (1, 2, 4, 8, 16):
            raise ValueError(f"Work.itemsize: expected 1, 2, 4, 8 or 16 bytes, got "
                             f"{self.itemsize!r}")
        if self.series_variables < 0 or self.reduced_variables < 0 or \
                self.series_variables + self.reduced_variables < 1:
            raise ValueError("Work.series_variables, Work.reduced_variables: expected counts "
                             f">= 0, at least one variable; got {self.series_variables!r}, "
                             f"{self.reduced_variables!r}")
        if self.keep_series != (self.series_variables > 0):
            raise ValueError(f"Work.keep_series: {self.keep_series!r} does not match "
                             f"series_variables = {self.series_variables!r}")
        if not self.keep_series and not self.whole_t:
            raise ValueError("Work.whole_t: must be True when keep_series is False ([reduce] "
                             "reduces along all of t)")
        if not (isinstance(self.cost, (int, float)) and math.isfinite(self.cost)
                and self.cost > 0):
            raise ValueError(f"Work.cost: expected a finite number > 0, got {self.cost!r}")
        for dim, length in self.chunks.items():
            if dim not in self.dims:
                raise ValueError(f"Work.chunks: {dim!r} is not a dim; allowed: "
                                 f"{', '.join(map(repr, self.dims))}")
            if not isinstance(length, int) or isinstance(length, bool) or length < 1:
                raise ValueError(f"Work.chunks: {dim}: expected an integer >= 1, got "
                                 f"{length!r}")
        if self.group is not None:
            if self.keep_series:
                raise ValueError("Work.group: task groups are for [reduce]-only sweeps (no "
                                 "stored series)")
            for dim, factor in self.group.items():
                if dim not in self.dims[:-1]:
                    raise ValueError(f"Work.group: {dim!r} is not a swept dim; allowed: "
                                     f"{', '.join(map(repr, self.dims[:-1]))}")
                if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
                    raise ValueError(f"Work.group: {dim}: expected an integer >= 1, got "
                                     f"{factor!r}")
        given_t = self.chunks.get(TIME.name)
        if self.whole_t and given_t is not None and given_t < self.shape[-1]:
            raise ValueError(f"Work.chunks: {TIME.name}: a task must span all of t "
                             f"({self.shape[-1]}), got {given_t}")

    @property
    def evaluations(self) -> int:
        return math.prod(self.shape)

    @property
    def rate(self) -> float:
        """Evaluations per core-second: the kernel's measured rate divided by ``cost``."""
        return kernel_rate(self.kernel, self.keep_series, self.n_metrics) / self.cost


@dataclass(frozen=True)
class Plan:
    """Tasks of a sweep: one task computes (and writes) one storage chunk.

    ``chunks[i]``: the task's length along ``dims[i]`` (edge tasks may be shorter);
    ``chunk_grid[i]``: tasks along ``dims[i]``; ``task_seconds``: estimated core-seconds of
    a full task at the kernel's measured rate (storage not included); ``file_bytes``: raw
    (uncompressed) bytes of one chunk file of the largest variable; ``warnings``: one line each,
    with figures; ``reason``: which rule set the task size; ``rate``: the evaluations per
    core-second assumed.
    """

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    chunk_grid: tuple[int, ...]
    n_tasks: int
    task_seconds: float
    file_bytes: float
    warnings: tuple[str, ...]
    reason: str
    rate: float
    #: tasks per storage chunk along each dim (1 for t): a storage chunk of every variable
    #: is ``group x chunks``; all 1 (today's layout: one task, one chunk) unless grouped
    group: tuple[int, ...] = ()

    @property
    def grouped(self) -> bool:
        return is_grouped(self.group)

    @property
    def storage_chunks(self) -> tuple[int, ...]:
        """Chunk lengths of the stored arrays: ``group[i] x chunks[i]``, clipped to the dim."""
        return storage_chunks(self.shape, self.chunks, self.group)

    def task_coords(self, k: int) -> tuple[int, ...]:
        """The ``k``-th task's coordinates in ``chunk_grid``, C order (last dim fastest)."""
        if not 0 <= k < self.n_tasks:
            raise ValueError(f"k: expected a task number in [0, {self.n_tasks}), got {k!r}")
        coords = []
        for n in reversed(self.chunk_grid):
            k, i = divmod(k, n)
            coords.append(i)
        return tuple(reversed(coords))

    def task_number(self, coords: Sequence[int]) -> int:
        """Inverse of :meth:`task_coords`."""
        self._check_coords(coords)
        k = 0
        for i, n in zip(coords, self.chunk_grid):
            k = k * n + int(i)
        return k

    def task_slices(self, coords: Sequence[int]) -> tuple[slice, ...]:
        """The task's region of the grid, one slice per dim."""
        self._check_coords(coords)
        return tuple(slice(i * c, min((i + 1) * c, s))
                     for i, c, s in zip(coords, self.chunks, self.shape))

    def task_evaluations(self, coords: Sequence[int]) -> int:
        """Evaluations of the task (edge tasks are smaller)."""
        return math.prod(s.stop - s.start for s in self.task_slices(coords))

    def evaluations(self) -> int:
        """Evaluations of the whole grid."""
        return math.prod(self.shape)

    def _check_coords(self, coords: Sequence[int]) -> None:
        if len(coords) != len(self.chunk_grid) or any(
                not 0 <= int(i) < n for i, n in zip(coords, self.chunk_grid)):
            raise ValueError(f"coords: expected {len(self.chunk_grid)} task coordinates "
                             f"within {self.chunk_grid!r}, got {tuple(coords)!r}")


# ---- the rule ------------------------------------------------------------------------------


def legacy_target(work: Work) -> int:
    """Rule 1's evaluations per task: the rule of ``qbfast.runner.spec`` before the planner."""
    target = max(MIN_CHUNK_EVALUATIONS,
                 min(TARGET_CHUNK_EVALUATIONS, LEGACY_EVALUATIONS // work.n_metrics))
    if work.kernel == "field_full":
        target //= FULL_PROTOCOL_COST
    if work.cost != 1:
        target = max(1, int(target / work.cost))
    if not work.keep_series:
        target *= REDUCE_CHUNK_FACTOR
    return target


def _even(size: int, length: int) -> int:
    """The shortest chunk length that cuts ``size`` into as many chunks as ``length`` does."""
    return -(-size // -(-size // length))


def _split(work: Work, target: int, balanced: bool) -> tuple[int, ...]:
    """Chunk lengths of tasks of about ``target`` evaluations (at most, where the grid and the
    overrides allow): t whole if it must be or fits, else in chunks of ``target``; then the
    swept dims, last first, take what the budget ``target // t_chunk`` leaves. ``balanced``:
    split each planned dim evenly."""
    dims, shape = work.dims, work.shape
    given = {dims.index(d): min(c, shape[dims.index(d)]) for d, c in work.chunks.items()}
    last = len(dims) - 1
    n_t = shape[last]
    if last in given:
        ct = given[last]
    elif work.whole_t or n_t <= target:
        ct = n_t
    else:
        ct = _even(n_t, target) if balanced else target
    budget = max(1, target // ct)
    chunks = [0] * len(dims)
    chunks[last] = ct
    prod = 1
    for i in range(last - 1, -1, -1):
        c = given.get(i)
        if c is None:
            c = max(1, min(shape[i], budget // prod))
            if balanced:
                c = _even(shape[i], c)
        chunks[i] = c
        prod *= c
    return tuple(chunks)


def _grid(shape: Sequence[int], chunks: Sequence[int]) -> tuple[int, ...]:
    return tuple(-(-s // c) for s, c in zip(shape, chunks))


def _file_bytes(work: Work, chunks: Sequence[int]) -> tuple[float, float]:
    """(largest, smallest) raw bytes of one chunk file: series files span t, reduced ones not."""
    series = math.prod(chunks) * work.itemsize
    reduced = math.prod(chunks[:-1]) * work.itemsize
    sizes = ([series] if work.series_variables else []) + \
            ([reduced] if work.reduced_variables else [])
    return float(max(sizes)), float(min(sizes))


def _fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _fmt_seconds(s: float) -> str:
    return f"{s:.3g} s"


def _floor_text(threads: int) -> str:
    return (f"min(max({PLATEAU_TASKS}, {TASKS_PER_THREAD} x {threads} threads), "
            f"{MAX_TASKS:,})")


def _layout(work: Work, threads: int) -> tuple[tuple[int, ...], str]:
    """The chunk shape and the reason line (rules 1-3, with ``work.chunks`` applied)."""
    n = work.evaluations
    rate = work.rate
    floor_tasks = min(max(PLATEAU_TASKS, TASKS_PER_THREAD * threads), MAX_TASKS)
    e0 = legacy_target(work)
    legacy = _split(work, e0, balanced=not work.keep_series)
    n_legacy = math.prod(_grid(work.shape, legacy))
    if n_legacy <= floor_tasks:
        return legacy, (f"today's sizes: {n_legacy:,} task(s) <= {floor_tasks:,} "
                        f"({_floor_text(threads)}), target {e0:,} evaluations per task")
    lo_s, hi_s = MIN_TASK_SECONDS * rate, MAX_TASK_SECONDS * rate
    if work.keep_series:
        memory = SERIES_TASK_BYTES // (8 * work.n_metrics)
        aim = max(float(e0), min(lo_s, memory))
        why = (f"series tasks of {_fmt_seconds(aim / rate)} (at most "
               f"{_fmt_bytes(SERIES_TASK_BYTES)} of float64 series per task)"
               if memory < lo_s else f"tasks of {_fmt_seconds(MIN_TASK_SECONDS)}")
    else:
        files = REDUCED_FILE_BYTES / work.itemsize * work.shape[-1]
        aim = max(float(e0), min(max(files, lo_s), hi_s))
        why = (f"reduced files of {_fmt_bytes(REDUCED_FILE_BYTES)}" if lo_s <= files <= hi_s
               else f"tasks of {_fmt_seconds(aim / rate)} (reduced files of "
                    f"{_fmt_bytes(REDUCED_FILE_BYTES)} would take "
                    f"{_fmt_seconds(files / rate)})")
    target = min(max(n / floor_tasks, float(e0)), aim)
    if target < aim:
        why = f"{floor_tasks:,} tasks ({_floor_text(threads)}) while tasks grow toward {why}"
    if n / target > MAX_TASKS:
        target = n / MAX_TASKS
        why = f"at most {MAX_TASKS:,} tasks (tasks of {_fmt_seconds(target / rate)})"
    chunks = _split(work, max(1, math.ceil(target)), balanced=True)
    while True:  # floors and even splits can leave more tasks than MAX_TASKS
        n_tasks = math.prod(_grid(work.shape, chunks))
        if n_tasks <= MAX_TASKS or target >= n:
            break  # (target >= n: one task, or as few as the overrides allow)
        target = min(float(n), target * n_tasks / MAX_TASKS * 1.01)
        chunks = _split(work, math.ceil(target), balanced=True)
    return chunks, why


def plan(work: Work, threads: int = DEFAULT_THREADS) -> Plan:
    """The tasks of ``work`` on a cluster of ``threads`` threads (Dask threads x Numba threads):
    the rule of this module's docstring. Raises ValueError (one line) on inconsistent input."""
    work.check()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: expected an integer >= 1, got {threads!r}")
    chunks, why = _layout(work, threads)
    chunk_grid = _grid(work.shape, chunks)
    n_tasks = math.prod(chunk_grid)
    rate = work.rate
    largest, smallest = _file_bytes(work, chunks)
    warnings: list[str] = []
    if work.chunks:
        given = ", ".join(f"{d} = {c}" for d, c in work.chunks.items())
        why += f"; [chunks] gives {given}"
        free_chunks, _ = _layout(Work(**{**_fields(work), "chunks": {}}), threads)
        free_tasks = math.prod(_grid(work.shape, free_chunks))
        free_large, free_small = _file_bytes(work, free_chunks)
        planned = (f"without [chunks]: {free_tasks:,} files of "
                   f"{_fmt_bytes(free_small)}" + ("" if free_large == free_small else
                                                  f" to {_fmt_bytes(free_large)}"))
        if n_tasks > WARN_FILES:
            warnings.append(f"[chunks] ({given}) makes {n_tasks:,} files per variable, more "
                            f"than {WARN_FILES:,} ({planned})")
        if smallest < WARN_FILE_BYTES and smallest < free_small:
            warnings.append(f"[chunks] ({given}) makes files of {_fmt_bytes(smallest)} raw, "
                            f"under {_fmt_bytes(WARN_FILE_BYTES)} ({n_tasks:,} files per "
                            f"variable; {planned})")
    if work.keep_series:
        task_bytes = math.prod(chunks) * 8 * work.n_metrics
        if task_bytes > 2 * SERIES_TASK_BYTES:
            warnings.append(f"each task holds {_fmt_bytes(task_bytes)} of float64 series "
                            f"({work.n_metrics} metrics x {math.prod(chunks):,} evaluations); "
                            f"workers need that much memory per thread")
    group, group_why = _group(work, chunks, chunk_grid, why.startswith("today's sizes"))
    if group_why:
        why += f"; {group_why}"
    return Plan(dims=work.dims, shape=work.shape, chunks=chunks, chunk_grid=chunk_grid,
                n_tasks=n_tasks, task_seconds=math.prod(chunks) / rate, file_bytes=largest,
                warnings=tuple(warnings), reason=why, rate=rate, group=group)


def _group(work: Work, chunks: tuple[int, ...], chunk_grid: tuple[int, ...],
           legacy: bool) -> tuple[tuple[int, ...], str]:
    """Tasks per storage chunk along each dim, and the reason ("" for no group).

    ``Work.group`` given: those factors (clipped to the task grid), 1 elsewhere. Else stored
    series, a grid of rule 1 (today's sizes), or ``[chunks]`` given (its chunks are the storage
    chunks, as before groups existed): 1 everywhere. Else [reduce]-only: a budget of
    ``min(GROUP_MAX_TASKS, GROUP_BYTES // reduced file bytes)`` tasks, taken by the swept dims
    from the last to the first (each factor cut evenly in the task grid)."""
    ones = (1,) * len(chunks)
    if work.group is not None:
        g = list(ones)
        for dim, factor in work.group.items():
            i = work.dims.index(dim)
            g[i] = min(factor, chunk_grid[i])
        given = ", ".join(f"{d} = {f}" for d, f in work.group.items())
        return tuple(g), (f"[group] gives {given}" if any(f > 1 for f in g) else "")
    if work.keep_series or legacy or work.chunks or not AUTO_GROUP:
        return ones, ""
    reduced = math.prod(chunks[:-1]) * work.itemsize
    budget = min(GROUP_MAX_TASKS, int(GROUP_BYTES // max(1, reduced)))
    if budget < 2:
        return ones, ""
    g = list(ones)
    prod = 1
    for i in range(len(chunks) - 2, -1, -1):
        f = max(1, min(chunk_grid[i], budget // prod))
        f = _even(chunk_grid[i], f)
        g[i] = f
        prod *= f
    if prod < 2:
        return ones, ""
    return tuple(g), (f"groups of {prod} tasks (storage chunks of "
                      f"{_fmt_bytes(prod * reduced)} raw, at most {GROUP_MAX_TASKS} tasks "
                      f"or {_fmt_bytes(GROUP_BYTES)})")


def _fields(work: Work) -> dict[str, Any]:
    return {f: getattr(work, f) for f in work.__dataclass_fields__}
