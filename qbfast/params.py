"""The single source of truth for models, their parameters and the metrics.

Validation, defaults, dataset attributes, spec parsing and documentation all read these
tables; nothing else in qbfast repeats a default, a unit or an allowed range.

Units: hbar = 1. Every energy (the metrics and the energy parameters, Delta included) is a
number in one energy unit, named ``Delta`` after the qubit level splitting, whose default
Delta = 1 makes the name literal (the paper's figures use Delta = 1); times are in its inverse
(``1/Delta``), power in ``Delta^2``. The strings are UDUNITS-style (CF ``units``: a unit
symbol, ``1/`` for an inverse, ``^2`` for a power, ``1`` for dimensionless, ``bit`` for
entropies), so that xarray's labels read ``stored energy [Delta]``.
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
class Charger:
    """One initial state of the cavity charger (physics.md section 7) and the parameter that
    sets it. The parameter takes the place (the kernel column) of the default charger's."""

    name: str
    description: str
    parameter: Parameter


@dataclass(frozen=True)
class Model:
    """A battery model: its parameters (in kernel order, for the default charger), field
    protocols and charger states (the first one is the default; empty = no charger choice)."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    protocols: tuple[str, ...] = ()  # first one is the default; empty = no protocol choice
    default_protocol: str | None = None
    chargers: tuple[Charger, ...] = ()
    #: the GKSL rates of physics.md section 8 (default 0: the closed model), in the open
    #: kernels' column order, after the closed parameters
    rates: tuple[Parameter, ...] = ()

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The closed model's parameters (the default charger's), without the rates."""
        return tuple(p.name for p in self.parameters)

    @property
    def rate_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.rates)

    def parameter(self, name: str) -> Parameter:
        """The parameter ``name`` of any charger, rates included."""
        for p in (*self.parameters, *self.rates):
            if p.name == name:
                return p
        for c in self.chargers:
            if c.parameter.name == name:
                return c.parameter
        raise KeyError(name)

    @property
    def defaults(self) -> dict[str, float]:
        return {p.name: p.default for p in self.parameters}

    # ---- charger states -----------------------------------------------------------------
    @property
    def charger_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.chargers)

    @property
    def default_charger(self) -> str | None:
        return self.chargers[0].name if self.chargers else None

    def charger(self, name: str) -> Charger:
        for c in self.chargers:
            if c.name == name:
                return c
        raise KeyError(name)

    def closed_parameters_for(self, charger: str | None) -> tuple[Parameter, ...]:
        """The closed model's parameters of ``charger`` in kernel order: the default charger's
        parameter replaced, in its column, by ``charger``'s (None: the default charger)."""
        if not self.chargers or charger is None or charger == self.default_charger:
            return self.parameters
        own = self.charger(charger).parameter
        default = self.chargers[0].parameter.name
        return tuple(own if p.name == default else p for p in self.parameters)

    def parameters_for(self, charger: str | None) -> tuple[Parameter, ...]:
        """Every parameter of ``charger`` in the open kernels' column order: the closed ones
        (:meth:`closed_parameters_for`), then the rates."""
        return (*self.closed_parameters_for(charger), *self.rates)

    def chargers_of(self, name: str) -> tuple[str, ...]:
        """The chargers that have parameter ``name`` (all of them for a shared parameter)."""
        return tuple(c.name for c in self.chargers
                     if name in (p.name for p in self.parameters_for(c.name)))


#: The energy unit (see the module docstring); ``TIME`` and power derive from it.
ENERGY_UNIT = "Delta"
_E = ENERGY_UNIT

# The GKSL rates (physics.md section 8): energy decay, pure dephasing, collective decay and
# cavity loss, in the energy unit; the field adds n_th, the cavity kappa.
_GAMMA = Parameter("gamma", 0.0, _E, "energy decay rate of each qubit", minimum=0.0)
_GAMMA_PHI = Parameter("gamma_phi", 0.0, _E, "pure dephasing rate of each qubit", minimum=0.0)
_GAMMA_C = Parameter("gamma_c", 0.0, _E, "collective decay rate of the qubit pair",
                     minimum=0.0)

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
    rates=(
        _GAMMA,
        Parameter("n_th", 0.0, "1", "thermal occupation of the qubits' decay bath", minimum=0.0),
        _GAMMA_PHI,
        _GAMMA_C,
    ),
)

_N_PHOTONS = Parameter("n", 7, "1", "initial cavity photon number", integer=True, minimum=1)
_NBAR = Parameter("nbar", 1.0, "1", "mean photon number of the charger", minimum=0.0)

CAVITY = Model(
    name="cavity",
    description=(
        "Heisenberg qubit pair charged by a cavity mode (Tavis-Cummings, rotating wave), "
        "battery starting in |g, g>; the charger in a Fock state |n> (exact in the 4-state "
        "excitation sector) or a coherent or thermal state (exact sums over sectors)"
    ),
    parameters=(
        _N_PHOTONS,
        Parameter("J1", 1.0, "1", "XY exchange coupling (in units of Delta)"),
        Parameter("J2", 1.0, "1", "ZZ anisotropy (in units of Delta)"),
        Parameter("omega_g", 1.0, _E, "qubit-cavity coupling"),
        Parameter("omega_a", 1.0, _E, "cavity frequency"),
        Parameter("Delta", 1.0, _E, "qubit level splitting"),
    ),
    chargers=(
        Charger("fock", "Fock state |n> (physics.md section 3)", _N_PHOTONS),
        Charger("coherent", "coherent state |alpha>, alpha = sqrt(nbar) real: Poisson "
                "weights with the coherences between sectors (physics.md section 7)", _NBAR),
        Charger("thermal", "thermal state, p_n = nbar^n / (1 + nbar)^(n + 1) "
                "(physics.md section 7)", _NBAR),
    ),
    rates=(
        _GAMMA,
        _GAMMA_PHI,
        _GAMMA_C,
        Parameter("kappa", 0.0, _E, "photon loss rate of the cavity", minimum=0.0),
    ),
)

MODELS: dict[str, Model] = {FIELD.name: FIELD, CAVITY.name: CAVITY}

BATTERY_HAMILTONIANS: dict[str, str] = {
    "interacting": "the model's battery Hamiltonian H_b (docs/physics.md sections 2 and 3)",
    "bare": "the bare qubits H0 = (Delta/2)(s1z + s2z)",
}

TIME = Parameter("t", 0.0, f"1/{ENERGY_UNIT}", "charging time", minimum=0.0)

LOG_BASE = 2


@dataclass(frozen=True)
class Metric:
    """One output metric (docs/physics.md section 4)."""

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
    Metric("power", f"{ENERGY_UNIT}^2", "average charging power", "energy / t; NaN at t = 0"),
)

METRICS: dict[str, Metric] = {m.name: m for m in METRIC_LIST}
METRIC_INDEX: dict[str, int] = {m.name: i for i, m in enumerate(METRIC_LIST)}
N_METRICS = len(METRIC_LIST)
