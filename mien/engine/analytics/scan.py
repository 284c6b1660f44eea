"""Whole-store scans shared by tagging and clustering: every face id with its person.

Uses the store's bulk listing when it has one and otherwise walks the sources,
so analytics keep working against any Store that honours docs/INTERFACES.md.
"""

from __future__ import annotations

import numpy as np

from mien.errors import NotFoundError


def all_face_ids(store) -> np.ndarray:
    """Every face id in the store, sorted (int64)."""
    for name in ("face_ids", "all_face_ids"):
        method = getattr(store, name, None)
        if callable(method):
            return np.sort(np.asarray(method(), dtype=np.int64))
    ids: list[int] = []
    for source in store.list_sources():
        ids.extend(face.face_id for face in _faces_of(store, source.uri))
    return np.sort(np.asarray(ids, dtype=np.int64))


def _faces_of(store, uri: str) -> list:
    try:
        return store.faces_of_source(uri, thumbnail=False)  # skip JPEG reads when supported
    except TypeError:
        return store.faces_of_source(uri)


def face_batches(store, chunk: int = 65536):
    """Yield (face_ids, person_ids, pooled vectors) over the whole store, ~chunk faces each.

    One pass over the face records, source by source: each record carries its
    person and pooled vector, so no second lookup is needed.
    """
    ids: list[int] = []
    persons: list[int] = []
    pooled: list[np.ndarray] = []
    for source in store.list_sources():
        for f in _faces_of(store, source.uri):
            ids.append(f.face_id)
            persons.append(f.person_id)
            pooled.append(f.pooled)
        if len(ids) >= chunk:
            yield (np.asarray(ids, np.int64), np.asarray(persons, np.int64),
                   np.asarray(pooled, np.float32).reshape(len(ids), -1))
            ids, persons, pooled = [], [], []
    if ids:
        yield (np.asarray(ids, np.int64), np.asarray(persons, np.int64),
               np.asarray(pooled, np.float32).reshape(len(ids), -1))


def person_of_faces(store, face_ids: np.ndarray) -> np.ndarray:
    """person_id per face id (-1 for unknown), via the persons' face lists (no record reads)."""
    face_ids = np.asarray(face_ids, dtype=np.int64)
    persons = np.full(face_ids.shape, -1, dtype=np.int64)
    if face_ids.size == 0:
        return persons
    for person in store.list_persons():
        members = np.asarray(store.person_face_ids(person.person_id), dtype=np.int64)
        if members.size == 0:
            continue
        pos = np.searchsorted(face_ids, members)
        pos = np.clip(pos, 0, face_ids.size - 1)
        found = face_ids[pos] == members
        persons[pos[found]] = person.person_id
    return persons


def person_names(store) -> dict[int, str | None]:
    return {p.person_id: p.name for p in store.list_persons()}


def resolve_person(store, person) -> "object":
    """A Person from an id (int or digit string) or a name; NotFoundError otherwise."""
    if isinstance(person, (int, np.integer)) or (isinstance(person, str) and person.strip().isdigit()):
        return store.get_person(int(person))
    found = store.find_person(str(person))
    if found is None:
        raise NotFoundError(f"no person named {person!r}")
    return found


def vectors_in_chunks(store, face_ids: np.ndarray, kind: str, chunk: int = 65536):
    """Yield (offset, vectors) for face_ids in chunks, bounding memory on big stores."""
    for start in range(0, len(face_ids), chunk):
        part = face_ids[start : start + chunk]
        yield start, np.asarray(store.vectors(part.tolist(), kind=kind), dtype=np.float32)
