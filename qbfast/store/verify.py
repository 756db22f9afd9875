"""``qbfast verify``: decode every chunk file of a store and check it against the completion
record (its own CRC-32C, and the checksum the record holds for it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chunk_files import ChunkError, ChunkFiles
from .layout import StoreInfo
from .record import Record


@dataclass(frozen=True)
class Damage:
    """One chunk file that is missing, damaged, or not the one recorded."""

    task: int
    variable: str
    problem: str


def verify(info: StoreInfo, record: Record) -> list[Damage]:
    """Every recorded task's chunk files decoded and checked; tasks not recorded are not
    damage (they are missing, and ``Record.missing`` lists them)."""
    damage: list[Damage] = []
    files = [ChunkFiles.open(info.path / v.name) for v in info.variables]
    if info.grouped:  # one storage chunk per group; a damaged group is named by its tasks
        assert record.group_done is not None and record.group_crc is not None
        for group in np.flatnonzero(record.group_done):
            coords = info.group_coords(int(group))
            for j, (var, f) in enumerate(zip(info.variables, files)):
                try:
                    f.read(coords[:len(var.dims)], int(record.group_crc[group, j]))
                except ChunkError as e:
                    damage.extend(Damage(int(t), var.name, str(e))
                                  for t in info.group_tasks(int(group)))
        return damage
    done = np.flatnonzero(record.done)
    for task in done:
        coords = info.task_coords(int(task))
        for j, (var, f) in enumerate(zip(info.variables, files)):
            try:
                f.read(coords[:len(var.dims)], int(record.crc[task, j]))
            except ChunkError as e:
                damage.append(Damage(int(task), var.name, str(e)))
    return damage
