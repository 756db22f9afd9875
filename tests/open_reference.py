"""Independent references for the open models of physics.md section 8 (no qbfast code here).

- :func:`field_mesolve` / :func:`cavity_mesolve`: rho_B(t) from QuTiP ``mesolve`` with the
  section-8 jump operators on the full Hilbert space (no symmetry assumed; cavity cutoff
  n + 1 photons, exact for a Fock start; lab frame, omega_a a^dag a included).
- :func:`field_liouvillian` / :func:`cavity_liouvillian` and :func:`expm_rhos`: the dense
  Liouvillian (column-stacked vec) and rho(t) = expm(L t) rho(0) with scipy, for H
  time independent (field with A = 0; the cavity always).
- :func:`metrics`: the 15 metrics from rho_B by definition (tests/independent_reference.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import independent_reference as ref
import numpy as np
import qutip
import scipy.linalg

MESOLVE = {"atol": 1e-13, "rtol": 1e-12, "nsteps": 10**7, "method": "adams",
           "progress_bar": False}
KET_E = qutip.basis(2, 0)  # sigma_z |e> = +|e>
KET_G = qutip.basis(2, 1)
SMINUS = KET_G * KET_E.dag()


def _field_ops(gamma: float, n_th: float, gamma_phi: float, gamma_c: float) -> list[qutip.Qobj]:
    i2 = qutip.qeye(2)
    s1, s2 = qutip.tensor(SMINUS, i2), qutip.tensor(i2, SMINUS)
    z1, z2 = qutip.tensor(qutip.sigmaz(), i2), qutip.tensor(i2, qutip.sigmaz())
    return [np.sqrt(gamma * (1 + n_th)) * s1, np.sqrt(gamma * (1 + n_th)) * s2,
            np.sqrt(gamma * n_th) * s1.dag(), np.sqrt(gamma * n_th) * s2.dag(),
            np.sqrt(gamma_phi / 2) * z1, np.sqrt(gamma_phi / 2) * z2,
            np.sqrt(gamma_c) * (s1 + s2)]


def _field_h(point: dict[str, float], full: bool) -> tuple[qutip.Qobj, qutip.Qobj]:
    """(the constant part, the operator multiplying f(t) = (A cos(omega t) + B)/2)."""
    i2 = qutip.qeye(2)
    xx = qutip.tensor(qutip.sigmax(), i2) + qutip.tensor(i2, qutip.sigmax())
    hb = qutip.Qobj(ref.field_battery_h(point["Delta"], point["g"]), dims=[[2, 2], [2, 2]])
    return (hb if full else 0 * hb), xx


def field_mesolve(point: dict[str, float], t: np.ndarray, full: bool) -> list[np.ndarray]:
    """rho_B(t) of the field model (``point``: A, B, omega, g, Delta and the four rates)."""
    h0, xx = _field_h(point, full)
    a, b, omega = point["A"], point["B"], point["omega"]
    h = [h0, [xx, lambda tt: 0.5 * (a * np.cos(omega * tt) + b)]]
    c_ops = _field_ops(point["gamma"], point["n_th"], point["gamma_phi"], point["gamma_c"])
    rho0 = qutip.ket2dm(qutip.tensor(KET_G, KET_G))
    return [s.full() for s in qutip.mesolve(h, rho0, t, c_ops, options=MESOLVE).states]


def _cavity_ops(n: int) -> dict[str, qutip.Qobj]:
    dims = n + 2
    i2, ic = qutip.qeye(2), qutip.qeye(dims)
    return {"a": qutip.tensor(qutip.destroy(dims), i2, i2),
            "s1": qutip.tensor(ic, SMINUS, i2), "s2": qutip.tensor(ic, i2, SMINUS),
            "z1": qutip.tensor(ic, qutip.sigmaz(), i2), "z2": qutip.tensor(ic, i2, qutip.sigmaz()),
            "ic": ic}


def _cavity_system(point: dict[str, float], photons: np.ndarray
                   ) -> tuple[qutip.Qobj, list[qutip.Qobj], qutip.Qobj]:
    """(H, c_ops, rho0) in the space of cutoff len(photons) photons, cavity start
    sum_m photons[m] |m><m|, battery |gg>."""
    op = _cavity_ops(photons.size - 1)
    a, s1, s2, z1, z2 = op["a"], op["s1"], op["s2"], op["z1"], op["z2"]
    hb = qutip.tensor(op["ic"], qutip.Qobj(ref.cavity_battery_h(point["Delta"], point["J1"],
                                                                point["J2"]),
                                           dims=[[2, 2], [2, 2]]))
    g = point["omega_g"]
    h = (g * (s1.dag() * a + s1 * a.dag() + s2.dag() * a + s2 * a.dag()) + hb
         + point["omega_a"] * a.dag() * a)
    c_ops = [np.sqrt(point["gamma"]) * s1, np.sqrt(point["gamma"]) * s2,
             np.sqrt(point["gamma_phi"] / 2) * z1, np.sqrt(point["gamma_phi"] / 2) * z2,
             np.sqrt(point["gamma_c"]) * (s1 + s2), np.sqrt(point["kappa"]) * a]
    cav = qutip.Qobj(np.diag(np.append(photons, 0.0)))
    rho0 = qutip.tensor(cav, qutip.ket2dm(KET_G), qutip.ket2dm(KET_G))
    return h, c_ops, rho0


def fock(n: int) -> np.ndarray:
    return np.eye(n + 1)[n]


def thermal(nbar: float, count: int) -> np.ndarray:
    m = np.arange(count)
    return nbar ** m / (1 + nbar) ** (m + 1)


def cavity_mesolve(point: dict[str, float], photons: np.ndarray, t: np.ndarray
                   ) -> list[np.ndarray]:
    """rho_B(t) of the cavity model (``point``: J1, J2, omega_g, omega_a, Delta and the four
    rates) from the cavity start sum_m photons[m] |m><m|."""
    h, c_ops, rho0 = _cavity_system(point, photons)
    res = qutip.mesolve(h, rho0, t, c_ops, options=MESOLVE)
    return [s.ptrace([1, 2]).full() for s in res.states]


def liouvillian(h: np.ndarray, c_ops: Sequence[np.ndarray]) -> np.ndarray:
    """The dense GKSL generator on column-stacked vec(rho): vec(A X B) = (B^T kron A) vec(X)."""
    eye = np.eye(h.shape[0])
    out = -1j * (np.kron(eye, h) - np.kron(h.T, eye))
    for c in c_ops:
        cdc = c.conj().T @ c
        out += np.kron(c.conj(), c) - 0.5 * (np.kron(eye, cdc) + np.kron(cdc.T, eye))
    return out


def expm_rhos(h: np.ndarray, c_ops: Sequence[np.ndarray], rho0: np.ndarray, t: np.ndarray
              ) -> list[np.ndarray]:
    """rho(t) = expm(L t) rho0 for each t (H time independent)."""
    gen = liouvillian(h, c_ops)
    d = rho0.shape[0]
    vec = rho0.reshape(-1, order="F")
    return [(scipy.linalg.expm(gen * tk) @ vec).reshape(d, d, order="F") for tk in t]


def field_expm(point: dict[str, float], t: np.ndarray, full: bool) -> list[np.ndarray]:
    """rho_B(t) of the field model with A = 0 (static field B) from the Liouvillian."""
    assert point["A"] == 0
    h0, xx = _field_h(point, full)
    h = h0.full() + 0.5 * point["B"] * xx.full()
    c_ops = [c.full() for c in _field_ops(point["gamma"], point["n_th"], point["gamma_phi"],
                                          point["gamma_c"])]
    rho0 = np.zeros((4, 4), dtype=complex)
    rho0[3, 3] = 1.0
    return expm_rhos(h, c_ops, rho0, t)


def cavity_expm(point: dict[str, float], photons: np.ndarray, t: np.ndarray
                ) -> list[np.ndarray]:
    """rho_B(t) of the cavity model from the Liouvillian of the truncated space."""
    h, c_ops, rho0 = _cavity_system(point, photons)
    rhos = expm_rhos(h.full(), [c.full() for c in c_ops], rho0.full(), t)
    dims = h.dims
    return [qutip.Qobj(r, dims=dims).ptrace([1, 2]).full() for r in rhos]


def robust_concurrence(rho: np.ndarray) -> float:
    """Wootters concurrence from the singular values of sqrt(rho) (sy x sy) sqrt(rho)^*."""
    w, v = np.linalg.eigh(rho)
    root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.conj().T
    yy = np.kron(ref.PAULIS[1], ref.PAULIS[1])
    sv = np.sort(np.linalg.svd(root @ yy @ root.conj(), compute_uv=False))[::-1]
    return max(0.0, sv[0] - sv[1] - sv[2] - sv[3])


def metrics(rhos: list[np.ndarray], t: np.ndarray, hb: np.ndarray, delta: float
            ) -> dict[str, np.ndarray]:
    """The 15 metrics of each rho_B(t[k]), by definition, keyed by name."""
    rows = [ref.metrics_from_rho(rho, hb, delta, t[k], robust_concurrence(rho))
            for k, rho in enumerate(rhos)]
    return {name: np.array([r[name] for r in rows]) for name in ref.METRIC_NAMES}


def assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray],
                 atol: float = 1e-8, rtol: float = 1e-6, what: str = "") -> None:
    """Every metric within atol + rtol |want| (the issue's 1e-8 abs + 1e-6 rel); the
    efficiencies are compared only where the reference energy is clear of the NaN threshold
    (|energy| >= 1e-7: below it their 0/0 is ill conditioned)."""
    clear = np.abs(want["energy"]) >= 1e-7
    for name in ref.METRIC_NAMES:
        g, w = np.asarray(got[name], dtype=float), np.asarray(want[name], dtype=float)
        if name in ("efficiency", "efficiency_incoherent"):
            g, w = g[clear], w[clear]
        np.testing.assert_allclose(g, w, atol=atol, rtol=rtol, equal_nan=True,
                                   err_msg=f"{what} {name}")
