"""What the Client's calls return: plain dataclasses, one per kind of reply.

Nothing here talks to a server; mien.clients.replies fills these from the
reply messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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


# The twin of the engine's QueryVerdict (mien/engine/faces/query_qa.py), field for field:
# the server fills the wire message QueryQuality from a QueryVerdict, and this class
# reads it back. They stay two classes because the client must not import engine code
# (mien.engine.faces loads the analyzer modules), and the engine does not depend on the
# client. tests/test_client_modules.py fails if their fields drift apart.
@dataclass
class QueryQuality:
    """FaceQA's verdict on the query face: would the indexer have kept it, and why not."""

    passed: bool
    reason: str          # "" or comma-separated: blurry, yaw, pitch, occluded
    explanation: str     # one sentence for people; "" for a clean pass
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


@dataclass
class SearchResult:
    hits: list[FaceHit]
    query: QueryFace
    elapsed_ms: float = 0.0
    # with max_distance: a face beyond it would have been next (no hits at all: "nothing
    # within max_distance"), and how far that nearest face beyond the limit is
    beyond_max_distance: bool = False
    nearest_beyond_distance: float | None = None

    def __iter__(self):
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)


@dataclass
class Person:
    person_id: int
    name: str
    face_count: int


@dataclass
class Face:
    face_id: int
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
    track_id: int
    person_id: int
    person_name: str
    thumbnail: bytes
    has_identity: bool
    components: dict[str, float] = field(default_factory=dict)  # named expression components
    occluded: bool = False
    occlusion: float = 0.0


@dataclass
class Stats:
    faces: int
    sources: int
    persons: int
    tags: int
    shards: int
    bytes: int
    encoders: dict[str, str]


@dataclass
class Source:
    """One indexed file (ListSources)."""

    uri: str
    kind: str          # "image" | "video" | "unspecified"
    status: str        # "done" | "failed" | "unspecified"
    error: str
    face_count: int
    duration_ms: int
    frames: int


@dataclass
class Page:
    """One page of a list: `items`, the token of the next page ("" on the last) and the total."""

    items: list
    next_page_token: str
    total_size: int

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class DeletedPerson:
    person_id: int
    released_faces: int


@dataclass
class IndexJob:
    """A server-side indexing run (StartIndexJob, IndexPaths); state running | succeeded |
    failed | cancelled."""

    job_id: str
    state: str
    paths: list[str]
    progress: "IndexProgress"
    error_code: str
    error: str
    create_time_ms: int
    end_time_ms: int
    cancel_requested: bool

    @property
    def done(self) -> bool:
        return self.state != "running"


@dataclass
class IndexProgress:
    files_done: int
    files_total: int
    frames: int
    faces: int
    current: str
    done: bool
    failures: list[str]
    job_id: str = ""
