"""``store_path``: every path a user can give as a store is checked before anything is read or
written; a path that names no store is one line naming the option and what is allowed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qbfast.store import StoreError, store_path


@pytest.mark.parametrize("bad", ["", "   ", "/", "..", "a/..", "/tmp/.."])
def test_paths_that_name_no_store_are_refused(bad):
    with pytest.raises(StoreError) as e:
        store_path(bad)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--store: ") and "allowed:" in msg


def test_a_name_longer_than_the_file_system_allows_is_refused(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    with pytest.raises(StoreError, match=r"--store: the name .* bytes long; allowed: at most"):
        store_path(tmp_path / ("a" * (name_max - 5)))
    longest = name_max - len("..qbfast-lock")
    assert store_path(tmp_path / ("a" * longest)).name == "a" * longest  # the lease still fits


def test_non_utf8_names_are_refused(tmp_path):
    with pytest.raises(StoreError, match="not valid UTF-8"):
        store_path(os.fsencode(tmp_path) + b"/\xff.zarr")
    with pytest.raises(StoreError, match="not valid UTF-8"):  # as argv gives it: surrogates
        store_path(os.fsdecode(b"/tmp/\xff.zarr"))


def test_spellings_are_normalized(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert store_path("s.zarr/") == tmp_path / "s.zarr"
    assert store_path("./x/../s.zarr") == tmp_path / "s.zarr"
    assert store_path("~/s.zarr") == Path.home() / "s.zarr"
    assert store_path(".") == tmp_path  # a directory given as the store itself is a name


@pytest.mark.slow
@pytest.mark.parametrize("command", [["info"], ["verify"], ["run", "SPEC", "--store"]])
def test_cli_refuses_the_root_in_one_line_and_writes_nothing(tmp_path, command):
    import subprocess
    import sys

    from qbstore import SMALL_SPEC, spec_file

    spec = spec_file(tmp_path, SMALL_SPEC, "small")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [str(spec) if a == "SPEC" else a for a in command] + ["/"]
    r = subprocess.run([sys.executable, "-m", "qbfast", *argv], capture_output=True,
                       text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "names no store" in r.stderr
    assert "Traceback" not in r.stderr and "unexpected" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
