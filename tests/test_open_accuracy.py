"""The documented accuracy range of the open kernels (docs/physics.md section 8,
``qbfast.validate.RATE_RANGE_FACTOR``): every metric within 1e-8 abs + 1e-6 rel of an
independent reference up to each rate = 100 x the largest frequency of H, strong damping
included, through ``qbfast.sweep``. References: the Liouvillian exponential (scipy expm) where
H is time independent (field with A = 0, cavity), and for the time-dependent drive a
fourth-order Magnus product of Liouvillian exponentials at a step 100x finer than needed
(checked against half the step). Just past the range, the request is refused."""

from __future__ import annotations

import independent_reference as ref
import numpy as np
import open_reference as R
import pytest
import scipy.linalg

import qbfast
from qbfast.validate import RATE_RANGE_FACTOR

T = np.array([0.0, 0.01, 0.05, 0.2, 0.7, 1.5])
FIELD = dict(omega=1.0, g=0.5, Delta=1.0)  # with A = 0, B = 2: largest frequency 2
CAVITY = dict(J1=0.8, J2=0.3, omega_g=0.9, omega_a=1.4, Delta=1.0)  # largest: 1 + 0.8 + 0.3
NO_RATES = dict(gamma=0.0, n_th=0.0, gamma_phi=0.0, gamma_c=0.0)


def top(scale: float) -> float:
    return RATE_RANGE_FACTOR * scale


FIELD_RATES = [dict(gamma=top(2)), dict(gamma_phi=top(2)), dict(gamma_c=top(2)),
               dict(gamma=top(2) / 4, n_th=3.0, gamma_phi=top(2), gamma_c=top(2))]


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["drive", "full"])
@pytest.mark.parametrize("rates", FIELD_RATES)
def test_field_static_at_the_top_of_the_range_matches_the_liouvillian(protocol, rates):
    point = {**FIELD, "A": 0.0, "B": 2.0, **NO_RATES, **rates}
    ds = qbfast.sweep("field", T, protocol=protocol, **point)
    want = R.metrics(R.field_expm(point, T, protocol == "full"), T,
                     ref.field_battery_h(1.0, 0.5), 1.0)
    R.assert_close({m: ds[m].values for m in ds.data_vars}, want, what=str(rates))


def magnus_rhos(point: dict[str, float], t: np.ndarray, full: bool, h: float) -> list:
    """rho_B(t) of the field drive by the two-point Gauss (4th-order) Magnus product of
    Liouvillian exponentials, steps of at most h."""
    h0, xx = R._field_h(point, full)
    c_ops = [c.full() for c in R._field_ops(point["gamma"], point["n_th"], point["gamma_phi"],
                                            point["gamma_c"])]
    l0 = R.liouvillian(h0.full(), c_ops)
    l1 = R.liouvillian(xx.full(), [])  # -i [xx, .]
    f = lambda s: 0.5 * (point["A"] * np.cos(point["omega"] * s) + point["B"])  # noqa: E731
    vec = np.zeros(16, dtype=complex)
    vec[15] = 1.0  # |gg><gg|, column-stacked
    out, now = [], 0.0
    c = np.sqrt(3) / 6
    for tk in t:
        n = max(1, int(np.ceil((tk - now) / h)))
        dt = (tk - now) / n
        for i in range(n):
            s0 = now + i * dt
            a1, a2 = l0 + f(s0 + (0.5 - c) * dt) * l1, l0 + f(s0 + (0.5 + c) * dt) * l1
            omega = 0.5 * dt * (a1 + a2) + (np.sqrt(3) / 12) * dt**2 * (a2 @ a1 - a1 @ a2)
            vec = scipy.linalg.expm(omega) @ vec
        now = tk
        out.append(vec.reshape(4, 4, order="F").copy())
    return out


@pytest.mark.slow
def test_field_time_dependent_drive_at_the_top_of_the_range_matches_magnus():
    point = {**FIELD, "A": 1.2, "B": 0.8, **NO_RATES, "gamma": top(2), "gamma_phi": top(2)}
    t = np.array([0.0, 0.05, 0.3, 1.0])
    fine, finer = (magnus_rhos(point, t, True, h) for h in (1e-3, 5e-4))
    for a, b in zip(fine, finer, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)  # converged, far below 1e-8
    ds = qbfast.sweep("field", t, protocol="full", **point)
    want = R.metrics(finer, t, ref.field_battery_h(1.0, 0.5), 1.0)
    R.assert_close({m: ds[m].values for m in ds.data_vars}, want)


CAVITY_RATES = [dict(gamma=top(2.1)), dict(gamma_phi=top(2.1)), dict(gamma_c=top(2.1)),
                dict(kappa=top(2.1)),
                dict(gamma=top(2.1), gamma_phi=top(2.1), gamma_c=top(2.1), kappa=top(2.1))]


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("rates", CAVITY_RATES)
def test_cavity_at_the_top_of_the_range_matches_the_liouvillian(n, rates):
    point = {**CAVITY, "gamma": 0.0, "gamma_phi": 0.0, "gamma_c": 0.0, "kappa": 0.0, **rates}
    ds = qbfast.sweep("cavity", T, n=n, **point)
    want = R.metrics(R.cavity_expm(point, R.fock(n), T), T, ref.cavity_battery_h(1.0, 0.8, 0.3),
                     1.0)
    R.assert_close({m: ds[m].values for m in ds.data_vars}, want, what=f"n={n} {rates}")


def test_just_past_the_range_is_refused():
    with pytest.raises(ValueError, match=r"^gamma_phi: .*<= 200 "):
        qbfast.sweep("field", T, A=0.0, B=2.0, **FIELD, gamma_phi=[1.0, 200.001])
    with pytest.raises(ValueError, match=r"^kappa: .*<= 210 "):
        qbfast.sweep("cavity", T, **CAVITY, kappa=210.001)
    qbfast.sweep("cavity", T[:2], **CAVITY, kappa=210.0, metrics=["energy"])  # the edge: fine
