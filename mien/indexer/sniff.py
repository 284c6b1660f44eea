"""Decide what a file is from its first bytes, never from its name.

Magic numbers cover the formats OpenCV reads in practice; for anything else we
ask OpenCV's own image-signature check (`cv2.haveImageReader`). Extensions are
only used to word the report ("a .jpg that is not an image" is a failure, a
README is merely skipped).
"""

from __future__ import annotations

import os

IMAGE = "image"
VIDEO = "video"

HEAD_BYTES = 200  # what sniff() reads: a transport stream's second sync byte is at 188

MEDIA_EXTENSIONS = {
    ".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif",
    ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".heic", ".avif",
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts",
    ".wmv", ".flv", ".ogv", ".3gp",
}

# ISO-BMFF brands that hold still images rather than movies.
_IMAGE_BRANDS = {b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"}


def media_type_of_head(head: bytes) -> str | None:
    """The MIME type ('image/jpeg', 'video/mp4', ...) of the first bytes of a file, or None.

    The one table of magic numbers: the indexer's kind (image or video) is its
    first half, and the web app serves a source as exactly this type.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "image/jp2"  # JPEG 2000
    if head[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6") and head[2:3].isspace():
        return "image/x-portable-anymap"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"AVIX"):
        return "video/x-msvideo"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return "image/avif" if brand.startswith(b"avi") else "image/heic"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "video/quicktime"  # old QuickTime files without an ftyp box
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # Matroska; WebM names itself in the EBML header's DocType
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return "video/mpeg"  # MPEG program stream / elementary video
    if head.startswith(b"FLV"):
        return "video/x-flv"
    if head.startswith(b"OggS"):
        return "video/ogg"  # may turn out audio-only: the decoder reports "no video stream"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "video/x-ms-asf"  # ASF / WMV
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "video/mp2t"  # MPEG transport stream
    return None


def kind_of_head(head: bytes) -> str | None:
    """'image', 'video' or None for the first bytes of a file."""
    media_type = media_type_of_head(head)
    return media_type.split("/", 1)[0] if media_type else None


def sniff(path: str) -> str | None:
    """Kind of the file at `path` by content. Raises OSError when unreadable."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return sniff_fd(fd)
    finally:
        os.close(fd)


def sniff_fd(fd: int) -> str | None:
    """Kind of the open file `fd` by content (read at its start, whatever its position)."""
    head = os.pread(fd, HEAD_BYTES, 0)
    kind = kind_of_head(head)
    if kind is None and head:
        from mien.indexer.beneath import fd_path

        kind = _opencv_image_probe(fd_path(fd))
    return kind


def _opencv_image_probe(path: str) -> str | None:
    """OpenCV checks signatures of the rarer formats it decodes (Sun raster, EXR, ...)."""
    import cv2

    try:
        return IMAGE if cv2.haveImageReader(path) else None
    except cv2.error:
        return None


def has_media_extension(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in MEDIA_EXTENSIONS
