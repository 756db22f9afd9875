"""Keep numba's on-disk cache consistent with the kernel sources.

numba invalidates a cached function only when *its own* source file changes, not when a helper
it inlined from another file does (e.g. an edit to metrics.py leaves grid.py's cache stale).
So the cache is stamped with a hash of every kernel source file, and cleared when that changes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_STAMP = "qbfast-kernels.stamp"


def sources_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(_HERE.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def clear_stale_cache() -> None:
    """Delete this package's numba cache files if the kernel sources changed since they were
    written. Best effort: a read-only install, or a concurrent process, is not an error."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return  # the user manages the cache location
    cache = _HERE / "__pycache__"
    digest = sources_digest()
    stamp = cache / _STAMP
    try:
        if stamp.is_file() and stamp.read_text() == digest:
            return
        cache.mkdir(exist_ok=True)
        for pattern in ("*.nbi", "*.nbc"):
            for f in cache.glob(pattern):
                f.unlink(missing_ok=True)
        stamp.write_text(digest)
    except OSError:
        pass
