"""Build the reply messages several services share: FaceHit lists.

Hits are appended in place (`repeated.add()` and field assignment): about
half the cost of constructing FaceHit and BBox messages and copying them in,
and the server builds ten or more per query.
"""

from __future__ import annotations


def add_hits(repeated, records, distances, person_name) -> None:
    """Append a FaceHit per store HitRecord to `repeated` (a repeated FaceHit field).

    distances: one per record; person_name: person id -> name ('' if none).
    A record's thumbnail is copied when it has one.
    """
    add = repeated.add
    for rec, distance in zip(records, distances):
        hit = add(face_id=rec.face_id, source_uri=rec.source_uri, timestamp_ms=rec.timestamp_ms,
                  frame_index=rec.frame_index, person_id=rec.person_id,
                  person_name=person_name(rec.person_id), distance=float(distance),
                  track_id=rec.track_id)
        box = hit.bbox
        box.x1, box.y1, box.x2, box.y2 = rec.bbox
        if rec.thumbnail:
            hit.thumbnail = rec.thumbnail
