"""The public API qbfast.sweep: labels, dims, attrs, out= buffers, and every bad-input path."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import xarray as xr

import qbfast
from qbfast.params import METRIC_LIST

T = np.linspace(0.0, 2.0, 11)


def test_dims_follow_the_callers_order_then_t():
    ds = qbfast.sweep("cavity", T, J2=[0.0, 0.5, 1.0], n=[1, 3])
    assert ds.energy.dims == ("J2", "n", "t")
    ds = qbfast.sweep("cavity", T, n=[1, 3], J2=[0.0, 0.5, 1.0])
    assert ds.energy.dims == ("n", "J2", "t")
    assert ds.energy.shape == (2, 3, T.size)
    assert ds.n.dtype == np.int64
    np.testing.assert_array_equal(ds.t.values, T)


def test_grid_points_match_single_point_sweeps():
    ds = qbfast.sweep("field", T, protocol="full", A=[0.5, 1.5], g=[0.0, 2.0], Delta=0.7)
    for a in (0.5, 1.5):
        for g in (0.0, 2.0):
            single = qbfast.sweep("field", T, protocol="full", A=a, g=g, Delta=0.7)
            for name in ds.data_vars:
                np.testing.assert_array_equal(ds[name].sel(A=a, g=g).values, single[name].values)


def test_all_metrics_float64_with_labels():
    ds = qbfast.sweep("field", T, A=[1.0, 2.0])
    assert list(ds.data_vars) == [m.name for m in METRIC_LIST]
    assert len(ds.data_vars) == 15
    for name, da in ds.data_vars.items():
        assert da.dtype == np.float64
        assert da.attrs["long_name"] and da.attrs["units"], name
    for name, coord in ds.coords.items():
        assert coord.attrs["long_name"] and coord.attrs["units"], name


def test_global_attrs_record_the_run():
    ds = qbfast.sweep("cavity", T, battery_hamiltonian="bare", n=[1, 2], J1=0.5)
    a = ds.attrs
    assert a["model"] == "cavity" and a["battery_hamiltonian"] == "bare"
    assert a["qbfast_version"] == qbfast.__version__
    assert a["log_base"] == 2
    assert a["J1"] == 0.5 and a["J2"] == 1.0 and a["omega_g"] == 1.0 and "n" not in a
    ds = qbfast.sweep("field", T)
    assert ds.attrs["protocol"] == "drive"
    assert {k: ds.attrs[k] for k in ("A", "B", "omega", "g", "Delta")} == qbfast.MODELS["field"].defaults


def test_metric_subset_in_requested_order():
    ds = qbfast.sweep("cavity", T, metrics=["steering_ba", "energy"])
    assert list(ds.data_vars) == ["steering_ba", "energy"]
    full = qbfast.sweep("cavity", T)
    np.testing.assert_array_equal(ds.energy.values, full.energy.values)
    np.testing.assert_array_equal(ds.steering_ba.values, full.steering_ba.values)


def test_out_buffer_is_reused():
    buf = np.full((2, 3, T.size), np.nan)
    ds = qbfast.sweep("cavity", T, metrics=["energy", "purity_battery"], J2=[0.0, 0.5, 1.0], out=buf)
    assert np.shares_memory(ds.energy.values, buf)
    assert not np.isnan(buf[0]).any()
    ref = qbfast.sweep("cavity", T, metrics=["energy", "purity_battery"], J2=[0.0, 0.5, 1.0])
    xr.testing.assert_identical(ds, ref)


def test_defaults_are_documented_in_models():
    assert qbfast.MODELS["field"].defaults == {"A": 1.0, "B": 2.0, "omega": 1.0, "g": 0.0, "Delta": 1.0}
    assert qbfast.MODELS["cavity"].defaults == {
        "n": 7, "J1": 1.0, "J2": 1.0, "omega_g": 1.0, "omega_a": 1.0, "Delta": 1.0}
    assert set(qbfast.METRICS) == {m.name for m in METRIC_LIST}


def test_static_field_limit_omega_zero():
    # omega = 0 is a static field of strength A + B: A1 = (A + B) t / 2
    ds = qbfast.sweep("field", T, A=0.5, B=1.0, omega=0.0)
    np.testing.assert_allclose(ds.energy.values, 1.0 - np.cos(1.5 * T), atol=1e-14)


def test_integral_float_n_is_accepted():
    a = qbfast.sweep("cavity", T, n=3.0)
    b = qbfast.sweep("cavity", T, n=3)
    xr.testing.assert_identical(a, b)


# --- bad input: one ValueError naming the argument and what is allowed ----------------------

BAD = [
    (dict(model="qubit"), "model"),
    (dict(model="field", protocol="exact"), "protocol"),
    (dict(model="cavity", protocol="drive"), "protocol"),
    (dict(model="field", metrics=["energy", "work"]), "metrics"),
    (dict(model="field", metrics=[]), "metrics"),
    (dict(model="field", metrics=["energy", "energy"]), "metrics"),
    (dict(model="field", battery_hamiltonian="free"), "battery_hamiltonian"),
    (dict(model="field", J2=1.0), "J2"),
    (dict(model="cavity", A=1.0), "A"),
    (dict(model="field", A=math.nan), "A"),
    (dict(model="field", B=[1.0, math.inf]), "B[1]"),
    (dict(model="cavity", n=0), "n"),
    (dict(model="cavity", n=2.5), "n"),
    (dict(model="cavity", n=[1, -3]), "n[1]"),
    (dict(model="cavity", J1=[[0.0, 1.0]]), "J1"),
    (dict(model="cavity", J1=[0.0, 1.0, 0.0]), "J1"),
    (dict(model="cavity", J1=[]), "J1"),
    (dict(model="cavity", J1="large"), "J1"),
    (dict(model="field", g=True), "g"),
    # NumPy arrays (checked vectorized; a bad element is then found one by one)
    (dict(model="cavity", n=np.array([1.0, 2.5])), "n[1]"),
    (dict(model="cavity", n=np.array([3, 0])), "n[1]"),
    (dict(model="field", A=np.array([0.5, np.nan, 1.0])), "A[1]"),
    (dict(model="field", B=np.array([True, False])), "B[0]"),
    (dict(model="cavity", J2=np.array([1, 2, 1])), "J2"),
    (dict(model="cavity", J2=np.zeros((2, 2))), "J2"),
    (dict(model="field", t=[]), "t"),
    (dict(model="field", t=[0.0, -1.0]), "t[1]"),
    (dict(model="field", t=[-1.0, 0.0]), "t[0]"),
    (dict(model="field", t=[0.0, math.nan]), "t[1]"),
    (dict(model="field", t=[0.0, 1.0, 1.0]), "t"),
    (dict(model="field", t=[1.0, 0.5]), "t"),
    (dict(model="field", t=[[0.0, 1.0]]), "t"),
    (dict(model="field", t=1.0), "t"),
    (dict(model="field", t=["a"]), "t[0]"),
    (dict(model="field", protocol="full", max_step=0.0), "max_step"),
    (dict(model="field", protocol="drive", max_step=0.1), "max_step"),
    (dict(model="cavity", out=np.empty((15, 3))), "out"),
    (dict(model="cavity", out=np.empty((15, T.size), dtype=np.float32)), "out"),
]


@pytest.mark.parametrize("kwargs, name", BAD, ids=[f"{k['model']}-{n}" for k, n in BAD])
def test_bad_input_names_the_argument(kwargs, name):
    kwargs = dict(kwargs)
    model = kwargs.pop("model")
    t = kwargs.pop("t", T)
    with pytest.raises(ValueError) as err:
        qbfast.sweep(model, t, **kwargs)
    message = str(err.value)
    assert message.startswith(f"{name}:"), message
    assert "\n" not in message


def test_bad_input_messages_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"allowed: 'field', 'cavity'"):
        qbfast.sweep("qubit", T)
    with pytest.raises(ValueError, match=r"an integer >= 1"):
        qbfast.sweep("cavity", T, n=0)
    with pytest.raises(ValueError, match=r"'drive', 'full'"):
        qbfast.sweep("field", T, protocol="exact")
    with pytest.raises(ValueError, match=r"'energy'"):
        qbfast.sweep("field", T, metrics=["work"])
    with pytest.raises(ValueError, match=r"allowed: 'n', 'J1', 'J2', 'omega_g', 'omega_a', 'Delta'"):
        qbfast.sweep("cavity", T, g=1.0)


def test_bad_out_is_not_written():
    buf = np.zeros((15, T.size + 1))
    with pytest.raises(ValueError):
        qbfast.sweep("cavity", T, out=buf)
    assert not buf.any()


# --- memory: estimated before anything is allocated ------------------------------------------

@pytest.mark.parametrize("sizes", [
    dict(J2=100_000, n=1000, t=30),  # 3e9 points
    dict(J2=100_000, omega_g=100_000, t=1),  # 1e10 points
])
def test_too_large_a_sweep_is_refused_before_allocating(sizes):
    kwargs = {name: np.arange(1, size + 1, dtype=np.float64) for name, size in sizes.items()
              if name != "t"}
    t = np.linspace(0.0, 1.0, sizes["t"])
    points = math.prod(sizes.values())
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as err:
            qbfast.sweep("cavity", t, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(err.value)
    assert message.startswith("grid: ") and "\n" not in message
    assert f"{points:,} points" in message
    assert "qbfast run" in message and "[reduce]" in message
    # far below the 8 * 15 * points bytes of the output: nothing of its size was allocated
    assert peak < 50_000_000


def _small_request():
    """cavity, J2 of 4 values x t of 5, one metric: the documented estimate is
    8 * (1 metric * 20 points [output] + 4 points * 6 parameters [table]) = 352 bytes."""
    return dict(model="cavity", t=np.linspace(0.0, 1.0, 5), metrics=["energy"],
                J2=[0.0, 0.5, 1.0, 1.5])


@pytest.mark.parametrize("available, fits", [(441, True), (439, False)])
def test_memory_limit_just_under_and_just_over(monkeypatch, available, fits):
    # 0.8 * 441 = 352.8 >= 352 fits; 0.8 * 439 = 351.2 < 352 does not
    assert qbfast.api.MEMORY_FRACTION == 0.8
    monkeypatch.setattr(qbfast.api, "available_memory", lambda: available)
    kwargs = _small_request()
    if fits:
        assert qbfast.sweep(**kwargs).energy.shape == (4, 5)
    else:
        with pytest.raises(ValueError, match=r"^grid: J2=4 x t=5 \(20 points\) x 1 metrics "
                                             r"needs 352 B of memory"):
            qbfast.sweep(**kwargs)


def test_memory_limit_with_out_counts_only_the_table(monkeypatch):
    # with out= given, only the table: 8 * 24 = 192 bytes; 0.8 * 241 = 192.8 fits
    monkeypatch.setattr(qbfast.api, "available_memory", lambda: 241)
    buf = np.empty((1, 4, 5))
    ds = qbfast.sweep(**_small_request(), out=buf)
    assert np.shares_memory(ds.energy.values, buf)
    monkeypatch.setattr(qbfast.api, "available_memory", lambda: 239)
    with pytest.raises(ValueError, match=r"^grid: .*needs 192 B"):
        qbfast.sweep(**_small_request(), out=buf)


def test_available_memory_is_a_positive_byte_count():
    free = qbfast.api.available_memory()
    assert isinstance(free, int) and 0 < free


# --- out=: the message names the property that fails ---------------------------------------

SHAPE = (2, 3, T.size)


def _bad_out(kind):
    if kind == "list":
        return [[0.0]]
    if kind == "dtype":
        return np.zeros(SHAPE, dtype=np.float32)
    if kind == "shape":
        return np.zeros((2, 3, T.size + 1))
    if kind == "fortran":
        return np.zeros(SHAPE, order="F")
    if kind == "strided":
        return np.zeros((2, 3, 2 * T.size))[..., ::2]
    buf = np.zeros(SHAPE)
    buf.flags.writeable = False
    return buf


@pytest.mark.parametrize("kind, pattern", [
    ("list", r"^out: expected a numpy.ndarray, got list$"),
    ("dtype", r"^out: dtype is float32; expected float64$"),
    ("shape", r"^out: shape is \(2, 3, 12\); expected \(2, 3, 11\)"),
    ("fortran", r"^out: strides are \(8, 16, 48\) \(Fortran order\); expected a C-contiguous"),
    ("strided", (r"^out: strides are \(528, 176, 16\) \(not contiguous\); expected a "
                 r"C-contiguous array \(strides \(264, 88, 8\)\)")),
    ("read-only", r"^out: the array is read-only \(flags.writeable is False\)"),
])
def test_bad_out_names_the_property(kind, pattern):
    buf = _bad_out(kind)
    with pytest.raises(ValueError, match=pattern):
        qbfast.sweep("cavity", T, metrics=["energy", "ergotropy"], J2=[0.0, 0.5, 1.0], out=buf)
    if isinstance(buf, np.ndarray):
        assert not buf.any()
