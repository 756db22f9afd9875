"""A high-precision (mpmath, 50 digits) reference for the coherent and thermal cavity chargers
(physics.md section 7), written without any qbfast code.

rho_B(t) by the exact sector sum:
- the Tavis-Cummings Hamiltonian omega_a a^dag a + omega_g sum_i (s_i^+ a + s_i^- a^dag) + H_b
  conserves N = photons + excited qubits; from |N, gg> the state stays in the exchange-symmetric
  ladder (|N, gg>, |N-1, T0>, |N-2, ee>), T0 = (|eg> + |ge>)/sqrt2. Its 3x3 matrix is built here
  from the model's matrix elements (``ladder_hamiltonian``); each sector is diagonalised with
  ``mpmath.eigsy`` and c^(N)(t) = Q exp(-i E t) Q^T e_1;
- the charger's sectors are kept until the omitted weight is below 1e-80 (coherent, each side;
  the section 7 trace-norm bound is then < 1e-40) or 1e-40 (thermal), so truncation plays no
  role at the 1e-9 level of the tests;
- coherent: the joint state sum_N sqrt(p_N) c^(N) is traced over the photon number m: the
  battery vector at m is (c_ee from sector m+2, c_eg and c_ge from m+1, c_gg from m);
  thermal: the mixture sum_N p_N rho^(N) of the Fock-sector states.

All 15 metrics (physics.md section 4) from that rho_B by definition, in the same precision:
spectra from ``mpmath.eighe``, partial traces, entropies sum -x log2 x, steering from the
outcome probabilities of sigma_i x sigma_i, ergotropy from sorted spectra, the Wootters
concurrence from the singular values of F^T (sy x sy) F with rho = F F^dag (well conditioned:
no square roots of round-off eigenvalues), efficiencies NaN where the energy <= 1e-12
max(|Delta|, max |eig H|), power NaN at t = 0. Results are returned as Python floats (NaN
where the rules say so); the mp values are available through ``mp_state`` and ``mp_metrics``.
"""

from __future__ import annotations

import functools
import math

import mpmath as mp

DPS = 50
OMIT_THERMAL = mp.mpf("1e-40")
OMIT_COHERENT = mp.mpf("1e-80")

METRIC_NAMES = (
    "energy", "ergotropy", "efficiency", "ergotropy_local", "ergotropy_incoherent_cell",
    "efficiency_incoherent", "entropy_cell", "entropy_battery", "entropy_diag_cell",
    "purity_cell", "purity_battery", "concurrence", "steering_ab", "steering_ba", "power",
)


def _ctx():
    return mp.workdps(DPS)


# --------------------------------------------------------------------------- Pauli algebra
def _pauli():
    i = mp.mpc(0, 1)
    sx = mp.matrix([[0, 1], [1, 0]])
    sy = mp.matrix([[0, -i], [i, 0]])
    sz = mp.matrix([[1, 0], [0, -1]])  # basis (|e>, |g>), sigma_z|e> = +|e>
    return sx, sy, sz


def kron(a, b):
    out = mp.matrix(a.rows * b.rows, a.cols * b.cols)
    for i in range(a.rows):
        for j in range(a.cols):
            for k in range(b.rows):
                for m in range(b.cols):
                    out[i * b.rows + k, j * b.cols + m] = a[i, j] * b[k, m]
    return out


def battery_hamiltonian(delta, j1, j2, accounting):
    """H_b (interacting) or H0 (bare) on (ee, eg, ge, gg), built from Pauli matrices."""
    sx, sy, sz = _pauli()
    i2 = mp.eye(2)
    d = mp.mpf(delta)
    h = (d / 2) * (kron(sz, i2) + kron(i2, sz))
    if accounting == "interacting":
        h = h + d * (mp.mpf(j1) * (kron(sx, sx) + kron(sy, sy)) + mp.mpf(j2) * kron(sz, sz))
    elif accounting != "bare":
        raise ValueError(accounting)
    return h


# --------------------------------------------------------------------------- sectors
def ladder_hamiltonian(n, j1, j2, omega_g, omega_a, delta):
    """H restricted to sector N in (|N,gg>, |N-1,T0>, |N-2,ee>) (fewer rows for N < 2).

    Diagonal: photon energy (N - excitations) omega_a plus <k|H_b|k>:
    <gg|H_b|gg> = -Delta + J2 Delta, <T0|H_b|T0> = -J2 Delta + 2 J1 Delta, <ee|H_b|ee> = Delta +
    J2 Delta. Off-diagonal: omega_g <N-1,T0| (s1^+ + s2^+) a |N,gg> = omega_g sqrt(N) sqrt2 and
    omega_g <N-2,ee| (s1^+ + s2^+) a |N-1,T0> = omega_g sqrt(N-1) sqrt2."""
    d, wa, wg = mp.mpf(delta), mp.mpf(omega_a), mp.mpf(omega_g)
    j1, j2 = mp.mpf(j1), mp.mpf(j2)
    size = min(n + 1, 3)
    h = mp.matrix(size, size)
    diag = [n * wa + d * (j2 - 1), (n - 1) * wa + d * (2 * j1 - j2), (n - 2) * wa + d * (j2 + 1)]
    for k in range(size):
        h[k, k] = diag[k]
    if size >= 2:
        h[0, 1] = h[1, 0] = wg * mp.sqrt(2 * n)
    if size == 3:
        h[1, 2] = h[2, 1] = wg * mp.sqrt(2 * (n - 1))
    return h


@functools.cache
def _sector(n, j1, j2, omega_g, omega_a, delta):
    """(E, w) with c_k(t) = sum_j w[k][j] exp(-i E_j t): w[k][j] = Q[k, j] Q[0, j]."""
    with _ctx():
        h = ladder_hamiltonian(n, j1, j2, omega_g, omega_a, delta)
        if h.rows == 1:
            return [h[0, 0]], [[mp.mpf(1)]]
        e, q = mp.eigsy(h)
        size = h.rows
        w = [[q[k, j] * q[0, j] for j in range(size)] for k in range(size)]
        return [e[j] for j in range(size)], w


def log_weight(charger, nbar, n):
    nbar = mp.mpf(nbar)
    if charger == "coherent":
        return -nbar + n * mp.log(nbar) - mp.loggamma(n + 1)
    return n * mp.log(nbar / (1 + nbar)) - mp.log1p(nbar)


@functools.cache
def sector_weights(charger, nbar):
    """{N: p_N} for the kept sectors (omitted weight below OMIT_*; see the module doc)."""
    with _ctx():
        if nbar == 0.0:
            return {0: mp.mpf(1)}
        if charger == "thermal":
            r = mp.mpf(nbar) / (1 + mp.mpf(nbar))
            # omitted weight sum_{N>U} p_N = r^(U+1)
            u = int(mp.ceil(mp.log(OMIT_THERMAL) / mp.log(r)))
            return {n: mp.exp(log_weight(charger, nbar, n)) for n in range(u + 1)}
        if charger != "coherent":
            raise ValueError(charger)
        # Poisson: p_{N+1}/p_N = nbar/(N+1). Go out from the mode until p_N < OMIT/1e3 and the
        # ratio is below 1/2, so that the geometric tail after it is < OMIT.
        mode = int(math.floor(nbar))
        weights = {}
        n = mode
        while True:
            p = mp.exp(log_weight(charger, nbar, n))
            weights[n] = p
            if p < OMIT_COHERENT * mp.mpf("1e-3") and mp.mpf(nbar) / (n + 1) < 0.5:
                break
            n += 1
        n = mode - 1
        while n >= 0:
            p = mp.exp(log_weight(charger, nbar, n))
            weights[n] = p
            if p < OMIT_COHERENT * mp.mpf("1e-3") and n / mp.mpf(nbar) < 0.5:
                break
            n -= 1
        total = mp.fsum(weights.values())
        assert abs(total - 1) < mp.mpf("1e-45"), total  # round-off of DPS digits
        return dict(sorted(weights.items()))


def _amplitudes(n, params, t):
    """(c_gg, c_T0, c_ee) of sector n at time t (0 for absent states)."""
    e, w = _sector(n, params["J1"], params["J2"], params["omega_g"], params["omega_a"],
                   params["Delta"])
    phases = [mp.expj(-ej * t) for ej in e]
    c = [mp.fsum(w[k][j] * phases[j] for j in range(len(e))) for k in range(len(e))]
    return c + [mp.mpc(0)] * (3 - len(c))


def mp_state(charger, params, t):
    """rho_B(t) as a 4x4 mpmath matrix on (ee, eg, ge, gg)."""
    with _ctx():
        t = mp.mpf(t)
        weights = sector_weights(charger, params["nbar"])
        amps = {n: _amplitudes(n, params, t) for n in weights}
        rho = mp.matrix(4, 4)
        s2 = mp.sqrt(2)
        if charger == "thermal":
            for n, p in weights.items():
                gg, t0, ee = amps[n]
                # the three components have different photon numbers (N-2, N-1, N): the trace
                # over the cavity keeps only the eg-ge coherence
                vec = [ee, t0 / s2, t0 / s2, gg]
                blocks = [[0], [1, 2], [1, 2], [3]]
                for a in range(4):
                    for b in blocks[a]:
                        rho[a, b] += p * vec[a] * mp.conj(vec[b])
            return rho
        # coherent: joint amplitude sqrt(p_N) c^(N); trace over the photon number m
        sq = {n: mp.sqrt(p) for n, p in weights.items()}

        def amp(n, k):
            return sq[n] * amps[n][k] if n in weights else mp.mpc(0)

        lo, hi = min(weights), max(weights)
        for m in range(max(0, lo - 2), hi + 1):
            vec = [amp(m + 2, 2), amp(m + 1, 1) / s2, amp(m + 1, 1) / s2, amp(m, 0)]
            for a in range(4):
                for b in range(4):
                    rho[a, b] += vec[a] * mp.conj(vec[b])
        return rho


# --------------------------------------------------------------------------- metrics
def partial_traces(rho):
    """(rho_1, rho_2) from rho on (a, b) with index 2a + b."""
    r1 = mp.matrix(2, 2)
    r2 = mp.matrix(2, 2)
    for a in range(2):
        for ap in range(2):
            r1[a, ap] = rho[2 * a, 2 * ap] + rho[2 * a + 1, 2 * ap + 1]
            r2[a, ap] = rho[a, ap] + rho[2 + a, 2 + ap]
    return r1, r2


def trace(m):
    return mp.fsum(m[k, k] for k in range(m.rows))


def spectrum(m):
    """Eigenvalues of a Hermitian mp matrix, ascending."""
    e = mp.eighe(mp.matrix(m), eigvals_only=True)
    return sorted(mp.re(x) for x in e)


def xlog2x_sum(ps):
    return -mp.fsum(p * mp.log(p, 2) for p in ps if p > 0)


def ergotropy(rho, h):
    r = spectrum(rho)[::-1]
    e = spectrum(h)
    return mp.re(trace(h * rho)) - mp.fsum(x * y for x, y in zip(r, e))


def concurrence(rho):
    """Wootters concurrence: singular values s of F^T (sy x sy) F, rho = F F^dag; max(0, s1 -
    s2 - s3 - s4)."""
    _, sy, _ = _pauli()
    w, v = mp.eighe(mp.matrix(rho))
    f = mp.matrix(4, 4)
    for j in range(4):
        lam = max(mp.re(w[j]), mp.mpf(0))
        for k in range(4):
            f[k, j] = v[k, j] * mp.sqrt(lam)
    m = f.T * kron(sy, sy) * f
    s = sorted((mp.re(x) for x in mp.svd_c(m, compute_uv=False)), reverse=True)
    return max(mp.mpf(0), s[0] - s[1] - s[2] - s[3])


def steering(rho):
    """(I_ab, I_ba): sum_i H(joint outcomes of sigma_i x sigma_i) - H(outcomes on a | on b)."""
    paulis = _pauli()
    i2 = mp.eye(2)
    i_ab = mp.mpf(0)
    i_ba = mp.mpf(0)
    for s in paulis:
        proj = [(i2 + s) / 2, (i2 - s) / 2]
        joint = [[max(mp.re(trace(rho * kron(pa, pb))), mp.mpf(0)) for pb in proj]
                 for pa in proj]
        h_joint = xlog2x_sum([joint[a][b] for a in range(2) for b in range(2)])
        i_ab += h_joint - xlog2x_sum([joint[a][0] + joint[a][1] for a in range(2)])
        i_ba += h_joint - xlog2x_sum([joint[0][b] + joint[1][b] for b in range(2)])
    return i_ab, i_ba


def mp_metrics(rho, h, delta, t):
    """The 15 metrics of physics.md section 4 as mp numbers (None for NaN)."""
    with _ctx():
        d = mp.mpf(delta)
        _, _, sz = _pauli()
        hq = (d / 2) * sz
        r1, r2 = partial_traces(rho)
        energy = mp.re(trace(h * rho)) - mp.re(h[3, 3])
        erg = ergotropy(rho, h)
        threshold = mp.mpf("1e-12") * max(abs(d), max(abs(x) for x in spectrum(h)))
        charged = energy > threshold
        dephased = mp.matrix([[r1[0, 0], 0], [0, r1[1, 1]]])
        erg_inc = ergotropy(dephased, hq)
        i_ab, i_ba = steering(rho)
        return {
            "energy": energy,
            "ergotropy": erg,
            "efficiency": erg / energy if charged else None,
            "ergotropy_local": ergotropy(r1, hq) + ergotropy(r2, hq),
            "ergotropy_incoherent_cell": erg_inc,
            "efficiency_incoherent": erg_inc / (energy / 2) if charged else None,
            "entropy_cell": xlog2x_sum(spectrum(r1)),
            "entropy_battery": xlog2x_sum(spectrum(rho)),
            "entropy_diag_cell": xlog2x_sum([mp.re(r1[0, 0]), mp.re(r1[1, 1])]),
            "purity_cell": mp.re(trace(r1 * r1)),
            "purity_battery": mp.re(trace(rho * rho)),
            "concurrence": concurrence(rho),
            "steering_ab": i_ab,
            "steering_ba": i_ba,
            "power": energy / t if t > 0 else None,
        }


@functools.cache
def _states(charger, params, t):
    """The mp states at the times ``t`` (a tuple), kept: both accountings share them."""
    return tuple(mp_state(charger, dict(params), tk) for tk in t)


def reference(charger, params, t, accounting):
    """[{metric: float (NaN per the rules)} for each time] and the mp states."""
    out = []
    states = []
    with _ctx():
        h = battery_hamiltonian(params["Delta"], params["J1"], params["J2"], accounting)
        kept = _states(charger, tuple(sorted(params.items())), tuple(float(tk) for tk in t))
        for tk, rho in zip(t, kept):
            states.append(rho.copy())
            m = mp_metrics(rho, h, params["Delta"], float(tk))
            out.append({k: (math.nan if v is None else float(v)) for k, v in m.items()})
    return out, states
