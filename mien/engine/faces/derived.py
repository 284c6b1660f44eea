"""Model files mien derives from the ones it ships with, kept on disk for the next process.

Three derivations cost every index worker and server time on its first face: dlib's ResNet
converted to ONNX (~0.9 s, most of it importing `onnx`; dlib_resnet_onnx.py), ONNX Runtime's
graph optimisation of that conversion (~30-60 ms per session; dlib_resnet_onnx.optimized_file),
and fer's network rewritten with two more outputs (~45 ms of flatbuffer objects in Python;
expression_fer.py). Each result is kept under $MIEN_CACHE (else ~/.cache/mien)/converted/, named
by the source file's sha256 and the deriving code's version (plus whatever else it depends on, in
its suffix), and written atomically; a kept file that does not load is derived again and replaced.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def kept_file(stem: str, source: str | Path, version: int, suffix: str) -> Path:
    """Where what is derived from `source` (by code at `version`) is kept."""
    from mien.engine.faces.modelfiles import file_sha256

    root = os.environ.get("MIEN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mien")
    digest = file_sha256(str(Path(source).resolve()))
    return Path(root) / "converted" / f"{stem}-{digest[:20]}-v{version}{suffix}"


def keep(target: Path, data: bytes) -> None:
    """Write `target` atomically; a cache that cannot be written is skipped."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


def load_kept(target: Path, derive, load):
    """load(the bytes kept at `target`); when there are none, or they do not load, load(derive())
    and keep those bytes."""
    try:
        data = target.read_bytes()
    except OSError:
        data = None
    if data is not None:
        try:
            return load(data)
        except Exception:  # noqa: BLE001 - a damaged or foreign file: derive again below
            pass
    data = derive()
    loaded = load(data)
    keep(target, data)
    return loaded
