"""qbfast.analysis._io: a selection that removes t is named as such (issue 10, item 9)."""

from __future__ import annotations

import pytest

from qbfast.analysis._io import check_metric, parse_selection, select
from qbfast.cli import main


def test_selecting_t_away_is_named_not_blamed_on_reductions(cavity_store):
    ds = select(cavity_store, parse_selection(["t=3"]))
    with pytest.raises(ValueError) as err:
        check_metric(ds, "energy")
    message = str(err.value)
    assert "only reductions" not in message
    assert message.startswith("metric 'energy': the selection removed t (--sel t=...)")


def test_cli_extrema_with_sel_t_one_line(cavity_path, capsys):
    assert main(["extrema", str(cavity_path), "--metric", "energy", "--sel", "t=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the selection removed t" in err
