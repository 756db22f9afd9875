"""Input checks shared by the Python API and the sweep specs.

Every check raises ``ValueError`` whose message names the offending argument and the allowed
values or range, before any work is done. Numbers in messages are shown as plain Python
numbers (``-1.0``, never ``np.float64(-1.0)``).

The times ``t`` are checked exactly like a swept parameter (:data:`qbfast.params.TIME`: finite,
>= 0), then for strict increase. Values must be real numbers: strings, booleans, complex
numbers, datetimes and masked arrays are refused (a mask or an imaginary part is never silently
dropped); an object array is checked element by element, like a list. Integer parameters are
bounded by :data:`INTEGER_MAX` (they are stored as int64 coordinates and computed in float64,
exact far below that bound).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import TypeGuard

import numpy as np

from .params import BATTERY_HAMILTONIANS, METRICS, MODELS, TIME, Model, Parameter

#: The open kernels' documented accuracy range (docs/physics.md section 8): every rate, and
#: the field's total decay gamma (1 + n_th), at most this many times the point's
#: :func:`frequency_scale`; measured (tests/test_open_accuracy.py) to keep every metric within
#: 1e-8 abs + 1e-6 rel of the Liouvillian exponential.
RATE_RANGE_FACTOR = 100.0


def _choices(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def check_model(model: object) -> Model:
    if not isinstance(model, str) or model not in MODELS:
        raise ValueError(f"model: unknown model {model!r}; allowed: {_choices(MODELS)}")
    return MODELS[model]


def check_protocol(model: Model, protocol: object) -> str | None:
    """Return the protocol to use (the model's default when None)."""
    if not model.protocols:
        if protocol is not None:
            raise ValueError(
                f"protocol: the {model.name!r} model has no protocol choice "
                f"(got {protocol!r}); leave protocol unset"
            )
        return None
    if protocol is None:
        return model.default_protocol
    if not isinstance(protocol, str) or protocol not in model.protocols:
        raise ValueError(
            f"protocol: unknown protocol {protocol!r} for model {model.name!r}; "
            f"allowed: {_choices(model.protocols)}"
        )
    return protocol


def check_charger(model: Model, charger: object) -> str | None:
    """Return the charger state to use (the model's default when None; None for a model
    without a charger choice)."""
    if not model.chargers:
        if charger is not None:
            raise ValueError(
                f"charger: the {model.name!r} model has no charger choice (got {charger!r}); "
                "leave charger unset"
            )
        return None
    if charger is None:
        return model.default_charger
    if not isinstance(charger, str) or charger not in model.charger_names:
        raise ValueError(
            f"charger: unknown charger {charger!r} for model {model.name!r}; "
            f"allowed: {_choices(model.charger_names)}"
        )
    return charger


def check_battery_hamiltonian(value: object) -> str:
    if not isinstance(value, str) or value not in BATTERY_HAMILTONIANS:
        raise ValueError(
            f"battery_hamiltonian: unknown value {value!r}; "
            f"allowed: {_choices(BATTERY_HAMILTONIANS)}"
        )
    return value


def check_metrics(metrics: object) -> tuple[str, ...]:
    """Return the requested metric names (all, in the canonical order, when None)."""
    if metrics is None:
        return tuple(METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, Sequence) or isinstance(metrics, bytes):
        raise ValueError(f"metrics: expected a list of metric names; allowed: {_choices(METRICS)}")
    names = list(metrics)
    if not names:
        raise ValueError(f"metrics: the list is empty; allowed: {_choices(METRICS)}")
    for name in names:
        if not isinstance(name, str) or name not in METRICS:
            raise ValueError(f"metrics: unknown metric {name!r}; allowed: {_choices(METRICS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"metrics: repeated metric names in {names!r}")
    return tuple(names)


#: Largest value of an integer parameter (e.g. the cavity's photon number ``n``).
INTEGER_MAX = 2**31 - 1


def _is_real_number(x: object) -> TypeGuard[numbers.Real]:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _show(value: object) -> str:
    """``value`` for a message: NumPy scalars as plain Python numbers (``-1.0``)."""
    if isinstance(value, np.generic) and isinstance(value.item(), (int, float, complex)):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def check_value(param: Parameter, value: object, what: str | None = None) -> float:
    """Check one scalar value of a parameter; return it as a float."""
    label = what or param.name
    allowed = f"{param.allowed} and <= {INTEGER_MAX}" if param.integer else param.allowed
    if not _is_real_number(value):
        raise ValueError(f"{label}: expected {allowed}, got {_show(value)}")
    if param.integer and isinstance(value, numbers.Integral) and int(value) > INTEGER_MAX:
        raise ValueError(f"{label}: expected {allowed}, got {_show(value)} (too large)")
    try:
        x = float(value)
    except OverflowError:  # a Python int beyond the float range
        x = math.inf
    if not math.isfinite(x):
        raise ValueError(f"{label}: expected {allowed}, got {_show(value)} (not finite)")
    if param.integer and x != math.floor(x):
        raise ValueError(f"{label}: expected {allowed}, got {_show(value)}")
    if param.minimum is not None and x < param.minimum:
        raise ValueError(f"{label}: expected {allowed}, got {_show(value)}")
    if param.integer and x > INTEGER_MAX:
        raise ValueError(f"{label}: expected {allowed}, got {_show(value)} (too large)")
    return x


def _all_valid_floats(param: Parameter, value: object) -> np.ndarray | None:
    """``value`` as a float64 array when it is a non-empty 1-D integer or float array (not bool)
    whose elements all pass :func:`check_value`; None otherwise (then :func:`check_parameter`
    checks element by element, to name what is wrong). The fast path for long sequences."""
    numeric = np.asarray(value)
    if numeric.dtype.kind not in "iuf" or numeric.ndim != 1 or numeric.size == 0:
        return None
    x = numeric.astype(np.float64)
    ok = bool(np.isfinite(x).all())
    if param.integer:
        ok = ok and bool(np.all(x == np.floor(x)))
    if param.minimum is not None:
        ok = ok and bool(np.all(x >= param.minimum))
    if param.integer:
        ok = ok and bool(np.all(x <= INTEGER_MAX))
    return x if ok else None


def check_parameter(param: Parameter, value: object) -> float | np.ndarray:
    """A fixed value (returns float) or a 1-D sequence of distinct values (returns an array)."""
    if _is_real_number(value):
        return check_value(param, value)
    if isinstance(value, (str, bytes)) or (not hasattr(value, "__len__")
                                           and not isinstance(value, np.ndarray)):
        raise ValueError(
            f"{param.name}: expected a scalar or a 1-D sequence of values, each {param.allowed}; "
            f"got {_show(value)}"
        )
    if isinstance(value, np.ma.MaskedArray):
        raise ValueError(f"{param.name}: a masked array is not accepted (its mask would be "
                         "ignored); pass a plain array of the values to use")
    kind = getattr(getattr(value, "dtype", None), "kind", "O")
    if kind not in "iufbO":  # booleans: refused element by element below
        raise ValueError(f"{param.name}: expected real numbers, each {param.allowed}; got an "
                         f"array of dtype {value.dtype}")  # type: ignore[attr-defined]
    values = _all_valid_floats(param, value)
    if values is not None:  # a valid numeric array: checked vectorized
        if np.unique(values).size != values.size:
            raise ValueError(f"{param.name}: the sequence has repeated values; values must be "
                             "distinct")
        return values
    arr = np.asarray(value, dtype=object)
    if arr.ndim == 0:
        return check_value(param, arr.item())
    if arr.ndim != 1:
        raise ValueError(f"{param.name}: a sequence must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{param.name}: the sequence is empty; give at least one value")
    values = np.array([check_value(param, v, f"{param.name}[{i}]") for i, v in enumerate(arr)])
    if np.unique(values).size != values.size:
        raise ValueError(f"{param.name}: the sequence has repeated values; values must be distinct")
    return values


def check_times(t: object) -> np.ndarray:
    """t: a non-empty 1-D sequence of finite, non-negative, strictly increasing times, checked
    like a swept parameter (:func:`check_parameter` with :data:`qbfast.params.TIME`)."""
    if _is_real_number(t) or (isinstance(t, np.ndarray) and t.ndim == 0):
        raise ValueError(f"t: expected a 1-D sequence of times, each {TIME.allowed}; got the "
                         f"scalar {_show(t)}")
    arr = check_parameter(TIME, t)
    assert isinstance(arr, np.ndarray)  # a sequence, as scalars are refused above
    if arr.size > 1 and not np.all(np.diff(arr) > 0):
        raise ValueError("t: times must be strictly increasing")
    return arr


def check_parameters(model: Model, params: dict[str, object],
                     charger: str | None = None) -> dict[str, float | np.ndarray]:
    """Check every given parameter; unknown names, and parameters of another charger than
    ``charger`` (None: the model's default), are refused."""
    allowed = tuple(p.name for p in model.parameters_for(charger))
    checked: dict[str, float | np.ndarray] = {}
    for name, value in params.items():
        if name not in allowed:
            others = [m.name for m in MODELS.values() if m is not model and name in m.rate_names]
            if others:
                raise ValueError(
                    f"{name}: not a rate of model {model.name!r} (only of {_choices(others)}, "
                    f"physics.md section 8), whatever its value; allowed: {_choices(allowed)}"
                )
            owners = model.chargers_of(name)
            if owners:
                mine = charger if charger is not None else model.default_charger
                raise ValueError(
                    f"{name}: belongs to charger {_choices(owners)} of model {model.name!r}, "
                    f"not to charger {mine!r}; allowed: {_choices(allowed)}"
                )
            raise ValueError(
                f"{name}: unknown parameter for model {model.name!r}; allowed: {_choices(allowed)}"
            )
        checked[name] = check_parameter(model.parameter(name), value)
    return checked


def check_max_step(max_step: object) -> float | None:
    if max_step is None:
        return None
    if not _is_real_number(max_step) or not math.isfinite(float(max_step)) or float(max_step) <= 0:
        raise ValueError(f"max_step: expected a finite number > 0 or None, got {_show(max_step)}")
    return float(max_step)


def frequency_scale(model: Model, values: dict[str, np.ndarray]) -> float:
    """The smallest, over the grid, of the largest frequency of the Hamiltonian (a bound of
    its spectral width), at least 1 (the energy unit): field max(|A| + |B|, |omega|,
    |Delta| + |g|); cavity max(|omega_a|, |Delta| (1 + |J1| + |J2|), |omega_g|). ``values``:
    each parameter's values (1-D). The terms depend on disjoint parameters, each a dimension
    or fixed, so the smallest of the maximum is the maximum of the terms' smallest values, at
    a point of the grid."""
    low = {name: float(np.min(np.abs(v))) for name, v in values.items()}
    if model.name == "field":
        parts = [low["A"] + low["B"], low["omega"], low["Delta"] + low["g"]]
    else:
        parts = [low["omega_a"], low["Delta"] * (1 + low["J1"] + low["J2"]), low["omega_g"]]
    return max(*parts, 1.0)


def check_rates(model: Model, charger: str | None, values: dict[str, np.ndarray]) -> None:
    """The rates of a grid (``values``: each parameter's values, 1-D, already checked finite
    and >= 0): none > 0 for the coherent charger (its open dynamics is not built), and each
    within the documented accuracy range (:data:`RATE_RANGE_FACTOR` x
    :func:`frequency_scale`) at every point of the grid. Rates and frequencies are
    independent dimensions, so the grid's worst point has the largest rate and the smallest
    scale: no parameter table is made."""
    rates = {name: values[name] for name in model.rate_names}
    if not any(np.any(v > 0) for v in rates.values()):
        return
    if charger == "coherent":
        name = next(n for n, v in rates.items() if np.any(v > 0))
        raise ValueError(
            f"{name}: the open dynamics of charger 'coherent' is not built (it needs the "
            f"coherences between excitation sectors); with charger 'coherent' every rate must "
            f"be 0; chargers with rates: 'fock', 'thermal'"
        )
    scale = frequency_scale(model, values)
    bound = RATE_RANGE_FACTOR * scale
    largest = {name: float(np.max(v)) for name, v in rates.items()}
    labels = {name: name for name in rates}
    if "n_th" in largest:
        largest["gamma"] *= 1 + largest.pop("n_th")
        labels["gamma"] = "gamma (1 + n_th)"
    for name, value in largest.items():
        if value > bound:
            what = labels[name]
            raise ValueError(
                f"{name}: {what} reaches {value:g}, outside the open kernels' accuracy range; "
                f"allowed: 0 <= {what} <= {RATE_RANGE_FACTOR:g} x the largest frequency of H "
                f"(docs/physics.md section 8), i.e. <= {bound:g} at the grid's point of "
                f"smallest frequencies ({scale:g})"
            )
