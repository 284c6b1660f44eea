"""What the search calls (search, cross, identity, upload_image) return."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mien.results.lists import iterates_over


@dataclass(frozen=True)
class Upload:
    """An image uploaded with Client.upload_image, usable as a query."""

    upload_id: str


@dataclass
class ComponentMatch:
    """How query and hit compare on one named expression component (see FaceHit.agreeing)."""

    name: str
    kind: str              # "emotion" | "action_unit" | "geometry"
    query_value: float
    hit_value: float
    contribution: float    # agreeing: q_i*h_i; differing: (q_i - h_i)^2, in vector units
    share: float           # of the dot product (agreeing) or of the distance (differing)


@dataclass
class FaceHit:
    face_id: int
    source_uri: str
    timestamp_ms: int
    frame_index: int
    bbox: tuple[float, float, float, float]
    person_id: int
    person_name: str
    distance: float
    track_id: int = -1
    thumbnail: bytes = b""
    # with explain=True: named components (e.g. "happy": 0.93, "lip_corner_pull": 1.2) and
    # why the hit matched: the components shared most and those that differ most
    components: dict[str, float] = field(default_factory=dict)
    agreeing: list[ComponentMatch] = field(default_factory=list)
    differing: list[ComponentMatch] = field(default_factory=list)
    occluded: bool = False     # FaceQA flagged the mouth as covered (and the score behind it)
    occlusion: float = 0.0


@dataclass
class QueryQuality:
    """FaceQA's verdict on the query face: would the indexer have kept it, and why not.

    The engine makes it (mien.engine.faces.query_qa), the server sends it as the wire
    message QueryQuality, and the clients read it back into this class."""

    passed: bool         # the indexer would have kept this face (occluded faces are kept, flagged)
    reason: str          # "" or comma-separated: blurry, yaw, pitch, occluded
    explanation: str     # one sentence for people: what failed, by how much, what it means; "" for a clean pass
    sharpness: float
    yaw: float
    pitch: float
    roll: float
    occluded: bool
    occlusion: float


@dataclass
class DetectedFace:
    index: int
    bbox: tuple[float, float, float, float]
    det_score: float
    quality_passed: bool
    quality_reason: str


@dataclass
class QueryFace:
    vector: np.ndarray
    face_id: int = -1
    person_id: int = -1
    faces: list[DetectedFace] = field(default_factory=list)
    face_index: int = -1
    bbox: tuple[float, float, float, float] | None = None
    components: dict[str, float] = field(default_factory=dict)  # with explain=True
    quality: QueryQuality | None = None  # image and face_id queries


@iterates_over("hits")
@dataclass
class SearchResult:
    hits: list[FaceHit]
    query: QueryFace
    elapsed_ms: float = 0.0
    # with max_distance: a face beyond it would have been next (no hits at all: "nothing
    # within max_distance"), and how far that nearest face beyond the limit is
    beyond_max_distance: bool = False
    nearest_beyond_distance: float | None = None
