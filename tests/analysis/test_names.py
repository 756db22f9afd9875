"""One meaning per name: every variable name that ``[reduce]`` (``Spec.variables()``, built
from ``qbfast.reduce.REDUCTIONS``) and ``ds.qb`` both produce holds the same values, on the
same data, by both of ``[reduce]``'s routes (the NumPy functions on a stored series and the
fused kernel reduction ``reduce_grid`` that ``qbfast run`` uses without series)."""

from __future__ import annotations

import numpy as np
import pytest

import qbfast
from qbfast.core import Grid
from qbfast.params import METRICS
from qbfast.reduce import REDUCTIONS, reduce_grid, reduce_stats
from qbfast.runner.spec import parse_spec

T = np.linspace(0.0, 4.0, 161)
CASES = {
    "cavity": dict(model="cavity", J2=[0.0, 1.0], n=[1, 7]),
    "field": dict(model="field", A=[0.0, 2.0], B=[0.0, 2.0], g=[0.0, 3.0]),
}
SPEC = """model = "{model}"
metrics = {metrics}
[params]
{swept} = {values}
t = {{ start = 0.0, stop = 4.0, num = 161 }}
[reduce]
stats = {stats}
"""


def _spec_names(model: str, swept: str, values: list[float]) -> set[str]:
    text = SPEC.format(model=model, metrics=list(METRICS).__repr__().replace("'", '"'),
                       swept=swept, values=values,
                       stats=list(REDUCTIONS).__repr__().replace("'", '"'))
    return {v.name for v in parse_spec(text).variables()}


def _qb_names(ds) -> dict[str, np.ndarray]:
    """Every variable that ``ds.qb`` produces, by name (a name twice must agree)."""
    out: dict[str, np.ndarray] = {}

    def add(result, key=""):
        for name, da in result.data_vars.items():
            name = f"{key}{name}"
            values = np.asarray(da.values)
            if name in out:
                np.testing.assert_array_equal(out[name], values, err_msg=str(name))
            out[str(name)] = values

    for metric in METRICS:
        add(ds.qb.extrema(metric).compute())
        add(ds.qb.extrema(metric, refine="none").compute())
    add(ds.qb.corr("energy", "ergotropy").compute())
    add(ds.qb.coincidence("energy", "purity_battery").compute())
    add(ds.qb.steerable().compute())
    for parameter, sub in ds.qb.steerable_by_parameter().items():
        add(sub.compute(), key=f"steerable_by_parameter()[{parameter!r}].")
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_shared_name_means_the_same_values(case):
    kwargs = dict(CASES[case])
    model = kwargs.pop("model")
    ds = qbfast.sweep(model, T, **kwargs)
    reduced_numpy = {f"{m}_{suffix}": v for m in METRICS
                     for suffix, v in reduce_stats(ds[m].values, T, list(REDUCTIONS)).items()}
    fused, _ = reduce_grid(Grid(model, T, **kwargs), list(REDUCTIONS))
    reduced_fused = {f"{m}_{suffix}": v
                     for m, stats in fused.items() for suffix, v in stats.items()}
    swept = next(iter(kwargs))
    spec_names = _spec_names(model, swept, kwargs[swept])
    # the names [reduce] produces: the same three ways
    assert set(reduced_numpy) == set(reduced_fused) == spec_names
    assert len(spec_names) == len(METRICS) * 6

    qb = _qb_names(ds)
    shared = spec_names & set(qb)
    assert shared == spec_names  # ds.qb.extrema produces every [reduce] name
    for name in sorted(shared):
        np.testing.assert_array_equal(qb[name], reduced_numpy[name], err_msg=name)
        np.testing.assert_array_equal(qb[name], reduced_fused[name], err_msg=name)
    # a [reduce] suffix on a ds.qb name not produced here would be a second meaning
    suffixes = {suffix for entries in REDUCTIONS.values() for suffix, _, _ in entries}
    for name in set(qb) - shared:
        assert not any(name == f"{m}_{s}" for m in METRICS for s in suffixes), name
    # and the refined values do differ: they could not share the names
    assert any(not np.array_equal(qb[f"{m}_t_first_max"], qb[f"{m}_t_first_max_refined"],
                                  equal_nan=True) for m in METRICS)


def test_the_refined_values_state_their_method(cavity_store):
    ext = cavity_store.qb.extrema("energy")
    for name, da in ext.data_vars.items():
        expected = "parabolic" if str(name).endswith("_refined") else "sample"
        assert da.attrs["method"].startswith(expected), name
