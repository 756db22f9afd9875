"""Independent reference routes for the verification tests (no qbfast code is used here).

Everything is computed from a 4x4 density matrix rho_B with NumPy/QuTiP, straight from the
definitions of physics.md section 4 (not from the closed forms that qbfast's kernels use):

- energies and ergotropies from traces and sorted eigenvalues of explicit matrices,
- entropies with ``qutip.entropy_vn`` (base 2) and Shannon entropies of populations,
- steering from the *outcome-probability definition*
  H(sigma_i^b | sigma_i^a) = H(joint outcomes of sigma_i x sigma_i) - H(outcomes of sigma_i on a),
  probabilities Tr[rho P_a (x) P_b] with the eigenprojectors of each Pauli matrix.

Basis of the two-qubit battery: (|ee>, |eg>, |ge>, |gg>) with sigma_z|e> = +|e>, i.e. |e> is the
first basis vector (QuTiP's ``basis(2, 0)``, on which ``qutip.sigmaz()`` is +1).
"""

from __future__ import annotations

import numpy as np
import qutip

I2 = np.eye(2, dtype=complex)
SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)
PAULIS = (SX, SY, SZ)

METRIC_NAMES = (
    "energy", "ergotropy", "efficiency", "ergotropy_local", "ergotropy_incoherent_cell",
    "efficiency_incoherent", "entropy_cell", "entropy_battery", "entropy_diag_cell",
    "purity_cell", "purity_battery", "concurrence", "steering_ab", "steering_ba", "power",
)

# Index of |gg> in the (ee, eg, ge, gg) basis.
GG = 3


def kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.kron(a, b)


# --------------------------------------------------------------------------- Hamiltonians
def field_battery_h(delta: float, g: float) -> np.ndarray:
    """H_b = (Delta/2)(s1z + s2z) + (g/4) s1.s2 built from Pauli matrices."""
    h = 0.5 * delta * (kron(SZ, I2) + kron(I2, SZ))
    h = h + 0.25 * g * sum(kron(s, s) for s in PAULIS)
    return h


def cavity_battery_h(delta: float, j1: float, j2: float) -> np.ndarray:
    """H_b = (Delta/2)(s1z + s2z) + Delta [J1 (s1x s2x + s1y s2y) + J2 s1z s2z]."""
    h = 0.5 * delta * (kron(SZ, I2) + kron(I2, SZ))
    h = h + delta * (j1 * (kron(SX, SX) + kron(SY, SY)) + j2 * kron(SZ, SZ))
    return h


def bare_h(delta: float) -> np.ndarray:
    """H0 = (Delta/2)(s1z + s2z)."""
    return 0.5 * delta * (kron(SZ, I2) + kron(I2, SZ))


# --------------------------------------------------------------------------- state helpers
def partial_traces(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rho_1, rho_2): reduced states of qubit a (first factor) and qubit b."""
    r = rho.reshape(2, 2, 2, 2)  # r[a, b, a', b']
    rho1 = np.einsum("ijkj->ik", r)
    rho2 = np.einsum("jijk->ik", r)
    return rho1, rho2


def xlog2x(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)


def shannon(p: np.ndarray) -> float:
    """Shannon entropy (bits) of a probability vector; tiny negatives clipped to 0."""
    return float(-np.sum(xlog2x(p)))


def h2(p: float) -> float:
    """Binary entropy, bits."""
    return shannon(np.array([p, 1.0 - p]))


def ergotropy(rho: np.ndarray, h: np.ndarray) -> float:
    """Tr[h rho] - sum_k r_k(desc) e_k(asc)."""
    r = np.sort(np.linalg.eigvalsh(rho))[::-1]
    e = np.sort(np.linalg.eigvalsh(h))
    return float(np.real(np.trace(h @ rho)) - np.dot(r, e))


def projectors(pauli: np.ndarray) -> list[np.ndarray]:
    """Eigenprojectors of a Pauli matrix, from its numerical eigenvectors."""
    _, v = np.linalg.eigh(pauli)
    return [np.outer(v[:, k], v[:, k].conj()) for k in range(2)]


def steering_by_outcomes(rho: np.ndarray) -> tuple[float, float]:
    """(I_ab, I_ba) from the outcome-probability definition of the conditional entropies."""
    i_ab = 0.0
    i_ba = 0.0
    for pauli in PAULIS:
        proj = projectors(pauli)
        joint = np.array([[np.real(np.trace(rho @ kron(pa, pb))) for pb in proj] for pa in proj])
        h_joint = shannon(joint.ravel())
        i_ab += h_joint - shannon(joint.sum(axis=1))  # H(b|a) = H(a,b) - H(a)
        i_ba += h_joint - shannon(joint.sum(axis=0))  # H(a|b) = H(a,b) - H(b)
    return i_ab, i_ba


def concurrence_pure(psi: np.ndarray) -> float:
    """Wootters concurrence of a pure two-qubit state: |<psi| sy x sy |psi*>|."""
    return float(abs(psi.conj() @ kron(SY, SY) @ psi.conj()))


def assert_x_state(rho: np.ndarray, atol: float = 1e-13) -> None:
    """rho is an X state in the (ee, eg, ge, gg) basis: only the diagonal, the eg-ge block and
    the ee-gg corner may be nonzero."""
    mask = np.ones((4, 4), dtype=bool)
    for i, j in [(0, 0), (1, 1), (2, 2), (3, 3), (1, 2), (2, 1), (0, 3), (3, 0)]:
        mask[i, j] = False
    assert np.max(np.abs(rho[mask])) <= atol, rho


def concurrence_x(rho: np.ndarray) -> float:
    """Concurrence of an X state (Yu-Eberly):
    2 max(0, |r23| - sqrt(r11 r44), |r14| - sqrt(r22 r33)) (1-based entries)."""
    d = np.clip(np.real(np.diag(rho)), 0.0, None)
    return float(2.0 * max(0.0, abs(rho[1, 2]) - np.sqrt(d[0] * d[3]),
                           abs(rho[0, 3]) - np.sqrt(d[1] * d[2])))


def single_qubit_ergotropy(rho1: np.ndarray, delta: float) -> float:
    return ergotropy(rho1, 0.5 * delta * SZ)


def metrics_from_rho(rho: np.ndarray, hb: np.ndarray, delta: float, t: float,
                     concurrence: float) -> dict[str, float]:
    """All 15 metrics of physics.md section 4 from rho_B, by definition.

    ``hb`` is the Hamiltonian used for the accounting (the model's H_b or the bare H0);
    rho_B(0) = |gg><gg|. Efficiencies are NaN where the energy is <= the documented threshold
    1e-12 max(|Delta|, max |eig hb|); power is NaN at t = 0.
    """
    rho1, rho2 = partial_traces(rho)
    energy = float(np.real(np.trace(hb @ rho)) - np.real(hb[GG, GG]))
    erg = ergotropy(rho, hb)
    threshold = 1e-12 * max(abs(delta), float(np.max(np.abs(np.linalg.eigvalsh(hb)))))
    charged = energy > threshold
    # incoherent ergotropy: dephase cell 1 in the sigma_z basis, then ordinary ergotropy
    erg_inc = single_qubit_ergotropy(np.diag(np.diag(rho1)), delta)
    i_ab, i_ba = steering_by_outcomes(rho)
    return {
        "energy": energy,
        "ergotropy": erg,
        "efficiency": erg / energy if charged else np.nan,
        "ergotropy_local": (single_qubit_ergotropy(rho1, delta)
                            + single_qubit_ergotropy(rho2, delta)),
        "ergotropy_incoherent_cell": erg_inc,
        "efficiency_incoherent": erg_inc / (energy / 2.0) if charged else np.nan,
        "entropy_cell": float(qutip.entropy_vn(qutip.Qobj(rho1), base=2)),
        "entropy_battery": float(qutip.entropy_vn(qutip.Qobj(rho, dims=[[2, 2], [2, 2]]), base=2)),
        "entropy_diag_cell": shannon(np.real(np.diag(rho1))),
        "purity_cell": float(np.real(np.trace(rho1 @ rho1))),
        "purity_battery": float(np.real(np.trace(rho @ rho))),
        "concurrence": concurrence,
        "steering_ab": i_ab,
        "steering_ba": i_ba,
        "power": energy / t if t > 0 else np.nan,
    }


def random_density_matrix(rng: np.random.Generator, rank: int = 4) -> np.ndarray:
    """Random two-qubit density matrix of the given rank (Ginibre construction)."""
    g = rng.normal(size=(4, rank)) + 1j * rng.normal(size=(4, rank))
    rho = g @ g.conj().T
    return rho / np.trace(rho).real


def bloch_summary(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, s, c): n_i = <s_i x 1>, s_i = <1 x s_i>, c_i = <s_i x s_i>."""
    n = np.array([np.real(np.trace(rho @ kron(p, I2))) for p in PAULIS])
    s = np.array([np.real(np.trace(rho @ kron(I2, p))) for p in PAULIS])
    c = np.array([np.real(np.trace(rho @ kron(p, p))) for p in PAULIS])
    return n, s, c
