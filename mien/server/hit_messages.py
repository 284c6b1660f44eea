"""Build the reply messages several services share: FaceHit lists.

Hits are appended in place (`repeated.add()` and field assignment): about
half the cost of constructing FaceHit and BBox messages and copying them in,
and the server builds ten or more per query.
"""

from __future__ import annotations

from mien.filenames import escape


def add_hits(repeated, records, distances, person_name) -> None:
    """Append a FaceHit per store HitRecord to `repeated` (a repeated FaceHit field).

    distances: one per record; person_name: person id -> name ('' if none).
    A record's thumbnail is copied when it has one.
    """
    add = repeated.add
    names: dict = {}   # person id -> name, looked up once per person
    for rec, distance in zip(records, distances):
        person = rec.person_id
        name = names.get(person)
        if name is None:
            name = names[person] = person_name(person)
        hit = add(face_id=rec.face_id, source_uri=escape(rec.source_uri), timestamp_ms=rec.timestamp_ms,
                  frame_index=rec.frame_index, person_id=person, person_name=name, distance=float(distance),
                  track_id=rec.track_id, occluded=rec.occluded, occlusion=rec.occlusion)
        box = hit.bbox
        box.x1, box.y1, box.x2, box.y2 = rec.bbox
        if rec.thumbnail:
            hit.thumbnail = rec.thumbnail


def add_components(repeated, components) -> None:
    """Append an ExpressionComponent per engine Component to `repeated`."""
    add = repeated.add
    for c in components:
        add(name=c.name, kind=c.kind, value=c.value)


def add_explanations(reply, query_vector, hit_vectors, encoder: str, top: int = 3) -> None:
    """Fill a SearchResponse's query and hit components and each hit's agreeing/differing ones.

    hit_vectors: the hits' vectors with named components (the stored ones, or the fer-au-v2
    vectors of a learned space's faces), in reply.hits order; query_vector None: hits only.
    Does nothing for encoders whose dimensions have no names (FEENet).
    """
    from mien.engine.faces import explain

    if not explain.has_components(encoder):
        return
    if query_vector is not None:   # None: a learned space queried by a raw vector (no features)
        add_components(reply.query.components, explain.components(query_vector, encoder))
    for hit, vec in zip(reply.hits, hit_vectors):
        add_components(hit.components, explain.components(vec, encoder))
        if query_vector is None:
            continue
        why = explain.explain(query_vector, vec, encoder, top)
        for repeated, matches in ((hit.agreeing, why.agreeing), (hit.differing, why.differing)):
            for m in matches:
                repeated.add(name=m.name, kind=m.kind, query_value=m.query_value, hit_value=m.hit_value,
                             contribution=m.contribution, share=m.share)
