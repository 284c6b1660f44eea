"""Records the store keeps, and their compact binary encodings in LMDB.

A face is split across LMDB databases by access pattern:
- `vec`   : the fixed-size row search needs (expression, timestamp, source
            number, person) — read in bulk, decoded with one np.frombuffer;
- `faces` : everything else (JSON header + landmarks + pooled vector);
- `ident` : the identity vector, when the face has one;
- `thumbs`: the JPEG thumbnail.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import dataclass

import numpy as np

from mien.errors import BadInputError
from mien.results.analytics import Tag  # the store keeps tags as the clients see them
from mien.results.catalog import FaceFields

EXPR_DIM = 16

# One search row per face. Person lives here (and in the person_faces index) only.
VEC_DTYPE = np.dtype(
    [("e", "<f4", (EXPR_DIM,)), ("ts", "<i8"), ("src", "<i4"), ("person", "<i4")]
)


@dataclass
class FaceRecord(FaceFields):
    """A face as the store keeps it: the fields every face has (mien.results.catalog.FaceFields,
    which GetFace's reply shares), then what the store adds."""

    identity: np.ndarray | None
    track_id: int = -1
    person_id: int = -1
    thumbnail: bytes = b""
    face_id: int = -1
    # mouth occlusion from FaceQA (Quality.occluded / occlusion); False / 0.0 for faces
    # indexed before it existed or without a FaceMesh
    occluded: bool = False
    occlusion: float = 0.0
    # expression features (mien.engine.faces.expression_features) the store keeps to re-embed
    # the face without its media; None for faces whose encoder gives none (or indexed before)
    features: np.ndarray | None = None


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
    """A person. `count` and (unless enrolled) `centroid` are maintained by the store.

    centroid: the identity used for linking — the enrolled `reference` when the
    person has one, else the normalised sum of its faces' L2-normalised
    identity vectors (the seed given at creation while it has none).
    """

    person_id: int
    name: str | None
    centroid: np.ndarray
    count: int
    reference: np.ndarray | None = None


@dataclass(slots=True)
class HitRecord:
    """What a search hit shows of a face: where it is and whose. No vectors, no
    landmarks: the server reads one of these per hit, so it decodes only a
    fixed binary header."""

    face_id: int
    source_uri: str
    frame_index: int
    timestamp_ms: int
    bbox: tuple[float, float, float, float]
    track_id: int
    person_id: int
    thumbnail: bytes = b""
    occluded: bool = False   # FaceQA's mouth-occlusion flag and score, as FaceRecord
    occlusion: float = 0.0


@dataclass
class Hit:
    face_id: int
    distance: float
    record: HitRecord | None = None  # searches with records=True


# ---------------------------------------------------------------- keys

# Big-endian so LMDB's byte order is numeric order (range scans).
ID_KEY = struct.Struct(">q")  # hot loops bind ID_KEY.pack (ints and numpy ints)


def id_key(i: int) -> bytes:
    return ID_KEY.pack(int(i))


def key_id(k: bytes) -> int:
    return struct.unpack(">q", bytes(k))[0]


def pair_key(a: int, b: int) -> bytes:
    return struct.pack(">qq", int(a), int(b))


def key_pair(k: bytes) -> tuple[int, int]:
    return struct.unpack(">qq", bytes(k))


# ---------------------------------------------------------------- vectors

def as_vector(v, dim: int, what: str) -> np.ndarray:
    """A finite, contiguous float32 vector of the right size (FAISS reads it by pointer), or
    BadInputError."""
    a = np.ascontiguousarray(v, dtype=np.float32).reshape(-1)
    if a.shape[0] != dim:
        raise BadInputError(f"{what} must have {dim} values, got {a.shape[0]}")
    # a finite dot product means finite values (one call); else look at each (1e20 squares to inf)
    if not math.isfinite(a.dot(a)) and not np.isfinite(a).all():
        raise BadInputError(f"{what} contains NaN or infinity")
    return a


# ---------------------------------------------------------------- codecs

# Source uris are file names: bytes on POSIX, held as surrogateescape strs (mien/filenames.py).
# They are stored as those bytes exactly, so a UTF-8 name's bytes are its UTF-8, as before.
MAX_KEY_BYTES = 511          # LMDB's key limit: a longer uri is keyed by its digest
_LONG_KEY = b"\0sha256:"     # no file name holds a NUL byte: never a uri's own bytes


def uri_bytes(uri: str) -> bytes:
    """A source uri's bytes (os.fsencode's); BadInputError for a str no file name decodes to."""
    try:
        return uri.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise BadInputError(f"source uri {uri!r} holds a surrogate that no file name has") from None


def uri_of(value) -> str:
    """The uri whose bytes are `value` (uri_bytes' inverse)."""
    return bytes(value).decode("utf-8", "surrogateescape")


def uri_key(uri: str) -> bytes:
    """The key of a source in `sources` and `src_faces`: its bytes, or their digest when too long."""
    raw = uri_bytes(uri)
    if len(raw) <= MAX_KEY_BYTES:
        return raw
    import hashlib

    return _LONG_KEY + hashlib.sha256(raw).digest()


def _pack(header: dict, *arrays: np.ndarray) -> bytes:
    h = json.dumps(header, separators=(",", ":")).encode()
    parts = [struct.pack("<I", len(h)), h]
    parts += [np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays]
    return b"".join(parts)


def _unpack(value: bytes) -> tuple[dict, memoryview]:
    value = memoryview(value)
    (n,) = struct.unpack_from("<I", value, 0)
    return json.loads(bytes(value[4 : 4 + n])), value[4 + n :]


# A face value: a fixed binary header (no JSON parse on the read path: the
# server decodes one per search hit), the uri, then 10 landmark and 16 pooled
# floats (the pooled vector is always the last 16 floats: pooled_of).
# Written: _FACE_HDR2 (magic 0xFFFFFFFE: + occluded flag and occlusion score).
# Still read: _FACE_HDR (0xFFFFFFFF, before occlusion) and the older JSON-header
# values (a JSON length can never be either magic).
_FACE_MAGIC = b"\xff\xff\xff\xff"
_FACE_HDR = struct.Struct("<4sqq4ff4fiI")  # magic frame ts bbox det q(4) track uri_len
_FACE_MAGIC2 = b"\xfe\xff\xff\xff"
_FACE_HDR2 = struct.Struct("<4sqq4ff4fiIBf")  # ... uri_len occluded occlusion


def encode_face(f: FaceRecord) -> bytes:
    lm = np.asarray(f.landmarks5, dtype=np.float32).reshape(-1)
    if lm.shape[0] != 10:
        raise BadInputError(f"landmarks5 must be (5, 2), got {np.shape(f.landmarks5)}")
    if len(f.bbox) != 4:
        raise BadInputError(f"bbox must have 4 values, got {len(f.bbox)}")
    uri = uri_bytes(f.source_uri)
    head = _FACE_HDR2.pack(_FACE_MAGIC2, int(f.frame_index), int(f.timestamp_ms), *(float(x) for x in f.bbox),
                           float(f.det_score), float(f.sharpness), float(f.yaw), float(f.pitch),
                           float(f.roll), int(f.track_id), len(uri), int(bool(f.occluded)),
                           float(f.occlusion))
    pooled = as_vector(f.pooled, EXPR_DIM, "pooled vector")
    return b"".join((head, uri, lm.astype("<f4").tobytes(), pooled.astype("<f4").tobytes()))


_ROW_PERSON = struct.Struct("<i")


def _row_person(row: bytes) -> int:
    """The person id: the last field of a raw `vec` row."""
    return _ROW_PERSON.unpack_from(row, VEC_DTYPE.itemsize - 4)[0]


def _face_header(value) -> tuple:
    """(uri, frame, ts, bbox, det, sharpness, yaw, pitch, roll, track, (buffer, offset))
    of any format, without numpy; the 26 floats (10 landmark, 16 pooled) start
    at offset in buffer."""
    if value[:4] == _FACE_MAGIC2:
        (_, frame, ts, x1, y1, x2, y2, det, sh, yaw, pitch, roll, tr, n, _occ, _score) = \
            _FACE_HDR2.unpack_from(value, 0)
        o = _FACE_HDR2.size
        uri = uri_of(value[o:o + n])
        return uri, frame, ts, (x1, y1, x2, y2), det, sh, yaw, pitch, roll, tr, (value, o + n)
    if value[:4] == _FACE_MAGIC:
        (_, frame, ts, x1, y1, x2, y2, det, sh, yaw, pitch, roll, tr, n) = _FACE_HDR.unpack_from(value, 0)
        o = _FACE_HDR.size
        uri = uri_of(value[o:o + n])
        return uri, frame, ts, (x1, y1, x2, y2), det, sh, yaw, pitch, roll, tr, (value, o + n)
    h, tail = _unpack(value)
    q = h["q"]
    return h["s"], h["f"], h["t"], tuple(h["b"]), h["d"], q[0], q[1], q[2], q[3], h["tr"], (tail, 0)


def face_occlusion(value) -> tuple[bool, float]:
    """(occluded, occlusion score) of a `faces` value; (False, 0.0) for the formats before it."""
    if value[:4] == _FACE_MAGIC2:
        _, _, _, _, _, _, _, _, _, _, _, _, _, _, occ, score = _FACE_HDR2.unpack_from(value, 0)
        return bool(occ), float(score)
    return False, 0.0


def decode_face(face_id: int, value: bytes, row: bytes, identity, thumbnail: bytes) -> FaceRecord:
    """A FaceRecord from its `faces` value and its raw `vec` row (VEC_DTYPE bytes)."""
    uri, frame, ts, bbox, det, sh, yaw, pitch, roll, tr, (buf, at) = _face_header(value)
    occluded, occlusion = face_occlusion(value)
    floats = np.frombuffer(buf, dtype="<f4", count=26, offset=at).copy()
    return FaceRecord(
        source_uri=uri, frame_index=frame, timestamp_ms=ts, bbox=bbox,
        landmarks5=floats[:10].reshape(5, 2), det_score=det,
        sharpness=sh, yaw=yaw, pitch=pitch, roll=roll,
        expression=np.frombuffer(row, dtype="<f4", count=EXPR_DIM).copy(), pooled=floats[10:26],
        identity=identity, track_id=tr, person_id=_row_person(row),
        thumbnail=thumbnail, face_id=face_id, occluded=occluded, occlusion=occlusion,
    )


def decode_hit(face_id: int, value: bytes, row: bytes | None, thumbnail: bytes = b"",
               person: int | None = None) -> HitRecord:
    """A HitRecord from a `faces` value and its raw `vec` row (for the person, unless given):
    the header only."""
    if value[:4] == _FACE_MAGIC2:  # the format written now: one unpack, no tuple of every field
        (_, frame, ts, x1, y1, x2, y2, _, _, _, _, _, tr, n, occ, score) = _FACE_HDR2.unpack_from(value, 0)
        o = _FACE_HDR2.size
        return HitRecord(face_id, uri_of(value[o:o + n]), frame, ts, (x1, y1, x2, y2), tr,
                         _row_person(row) if person is None else person, thumbnail, bool(occ), float(score))
    uri, frame, ts, bbox, *_, tr, _floats_at = _face_header(value)
    return HitRecord(face_id, uri, frame, ts, bbox, tr, _row_person(row) if person is None else person,
                     thumbnail, *face_occlusion(value))


def pooled_of(value: bytes) -> np.ndarray:
    """The pooled vector is the last 16 floats of a face value: no JSON parse."""
    return np.frombuffer(bytes(value[-EXPR_DIM * 4 :]), dtype="<f4").copy()


# Expression features (FaceRecord.features): opaque to the store, kept as float16 (what they
# are for, a learned metric, does not need more; half the bytes).
_FEATURES_MAGIC = b"xf\x00\x01"


def encode_features(features: np.ndarray) -> bytes:
    f = np.asarray(features, np.float32).reshape(-1)
    if not np.all(np.isfinite(f)):
        raise BadInputError("expression features contain NaN or infinity")
    return _FEATURES_MAGIC + np.clip(f, -65000.0, 65000.0).astype("<f2").tobytes()


def decode_features(value) -> np.ndarray:
    value = bytes(value)
    if value[:4] != _FEATURES_MAGIC or len(value) % 2:
        raise ValueError("not a stored expression-features record")
    return np.frombuffer(value, dtype="<f2", offset=4).astype(np.float32)


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


def encode_person(p: Person, n_ident: int = 0, ident_sum: np.ndarray | None = None) -> bytes:
    """Header + centroid (f4) [+ reference (f4)] [+ float64 sum of its faces' unit identities].

    `n_ident` faces with an identity contributed to `ident_sum`; the store keeps
    both exact in the transaction that moves faces, so counts never go stale.
    """
    ref = p.reference
    s = np.zeros(0) if ident_sum is None else np.asarray(ident_sum, dtype="<f8")
    header = {"n": p.name, "c": int(p.count), "d": int(len(p.centroid)),
              "r": 0 if ref is None else int(len(ref)), "i": int(n_ident), "sd": int(len(s))}
    parts = [p.centroid] if ref is None else [p.centroid, ref]
    return _pack(header, *parts) + s.astype("<f8").tobytes()


def decode_person_stats(person_id: int, value: bytes) -> tuple[Person, int, np.ndarray | None]:
    """(person, n_ident, float64 identity sum or None for a record written before the sums)."""
    h, tail = _unpack(value)
    d, r = h["d"], h.get("r", 0)
    c = np.frombuffer(tail, dtype="<f4", count=d).copy()
    if "i" not in h:  # older record: a named person's centroid was its reference
        return Person(person_id, h["n"], c, h["c"], c.copy() if h["n"] else None), 0, None
    ref = np.frombuffer(tail, dtype="<f4", count=r, offset=4 * d).copy() if r else None
    s = np.frombuffer(tail, dtype="<f8", count=h["sd"], offset=4 * (d + r)).copy()
    return Person(person_id, h["n"], c, h["c"], ref), h["i"], s


def decode_person(person_id: int, value: bytes) -> Person:
    return decode_person_stats(person_id, value)[0]


def encode_tag(t: Tag) -> bytes:
    v = np.asarray(t.vectors, dtype=np.float32).reshape(-1, EXPR_DIM)
    header = {"n": t.name, "th": float(t.threshold), "r": [int(x) for x in t.reference_face_ids],
              "c": int(t.created_ms), "rows": int(v.shape[0])}
    if t.reference_pictures:  # only when there are: tags written before read the same
        header["p"] = [base64.b64encode(bytes(p)).decode("ascii") for p in t.reference_pictures]
    return _pack(header, v)


def decode_tag(value: bytes) -> Tag:
    h, tail = _unpack(value)
    v = np.frombuffer(tail, dtype="<f4").reshape(h["rows"], EXPR_DIM).copy()
    return Tag(h["n"], v, h["th"], list(h["r"]), h["c"], [base64.b64decode(p) for p in h.get("p", ())])
