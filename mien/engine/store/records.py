"""Records the store keeps, and their compact binary encodings in LMDB.

A face is split across LMDB databases by access pattern:
- `vec`   : the fixed-size row search needs (expression, timestamp, source
            number, person) — read in bulk, decoded with one np.frombuffer;
- `faces` : everything else (JSON header + landmarks + pooled vector);
- `ident` : the identity vector, when the face has one;
- `thumbs`: the JPEG thumbnail.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np

from mien.errors import BadInputError

EXPR_DIM = 16

# One search row per face. Person lives here (and in the person_faces index) only.
VEC_DTYPE = np.dtype(
    [("e", "<f4", (EXPR_DIM,)), ("ts", "<i8"), ("src", "<i4"), ("person", "<i4")]
)


@dataclass
class FaceRecord:
    source_uri: str
    frame_index: int
    timestamp_ms: int
    bbox: tuple[float, float, float, float]
    landmarks5: np.ndarray
    det_score: float
    sharpness: float
    yaw: float
    pitch: float
    roll: float
    expression: np.ndarray
    pooled: np.ndarray
    identity: np.ndarray | None
    track_id: int = -1
    person_id: int = -1
    thumbnail: bytes = b""
    face_id: int = -1


@dataclass
class SourceRecord:
    uri: str
    fingerprint: str
    kind: str  # "image" | "video"
    status: str  # "done" | "failed"
    error: str = ""
    face_count: int = 0
    duration_ms: int = 0
    frames: int = 0


@dataclass
class Person:
    person_id: int
    name: str | None
    centroid: np.ndarray
    count: int


@dataclass
class Tag:
    name: str
    vectors: np.ndarray  # (R, 16)
    threshold: float = 0.5
    reference_face_ids: list[int] = field(default_factory=list)
    created_ms: int = 0


@dataclass
class Hit:
    face_id: int
    distance: float


# ---------------------------------------------------------------- keys

def id_key(i: int) -> bytes:
    """Big-endian so LMDB's byte order is numeric order (range scans)."""
    return struct.pack(">q", int(i))


def key_id(k: bytes) -> int:
    return struct.unpack(">q", bytes(k))[0]


def pair_key(a: int, b: int) -> bytes:
    return struct.pack(">qq", int(a), int(b))


def key_pair(k: bytes) -> tuple[int, int]:
    return struct.unpack(">qq", bytes(k))


# ---------------------------------------------------------------- vectors

def as_vector(v, dim: int, what: str) -> np.ndarray:
    """A finite float32 vector of the right size, or BadInputError."""
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    if a.shape[0] != dim:
        raise BadInputError(f"{what} must have {dim} values, got {a.shape[0]}")
    if not np.all(np.isfinite(a)):
        raise BadInputError(f"{what} contains NaN or infinity")
    return a


# ---------------------------------------------------------------- codecs

def _pack(header: dict, *arrays: np.ndarray) -> bytes:
    h = json.dumps(header, separators=(",", ":")).encode()
    parts = [struct.pack("<I", len(h)), h]
    parts += [np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays]
    return b"".join(parts)


def _unpack(value: bytes) -> tuple[dict, memoryview]:
    value = memoryview(value)
    (n,) = struct.unpack_from("<I", value, 0)
    return json.loads(bytes(value[4 : 4 + n])), value[4 + n :]


def encode_face(f: FaceRecord) -> bytes:
    header = {
        "s": f.source_uri, "f": int(f.frame_index), "t": int(f.timestamp_ms),
        "b": [float(x) for x in f.bbox], "d": float(f.det_score),
        "q": [float(f.sharpness), float(f.yaw), float(f.pitch), float(f.roll)],
        "tr": int(f.track_id),
    }
    lm = np.asarray(f.landmarks5, dtype=np.float32).reshape(-1)
    if lm.shape[0] != 10:
        raise BadInputError(f"landmarks5 must be (5, 2), got {np.shape(f.landmarks5)}")
    return _pack(header, lm, as_vector(f.pooled, EXPR_DIM, "pooled vector"))


def decode_face(face_id: int, value: bytes, row: np.void, identity, thumbnail: bytes) -> FaceRecord:
    h, tail = _unpack(value)
    floats = np.frombuffer(tail, dtype="<f4")
    return FaceRecord(
        source_uri=h["s"], frame_index=h["f"], timestamp_ms=h["t"], bbox=tuple(h["b"]),
        landmarks5=floats[:10].reshape(5, 2).copy(), det_score=h["d"],
        sharpness=h["q"][0], yaw=h["q"][1], pitch=h["q"][2], roll=h["q"][3],
        expression=np.array(row["e"], dtype=np.float32), pooled=floats[10:26].copy(),
        identity=identity, track_id=h["tr"], person_id=int(row["person"]),
        thumbnail=thumbnail, face_id=face_id,
    )


def pooled_of(value: bytes) -> np.ndarray:
    """The pooled vector is the last 16 floats of a face value: no JSON parse."""
    return np.frombuffer(bytes(value[-EXPR_DIM * 4 :]), dtype="<f4").copy()


def encode_row(expression: np.ndarray, ts: int, src: int, person: int) -> bytes:
    row = np.zeros(1, dtype=VEC_DTYPE)
    row["e"], row["ts"], row["src"], row["person"] = expression, ts, src, person
    return row.tobytes()


def decode_rows(values: list[bytes]) -> np.ndarray:
    if not values:
        return np.zeros(0, dtype=VEC_DTYPE)
    return np.frombuffer(b"".join(values), dtype=VEC_DTYPE).copy()


def encode_source(s: SourceRecord, source_no: int) -> bytes:
    d = {k: getattr(s, k) for k in SourceRecord.__dataclass_fields__}
    d["source_no"] = int(source_no)
    return json.dumps(d).encode()


def decode_source(value: bytes) -> tuple[SourceRecord, int]:
    d = json.loads(bytes(value))
    no = d.pop("source_no")
    return SourceRecord(**d), no


def encode_person(p: Person) -> bytes:
    return _pack({"n": p.name, "c": int(p.count), "d": int(len(p.centroid))}, p.centroid)


def decode_person(person_id: int, value: bytes) -> Person:
    h, tail = _unpack(value)
    return Person(person_id, h["n"], np.frombuffer(tail, dtype="<f4").copy(), h["c"])


def encode_tag(t: Tag) -> bytes:
    v = np.asarray(t.vectors, dtype=np.float32).reshape(-1, EXPR_DIM)
    header = {"n": t.name, "th": float(t.threshold), "r": [int(x) for x in t.reference_face_ids],
              "c": int(t.created_ms), "rows": int(v.shape[0])}
    return _pack(header, v)


def decode_tag(value: bytes) -> Tag:
    h, tail = _unpack(value)
    v = np.frombuffer(tail, dtype="<f4").reshape(h["rows"], EXPR_DIM).copy()
    return Tag(h["n"], v, h["th"], list(h["r"]), h["c"])
