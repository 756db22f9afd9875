"""qbfast.validate: the times are checked like the parameters, integer parameters are bounded,
numbers in messages are plain; each bad input through the API (``qbfast.sweep``) and, where
TOML can spell it, through a spec, each message naming the parameter."""

from __future__ import annotations

import codecs
import math
import tracemalloc

import numpy as np
import pytest

import qbfast
from qbfast.core import Grid
from qbfast.params import CAVITY, TIME
from qbfast.runner import spec as spec_module
from qbfast.runner.spec import SpecError, load_spec, parse_spec
from qbfast.validate import INTEGER_MAX, check_parameter, check_times

T = np.linspace(0.0, 1.0, 5)
DATES = np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[ns]")

# (keyword arguments of sweep("cavity", ...), the name the message starts with, a fragment)
API_BAD = {
    "t numeric strings": (dict(t=["0", "1"]), "t[0]", "got '0'"),
    "t booleans": (dict(t=[False, True]), "t[0]", "got False"),
    "t boolean array": (dict(t=np.array([False, True])), "t[0]", "got False"),
    "t datetime64": (dict(t=DATES), "t", "datetime64"),
    "t complex array": (dict(t=np.array([0.0, 1.0 + 1e-3j])), "t", "complex128"),
    "t complex list": (dict(t=[0.0, 1.0 + 0j]), "t[1]", "(1+0j)"),
    "t masked array": (dict(t=np.ma.masked_array([0.0, 1.0, 2.0], mask=[0, 1, 0])), "t",
                       "masked"),
    "t object array": (dict(t=np.array([0.0, "1"], dtype=object)), "t[1]", "got '1'"),
    "t inf": (dict(t=[0.0, math.inf]), "t[1]", "not finite"),
    "t negative numpy scalar": (dict(t=np.float64(-1.0)), "t", "got the scalar -1.0"),
    "t 0-d array": (dict(t=np.array(2.0)), "t", "scalar"),
    "J2 datetime64": (dict(J2=DATES), "J2", "datetime64"),
    "J2 masked array": (dict(J2=np.ma.masked_array([0.0, 1.0], mask=[1, 0])), "J2", "masked"),
    "J2 complex array": (dict(J2=np.array([0.0, 1j])), "J2", "complex128"),
    "n 2**63": (dict(n=2**63), "n", "<= 2147483647"),
    "n 2**31 (one over)": (dict(n=INTEGER_MAX + 1), "n", "too large"),
    "n list with 2**64": (dict(n=[1, 2**64]), "n[1]", "too large"),
    "n int64 array above the bound": (dict(n=np.array([1, 2**40])), "n[1]", "too large"),
    "n uint64 2**63": (dict(n=np.array([2**63], dtype=np.uint64)), "n[0]", "too large"),
    "n float beyond the float range": (dict(n=[1, 10**400]), "n[1]", "too large"),
    "J2 int beyond the float range": (dict(J2=[0, 10**400]), "J2[1]", "not finite"),
    "n numpy float": (dict(n=np.float64(-1.0)), "n", "got -1.0"),
    "omega_g numpy nan": (dict(omega_g=np.float64("nan")), "omega_g", "got nan"),
}


@pytest.mark.parametrize("case", sorted(API_BAD))
def test_api_refuses_in_one_line_naming_the_parameter(case):
    kwargs, name, fragment = API_BAD[case]
    kwargs = dict(kwargs)
    t = kwargs.pop("t", T)
    with pytest.raises(ValueError) as err:
        qbfast.sweep("cavity", t, **kwargs)
    message = str(err.value)
    assert message.startswith(f"{name}: "), message
    assert fragment in message, message
    assert "\n" not in message and "np." not in message and len(message) < 300


def test_the_integer_bound_itself_is_accepted():
    assert check_parameter(CAVITY.parameter("n"), INTEGER_MAX) == float(INTEGER_MAX)
    np.testing.assert_array_equal(check_parameter(CAVITY.parameter("n"), [1, INTEGER_MAX]),
                                  [1.0, float(INTEGER_MAX)])


def test_times_take_the_parameter_route():
    """Accepted: lists, integer arrays, object arrays of numbers; returned as float64."""
    for t in ([0, 1, 2], np.arange(3), np.array([0, 1.0, 2], dtype=object), (0.0, 1.0, 2.0)):
        out = check_times(t)
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"^t: times must be strictly increasing$"):
        check_times([1.0, 0.5])
    assert TIME.minimum == 0.0


# (the [params] lines of a cavity spec, the key the message names, a fragment)
SPEC_BAD = {
    "t numeric strings": ('t = ["0", "1"]', "params.t[0]", "got '0'"),
    "t booleans": ("t = [false, true]", "params.t[0]", "got False"),
    "t datetimes": ("t = [1979-05-27T07:32:00Z, 1979-05-28T07:32:00Z]", "params.t[0]",
                    "datetime"),
    "t inf": ("t = [0.0, inf]", "params.t[1]", "not finite"),
    "t range too long": ("t = { start = 0.0, stop = 1.0, num = 1_000_000_000_000 }",
                         "params.t.num", "<= 10000000"),
    "J2 range too long": ('t = [0.0]\nJ2 = { start = 0.0, stop = 1.0, num = 1_000_000_000 }',
                          "params.J2.num", "<= 10000000"),
    "n int64 max": ("t = [0.0]\nn = 9223372036854775807", "params.n", "too large"),
    "n list over the bound": ("t = [0.0]\nn = [1, 2147483648]", "params.n[1]", "too large"),
    "n negative": ("t = [0.0]\nn = -1", "params.n", "got -1"),
}


@pytest.mark.parametrize("case", sorted(SPEC_BAD))
def test_spec_refuses_in_one_line_naming_the_key(case):
    lines, key, fragment = SPEC_BAD[case]
    text = f'model = "cavity"\n[params]\n{lines}\n'
    tracemalloc.start()
    try:
        with pytest.raises(SpecError) as err:
            parse_spec(text, source="bad.toml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(err.value)
    assert message.startswith(f"bad.toml: {key}: "), message
    assert fragment in message, message
    assert "\n" not in message and "np." not in message
    assert peak < 10_000_000  # nothing of the size of the refused dimension was made


def test_dimension_bound_just_under_and_just_over(monkeypatch):
    monkeypatch.setattr(spec_module, "MAX_DIMENSION_LENGTH", 4)
    ok = parse_spec('model = "cavity"\n[params]\nt = { start = 0.0, stop = 1.0, num = 4 }\n'
                    'J2 = [0.0, 1.0, 2.0, 3.0]\n')
    assert ok.shape == (4, 4)
    for params, key in (("t = { start = 0.0, stop = 1.0, num = 5 }", "params.t.num"),
                        ("t = [0.0]\nJ2 = [0.0, 1.0, 2.0, 3.0, 4.0]", "params.J2")):
        with pytest.raises(SpecError, match=rf"^s: {key}: .*4"):
            parse_spec(f'model = "cavity"\n[params]\n{params}\n', source="s")


def test_utf8_byte_order_mark_is_skipped(tmp_path):
    text = 'model = "cavity"\n[params]\nJ2 = [0.0, 1.0]\nt = [0.0, 0.5]\n'
    plain = tmp_path / "plain.toml"
    plain.write_text(text, encoding="utf-8")
    bom = tmp_path / "bom.toml"
    bom.write_bytes(codecs.BOM_UTF8 + text.encode())
    assert bom.read_bytes()[:3] == b"\xef\xbb\xbf"
    a, b = load_spec(plain), load_spec(bom)
    assert a.hash == b.hash and b.text == text


# ---- the rates of physics.md section 8 ------------------------------------------------------
# (model, keyword arguments, the name the message starts with, fragments)
RATES_BAD = {
    "gamma negative": ("field", dict(gamma=-0.1), "gamma", ["finite number >= 0.0", "-0.1"]),
    "gamma_phi nan": ("cavity", dict(gamma_phi=math.nan), "gamma_phi", ["got nan"]),
    "kappa inf in a list": ("cavity", dict(kappa=[0.0, math.inf]), "kappa[1]", ["not finite"]),
    "gamma_c negative in an array": ("field", dict(gamma_c=np.array([0.1, -1.0])), "gamma_c[1]",
                                     [">= 0.0"]),
    "n_th on the cavity": ("cavity", dict(n_th=0.0), "n_th",
                           ["not a rate of model 'cavity'", "'field'", "'kappa'"]),
    "kappa on the field": ("field", dict(kappa=0.5), "kappa",
                           ["not a rate of model 'field'", "'cavity'", "'gamma_c'"]),
    "a rate on the coherent charger": ("cavity", dict(charger="coherent", nbar=1.0,
                                                       gamma_phi=[0.0, 0.1]), "gamma_phi",
                                       ["'coherent' is not built", "'fock', 'thermal'"]),
    "beyond the accuracy range": ("field", dict(B=2.0, A=0.0, gamma_phi=[0.0, 201.0]),
                                  "gamma_phi", ["accuracy range", "<= 200 "]),
    "gamma (1 + n_th) beyond the range": ("field", dict(A=0.0, B=2.0, gamma=60.0, n_th=[0, 3]),
                                          "gamma", ["gamma (1 + n_th) reaches 240", "<= 200"]),
    "max_step with a rate": ("field", dict(protocol="full", max_step=0.01, gamma=0.1),
                             "max_step", ["leave max_step unset"]),
}


@pytest.mark.parametrize("case", sorted(RATES_BAD))
def test_bad_rates_are_refused_in_one_line_before_any_work(case):
    model, kwargs, name, fragments = RATES_BAD[case]
    with pytest.raises(ValueError) as err:
        qbfast.sweep(model, T, **kwargs)
    message = str(err.value)
    assert message.startswith(f"{name}: "), message
    assert all(f in message for f in fragments), message
    assert "\n" not in message and "np." not in message and len(message) < 300


def test_accuracy_range_is_checked_at_the_grid_point_of_smallest_frequencies():
    """The bound is 100 x the largest frequency of H at each point: with B swept over
    [0.5, 2] (and A = 0) the point B = 0.5 has the scale max(0.5, omega = 1, Delta + g = 1)
    = 1, so gamma = 150 is refused there although it is within range at B = 2."""
    with pytest.raises(ValueError, match=r"^gamma: .*<= 100 at the grid's point"):
        Grid("field", T, A=0.0, B=[0.5, 2.0], gamma=150.0)
    Grid("field", T, A=0.0, B=2.0, gamma=150.0)
    Grid("cavity", T, omega_a=0.0, Delta=0.0, omega_g=0.0, kappa=100.0)  # the floor 1


def test_rate_refusal_makes_no_table():
    """A huge rate sweep is checked from each dimension's values: nothing of its size."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="^kappa: "):
            Grid("cavity", T, J2=np.linspace(0, 1, 100_000), omega_g=np.arange(1e5) + 1,
                        kappa=[0.0, 1e9])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


@pytest.mark.parametrize(("lines", "key", "fragment"), [
    ('model = "cavity"\n[params]\nt = [0.0]\nn_th = 0.1\n', "params.n_th",
     "not a rate of model 'cavity'"),
    ('model = "cavity"\ncharger = "coherent"\n[params]\nt = [0.0]\nkappa = 0.1\n',
     "params.kappa", "'coherent' is not built"),
    ('model = "field"\n[params]\nt = [0.0]\ngamma_phi = [0.0, -1.0]\n', "params.gamma_phi[1]",
     ">= 0.0"),
    ('model = "field"\n[params]\nt = [0.0]\ngamma = 1e6\n', "params.gamma", "accuracy range"),
])
def test_spec_refuses_bad_rates_naming_the_key(lines, key, fragment):
    with pytest.raises(SpecError) as err:
        parse_spec(lines, source="bad.toml")
    message = str(err.value)
    assert message.startswith(f"bad.toml: {key}: "), message
    assert fragment in message and "\n" not in message
