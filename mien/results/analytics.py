"""What the Analytics calls (tags, tag reports, summaries, clusters) return, in a server or
run in-process on a store (mien.engine.analytics): the same classes either way."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Tag:
    name: str
    vectors: np.ndarray  # (R, 16)
    threshold: float = 0.5
    reference_face_ids: list[int] = field(default_factory=list)
    created_ms: int = 0
    # JPEG pictures of the references that are not stored faces (a photo uploaded
    # to make the tag): what the tag was made from, for a person to see
    reference_pictures: list[bytes] = field(default_factory=list)


@dataclass
class Segment:
    """A run of tagged samples of one person: [start_ms, end_ms] are sample times."""

    start_ms: int
    end_ms: int
    best_distance: float   # smallest squared-L2 distance to the tag inside the run
    best_face_id: int      # the face that reached it
    faces: int             # tagged faces inside the run


@dataclass
class PersonTagResult:
    """One person (or one unknown track) of a video against one tag."""

    tag: str
    person_id: int              # -1 = unknown person, then track_id tells them apart
    person_name: str | None
    track_id: int
    faces: int                  # faces of this person in the video
    tagged: int                 # of those, faces within the tag's threshold
    rate: float                 # tagged / faces
    segments: list[Segment] = field(default_factory=list)


@dataclass
class SourceTagReport:
    uri: str
    duration_ms: int
    faces: int                  # faces in the video (all persons)
    sample_period_ms: int       # typical step between sampled frames
    tags: list[str]
    results: list[PersonTagResult]  # every person x every tag, persons in first-seen order
    occluded_left_out: int = 0  # occluded faces not tagged (include_occluded=False); not in `faces`


@dataclass
class PersonTagCount:
    """How often one person shows one tag over the whole store."""

    tag: str
    person_id: int
    person_name: str | None
    faces: int
    tagged: int
    rate: float
    best_distance: float        # inf when never tagged
    best_face_id: int           # -1 when never tagged


@dataclass
class StoreTagReport:
    faces: int
    tags: list[str]
    tagged: dict[str, int]      # faces carrying each tag
    persons: list[PersonTagCount]  # persons with >= 1 tagged face, most tagged first per tag
    occluded_left_out: int = 0  # occluded faces not tagged (include_occluded=False); not in `faces`


@dataclass
class Cluster:
    index: int                   # rank by size, 0 = largest
    size: int                    # faces assigned to this cluster
    share: float                 # size / faces summarised
    centre: np.ndarray           # (16,) mean of the members (not normalised)
    representative_face_id: int  # member closest to the centre
    representative_distance: float  # its squared L2 to the centre
    closest_face_ids: list[int] = field(default_factory=list)  # nearest members, best first


@dataclass
class PersonSummary:
    person_id: int
    person_name: str | None
    method: str
    k_requested: int
    k: int                       # clusters actually made (<= distinct vectors)
    faces: int
    seed: int
    clusters: list[Cluster]
    occluded_left_out: int = 0   # the person's occluded faces not summarised; not in `faces`


@dataclass
class StoreClusters:
    faces: int                   # faces in the store
    sampled: int                 # faces clustered (all, or a seeded sample)
    k_requested: int
    k: int
    seed: int
    clusters: list[Cluster]
    occluded_left_out: int = 0   # occluded faces not clustered; not in `faces`
