"""Source fingerprints for incremental indexing.

fingerprint = "v1:<size>:<mtime_ns>:<sha256 of the first and last MiB>"

Why not a full hash: archives hold multi-GB videos and a re-run must be cheap;
reading 2 MiB per file costs about as much as opening it. Size and mtime catch
ordinary edits without reading; the head/tail hash catches a file replaced by
another of the same size with its mtime preserved (cp -p, rsync -t), because
container headers (moov/ftyp, JPEG SOI/EXIF) and trailers (moov at the end,
JPEG EOI) differ between files. What it misses: an in-place edit of the middle
of a file that keeps size and mtime, which normal tools do not do.
"""

from __future__ import annotations

import hashlib
import os

CHUNK = 1 << 20


def fingerprint(path: str, size: int | None = None, mtime_ns: int | None = None) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return fingerprint_fd(fd, size, mtime_ns)
    finally:
        os.close(fd)


def fingerprint_fd(fd: int, size: int | None = None, mtime_ns: int | None = None) -> str:
    """The fingerprint of the open file `fd` (size and mtime from fstat unless given)."""
    if size is None or mtime_ns is None:
        st = os.fstat(fd)
        size, mtime_ns = st.st_size, st.st_mtime_ns
    digest = hashlib.sha256()
    digest.update(os.pread(fd, CHUNK, 0))
    if size > 2 * CHUNK:
        digest.update(os.pread(fd, CHUNK, size - CHUNK))
    elif size > CHUNK:
        digest.update(os.pread(fd, size - CHUNK, CHUNK))
    return f"v1:{size}:{mtime_ns}:{digest.hexdigest()[:32]}"
