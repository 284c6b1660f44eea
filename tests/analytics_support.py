"""Helpers for the analytics tests: synthetic stores with designed vectors, real videos.

Synthetic stores are real Stores (LMDB + FAISS) filled with FaceRecords whose
expression vectors are chosen so the right answer is known in advance: each
"expression" is a basis direction of the 16-d space (squared L2 between two
different basis vectors is 2, far beyond the tag threshold 0.5), with small
designed offsets where a test needs a best face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIM = 16
ENCODERS = {
    "detector": "dlib-hog",
    "identity": "dlib-resnet",
    "identity_dim": 128,
    "expression": "landmarks-v1",
    "expression_dim": 16,
}


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


def basis(i: int, wobble: float = 0.0, towards: int | None = None) -> np.ndarray:
    """Unit vector along axis i, optionally tilted by `wobble` towards axis `towards`."""
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    if wobble:
        v[(i + 8) % DIM if towards is None else towards] = wobble
    return unit(v)


def thumbnail(colour=(90, 140, 200), size: int = 96, label: str = "") -> bytes:
    """A real JPEG (a drawn face-like disc) so pictures have something to show."""
    import cv2

    img = np.full((size, size, 3), 235, np.uint8)
    cv2.circle(img, (size // 2, size // 2), size // 3, tuple(int(c) for c in colour), -1)
    cv2.circle(img, (size // 2 - size // 8, size // 2 - size // 10), size // 20, (30, 30, 30), -1)
    cv2.circle(img, (size // 2 + size // 8, size // 2 - size // 10), size // 20, (30, 30, 30), -1)
    if label:
        cv2.putText(img, label, (4, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def face(uri: str, ts: int, vec, *, person: int = -1, track: int = -1, pooled=None,
         frame: int | None = None, thumb: bytes = b""):
    from mien.engine.store import FaceRecord

    vec = unit(vec)
    return FaceRecord(
        source_uri=uri, frame_index=ts // 500 if frame is None else frame, timestamp_ms=int(ts),
        bbox=(10.0, 10.0, 110.0, 110.0), landmarks5=np.zeros((5, 2), np.float32), det_score=1.0,
        sharpness=10.0, yaw=0.0, pitch=0.0, roll=0.0, expression=vec,
        pooled=vec if pooled is None else unit(pooled), identity=None,
        track_id=track, person_id=person, thumbnail=thumb,
    )


def add_source(store, uri: str, faces: list, *, kind: str = "video", duration_ms: int = 0) -> list[int]:
    from mien.engine.store import SourceRecord

    src = SourceRecord(uri=uri, fingerprint=f"fp-{uri}", kind=kind, status="done",
                       face_count=len(faces), duration_ms=duration_ms,
                       frames=len({f.timestamp_ms for f in faces}))
    return store.replace_source(src, faces)


def open_store(path, mode: str = "w"):
    from mien.engine.store import Store

    return Store(str(path), mode=mode, encoders=ENCODERS if mode == "w" else None) if mode == "w" \
        else Store(str(path), mode=mode)


def clustered_vectors(sizes, *, seed: int = 0, spread: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in len(sizes) tight groups around distinct basis axes; (vectors, labels)."""
    rng = np.random.default_rng(seed)
    vecs, labels = [], []
    for c, n in enumerate(sizes):
        centre = np.zeros(DIM, np.float32)
        centre[c] = 1.0
        pts = centre[None, :] + spread * rng.normal(size=(n, DIM)).astype(np.float32)
        vecs.append(pts / np.linalg.norm(pts, axis=1, keepdims=True))
        labels += [c] * n
    return np.concatenate(vecs).astype(np.float32), np.asarray(labels)


# ------------------------------------------------------------------ real video

from mien.demo.videos import expression_clip as expression_video  # noqa: E402


def png_size(path) -> tuple[int, int]:
    """(width, height) read from the PNG header."""
    data = Path(path).read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
