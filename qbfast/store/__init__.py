"""The sweep store (a Zarr v3 directory): layout, chunk files, completion record, writer lock."""

from ._legacy import *  # noqa: F401,F403
from ._legacy import (  # noqa: F401
    CODEC, CHUNK_KEY_ENCODING, META, PEAK_METRICS, STORE_FORMAT, ChunkFiles, ChunkWriter,
    StoreError, bytes_on_disk, check_spec, chunk_writer, create, done_mask, info, is_complete,
    is_store, kernels_digest, mark_complete, missing_chunks, peak_metrics, peaks, read_attrs,
    remove, remove_partial_files, remove_stale_builds, store_id, template, write_chunk,
    _meta, _files,
)
