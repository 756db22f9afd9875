"""Fixtures of the store tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from qbstore import SMALL_SPEC, reference_store, spec_file

from qbfast import store


@pytest.fixture(scope="module")
def complete_store(tmp_path_factory) -> Path:
    """The small spec written in this process, with its completion record: a whole store, one
    per test module (tests copy it before they damage it)."""
    d = tmp_path_factory.mktemp("complete")
    path = reference_store(spec_file(d, SMALL_SPEC, "small"), d)
    info = store.open_info(path)
    store.write_complete(info, store.read_record(info))
    return path
