"""Sweep specs: parsing, dims order, chunking, identity, and every refusal path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qbfast.runner.plan import (
    MIN_CHUNK_EVALUATIONS,
    REDUCE_CHUNK_FACTOR,
    TARGET_CHUNK_EVALUATIONS,
)
from qbfast.runner.spec import SpecError, load_spec, parse_spec

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"

GOOD = """
model = "cavity"
battery_hamiltonian = "interacting"
metrics = ["energy", "ergotropy"]
dtype = "float32"
[params]
n = [1, 2, 4, 8]
J2 = { start = -1.0, stop = 2.0, num = 61 }
omega_g = 1.0
t = { start = 0.0, stop = 20.0, num = 401 }
[chunks]
J2 = 16
"""


def test_good_spec_dims_coords_and_fixed():
    s = parse_spec(GOOD, name="good", source="good.toml")
    assert s.dims == ("n", "J2", "t")
    assert s.shape == (4, 61, 401)
    assert s.chunks == (4, 16, 401)
    assert s.chunk_grid == (1, 4, 1)
    assert s.dtype == np.float32
    np.testing.assert_array_equal(s.grid.swept["J2"], np.linspace(-1.0, 2.0, 61))
    assert s.grid.swept["J2"][[0, -1]].tolist() == [-1.0, 2.0]  # both ends included
    np.testing.assert_array_equal(s.grid.t, np.linspace(0.0, 20.0, 401))
    assert s.grid.fixed["omega_g"] == 1.0 and s.grid.fixed["J1"] == 1.0  # default
    assert s.grid.metrics == ("energy", "ergotropy")
    assert [v.name for v in s.variables()] == ["energy", "ergotropy"]
    assert s.n_evaluations == 4 * 61 * 401


def test_t_is_moved_last_wherever_it_appears():
    s = parse_spec('model = "cavity"\n[params]\nt = [0.0, 1.0]\nJ2 = [0.0, 1.0, 2.0]\n'
                   'n = [1, 2]\n')
    assert s.dims == ("J2", "n", "t")


def test_chunk_slices_cover_the_grid_exactly():
    s = parse_spec(GOOD)
    covered = np.zeros(s.shape, dtype=int)
    for idx in s.chunk_indices():
        covered[s.chunk_slices(idx)] += 1
    assert covered.min() == 1 and covered.max() == 1
    assert s.chunk_slices((0, 3, 0))[1] == slice(48, 61)  # last chunk is partial


def test_default_chunks_target_the_task_size():
    s = parse_spec('model = "cavity"\n[params]\nn = [1, 2, 3, 4, 5, 6, 7, 8]\n'
                   'J1 = { start = 0.0, stop = 2.0, num = 21 }\n'
                   'J2 = { start = -1.0, stop = 2.0, num = 61 }\n'
                   't = { start = 0.0, stop = 20.0, num = 4001 }\n')
    per_chunk = int(np.prod(s.chunks))
    target = max(MIN_CHUNK_EVALUATIONS, min(TARGET_CHUNK_EVALUATIONS, 2**23 // 15))
    assert s.chunks[-1] == 4001  # t is never split by default
    assert target // 4 <= per_chunk <= target
    assert s.chunks[0] == 1  # filled from the fastest dims
    two = parse_spec('model = "cavity"\nmetrics = ["energy", "ergotropy"]\n[params]\n'
                     'n = [1, 2, 3, 4, 5, 6, 7, 8]\nJ2 = { start = 0.0, stop = 1.0, num = 1000 }\n'
                     't = { start = 0.0, stop = 20.0, num = 4001 }\n')
    assert two.chunks == (1, TARGET_CHUNK_EVALUATIONS // 4001, 4001)  # fewer metrics: more points
    long_t = parse_spec('model = "cavity"\n[params]\nn = [1, 2]\n'
                        't = { start = 0.0, stop = 1.0, num = 3000000 }\n')
    assert long_t.chunks == (1, 2**23 // 15)  # a very long t is split when it may be
    small = parse_spec('model = "cavity"\n[params]\nt = [0.0, 1.0]\n')
    assert small.dims == ("t",) and small.chunks == (2,) and small.n_chunks == 1


def test_reduce_alone_has_larger_evenly_split_chunks():
    """[reduce] without the series stores T times less than it computes: its chunks hold
    REDUCE_CHUNK_FACTOR times more evaluations, split evenly along the dimension cut;
    with keep_series the series chunks stay as they are."""
    params = ('[params]\nn = [1, 2, 3, 4, 5, 6, 7, 8]\nJ1 = { start = 0.0, stop = 2.0, num = 21 }\n'
              'J2 = { start = -1.0, stop = 2.0, num = 61 }\n')
    head = 'model = "cavity"\nmetrics = ["energy", "ergotropy"]\n'
    for n_t, chunks in ((976, (4, 21, 61, 976)), (9758, (1, 11, 61, 9758))):
        t = f"t = {{ start = 0.0, stop = 20.0, num = {n_t} }}\n"
        series = parse_spec(head + params + t)
        red = parse_spec(head + params + t + '[reduce]\nstats = ["max"]\n')
        kept = parse_spec(head + params + t + '[reduce]\nstats = ["max"]\nkeep_series = true\n')
        assert red.chunks == chunks  # 8 = 4 + 4 (not 6 + 2), 21 = 11 + 10 (not 14 + 7)
        assert np.prod(red.chunks) <= REDUCE_CHUNK_FACTOR * TARGET_CHUNK_EVALUATIONS
        assert np.prod(red.chunks) > 2 * np.prod(series.chunks)
        assert kept.chunks == series.chunks
    given = parse_spec(head + params + "t = [0.0, 1.0]\n[chunks]\nn = 3\n[reduce]\n"
                       'stats = ["max"]\n')
    assert given.chunks[0] == 3  # given lengths are kept as they are


def test_chunks_larger_than_the_dim_are_clipped():
    s = parse_spec('model = "cavity"\n[params]\nn = [1, 2]\nt = [0.0, 1.0]\n[chunks]\nn = 99\n')
    assert s.chunks == (2, 2)
    assert s.chunk_overrides == {"n": 2}  # what the planner is given
    assert parse_spec('model = "cavity"\n[params]\nn = [1, 2]\nt = [0.0, 1.0]\n').chunk_overrides == {}


def test_hash_ignores_comments_but_not_values():
    a = parse_spec(GOOD)
    b = parse_spec("# a comment\n" + GOOD.replace("omega_g = 1.0", "omega_g = 1.0   # fixed"))
    c = parse_spec(GOOD.replace("num = 61", "num = 62"))
    d = parse_spec(GOOD.replace("J2 = 16", "J2 = 8"))
    e = parse_spec(GOOD.replace('dtype = "float32"', 'dtype = "float64"'))
    assert a.hash == b.hash
    assert len({a.hash, c.hash, d.hash, e.hash}) == 4


def test_reduce_variables_and_names():
    s = parse_spec(GOOD + '[reduce]\nover = "t"\nstats = ["max", "argmax", "first_max"]\n')
    names = [v.name for v in s.variables()]
    assert names == ["energy_max", "energy_t_max", "energy_first_max", "energy_t_first_max",
                     "ergotropy_max", "ergotropy_t_max", "ergotropy_first_max",
                     "ergotropy_t_first_max"]
    assert all(v.dims == ("n", "J2") for v in s.variables())
    v = s.variables()[1]
    assert v.attrs["units"] == "1/Delta" and "time" in v.attrs["long_name"]
    assert s.variable_dtype(v) == np.float64 and s.variable_dtype(s.variables()[0]) == np.float32
    kept = parse_spec(GOOD + '[reduce]\nstats = ["min"]\nkeep_series = true\n')
    assert [v.name for v in kept.variables()] == ["energy", "ergotropy", "energy_min",
                                                  "ergotropy_min"]


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_specs_are_valid(path):
    s = load_spec(path)
    assert s.name == path.stem
    assert s.dims[-1] == "t"


def test_default_spec_is_a_scan_of_tens_of_millions_of_points():
    s = load_spec(SWEEPS / "default.toml")
    assert 2e7 <= s.n_evaluations <= 1e8


def test_figure_specs_match_the_captions():
    for fig in ("fig1", "fig2", "fig5a_field"):
        g = load_spec(SWEEPS / f"{fig}.toml").grid
        pairs = {(a, b) for a in g.swept["A"] for b in g.swept["B"]}
        assert {(2.0, 0.0), (0.0, 2.0), (1.0, 2.0)} <= pairs
        assert g.fixed["Delta"] == 1.0 and g.fixed["omega"] == 1.0
    for fig in ("fig3", "fig4", "fig5b_cavity"):
        g = load_spec(SWEEPS / f"{fig}.toml").grid
        assert g.swept["J2"].tolist() == [1.0, 0.0]
        assert {k: g.fixed[k] for k in ("n", "omega_g", "J1", "Delta", "omega_a")} == {
            "n": 7, "omega_g": 1, "J1": 1, "Delta": 1, "omega_a": 1}


BASE_PARAMS = '[params]\nn = [1, 2]\nt = { start = 0.0, stop = 1.0, num = 5 }\n'

BAD = {
    # name: (text, key that must be named, fragment of what is allowed)
    "unknown top key": ('model = "cavity"\nmodle = 1\n' + BASE_PARAMS, "modle",
                        "allowed: 'model'"),
    "missing model": (BASE_PARAMS, "model", "'field', 'cavity'"),
    "invalid model": ('model = "qubit"\n' + BASE_PARAMS, "model", "'field', 'cavity'"),
    "model not a string": ('model = 3\n' + BASE_PARAMS, "model", "'field', 'cavity'"),
    "protocol for cavity": ('model = "cavity"\nprotocol = "drive"\n' + BASE_PARAMS,
                            "protocol", "leave protocol unset"),
    "invalid protocol": ('model = "field"\nprotocol = "fast"\n[params]\nt = [0.0]\n',
                         "protocol", "'drive', 'full'"),
    "invalid battery_hamiltonian": ('model = "cavity"\nbattery_hamiltonian = "x"\n' + BASE_PARAMS,
                                    "battery_hamiltonian", "'interacting', 'bare'"),
    "unknown metric": ('model = "cavity"\nmetrics = ["energy", "power2"]\n' + BASE_PARAMS,
                       "metrics", "'ergotropy'"),
    "metrics not a list": ('model = "cavity"\nmetrics = 3\n' + BASE_PARAMS, "metrics",
                           "'energy'"),
    "empty metrics": ('model = "cavity"\nmetrics = []\n' + BASE_PARAMS, "metrics", "'energy'"),
    "invalid dtype": ('model = "cavity"\ndtype = "float16"\n' + BASE_PARAMS, "dtype",
                      "'float32', 'float64'"),
    "dtype not a string": ('model = "cavity"\ndtype = 32\n' + BASE_PARAMS, "dtype", "string"),
    "max_step for cavity": ('model = "cavity"\nmax_step = 0.1\n' + BASE_PARAMS, "max_step",
                            "'full'"),
    "no params": ('model = "cavity"\n', "params", "t ="),
    "params not a table": ('model = "cavity"\nparams = 3\n', "params", "t ="),
    "unknown parameter": ('model = "cavity"\n[params]\nJ3 = 1.0\nt = [0.0]\n', "params.J3",
                          "'n', 'J1', 'J2'"),
    "field parameter for cavity": ('model = "cavity"\n[params]\nA = 1.0\nt = [0.0]\n',
                                   "params.A", "'omega_g'"),
    "wrong type": ('model = "cavity"\n[params]\nJ2 = "one"\nt = [0.0]\n', "params.J2",
                   "a list of numbers"),
    "bool value": ('model = "cavity"\n[params]\nJ2 = true\nt = [0.0]\n', "params.J2",
                   "a list of numbers"),
    "string in list": ('model = "cavity"\n[params]\nJ2 = [1.0, "x"]\nt = [0.0]\n',
                       "params.J2[1]", "finite real number"),
    "nested list": ('model = "cavity"\n[params]\nJ2 = [[1.0], [2.0]]\nt = [0.0]\n',
                    "params.J2", "1-D"),
    "empty list": ('model = "cavity"\n[params]\nJ2 = []\nt = [0.0]\n', "params.J2",
                   "at least one"),
    "repeated values": ('model = "cavity"\n[params]\nJ2 = [1.0, 1.0]\nt = [0.0]\n',
                        "params.J2", "distinct"),
    "num < 1": ('model = "cavity"\n[params]\nJ2 = { start = 0.0, stop = 1.0, num = 0 }\n'
                't = [0.0]\n', "params.J2.num", "integer >= 1"),
    "num not an integer": ('model = "cavity"\n[params]\nJ2 = { start = 0.0, stop = 1.0, '
                           'num = 2.5 }\nt = [0.0]\n', "params.J2.num", "integer >= 1"),
    "range missing stop": ('model = "cavity"\n[params]\nJ2 = { start = 0.0, num = 3 }\n'
                           't = [0.0]\n', "params.J2", "stop"),
    "range unknown key": ('model = "cavity"\n[params]\nJ2 = { start = 0.0, stop = 1.0, '
                          'step = 0.1 }\nt = [0.0]\n', "params.J2.step", "'start', 'stop', 'num'"),
    "range start not a number": ('model = "cavity"\n[params]\nJ2 = { start = "a", stop = 1.0, '
                                 'num = 3 }\nt = [0.0]\n', "params.J2.start", "finite number"),
    "range with repeats": ('model = "cavity"\n[params]\nJ2 = { start = 1.0, stop = 1.0, '
                           'num = 3 }\nt = [0.0]\n', "params.J2", "distinct"),
    "n below minimum": ('model = "cavity"\n[params]\nn = [0, 1]\nt = [0.0]\n', "params.n[0]",
                        "integer >= 1"),
    "n not an integer": ('model = "cavity"\n[params]\nn = 2.5\nt = [0.0]\n', "params.n",
                         "integer >= 1"),
    "n range not integers": ('model = "cavity"\n[params]\nn = { start = 1, stop = 2, num = 3 }\n'
                             't = [0.0]\n', "params.n[1]", "integer >= 1"),
    "missing t": ('model = "cavity"\n[params]\nn = [1, 2]\n', "params.t", "start, stop, num"),
    "scalar t": ('model = "cavity"\n[params]\nt = 1.0\n', "params.t", "a list of times"),
    "negative t": ('model = "cavity"\n[params]\nt = [-1.0, 0.0]\n', "params.t", ">= 0"),
    "decreasing t": ('model = "cavity"\n[params]\nt = [1.0, 0.0]\n', "params.t", "increasing"),
    "chunks unknown dim": ('model = "cavity"\n' + BASE_PARAMS + '[chunks]\nJ2 = 4\n',
                           "chunks.J2", "'n', 't'"),
    "chunks zero": ('model = "cavity"\n' + BASE_PARAMS + '[chunks]\nn = 0\n', "chunks.n",
                    "integer >= 1"),
    "chunks not a table": ('model = "cavity"\nchunks = 4\n' + BASE_PARAMS, "chunks",
                           "dimension = length"),
    "reduce unknown stat": ('model = "cavity"\n' + BASE_PARAMS + '[reduce]\nstats = ["mean"]\n',
                            "reduce.stats", "'max', 'argmax'"),
    "reduce over n": ('model = "cavity"\n' + BASE_PARAMS + '[reduce]\nover = "n"\n'
                      'stats = ["max"]\n', "reduce.over", "'t'"),
    "reduce unknown key": ('model = "cavity"\n' + BASE_PARAMS + '[reduce]\nstats = ["max"]\n'
                           'axis = 1\n', "reduce.axis", "'over', 'stats', 'keep_series'"),
    "reduce keep_series not bool": ('model = "cavity"\n' + BASE_PARAMS + '[reduce]\n'
                                    'stats = ["max"]\nkeep_series = "yes"\n',
                                    "reduce.keep_series", "true or false"),
    "reduce empty stats": ('model = "cavity"\n' + BASE_PARAMS + '[reduce]\nstats = []\n',
                           "reduce.stats", "'max'"),
    "reduce without swept params": ('model = "cavity"\n[params]\nt = [0.0, 1.0]\n[reduce]\n'
                                    'stats = ["max"]\n', "reduce", "swept parameter"),
    "reduce with split t": ('model = "cavity"\n' + BASE_PARAMS + '[chunks]\nt = 2\n[reduce]\n'
                            'stats = ["max"]\n', "chunks.t", "span all of t"),
    "full protocol with split t": ('model = "field"\nprotocol = "full"\n[params]\n'
                                   't = [0.0, 1.0, 2.0]\n[chunks]\nt = 1\n', "chunks.t",
                                   "span all of t"),
    "invalid TOML": ('model = "cavity\n', "invalid TOML", ""),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_is_refused_in_one_line_naming_file_key_and_allowed(case):
    text, key, allowed = BAD[case]
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="sweeps/bad.toml")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("sweeps/bad.toml: ")
    assert key in msg
    assert allowed in msg


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(SpecError, match=r"nothere\.toml: cannot read the spec"):
        load_spec(tmp_path / "nothere.toml")


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


def test_codec_key_chooses_the_store_codec_and_refuses_others():
    base = 'model = "cavity"\n[params]\nJ2 = [0.0, 1.0]\nt = [0.0, 1.0]\n'
    assert parse_spec(base).codec == "auto"
    for codec in ("zstd", "blosc-lz4", "none"):
        spec = parse_spec(f'codec = "{codec}"\n' + base)
        assert spec.codec == codec
        assert spec.hash != parse_spec(base).hash  # a store of another codec is another store
    with pytest.raises(SpecError, match=r"<spec>: codec: unknown codec 'lz4'; allowed: 'auto', "
                                        r"'zstd', 'blosc-lz4', 'none'"):
        parse_spec('codec = "lz4"\n' + base)


# ---- the rates (physics.md section 8) in the canonical form ---------------------------------
CLOSED = 'model = "cavity"\n[params]\nn = [1, 2]\nt = { start = 0.0, stop = 1.0, num = 5 }\n'


def test_rates_at_zero_stay_out_of_the_canonical_form():
    """Rates fixed at 0 (given or not) leave the canonical form, so the hash, of a closed spec
    as it was before the rates existed: the pinned hash below is main's before the rates."""
    closed = parse_spec(CLOSED)
    assert closed.hash == "11b09b4db765a2a09eaaf29f7e0f82675fdc1256c4b2ab8cd2a0c0b68598bb7b"
    assert not {"gamma", "gamma_phi", "gamma_c", "kappa"} & set(closed.canonical()["fixed"])
    zeros = parse_spec(CLOSED.replace("n = [1, 2]", "n = [1, 2]\ngamma = 0.0\nkappa = 0"))
    assert zeros.hash == closed.hash
    assert zeros.grid.attrs()["kappa"] == 0.0  # the store's attrs carry every rate


def test_a_rate_is_part_of_the_canonical_form_when_fixed_above_0_or_swept():
    closed = parse_spec(CLOSED)
    fixed = parse_spec(CLOSED.replace("n = [1, 2]", "n = [1, 2]\ngamma_phi = 0.1"))
    swept = parse_spec(CLOSED.replace("n = [1, 2]", "n = [1, 2]\ngamma_phi = [0.0, 0.1]"))
    assert fixed.canonical()["fixed"]["gamma_phi"] == (0.1).hex()
    assert swept.dims == ("n", "gamma_phi", "t")
    assert len({closed.hash, fixed.hash, swept.hash}) == 3
    assert fixed.grid.kernel == swept.grid.kernel == "open_cavity"
