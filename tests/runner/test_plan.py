"""The planner's rule (qbfast.runner.plan), pure: nothing is computed, no store, no cluster."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qbfast.runner import plan as P
from qbfast.runner.plan import MAX_TASKS, Plan, Work, kernel_rate, plan
from qbfast.runner.spec import parse_spec

KERNELS = ("cavity", "field_drive", "field_full")


def work(shape, *, kernel="cavity", n_metrics=2, keep_series=True, whole_t=None, itemsize=4,
         chunks=None, cost=1.0, reduced=None) -> Work:
    """A Work with dims p0, p1, ..., t: series of every metric (keep_series) or [reduce]-only
    with ``reduced`` (default 4 x n_metrics) reduced variables."""
    dims = (*(f"p{i}" for i in range(len(shape) - 1)), "t")
    if whole_t is None:
        whole_t = not keep_series
    series = n_metrics if keep_series else 0
    if reduced is None:
        reduced = 0 if keep_series else 4 * n_metrics
    return Work(dims=dims, shape=tuple(shape), kernel=kernel, n_metrics=n_metrics,
                keep_series=keep_series, whole_t=whole_t, series_variables=series,
                reduced_variables=reduced, itemsize=itemsize, chunks=chunks or {}, cost=cost)


def legacy_chunks(shape, n_metrics, full, reduce_only, whole_t, given=None):
    """TODAY's rule, transcribed from qbfast/runner/spec.py ``_chunks`` as it was before the
    planner (commit 478ecf0): the reference that small grids must keep."""
    given = dict(given or {})
    n_t = shape[-1]
    target = max(2**19, min(2**21, 2**23 // n_metrics))
    if full:
        target //= 4
    if reduce_only:
        target *= 4
    if len(shape) - 1 in given:
        ct = given[len(shape) - 1]
    elif whole_t or n_t <= target:
        ct = n_t
    else:
        ct = target
    budget = max(1, target // ct)
    chunks = [0] * len(shape)
    chunks[-1] = ct
    prod = 1
    for i in range(len(shape) - 2, -1, -1):
        c = given.get(i)
        if c is None:
            c = max(1, min(shape[i], budget // prod))
            if reduce_only:
                c = -(-shape[i] // -(-shape[i] // c))
        chunks[i] = c
        prod *= c
    return tuple(chunks)


def covered(p: Plan) -> np.ndarray:
    counts = np.zeros(p.shape, dtype=np.int64)
    for k in range(p.n_tasks):
        counts[p.task_slices(p.task_coords(k))] += 1
    return counts


# ---- rule 1: today's sizes ------------------------------------------------------------------

def test_bench_sweeps_grids_keep_todays_chunks():
    """python -m bench.sweeps at 1e7 and 1e8 points (cavity n 8 x J1 21 x J2 61, 2 metrics):
    the chunks worked out by hand from today's rule (target 2**21 evaluations; x4 and even
    splits for [reduce]-only)."""
    # 1e7: T = 976. Series: budget 2**21 // 976 = 2148 points = 61 x 21 x 1.
    assert plan(work((8, 21, 61, 976))).chunks == (1, 21, 61, 976)
    # [reduce]: budget 8594 -> n 6, evenly 4 + 4
    assert plan(work((8, 21, 61, 976), keep_series=False)).chunks == (4, 21, 61, 976)
    # 1e8: T = 9758. Series: budget 214 -> J1 3 (not evened); [reduce]: 859 -> J1 14 -> 11 + 10
    assert plan(work((8, 21, 61, 9758))).chunks == (1, 3, 61, 9758)
    assert plan(work((8, 21, 61, 9758), keep_series=False)).chunks == (1, 11, 61, 9758)
    for shape in ((8, 21, 61, 976), (8, 21, 61, 9758)):
        for keep in (True, False):
            assert plan(work(shape, keep_series=keep), threads=2).reason.startswith("today")


def test_small_grids_keep_todays_chunks_by_hand():
    # 15 metrics: target 2**23 // 15 = 559240; budget 139 -> J2 61, J1 2
    assert plan(work((8, 21, 61, 4001), n_metrics=15)).chunks == (1, 2, 61, 4001)
    # a long t is split into chunks of the target when it may be
    assert plan(work((2, 3_000_000), n_metrics=15)).chunks == (1, 559240)
    # ... but not when a task must span all of t ([reduce] with series, or field "full")
    assert plan(work((2, 3_000_000), n_metrics=15, whole_t=True)).chunks == (1, 3_000_000)
    assert plan(work((2, 10**7), kernel="field_full", whole_t=True)).chunks == (1, 10**7)
    # field "full": target 2**21 / 4 = 524288 for 2 metrics, t whole: budget 524 = 200 x 2
    assert plan(work((50, 200, 1000), kernel="field_full", whole_t=True)).chunks == (2, 200, 1000)
    assert plan(work((2,))).chunks == (2,)
    assert plan(work((1,))).n_tasks == 1


@settings(max_examples=300, deadline=None)
@given(shape=st.lists(st.integers(1, 3000), min_size=0, max_size=4),
       n_t=st.sampled_from([1, 2, 7, 401, 976, 4001, 9758, 30000, 600000]),
       n_metrics=st.integers(1, 15), kernel=st.sampled_from(KERNELS),
       mode=st.sampled_from(["series", "series+reduce", "reduce"]),
       threads=st.sampled_from([1, 2, 16, 256]), data=st.data())
def test_small_grids_keep_todays_chunks(shape, n_t, n_metrics, kernel, mode, threads, data):
    """Whenever today's layout has at most PLATEAU_TASKS tasks, the plan is today's layout,
    with or without [chunks] overrides, for any threads."""
    shape = (*shape, n_t)
    keep = mode != "reduce"
    whole_t = mode != "series" or kernel == "field_full"
    given = {}
    if shape[:-1] and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(shape) - 2))
        given[i] = min(shape[i], data.draw(st.integers(1, 40)))
    w = work(shape, kernel=kernel, n_metrics=n_metrics, keep_series=keep, whole_t=whole_t,
             chunks={f"p{i}": c for i, c in given.items()})
    expected = legacy_chunks(shape, n_metrics, kernel == "field_full", not keep, whole_t, given)
    n_expected = math.prod(-(-s // c) for s, c in zip(shape, expected))
    p = plan(w, threads=threads)
    if n_expected <= P.PLATEAU_TASKS:
        assert p.chunks == expected
        assert p.reason.startswith("today's sizes")
    else:
        assert not p.reason.startswith("today's sizes")
        assert p.n_tasks <= max(n_expected, MAX_TASKS)  # grown plans never have more tasks


# ---- rules 2 and 3: big grids ---------------------------------------------------------------

def _grids():
    """(shape) from 1 to 1e13 evaluations: 1 to 5 swept dims and t of 10 to 1e4 values."""
    out = []
    for exponent in range(14):
        n = 10 ** exponent
        for n_t in (10, 1000, 10000):
            if n_t > n:
                continue
            points = n // n_t
            for n_dims in (1, 2, 3, 5):
                side = max(1, round(points ** (1 / n_dims)))
                out.append((*([side] * (n_dims - 1)), max(1, points // side ** (n_dims - 1)), n_t))
    return out


GRIDS = _grids()


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("keep_series", [True, False])
@pytest.mark.parametrize("threads", [2, 64, 1000, 100_000])
def test_rule_from_1_to_1e13_points(kernel, keep_series, threads):
    for shape in GRIDS:
        whole_t = not keep_series or kernel == "field_full"
        w = work(shape, kernel=kernel, keep_series=keep_series, whole_t=whole_t)
        p = plan(w, threads=threads)
        n = math.prod(shape)
        rate = kernel_rate(kernel, keep_series, 2)
        full_task = math.prod(p.chunks)
        assert p.n_tasks <= MAX_TASKS, (shape, p)
        assert p.evaluations() == n
        assert p.task_seconds == pytest.approx(full_task / rate)
        if whole_t:
            assert p.chunks[-1] == shape[-1]
        legacy = legacy_chunks(shape, 2, kernel == "field_full", not keep_series, whole_t)
        n_legacy = math.prod(-(-s // c) for s, c in zip(shape, legacy))
        floor_tasks = min(max(P.PLATEAU_TASKS, P.TASKS_PER_THREAD * threads), MAX_TASKS)
        if n_legacy <= floor_tasks:
            assert p.chunks == legacy
            continue
        # a few tasks per thread where the grid allows (today's sizes and the cap permitting)
        assert p.n_tasks >= min(P.TASKS_PER_THREAD * threads, MAX_TASKS, n_legacy) / 2, (shape, p)
        # never longer than 10 s unless the cap of MAX_TASKS makes it so
        capped = n / MAX_TASKS
        assert p.task_seconds <= max(P.MAX_TASK_SECONDS, 1.05 * 2 * capped / rate), (shape, p)
        if keep_series:  # memory per task bounded unless the cap makes it so
            assert full_task * 8 * 2 <= max(P.SERIES_TASK_BYTES, 2 * 8 * 2 * capped), (shape, p)
        # plenty of work per thread: tasks of at least ~1 s (or as much memory as allowed)
        aim = (min(P.MIN_TASK_SECONDS * rate, P.SERIES_TASK_BYTES / 16) if keep_series
               else P.MIN_TASK_SECONDS * rate)
        if n >= 4 * floor_tasks * aim:
            assert full_task >= aim / 4, (shape, p)


def test_tasks_grow_with_the_grid_between_today_and_the_aim():
    """Past today's sizes the number of tasks stays near PLATEAU_TASKS while tasks grow, then
    tasks stay near the aim and their number grows, up to MAX_TASKS."""
    counts, seconds = [], []
    for n_a in (2**k for k in range(4, 23)):
        p = plan(work((n_a, 100, 1000), keep_series=False, itemsize=8), threads=2)
        counts.append(p.n_tasks)
        seconds.append(p.task_seconds)
    assert all(b >= a for a, b in itertools.pairwise(seconds))  # tasks never shrink
    assert max(counts) <= MAX_TASKS
    assert max(seconds) <= P.MAX_TASK_SECONDS
    assert min(s for s, c in zip(seconds, counts) if c > 2 * P.PLATEAU_TASKS) >= P.MIN_TASK_SECONDS / 2


def test_the_1e13_spec_has_large_reduced_files_and_short_tasks():
    """Issue 9's 1.07e13-point spec (64 values of each field parameter, 10000 times, float32,
    2 metrics, max/argmax/first_max: 4 float32 and 4 float64 reduced variables)."""
    text = """
model = "field"
metrics = ["energy", "ergotropy"]
dtype = "float32"
[params]
A = { start = 0.0, stop = 2.0, num = NUM }
B = { start = 0.0, stop = 2.0, num = NUM }
omega = { start = 0.5, stop = 2.0, num = NUM }
g = { start = -1.0, stop = 1.0, num = NUM }
Delta = { start = 0.5, stop = 1.5, num = NUM }
t = { start = 0.0, stop = 20.0, num = 10000 }
[reduce]
over = "t"
stats = ["max", "argmax", "first_max"]
"""
    spec = parse_spec(text.replace("NUM", "64"))
    w = Work.from_spec(spec)
    assert (w.kernel, w.n_metrics, w.keep_series, w.whole_t) == ("field_drive", 2, False, True)
    assert (w.series_variables, w.reduced_variables, w.itemsize) == (0, 8, 8)
    assert w.evaluations == 64**5 * 10000
    for threads in (2, 64, 1000):
        p = plan(w, threads=threads)
        points = math.prod(p.chunks[:-1])
        mean_raw = points * (4 * 4 + 4 * 8) / 8  # bytes per reduced file, 8 variables
        assert mean_raw >= 512 << 10  # about 1 MiB raw for the float64 ones
        assert p.file_bytes == points * 8 >= 1 << 20
        assert 1.0 <= p.task_seconds <= P.MAX_TASK_SECONDS
        assert p.n_tasks >= P.TASKS_PER_THREAD * threads
        assert p.chunks[-1] == 10000
    # the 1.0e12 spec (40 values each): today 128,000 tasks of 800 points
    small = plan(Work.from_spec(parse_spec(text.replace("NUM", "40"))), threads=2)
    assert small.n_tasks <= 2 * P.PLATEAU_TASKS and small.task_seconds >= P.MIN_TASK_SECONDS


def test_more_threads_get_at_least_a_few_tasks_each():
    w = work((64, 64, 64, 64, 10000), kernel="field_drive", keep_series=False, itemsize=8)
    for threads in (1, 16, 256, 1024, 4096):
        p = plan(w, threads=threads)
        assert p.n_tasks >= P.TASKS_PER_THREAD * threads
    assert plan(w, threads=1).chunks == plan(w, threads=256).chunks  # same plan up to 256


def test_slow_kernels_are_capped_at_max_tasks():
    w = work((10**4, 10**5, 10**4), kernel="field_full", keep_series=False, itemsize=8)
    p = plan(w)
    assert p.n_tasks <= MAX_TASKS
    assert p.task_seconds > P.MAX_TASK_SECONDS  # 1e13 ODE evaluations: the cap wins
    assert "at most 100,000 tasks" in p.reason


def test_cost_and_unknown_kernels():
    base = work((64, 64, 64, 1000), keep_series=False)
    costly = work((64, 64, 64, 1000), keep_series=False, cost=8.0)
    assert Work.__dataclass_fields__["cost"].default == 1.0
    assert math.prod(plan(costly).chunks) < math.prod(plan(base).chunks)
    assert plan(costly).rate == pytest.approx(plan(base).rate / 8)
    # an unknown kernel plans at the slowest measured rate (documented default)
    assert kernel_rate("charger", True, 3) == kernel_rate(P.DEFAULT_RATE_KERNEL, True, 3)


def test_rates_cover_every_kernel_and_interpolate():
    for kernel in KERNELS:
        for keep in (True, False):
            table = P.RATES[(kernel, keep)]
            assert 1 in table and 15 in table
            for k, rate in table.items():
                assert kernel_rate(kernel, keep, k) == rate
            r2, r4 = table[2], table[4]
            # seconds per evaluation linear in between: 3 metrics at the harmonic mean
            assert kernel_rate(kernel, keep, 3) == pytest.approx(2 / (1 / r2 + 1 / r4))
    with pytest.raises(ValueError, match="n_metrics"):
        kernel_rate("cavity", True, 0)


# ---- splits, overrides, warnings ------------------------------------------------------------

def test_grown_plans_split_evenly():
    """Past today's sizes every planned dim is cut into chunks of even lengths: the length is
    the shortest that gives that many chunks, so the edge chunk is at most count - 1 shorter."""
    for shape in ((5000, 999, 7, 1000), (777, 10001, 5000), (3, 10**6, 10**4), (10**7, 1000)):
        for keep in (True, False):
            p = plan(work(shape, keep_series=keep, n_metrics=3), threads=2)
            assert not p.reason.startswith("today")
            for s, c, k in zip(p.shape, p.chunks, p.chunk_grid):
                assert c == -(-s // k), (shape, p.chunks)
                edge = s - (k - 1) * c
                assert 1 <= edge <= c and c - edge < k


def test_edge_tasks_are_smaller_and_add_up():
    p = plan(work((10, 7, 5), chunks={"p0": 4, "p1": 3, "t": 2}))
    assert p.chunks == (4, 3, 2) and p.chunk_grid == (3, 3, 3)
    assert p.task_evaluations((0, 0, 0)) == 24
    assert p.task_evaluations((2, 2, 2)) == 2 * 1 * 1  # 10 = 4 + 4 + 2, 7 = 3 + 3 + 1, 5 = 2 + 2 + 1
    assert p.task_slices((2, 2, 2)) == (slice(8, 10), slice(6, 7), slice(4, 5))
    total = sum(p.task_evaluations(p.task_coords(k)) for k in range(p.n_tasks))
    assert total == p.evaluations() == 350


def test_overrides_are_used_as_given_and_the_rest_planned():
    big = (64, 64, 64, 64, 10000)
    w = work(big, keep_series=False, itemsize=8, kernel="field_drive", chunks={"p2": 5})
    p = plan(w)
    assert p.chunks[2] == 5 and p.chunks[-1] == 10000
    free = plan(work(big, keep_series=False, itemsize=8, kernel="field_drive"))
    assert p.chunks != free.chunks
    assert "[chunks] gives p2 = 5" in p.reason
    # the legacy regime too, and lengths above the dim are clipped
    s = plan(work((8, 21, 61, 976), chunks={"p0": 3, "p1": 99}))
    assert s.chunks[:2] == (3, 21)
    assert plan(work((4, 5), chunks={"t": 2})).chunks == (4, 2)


def test_overrides_that_make_many_small_files_warn_with_figures():
    # issue 10: one point per chunk made 128,268 files of a few bytes each
    w = work((8, 21, 61, 13, 401), chunks={"p0": 1, "p1": 1, "p2": 1, "p3": 1})
    p = plan(w)
    assert p.n_tasks == 8 * 21 * 61 * 13 == 133_224
    assert len(p.warnings) == 2
    many, small = p.warnings
    assert "133,224 files per variable" in many and "100,000" in many
    assert "1.57 KiB" in small and "4 KiB" in small  # 401 x 4 bytes = 1604 bytes
    assert all("\n" not in line for line in p.warnings)
    assert "without [chunks]" in many
    # the same grid planned freely, or a tiny grid whose files cannot be larger: no warning
    assert plan(work((8, 21, 61, 13, 401))).warnings == ()
    assert plan(work((3, 5), chunks={"p0": 3})).warnings == ()
    # reduced-only: the reduced files are what is small
    r = plan(work((300, 400, 100), keep_series=False, chunks={"p0": 1, "p1": 1}))
    assert any("4 B raw" in line for line in r.warnings)


def test_overrides_on_every_dim_are_kept_even_past_max_tasks():
    p = plan(work((1000, 1000, 1000), chunks={"p0": 1, "p1": 1, "t": 1}))
    assert p.chunks == (1, 1, 1) and p.n_tasks == 10**9
    assert any("1,000,000,000 files per variable" in line for line in p.warnings)
    q = plan(work((1000, 1000, 1000), chunks={"p0": 1, "t": 1}))  # p1 whole: as few as can be
    assert q.chunks == (1, 1000, 1) and q.n_tasks == 10**6
    r = plan(work((10**6, 1000, 100), chunks={"t": 1}))  # the swept dims grow to cut the count
    assert r.chunks[-1] == 1 and r.n_tasks <= MAX_TASKS


def test_huge_series_tasks_warn_about_memory():
    p = plan(work((10**4, 10**5, 10**4), n_metrics=15))  # 1e13 series evaluations
    assert p.n_tasks <= MAX_TASKS
    assert any("GiB of float64 series" in line for line in p.warnings)


# ---- task numbering and coverage ------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), data=st.data())
def test_tasks_tile_the_grid_exactly_once(shape, data):
    dims = [f"p{i}" for i in range(len(shape) - 1)] + ["t"]
    chunks = {d: data.draw(st.integers(1, 10)) for d in dims if data.draw(st.booleans())}
    p = plan(work(shape, chunks=chunks))
    counts = covered(p)
    assert counts.min() == 1 and counts.max() == 1
    for k in range(p.n_tasks):
        coords = p.task_coords(k)
        assert p.task_number(coords) == k
        assert all(0 <= i < n for i, n in zip(coords, p.chunk_grid))
    assert [p.task_coords(k) for k in range(p.n_tasks)] == list(np.ndindex(*p.chunk_grid))
    assert sum(p.task_evaluations(p.task_coords(k)) for k in range(p.n_tasks)) == math.prod(shape)


def test_task_numbers_out_of_range_are_refused():
    p = plan(work((10, 7, 5), chunks={"p0": 4, "p1": 3, "t": 2}))
    with pytest.raises(ValueError, match=r"k: expected a task number in \[0, 27\)"):
        p.task_coords(27)
    with pytest.raises(ValueError, match="coords"):
        p.task_slices((0, 3, 0))
    with pytest.raises(ValueError, match="coords"):
        p.task_number((0, 0))


# ---- input checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("change, field", [
    ({"dims": ("a", "b")}, "Work.dims"),
    ({"shape": (0, 5)}, "Work.shape"),
    ({"n_metrics": 0}, "Work.n_metrics"),
    ({"itemsize": 3}, "Work.itemsize"),
    ({"keep_series": False}, "Work.keep_series"),
    ({"cost": 0.0}, "Work.cost"),
    ({"chunks": {"x": 2}}, "Work.chunks"),
    ({"chunks": {"p0": 0}}, "Work.chunks"),
    ({"whole_t": True, "chunks": {"t": 2}}, "Work.chunks: t"),
])
def test_inconsistent_work_is_refused_in_one_line(change, field):
    fields = {f: getattr(work((4, 5)), f) for f in Work.__dataclass_fields__}
    with pytest.raises(ValueError, match=field) as info:
        plan(Work(**{**fields, **change}))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="threads"):
        plan(work((4, 5)), threads=0)


def test_spec_chunks_are_the_plan_of_its_work():
    spec = parse_spec('model = "cavity"\nmetrics = ["energy"]\ndtype = "float32"\n[params]\n'
                      'n = [1, 2, 3]\nJ2 = { start = 0.0, stop = 1.0, num = 50 }\n'
                      't = { start = 0.0, stop = 1.0, num = 7 }\n[chunks]\nn = 2\n'
                      '[reduce]\nstats = ["max", "argmin"]\nkeep_series = true\n')
    w = Work.from_spec(spec)
    assert w.chunks == {"n": 2} == spec.chunk_overrides
    assert (w.series_variables, w.reduced_variables) == (1, 2)
    assert w.itemsize == 8  # the time of the minimum is float64
    assert w.keep_series and w.whole_t
    assert spec.chunks == plan(w, threads=P.DEFAULT_THREADS).chunks == spec.plan().chunks


# ---- task groups ([reduce]-only storage chunks spanning tasks) --------------------------------

@pytest.mark.parametrize("keep_series", [True, False])
@pytest.mark.parametrize("threads", [2, 1000])
def test_groups_from_1_to_1e13_points(monkeypatch, keep_series, threads):
    """Groups only for [reduce]-only grids past rule 1; a group never exceeds the task grid,
    GROUP_MAX_TASKS tasks or GROUP_BYTES of the widest reduced variable; tasks unchanged."""
    monkeypatch.setattr(P, "AUTO_GROUP", True)
    for shape in GRIDS:
        w = work(shape, keep_series=keep_series, itemsize=8)
        p = plan(w, threads=threads)
        assert len(p.group) == len(shape) and p.group[-1] == 1
        assert all(1 <= f <= n for f, n in zip(p.group, p.chunk_grid))
        tasks = math.prod(p.group)
        if keep_series or p.reason.startswith("today"):  # ([chunks]: tested in tests/store)
            assert p.group == (1,) * len(shape), (shape, p)
            assert p.storage_chunks == p.chunks
            continue
        assert tasks <= P.GROUP_MAX_TASKS
        if tasks > 1:  # (a task larger than GROUP_BYTES alone stays ungrouped)
            assert tasks * math.prod(p.chunks[:-1]) * 8 <= P.GROUP_BYTES
        monkeypatch.setattr(P, "AUTO_GROUP", False)
        assert plan(w, threads=threads).chunks == p.chunks  # grouping leaves tasks alone
        monkeypatch.setattr(P, "AUTO_GROUP", True)


OPEN_KERNELS = ("open_field_drive", "open_field_full", "open_cavity", "open_cavity_thermal")


@pytest.mark.parametrize("kernel", OPEN_KERNELS)
@pytest.mark.parametrize("keep_series", [True, False])
def test_open_kernels_are_planned_from_their_own_rates(kernel, keep_series):
    """Each open route (issue 18) has its own measured RATES entry, and a plan of that kernel
    uses it, not the DEFAULT_RATE_KERNEL fallback of unknown kernels."""
    table = P.RATES[(kernel, keep_series)]
    assert table is not P.RATES[(P.DEFAULT_RATE_KERNEL, keep_series)]
    assert 1 in table and 15 in table
    for k, rate in table.items():
        assert kernel_rate(kernel, keep_series, k) == rate
    p = plan(work((64, 64, 1000), kernel=kernel, n_metrics=15, keep_series=keep_series))
    assert p.rate == table[15]
    assert p.rate != kernel_rate(P.DEFAULT_RATE_KERNEL, keep_series, 15)
