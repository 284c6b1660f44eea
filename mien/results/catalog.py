"""What the catalog calls (faces, persons, sources, stats) return."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mien.results.lists import iterates_over


@dataclass
class FaceFields:
    """What every stored face has: where it was found, by which detection, its pose and its
    expression vectors. The store's FaceRecord and GetFace's Face extend it."""

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


@dataclass
class Face(FaceFields):
    """One indexed face (GetFace)."""

    face_id: int
    track_id: int
    person_id: int
    person_name: str
    thumbnail: bytes
    has_identity: bool
    components: dict[str, float] = field(default_factory=dict)  # named expression components
    occluded: bool = False
    occlusion: float = 0.0


@dataclass
class Person:
    person_id: int
    name: str
    face_count: int


@dataclass
class DeletedPerson:
    person_id: int
    released_faces: int


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


@iterates_over("items")
@dataclass
class Page:
    """One page of a list: `items`, the token of the next page ("" on the last) and the total."""

    items: list
    next_page_token: str
    total_size: int
