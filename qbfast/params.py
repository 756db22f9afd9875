"""The single source of truth for models, their parameters and the metrics.

Validation, defaults, dataset attributes, spec parsing and documentation all read these
tables; nothing else in qbfast repeats a default, a unit or an allowed range.

Units: hbar = 1; energies in an arbitrary unit ("energy"), times in its inverse ("1/energy").
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Parameter:
    """One model parameter: name, default, unit, description and allowed range."""

    name: str
    default: float
    units: str
    long_name: str
    integer: bool = False
    minimum: float | None = None  # inclusive lower bound, None = unbounded

    @property
    def allowed(self) -> str:
        """Human-readable allowed range, used in error messages."""
        if self.integer:
            if self.minimum is not None:
                return f"an integer >= {int(self.minimum)}"
            return "an integer"
        if self.minimum is not None:
            return f"a finite number >= {self.minimum}"
        return "a finite real number"


@dataclass(frozen=True)
class Model:
    """A battery model: its parameters (in kernel order) and field protocols."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    protocols: tuple[str, ...] = ()  # first one is the default; empty = no protocol choice
    default_protocol: str | None = None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def defaults(self) -> dict[str, float]:
        return {p.name: p.default for p in self.parameters}


_E = "energy"

FIELD = Model(
    name="field",
    description=(
        "two qubits driven by a classical field H_a(t) = ((A cos(omega t) + B)/2)(s1x + s2x), "
        "battery H_b = (Delta/2)(s1z + s2z) + (g/4) s1.s2, initial state |gg>"
    ),
    parameters=(
        Parameter("A", 1.0, _E, "harmonic drive amplitude"),
        Parameter("B", 2.0, _E, "static drive amplitude"),
        Parameter("omega", 1.0, _E, "drive angular frequency"),
        Parameter("g", 0.0, _E, "qubit-qubit Heisenberg coupling"),
        Parameter("Delta", 1.0, _E, "qubit level splitting"),
    ),
    protocols=("drive", "full"),
    default_protocol="drive",
)

CAVITY = Model(
    name="cavity",
    description=(
        "Heisenberg qubit pair charged by a cavity mode (Tavis-Cummings, rotating wave), "
        "initial state |n, g, g>, exact in the 4-state excitation sector"
    ),
    parameters=(
        Parameter("n", 7, "1", "initial cavity photon number", integer=True, minimum=1),
        Parameter("J1", 1.0, "1", "XY exchange coupling (in units of Delta)"),
        Parameter("J2", 1.0, "1", "ZZ anisotropy (in units of Delta)"),
        Parameter("omega_g", 1.0, _E, "qubit-cavity coupling"),
        Parameter("omega_a", 1.0, _E, "cavity frequency"),
        Parameter("Delta", 1.0, _E, "qubit level splitting"),
    ),
)

MODELS: dict[str, Model] = {FIELD.name: FIELD, CAVITY.name: CAVITY}

BATTERY_HAMILTONIANS: dict[str, str] = {
    "interacting": "the model's battery Hamiltonian H_b (physics.md sections 2 and 3)",
    "bare": "the bare qubits H0 = (Delta/2)(s1z + s2z)",
}

TIME = Parameter("t", 0.0, "1/energy", "charging time", minimum=0.0)

LOG_BASE = 2


@dataclass(frozen=True)
class Metric:
    """One output metric (physics.md section 4)."""

    name: str
    units: str
    long_name: str
    description: str = field(default="", compare=False)


# Kernel order: the numba kernels write metric k into slot METRIC_INDEX[name] == k.
METRIC_LIST: tuple[Metric, ...] = (
    Metric("energy", _E, "stored energy", "Tr[H_b rho_B(t)] - Tr[H_b rho_B(0)] (eq. 1)"),
    Metric("ergotropy", _E, "ergotropy", "Tr[H_b rho_B] - sum_k r_k(desc) e_k(asc) (eq. 2)"),
    Metric("efficiency", "1", "ergotropy / energy", "NaN where energy is ~0 or negative"),
    Metric("ergotropy_local", _E, "local ergotropy (both cells)",
           "sum of single-qubit ergotropies of rho_1, rho_2 w.r.t. (Delta/2) sigma_z"),
    Metric("ergotropy_incoherent_cell", _E, "incoherent ergotropy of cell 1",
           "max(0, Delta <sigma_z>_1) (eq. 20)"),
    Metric("efficiency_incoherent", "1", "incoherent efficiency of cell 1",
           "ergotropy_incoherent_cell / (energy / 2) (eq. 21)"),
    Metric("entropy_cell", "bit", "von Neumann entropy of cell 1", "S(rho_1)"),
    Metric("entropy_battery", "bit", "von Neumann entropy of the battery", "S(rho_B)"),
    Metric("entropy_diag_cell", "bit", "population entropy of cell 1", "Shannon entropy (eq. 19)"),
    Metric("purity_cell", "1", "purity of cell 1", "Tr rho_1^2"),
    Metric("purity_battery", "1", "purity of the battery", "Tr rho_B^2"),
    Metric("concurrence", "1", "concurrence of the battery", "Wootters concurrence of rho_B"),
    Metric("steering_ab", "bit", "a->b entropic steering sum I_ab", "a steers b iff < 2"),
    Metric("steering_ba", "bit", "b->a entropic steering sum I_ba", "b steers a iff < 2"),
    Metric("power", "energy^2", "average charging power", "energy / t; NaN at t = 0"),
)

METRICS: dict[str, Metric] = {m.name: m for m in METRIC_LIST}
METRIC_INDEX: dict[str, int] = {m.name: i for i, m in enumerate(METRIC_LIST)}
N_METRICS = len(METRIC_LIST)
