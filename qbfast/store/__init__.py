"""The sweep store (a Zarr v3 directory, format 2): layout and creation (:mod:`.layout`),
chunk files with checksums (:mod:`.chunk_files`), the completion record (:mod:`.record`), the
writer lock (:mod:`.lock`), task writes (:mod:`.writer`) and verification (:mod:`.verify`).
The store layer knows nothing of specs: the runner describes a store with a
:class:`StoreLayout`. Format: ``docs/store-format.md``."""

from .chunk_files import ChunkError, ChunkFiles
from .layout import (
    CODECS,
    META,
    STORE_FORMAT,
    StoreError,
    StoreInfo,
    StoreLayout,
    VariableLayout,
    auto_codec,
    bytes_on_disk,
    check_removable,
    create,
    open_info,
    remove,
    remove_partial_files,
    remove_stale,
    store_path,
)
from .lock import LockError, StoreLock
from .record import (
    Journal,
    Record,
    clear_complete,
    completeness,
    missing_files,
    next_generation,
    read_complete,
    read_record,
    write_complete,
)
from .verify import Damage, FileDamage, repair_files, verify, verify_files
from .writer import StoreChangedError, StoreWriter, task_writer

__all__ = [
    "CODECS", "META", "STORE_FORMAT", "ChunkError", "ChunkFiles", "Damage", "FileDamage",
    "Journal",
    "LockError", "Record", "StoreChangedError", "StoreError", "StoreInfo", "StoreLayout",
    "StoreLock", "StoreWriter", "VariableLayout", "auto_codec", "bytes_on_disk",
    "check_removable", "clear_complete", "completeness", "create", "missing_files",
    "next_generation",
    "open_info", "read_complete", "read_record", "remove", "remove_partial_files",
    "remove_stale", "repair_files", "store_path", "task_writer", "verify", "verify_files",
    "write_complete",
]
