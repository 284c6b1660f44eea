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
