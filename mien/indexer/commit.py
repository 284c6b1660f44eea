"""Commit one analysed source, and the persons it creates, to the store.

`commit_source` decides each identity group's person by the rules of
`persons.py` (cannot-link, no chaining, ambiguity makes a new person) and
writes the faces and the new persons in ONE `replace_source` transaction: new
persons are referred to by the faces through placeholders -2 - i until the
store assigns ids. The store itself keeps every person's face count and
identity centroid in that same transaction (including the faces a re-index
drops), so a kill -9 can leave neither an orphan person nor a stale count,
and nothing needs repairing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mien.indexer.persons import PersonBook, normalise


@dataclass
class Group:
    """Faces of one source the clustering believes are one human."""

    vectors: np.ndarray       # (k, dim) unit identity vectors: one per track (video) or face (image)
    members: list             # indices into the source's records
    frames: set = field(default_factory=set)   # frame indices its faces are in (cannot-link)

    @property
    def vector(self) -> np.ndarray:
        return normalise(np.mean(np.atleast_2d(self.vectors), axis=0))


def assign_persons(book: PersonBook, groups: list[Group]) -> tuple[list[int], int]:
    """A person id per group (placeholders -2 - i for new persons) and how many are new.

    The most confident groups go first. A group is never linked to a person
    that another group of this source already holds in one of its frames; the
    book learns each decision, so later groups of the source can join a person
    an earlier one started.
    """
    book.trim_cache()
    order = sorted(range(len(groups)), key=lambda i: (book.match(groups[i].vectors).distance, i))
    claimed: dict[int, set] = {}
    out = [0] * len(groups)
    n_new = 0
    for i in order:
        g = groups[i]
        pid = book.match(g.vectors).person_id
        if pid is not None and claimed.get(pid, set()) & g.frames:
            pid = None    # that person is already someone else in one of these frames
        if pid is None:
            pid = -2 - n_new
            n_new += 1
        book.add(pid, g.vectors)
        claimed.setdefault(pid, set()).update(g.frames)
        out[i] = pid
    return out, n_new


def commit_source(store, book: PersonBook, source, records, groups) -> int:
    """Write `source` with `records`; returns how many persons were created."""
    from mien.engine.store import Person

    old = store.get_source(source.uri)
    before = {f.person_id for f in store.faces_of_source(source.uri, thumbnail=False)} if old else set()
    pids, n_new = assign_persons(book, groups)
    seeds: list = [None] * n_new
    for g, pid in zip(groups, pids):
        for i in g.members:
            records[i].person_id = pid
        if pid <= -2 and seeds[-2 - pid] is None:
            seeds[-2 - pid] = g.vector
    persons = [Person(-1, None, seed, 0) for seed in seeds]
    try:
        store.replace_source(source, records, new_persons=persons)
    except BaseException:
        for i in range(n_new):     # nothing was written: forget the placeholders,
            book.forget(-2 - i)    # and re-read the persons this source touched
        for pid in {p for p in pids if p >= 0}:
            book.refresh(pid)
        raise
    # the in-memory book mirrors what the store holds now
    for i, p in enumerate(persons):
        book.renumber(-2 - i, p.person_id)
    for record in records:
        if record.person_id <= -2:
            record.person_id = persons[-2 - record.person_id].person_id
    for pid in before - {-1}:  # the replaced faces may have emptied (deleted) or shifted a person
        book.refresh(pid)
    return n_new


def repair_persons(store) -> int:
    """Delete anonymous persons without faces; returns how many.

    The store keeps counts exact in every transaction and creates the
    indexer's persons together with their faces, so the only empties left are
    anonymous persons created by hand (add_person) or by an older mien killed
    between its person writes. Cheap: reads the person records only.
    """
    removed = 0
    for person in store.list_persons():
        if person.count == 0 and not person.name and len(store.person_face_ids(person.person_id)) == 0:
            store.delete_person(person.person_id)
            removed += 1
    return removed
