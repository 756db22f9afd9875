"""``qbfast verify`` checks every file a reader needs, not only the data chunks (issue 19,
item 2): a flipped byte in a coordinate chunk, in an array's zarr.json or in the root zarr.json
is found (rc 1, the file named) and ``--repair`` writes it again from the store's spec, byte
for byte the clean store; a root zarr.json that no longer parses is named in one line, rc 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from qbstore import GROUP, GROUPABLE_SPEC, reference_store, spec_file

from qbfast import store
from qbfast.cli import main
from qbfast.runner.driver import existing_layout
from qbfast.runner.spec import parse_spec


def _files(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def _flip_middle(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


def _flip_in_title(p: Path) -> None:
    """A byte of the title's value: the JSON still parses, one attribute differs."""
    data = bytearray(p.read_bytes())
    at = data.index(b'"title": "') + len(b'"title": "') + 2
    data[at] ^= 0x01
    p.write_bytes(bytes(data))


DAMAGE = {
    "t/c/0": _flip_middle,            # a coordinate chunk (t)
    "J2/c/0": _flip_middle,           # a swept coordinate's chunk
    "energy/zarr.json": _flip_middle,  # an array's metadata
    "J2/zarr.json": _flip_middle,      # a coordinate's metadata
    "zarr.json": _flip_in_title,       # the root (consolidated metadata and attrs)
}


def test_a_clean_store_rebuilds_to_the_same_files(complete_store, tmp_path):
    grouped = reference_store(spec_file(tmp_path, GROUPABLE_SPEC + GROUP, "grouped"), tmp_path)
    for path in (complete_store, grouped):
        info = store.open_info(path)
        spec = parse_spec(str(info.attrs["spec"]), name=str(info.attrs["spec_name"]))
        assert store.verify_files(info, existing_layout(info, spec)) == []
    assert store.open_info(grouped).grouped


@pytest.mark.parametrize("rel", sorted(DAMAGE))
def test_flipped_byte_is_found_and_repaired_bit_for_bit(complete_store, tmp_path, capsys,
                                                        rel):
    path = tmp_path / "s.zarr"
    shutil.copytree(complete_store, path)
    clean = _files(path)
    assert main(["verify", str(path)]) == 0
    capsys.readouterr()
    DAMAGE[rel](path / rel)
    assert _files(path) != clean
    assert main(["verify", str(path)]) == 1
    out, err = capsys.readouterr()
    assert f"damaged  {path}/{rel}: differs" in out, out
    assert "1 metadata or coordinate files damaged" in out and "--repair" in err
    assert main(["verify", str(path), "--repair"]) == 0
    out, err = capsys.readouterr()
    assert f"1 files rebuilt from the store's spec: {rel}" in err, err
    assert _files(path) == clean  # every file: data, coordinates, metadata, record
    assert main(["verify", str(path)]) == 0


def test_unparsable_root_metadata_is_named_in_one_line(complete_store, tmp_path, capsys):
    path = tmp_path / "s.zarr"
    shutil.copytree(complete_store, path)
    root = path / "zarr.json"
    root.write_bytes(b"X" + root.read_bytes()[1:])
    assert main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{root}: unreadable metadata" in err, err
