"""Commit one analysed source, and the persons it creates, to the store.

Person assignment must survive kill -9 like the faces do. `commit_source`
links each identity group to a person (enrolled name first, then the closest
anonymous person, else a new one) and, when the store supports it, writes
faces, new persons and centroid/count updates in ONE transaction
(`replace_source(..., new_persons=, person_updates=)`). New persons are
referenced by faces through placeholders -2 - i until the store assigns ids.

Older stores without those keywords get add_person / replace_source /
update_person in sequence: faces stay exact, but a kill between the calls can
leave an empty person or a stale count.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np


@dataclass
class Group:
    vector: np.ndarray        # mean L2-normalised identity of the group
    members: list             # indices into the source's records


def _atomic(store) -> bool:
    try:
        return "new_persons" in inspect.signature(store.replace_source).parameters
    except (TypeError, ValueError):
        return False


def commit_source(store, book, source, records, groups) -> int:
    """Write `source` with `records`; returns how many persons were created."""
    from mien.engine.store import Person

    # 1. link every group to a person id, or to a new person (placeholder -2 - i)
    new: list[tuple[int, np.ndarray, int]] = []       # (placeholder, centroid, count)
    updates: dict[int, tuple[np.ndarray, int]] = {}
    for group in groups:
        pid = book.match(group.vector)
        n = len(group.members)
        if pid is None:
            placeholder = -2 - len(new)
            new.append((placeholder, group.vector, n))
            book.set(placeholder, None, group.vector, n)   # later groups of this source may join it
            pid = placeholder
        elif pid >= 0:
            centroid, count = book.absorbed(pid, group.vector, n)
            book.set(pid, book.persons[pid].name, centroid, count)
            updates[pid] = (centroid, count)
        else:  # joined a person created by an earlier group of this source
            centroid, count = book.absorbed(pid, group.vector, n)
            book.set(pid, None, centroid, count)
            new[-2 - pid] = (pid, centroid, count)
        for i in group.members:
            records[i].person_id = pid

    # 2. write everything
    if _atomic(store):
        persons = [Person(-1, None, c, n) for _, c, n in new]
        store.replace_source(source, records, new_persons=persons,
                             person_updates=[Person(pid, None, c, n) for pid, (c, n) in updates.items()])
        assigned = {placeholder: p.person_id for (placeholder, _, _), p in zip(new, persons)}
    else:
        assigned = {placeholder: store.add_person(None, c, n) for placeholder, c, n in new}
        for record in records:
            if record.person_id <= -2:
                record.person_id = assigned[record.person_id]
        store.replace_source(source, records)
        for pid, (c, n) in updates.items():
            store.update_person(pid, centroid=c, count=n)
    # 3. the in-memory book learns the real ids
    for placeholder, real in assigned.items():
        p = book.persons.pop(placeholder)
        book.set(real, None, p.centroid, p.count)
    for record in records:
        if record.person_id <= -2:
            record.person_id = assigned[record.person_id]
    return len(new)


def repair_persons(store) -> int:
    """Undo what a kill between the non-atomic person writes can leave behind.

    Needed with stores lacking `replace_source(new_persons=...)` (and harmless
    otherwise: a consistent store is only read). Run by the writer before indexing: an anonymous person without faces (created,
    then killed before its faces were committed) is removed, and a person
    whose count disagrees with its faces (killed before update_person) gets
    count and centroid recomputed from its faces' identity vectors. Returns
    the number of persons repaired.
    """
    persons = store.list_persons()
    repaired = 0
    for person in persons:
        ids = store.person_face_ids(person.person_id)
        if len(ids) == person.count:
            continue
        if len(ids) == 0 and not person.name:
            others = [p for p in store.list_persons() if p.person_id != person.person_id]
            if not others:
                continue
            # no delete_person in the store API: merging an empty, zero-count person
            # into another leaves that one unchanged and removes this one
            store.update_person(person.person_id, count=0)
            store.merge_persons(person.person_id, others[0].person_id)
        else:
            vectors = store.vectors(ids, kind="identity") if len(ids) else np.zeros((0, 0))
            vectors = vectors[np.all(np.isfinite(vectors), axis=1) & (np.abs(vectors).sum(axis=1) > 0)] \
                if len(vectors) else vectors
            if len(vectors):
                mean = vectors.mean(axis=0)
                store.update_person(person.person_id, centroid=mean / np.linalg.norm(mean), count=len(ids))
            else:
                store.update_person(person.person_id, count=len(ids))
        repaired += 1
    return repaired
