"""Enrolling named persons (`mien person add`), and finding persons by id or name.

Enrolment takes one face per photo: the only face, or the one `face_index`
chooses (a photo with several faces without it is an error that lists them).
A face FaceQA rejected is refused with the reason. The enrolled identity then
names the anonymous persons that are clearly this human, by the store's
linking rules (persons.py): within the threshold of the enrolled faces, by
the median over their member faces, and a margin closer than any other named
person. An anonymous person that shares an image or frame with the person's
faces, or holds another face of an enrolment photo, is never taken (two
faces of one frame are two people). When the name is new, the closest such
anonymous person receives it and keeps its id; the others are merged into it.
"""

from __future__ import annotations

import os

import numpy as np

from mien.engine.faces.boxes import iou
from mien.errors import BadInputError
from mien.indexer.persons import PersonBook, link_rules, normalise


def _describe(index: int, face) -> str:
    x1, y1, x2, y2 = (int(round(v)) for v in face.bbox)
    q = face.quality
    if q is None:
        verdict = "FaceQA: not assessed"
    elif q.passed:
        verdict = "FaceQA: passed"
    else:
        verdict = f"FaceQA: rejected ({q.reason or 'rejected'})"
    return f"  --face-index {index}: box ({x1}, {y1}, {x2}, {y2}), {x2 - x1}x{y2 - y1} px, {verdict}"


def _chosen_faces(analyzer, images, face_index) -> list[dict]:
    """One face per image: {"image", "face_index", "bbox", "identity", "uri"}; errors say what to do."""
    from mien.engine.faces import load_image

    if face_index is not None:
        face_index = [int(face_index)] if np.isscalar(face_index) else [int(i) for i in face_index]
        if len(face_index) == 1 and len(images) > 1:
            raise BadInputError("--face-index given once for several photos: give it once per photo, in order")
        if len(face_index) != len(images):
            raise BadInputError(f"{len(face_index)} --face-index values for {len(images)} photos: one per photo")
    chosen = []
    for n, item in enumerate(images):
        name = "<array>" if isinstance(item, np.ndarray) else os.fspath(item)
        image = item if isinstance(item, np.ndarray) else load_image(item)
        faces = analyzer.analyze(image, identity=True, keep_rejected=True)
        if not faces:
            raise BadInputError(f"no face found in {name}")
        listing = "\n".join(_describe(i, f) for i, f in enumerate(faces))
        if face_index is None and len(faces) > 1:
            raise BadInputError(f"{name} shows {len(faces)} faces; choose the person's face with --face-index:\n"
                                f"{listing}")
        i = 0 if face_index is None else face_index[n]
        if not 0 <= i < len(faces):
            raise BadInputError(f"--face-index {i}: {name} has faces 0..{len(faces) - 1}:\n{listing}")
        face = faces[i]
        if face.quality is not None and not face.quality.passed:
            raise BadInputError(f"face {i} of {name} was rejected by FaceQA ({face.quality.reason or 'rejected'}): "
                                "enrol from a sharper, more frontal, unoccluded face")
        if face.identity is None:
            raise BadInputError(f"face {i} of {name} has no identity vector")
        uri = None if isinstance(item, np.ndarray) else os.path.realpath(os.fspath(item))
        chosen.append({"image": name, "face_index": i, "bbox": tuple(float(v) for v in face.bbox),
                       "identity": normalise(face.identity), "uri": uri})
    return chosen


def _indexed_faces(store, chosen) -> tuple[set[int], set[int]]:
    """(face ids of the enrolled faces, face ids of the other faces) of enrolment photos in the store."""
    mine, others = set(), set()
    for c in chosen:
        if c["uri"] is None or store.get_source(c["uri"]) is None:
            continue
        for f in store.faces_of_source(c["uri"], thumbnail=False):
            (mine if iou(f.bbox, c["bbox"]) >= 0.5 else others).add(int(f.face_id))
    return mine, others


def enroll_person(store_dir, name: str, images, engine_config=None, *, face_index=None,
                  threshold: float | None = None, analyzer=None) -> dict:
    """Add (or extend) the named person `name` from reference photos; see the module doc.

    face_index: for photos with several faces, the face to take (one int per
    photo; faces are numbered left to right). Returns {"person_id", "name",
    "created", "renamed" (an anonymous id that got the name, or None),
    "merged" (anonymous ids whose faces now carry the name), "skipped"
    ([(id, reason)]), "took" (the faces used), "faces" (the person's count)}.
    """
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.store import Store

    name = (name or "").strip()
    if not name:
        raise BadInputError("a person needs a non-empty name")
    if not images:
        raise BadInputError("enrolling a person needs at least one image")
    if analyzer is None:
        from mien.indexer.pipeline import engine_config_for

        # an existing store's own engine (its models and settings; see engine_record)
        analyzer = FaceAnalyzer(engine_config_for(store_dir, engine_config or EngineConfig()))
    chosen = _chosen_faces(analyzer, list(images), face_index)
    vectors = np.stack([c["identity"] for c in chosen])
    reference = normalise(np.mean(vectors, axis=0))
    with Store(os.fspath(store_dir), mode="w", encoders=analyzer.encoders) as store:
        recorded = store.person_rules() or {}
        rules = link_rules(store.encoders or analyzer.encoders,
                           threshold if threshold is not None else recorded.get("threshold"),
                           recorded.get("margin"))
        book = PersonBook.from_store(store, rules)
        mine, others = _indexed_faces(store, chosen)
        person = store.find_person(name)
        pid = None if person is None else person.person_id
        held = set() if pid is None else {int(f) for f in store.person_face_ids(pid)}

        # candidates: anonymous persons within the threshold, closest first
        candidates = sorted((book.distance(vectors, p), p) for p in book.shortlist(vectors)
                            if not book.persons[p].name)
        merged, skipped, renamed = [], [], None
        for d, other in candidates:
            if d > rules.threshold:
                break
            faces = {int(f) for f in store.person_face_ids(other)}
            if faces & others:
                skipped.append((other, "holds another face of an enrolment photo"))
                continue
            rival = [q for q in book.shortlist(book.members(other))
                     if book.persons[q].name not in (None, name)
                     and book.distance(book.members(other), q) < d + rules.margin]
            if rival:
                skipped.append((other, f"as close to named person {rival[0]}"))
                continue
            if (held | mine) and store.frame_conflicts(sorted(faces), sorted(held | mine), limit=1):
                skipped.append((other, "shares an image or frame with the person's faces"))
                continue
            if pid is None:  # the name goes to the closest clear match, which keeps its id
                pid = renamed = other
                store.update_person(pid, name=name, centroid=reference)
            else:
                store.merge_persons(other, pid)
            merged.append(other)
            held |= faces
        created = pid is None and person is None
        if pid is None:
            pid = store.add_person(name, reference)
        elif person is not None:
            store.update_person(pid, centroid=normalise(normalise(person.centroid) + reference))
        took = [{"image": c["image"], "face_index": c["face_index"],
                 "bbox": [round(v, 1) for v in c["bbox"]]} for c in chosen]
        faces = len(store.person_face_ids(pid))
        return {"person_id": pid, "name": name, "created": created, "renamed": renamed, "merged": merged,
                "skipped": skipped, "took": took, "faces": faces}


def resolve_person(store, ref: str):
    """A person by id ("12") or by name."""
    from mien.errors import NotFoundError

    if ref.lstrip("-").isdigit():
        return store.get_person(int(ref))
    person = store.find_person(ref)
    if person is None:
        raise NotFoundError(f"no person named {ref!r}")
    return person
