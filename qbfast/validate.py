"""Input checks shared by the Python API and the sweep specs.

Every check raises ``ValueError`` whose message names the offending argument and the allowed
values or range, before any work is done.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import TypeGuard

import numpy as np

from .params import BATTERY_HAMILTONIANS, METRICS, MODELS, TIME, Model, Parameter


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


def _is_real_number(x: object) -> TypeGuard[numbers.Real]:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def check_value(param: Parameter, value: object, what: str | None = None) -> float:
    """Check one scalar value of a parameter; return it as a float."""
    label = what or param.name
    if not _is_real_number(value):
        raise ValueError(f"{label}: expected {param.allowed}, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{label}: expected {param.allowed}, got {value!r} (not finite)")
    if param.integer and x != math.floor(x):
        raise ValueError(f"{label}: expected {param.allowed}, got {value!r}")
    if param.minimum is not None and x < param.minimum:
        raise ValueError(f"{label}: expected {param.allowed}, got {value!r}")
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
    return x if ok else None


def check_parameter(param: Parameter, value: object) -> float | np.ndarray:
    """A fixed value (returns float) or a 1-D sequence of distinct values (returns an array)."""
    if _is_real_number(value):
        return check_value(param, value)
    if isinstance(value, (str, bytes)) or (not hasattr(value, "__len__")
                                           and not isinstance(value, np.ndarray)):
        raise ValueError(
            f"{param.name}: expected a scalar or a 1-D sequence of values, each {param.allowed}; "
            f"got {value!r}"
        )
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
    """t: a non-empty 1-D array of finite, non-negative, strictly increasing times."""
    try:
        arr = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"t: expected a 1-D sequence of times >= 0, got {t!r}") from None
    if arr.ndim != 1:
        raise ValueError(f"t: expected a 1-D sequence of times >= 0, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("t: is empty; give at least one time >= 0")
    if not np.all(np.isfinite(arr)):
        raise ValueError("t: all times must be finite")
    if np.any(arr < (TIME.minimum or 0.0)):
        raise ValueError(f"t: times must be >= 0, got minimum {arr.min()!r}")
    if arr.size > 1 and not np.all(np.diff(arr) > 0):
        raise ValueError("t: times must be strictly increasing")
    return arr


def check_parameters(model: Model, params: dict[str, object]) -> dict[str, float | np.ndarray]:
    """Check every given parameter; unknown names are refused."""
    allowed = model.parameter_names
    checked: dict[str, float | np.ndarray] = {}
    for name, value in params.items():
        if name not in allowed:
            raise ValueError(
                f"{name}: unknown parameter for model {model.name!r}; allowed: {_choices(allowed)}"
            )
        checked[name] = check_parameter(model.parameter(name), value)
    return checked


def check_max_step(max_step: object) -> float | None:
    if max_step is None:
        return None
    if not _is_real_number(max_step) or not math.isfinite(float(max_step)) or float(max_step) <= 0:
        raise ValueError(f"max_step: expected a finite number > 0 or None, got {max_step!r}")
    return float(max_step)
