"""Source photos and videos for the browser: only indexed sources under the allowed roots.

A file is served when (1) its URI is a source of the store, exactly as
indexed, and (2) its real path (links resolved) lies under one of the
server's allowed roots. Anything else is 404 / 403, whatever the path says.
The file is then opened beneath its root (mien/indexer/beneath.py: no link
followed, so a folder swapped for a link after the check is refused) and
everything after reads that open file, never the name again.

A file is data, never a page: it is served only as the media type its content
is (the indexer's table of magic numbers, mien.indexer.sniff), never by its
name, and only when that is the kind the indexer stored (image or video) for a
source it read ("done"). A source that failed, or a file that is no longer
what was indexed (an image replaced by an SVG or HTML under the same name), is
refused; the HTTP layer adds nosniff and a sandboxing CSP to every response.

Browsers play WebM (VP8/VP9) and H.264/AV1 MP4 but not MJPG AVI or MPEG-4
Part 2, which OpenCV writes and archives hold. Such videos are transcoded
once to WebM VP8 (same frame rate, every frame kept, so timestamps line up
with the indexer's) into a cache directory, then served like any file.
Every response honours HTTP range requests, so the player seeks.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mien.errors import NotFoundError
from mien.filenames import find
from mien.server.validate import MAX_TEXT_PATH_BYTES
from mien.indexer.beneath import OutsideRootsError, fd_path, open_file, real_path
from mien.indexer.sniff import HEAD_BYTES, media_type_of_head

# (container type, codec fourcc) a browser plays directly
_PLAYABLE_TYPES = {"video/webm", "video/mp4", "video/quicktime", "video/ogg"}
_PLAYABLE_CODECS = {"VP80", "VP90", "avc1", "h264", "H264", "av01", "AV01", "vp08", "vp09"}


class MediaDenied(Exception):
    """Refused: the message says why (never which roots exist)."""


@dataclass(frozen=True)
class MediaFile:
    path: Path
    content_type: str
    file: BinaryIO      # the file opened (beneath its allowed root): serve this, not the path; close it


class Media:
    def __init__(self, ctx, cache_dir: Path | None = None):
        self.ctx = ctx
        self.cache_dir = cache_dir or Path(tempfile.gettempdir()) / f"mien-web-{os.getuid()}"
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def source_file(self, uri: str) -> tuple[Path, object, BinaryIO]:
        """(real path, SourceRecord, the file opened beneath its root) of an indexed source the
        server may show; the caller closes the file."""
        if not self.ctx.allowed_roots:
            raise MediaDenied("this server shows no source files; its operator starts it with "
                              "--allow-root DIR for the folders it may show")
        # a URI no file name could be is simply unknown; one that is not UTF-8 comes escaped
        # (mien/filenames.py): the stored name as written, else the one its escapes stand for
        usable = uri and "\0" not in uri and len(uri.encode("utf-8", "surrogatepass")) <= MAX_TEXT_PATH_BYTES
        store = self.ctx.store
        uri = find(uri, lambda name: store.get_source(name) is not None) if usable else None
        source = store.get_source(uri) if uri is not None else None
        if source is None:
            raise NotFoundError("no such source in the store")
        try:
            real = Path(real_path(uri))
        except OSError:  # a link in it kept changing while it was resolved
            raise NotFoundError("the source file is gone from the server's disk") from None
        try:
            fd = open_file(str(real), self.ctx.allowed_roots)
        except OutsideRootsError:  # outside every root, or a link in the path
            raise MediaDenied("the source lies outside the server's allowed roots") from None
        except OSError:
            raise NotFoundError("the source file is gone from the server's disk") from None
        return real, source, os.fdopen(fd, "rb")

    def original(self, uri: str) -> MediaFile:
        path, source, fh = self.source_file(uri)
        try:
            return MediaFile(path, served_type(source, fh), fh)
        except BaseException:
            fh.close()
            raise

    def playable(self, uri: str) -> MediaFile:
        """The video as a browser plays it: the file itself, or a cached WebM copy."""
        path, source, fh = self.source_file(uri)
        try:
            media_type = served_type(source, fh)
            if source.kind != "video":
                raise MediaDenied("the source is a photo, not a video")
            if _browser_plays(media_type, fh):
                return MediaFile(path, media_type, fh)
        except BaseException:
            fh.close()
            raise
        try:
            key = hashlib.sha256(os.fsencode(f"{path}\0{source.fingerprint}")).hexdigest()[:32]
            target = self.cache_dir / f"{key}.webm"
            with self._lock(key):
                if not target.exists():
                    self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                    _transcode(fh, target)
        finally:
            fh.close()
        return MediaFile(target, "video/webm", open(target, "rb"))

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())


def served_type(source, fh: BinaryIO) -> str:
    """The media type to serve the open file as: its content's, when that is what the indexer stored.

    MediaDenied for a source that failed to index, and for a file whose content
    is not (or no longer) an image or video of the stored kind.
    """
    if source.status != "done":
        raise MediaDenied("the source failed to index (it is not a photo or video mien could read), "
                          "so it is not shown")
    try:
        head = os.pread(fh.fileno(), HEAD_BYTES, 0)
    except OSError:
        raise NotFoundError("the source file cannot be read on the server") from None
    media_type = media_type_of_head(head)
    if media_type is None or media_type.split("/", 1)[0] != source.kind:
        # (rare formats only OpenCV's own probe recognises land here too: no browser shows them)
        raise MediaDenied(f"the file is not a {source.kind} format a browser shows, or no longer the "
                          f"{source.kind} that was indexed (its content changed)")
    return media_type


def _fourcc(fh: BinaryIO) -> str:
    import cv2

    cap = cv2.VideoCapture(fd_path(fh.fileno()))
    try:
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
    finally:
        cap.release()
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))


def _browser_plays(media_type: str, fh: BinaryIO) -> bool:
    return media_type in _PLAYABLE_TYPES and _fourcc(fh) in _PLAYABLE_CODECS


def _transcode(src: BinaryIO, target: Path) -> None:
    import cv2

    cap = cv2.VideoCapture(fd_path(src.fileno()))
    if not cap.isOpened():
        raise NotFoundError("the video cannot be decoded on the server")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.webm")
    writer = None
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"VP80"), fps, (w, h))
                if not writer.isOpened():
                    raise RuntimeError("OpenCV cannot write WebM (VP8) here")
            writer.write(frame)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise NotFoundError("the video holds no frames")
    os.replace(tmp, target)  # readers never see a half-written file


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single-range Range header; None = whole file.

    Raises ValueError for an unsatisfiable or malformed range (-> 416).
    """
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m[1] and not m[2]):
        raise ValueError("unsupported Range")
    if not m[1]:  # suffix: the last N bytes
        n = int(m[2])
        if n == 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size - 1
    start = int(m[1])
    end = min(int(m[2]), size - 1) if m[2] else size - 1
    if start >= size or end < start:
        raise ValueError("range not satisfiable")
    return start, end
