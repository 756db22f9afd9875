"""One completeness rule for every command: a store whose every task is recorded but whose
completion record (``_qbfast/complete.json``) is missing, unreadable or another store's is
incomplete for ``info``, ``verify``, the analysis commands and ``ds.qb`` alike; ``verify
--repair`` proves the chunks and writes the record."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from qbstore import assert_every_reader_refuses

from qbfast import store
from qbfast.analysis._io import open_store
from qbfast.cli import main
from qbfast.runner.driver import inspect_store

DAMAGE = {
    "removed": lambda p: p.unlink(),
    "unreadable": lambda p: p.write_text("{not json"),
    "foreign": lambda p: p.write_text(json.dumps(
        {**json.loads(p.read_text()), "store_id": "0" * 32})),
}


def _damaged(complete_store: Path, tmp_path: Path, how: str) -> Path:
    import shutil

    path = tmp_path / "s.zarr"
    shutil.copytree(complete_store, path, symlinks=True)
    DAMAGE[how](path / store.META / "complete.json")
    return path


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_every_command_applies_the_one_rule(complete_store, tmp_path, capsys, how):
    assert inspect_store(complete_store).complete
    open_store(complete_store)  # the clean store opens without a word
    path = _damaged(complete_store, tmp_path, how)
    state = inspect_store(path)
    assert state.record.done.all() and not state.complete
    assert store.completeness(path) == (0, state.info.n_tasks, False)

    assert main(["info", str(path)]) == 0
    assert "incomplete" in capsys.readouterr().out
    assert_every_reader_refuses(path, tmp_path, capsys, "completion record")
    assert main(["verify", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "completion record" in out and "--repair" in err
    with warnings.catch_warnings(record=True) as w:  # allowed: said once, the data intact
        warnings.simplefilter("always")
        ds = open_store(path, allow_incomplete=True)
    assert any("completion record" in str(x.message) for x in w)
    clean = open_store(complete_store)
    assert ds.energy.equals(clean.energy)


@pytest.mark.slow
def test_verify_repair_writes_the_record(complete_store, tmp_path, capsys):
    path = _damaged(complete_store, tmp_path, "foreign")
    assert main(["verify", str(path), "--repair"]) == 0
    capsys.readouterr()
    assert inspect_store(path).complete
    assert main(["verify", str(path)]) == 0
    ds, clean = open_store(path), open_store(complete_store)
    for name in clean.data_vars:
        assert ds[name].equals(clean[name])
