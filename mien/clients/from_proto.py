"""Reply messages (mien.v1) -> the reply types the Client returns (mien.results)."""

from __future__ import annotations

import numpy as np

from mien.results.catalog import Face, Person, Source, Stats
from mien.results.index_jobs import IndexJob, IndexProgress
from mien.results.search import ComponentMatch, DetectedFace, FaceHit, QueryFace, QueryQuality, SearchResult
from mien.v1 import search_pb2


def bbox(b) -> tuple[float, float, float, float]:
    return (b.x1, b.y1, b.x2, b.y2)


def components(repeated) -> dict[str, float]:
    return {c.name: c.value for c in repeated}


def matches(repeated) -> list[ComponentMatch]:
    return [ComponentMatch(m.name, m.kind, m.query_value, m.hit_value, m.contribution, m.share) for m in repeated]


def hit(h) -> FaceHit:
    return FaceHit(h.face_id, h.source_uri, h.timestamp_ms, h.frame_index, bbox(h.bbox),
                   h.person_id, h.person_name, h.distance, h.track_id, h.thumbnail,
                   components(h.components), matches(h.agreeing), matches(h.differing),
                   h.occluded, h.occlusion)


def search_result(resp) -> SearchResult:
    """A SearchResponse (every search kind answers with one)."""
    q = resp.query
    query = QueryFace(
        vector=np.asarray(q.vector.values, dtype=np.float32), face_id=q.face_id,
        person_id=q.person_id, face_index=q.face_index,
        faces=[DetectedFace(f.index, bbox(f.bbox), f.det_score, f.quality_passed, f.quality_reason)
               for f in q.faces],
        bbox=bbox(q.bbox) if q.HasField("bbox") else None,
        components=components(q.components),
        quality=(QueryQuality(q.quality.passed, q.quality.reason, q.quality.explanation, q.quality.sharpness,
                              q.quality.yaw, q.quality.pitch, q.quality.roll, q.quality.occluded,
                              q.quality.occlusion) if q.HasField("quality") else None),
    )
    return SearchResult([hit(h) for h in resp.hits], query, resp.elapsed_ms, resp.beyond_max_distance,
                        resp.nearest_beyond_distance if resp.HasField("nearest_beyond_distance") else None)


def face(r) -> Face:
    """A FaceRecord (GetFace)."""
    return Face(
        source_uri=r.source_uri, frame_index=r.frame_index, timestamp_ms=r.timestamp_ms, bbox=bbox(r.bbox),
        landmarks5=np.asarray(r.landmarks5, dtype=np.float32).reshape(-1, 2), det_score=r.det_score,
        sharpness=r.sharpness, yaw=r.yaw, pitch=r.pitch, roll=r.roll,
        expression=np.asarray(r.expression.values, dtype=np.float32),
        pooled=np.asarray(r.pooled.values, dtype=np.float32), face_id=r.face_id, track_id=r.track_id,
        person_id=r.person_id, person_name=r.person_name, thumbnail=r.thumbnail, has_identity=r.has_identity,
        components=components(r.components), occluded=r.occluded, occlusion=r.occlusion,
    )


def person(p) -> Person:
    return Person(p.person_id, p.name, p.face_count)


def stats(s) -> Stats:
    return Stats(s.faces, s.sources, s.persons, s.tags, s.shards, s.bytes, dict(s.encoders))


def enum_word(value: int, enum, prefix: str) -> str:
    """SOURCE_KIND_VIDEO -> "video"."""
    return enum.Name(value)[len(prefix):].lower()


def source(x) -> Source:
    return Source(x.uri, enum_word(x.kind, search_pb2.SourceKind, "SOURCE_KIND_"),
                  enum_word(x.status, search_pb2.SourceStatus, "SOURCE_STATUS_"), x.error,
                  x.face_count, x.duration_ms, x.frames)


def progress(m) -> IndexProgress:
    return IndexProgress(m.files_done, m.files_total, m.frames, m.faces, m.current, m.done,
                         list(m.failures), m.job_id)


def job(m) -> IndexJob:
    return IndexJob(m.job_id, enum_word(m.state, search_pb2.IndexJobState, "INDEX_JOB_STATE_"),
                    list(m.paths), progress(m.progress), m.error_code, m.error, m.create_time_ms,
                    m.end_time_ms, m.cancel_requested)
