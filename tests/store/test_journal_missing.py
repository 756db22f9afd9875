"""A store whose journal was deleted (``rm -r STORE/_qbfast/journal``, issue 19 item 4): every
command says what is missing and what to do (one line, rc 2 for the analysis; ``ds.qb`` and
``open_store`` raise the same IncompleteStoreError as for any incomplete store); ``verify
--repair`` and a rerun of ``qbfast run`` make the store whole in place (every task computed
again, the journal rebuilt), bit for bit the clean store."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from qbstore import SMALL_SPEC, assert_every_reader_refuses, data_files, is_complete, spec_file

from qbfast import store
from qbfast.cli import main
from qbfast.runner.driver import inspect_store


def _without_journal(complete_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "s.zarr"
    shutil.copytree(complete_store, path)
    shutil.rmtree(path / store.META / "journal")
    return path


def _metadata(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("zarr.json")}


def test_every_command_says_the_journal_is_missing(complete_store, tmp_path, capsys):
    path = _without_journal(complete_store, tmp_path)
    before = {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*")
              if p.is_file()}
    state = inspect_store(path)
    assert state.record.journal_missing and not state.record.done.any()
    assert not state.complete
    assert store.completeness(path) == (3, 3, True)

    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "its journal (_qbfast/journal" in out and f"qbfast verify {path} --repair" in out
    assert main(["verify", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "its journal (_qbfast/journal" in out and "0 damaged, 3 not computed" in out
    assert "--repair" in err and "Errno" not in out + err
    assert_every_reader_refuses(path, tmp_path, capsys, "its journal", also=["--repair"],
                                never=["Errno"])
    after = {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*")
             if p.is_file()}
    assert after == before and not (path / store.META / "journal").exists()  # read-only


@pytest.mark.slow
@pytest.mark.parametrize("how", ["verify --repair", "run"])
def test_repair_and_rerun_rebuild_the_store_in_place(complete_store, tmp_path, how):
    path = _without_journal(complete_store, tmp_path)
    metadata = _metadata(path)
    spec = spec_file(tmp_path, SMALL_SPEC, "small")
    argv = (["verify", str(path), "--repair"] if how != "run"
            else ["run", str(spec), "--store", str(path), "--workers", "1"])
    r = subprocess.run([sys.executable, "-m", "qbfast", *argv], capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "3 to run" in r.stderr, r.stderr
    assert is_complete(path)
    assert data_files(path) == data_files(complete_store)  # data and coordinates
    assert _metadata(path) == metadata  # the store kept: same id, attrs, layout
    assert store.open_info(path).store_id == store.open_info(complete_store).store_id
    clean = store.read_record(store.open_info(complete_store))
    rebuilt = store.read_record(store.open_info(path))
    assert not rebuilt.journal_missing and rebuilt.done.all() and rebuilt.torn == 0
    np.testing.assert_array_equal(rebuilt.crc, clean.crc)
    np.testing.assert_array_equal(rebuilt.peaks, clean.peaks)
    assert main(["verify", str(path)]) == 0
    xr.open_zarr(path).qb.extrema("energy")  # whole again for the analysis
