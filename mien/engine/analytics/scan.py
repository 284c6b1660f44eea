"""Whole-store scans shared by tagging and clustering: every face id with its person.

Uses the store's bulk API (`face_table` from the in-memory index, one-txn
`vectors`) when it has one, and otherwise walks the sources record by record,
so analytics keep working against any Store that honours docs/interfaces.md.
"""

from __future__ import annotations

import numpy as np

from mien.errors import NotFoundError

BLOCK = 1 << 20  # faces per bulk vectors() call: a big block lets the store scan sequentially


def _table(store) -> dict | None:
    method = getattr(store, "face_table", None)
    return method() if callable(method) else None


def all_face_ids(store, *, include_occluded: bool = True) -> np.ndarray:
    """Every face id in the store, sorted (int64); without the occluded ones if asked."""
    table = _table(store)
    if table is not None:
        ids = np.asarray(table["face_id"], dtype=np.int64)
    else:
        found: list[int] = []
        for source in store.list_sources():
            found.extend(face.face_id for face in _faces_of(store, source.uri))
        ids = np.sort(np.asarray(found, dtype=np.int64))
    return ids if include_occluded else without(ids, occluded_ids(store))


def occluded_ids(store) -> np.ndarray:
    """Sorted ids of the faces FaceQA flagged as occluded (hand or mask over the mouth).

    From the store's cached column when it has one, else by walking the records
    (faces indexed before the flag existed read as clear)."""
    method = getattr(store, "occluded_face_ids", None)
    if callable(method):
        return np.asarray(method(), dtype=np.int64)
    found = [f.face_id for source in store.list_sources() for f in _faces_of(store, source.uri)
             if getattr(f, "occluded", False)]
    return np.sort(np.asarray(found, dtype=np.int64))


def without(ids: np.ndarray, drop: np.ndarray | None) -> np.ndarray:
    """ids minus drop, order kept."""
    ids = np.asarray(ids, dtype=np.int64)
    if drop is None or len(drop) == 0 or len(ids) == 0:
        return ids
    return ids[~np.isin(ids, drop)]


def _faces_of(store, uri: str) -> list:
    try:
        return store.faces_of_source(uri, thumbnail=False)  # skip JPEG reads when supported
    except TypeError:
        return store.faces_of_source(uri)


def face_batches(store, chunk: int = 65536, *, skip: np.ndarray | None = None):
    """Yield (face_ids, person_ids, pooled vectors) over the whole store, ~chunk faces each;
    skip: face ids to leave out (occluded_ids)."""
    table = _table(store)
    if table is None:
        yield from _record_batches(store, chunk, skip)
        return
    ids = np.asarray(table["face_id"], dtype=np.int64)
    persons = np.asarray(table["person_id"], dtype=np.int64)
    if skip is not None and len(skip):
        keep = ~np.isin(ids, skip)
        ids, persons = ids[keep], persons[keep]
    for lo in range(0, len(ids), BLOCK):
        block = ids[lo:lo + BLOCK]
        pooled = np.asarray(store.vectors(block, kind="pooled"), dtype=np.float32)
        for start in range(0, len(block), chunk):
            end = start + chunk
            yield block[start:end], persons[lo + start:lo + end], pooled[start:end]


def _record_batches(store, chunk: int, skip: np.ndarray | None = None):
    """The fallback: one pass over the face records, source by source."""
    ids: list[int] = []
    persons: list[int] = []
    pooled: list[np.ndarray] = []
    skipped = set() if skip is None else set(int(i) for i in skip)
    for source in store.list_sources():
        for f in _faces_of(store, source.uri):
            if f.face_id in skipped:
                continue
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
    """person_id per face id (-1 for unknown or gone), without record reads."""
    face_ids = np.asarray(face_ids, dtype=np.int64)
    persons = np.full(face_ids.shape, -1, dtype=np.int64)
    if face_ids.size == 0:
        return persons
    table = _table(store)
    if table is not None:
        all_ids = np.asarray(table["face_id"], dtype=np.int64)
        if all_ids.size:
            pos = np.minimum(np.searchsorted(all_ids, face_ids), all_ids.size - 1)
            found = all_ids[pos] == face_ids
            persons[found] = np.asarray(table["person_id"], dtype=np.int64)[pos[found]]
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
        raise NotFoundError(f"no person named {person!r}", reason="PERSON_NOT_FOUND",
                            resource=("mien.v1.Person", str(person)))
    return found


def vectors_in_chunks(store, face_ids: np.ndarray, kind: str, chunk: int = BLOCK):
    """Yield (offset, vectors) for face_ids in chunks, bounding memory on big stores.

    Big chunks: one store.vectors call per chunk is one transaction, and a
    chunk covering much of the store is read by one sequential scan.
    """
    face_ids = np.asarray(face_ids, dtype=np.int64)
    for start in range(0, len(face_ids), chunk):
        part = face_ids[start : start + chunk]
        yield start, np.asarray(store.vectors(part, kind=kind), dtype=np.float32)
