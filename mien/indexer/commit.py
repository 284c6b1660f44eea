"""Commit one analysed source, and the persons it creates, to the store.

`commit_source` links each identity group to a person (enrolled name first,
then the closest anonymous person, else a new one) and writes the faces and
the new persons in ONE `replace_source` transaction: new persons are referred
to by the faces through placeholders -2 - i until the store assigns ids. The
store itself keeps every person's face count and identity centroid in that
same transaction (including the faces a re-index drops), so a kill -9 can
leave neither an orphan person nor a stale count, and nothing needs repairing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Group:
    vector: np.ndarray        # mean L2-normalised identity of the group
    members: list             # indices into the source's records


def commit_source(store, book, source, records, groups) -> int:
    """Write `source` with `records`; returns how many persons were created."""
    from mien.engine.store import Person

    # 1. link every group to a person id, or to a new person (placeholder -2 - i)
    new: list[np.ndarray] = []
    touched: set[int] = set()
    for group in groups:
        pid = book.match(group.vector)
        if pid is None:
            pid = -2 - len(new)
            new.append(group.vector)
            book.set(pid, None, group.vector, len(group.members))  # later groups of this source may join it
        elif pid >= 0:
            touched.add(pid)
        for i in group.members:
            records[i].person_id = pid

    # 2. one transaction: old faces out, faces and new persons in, counts/centroids follow
    reindex = store.get_source(source.uri) is not None
    persons = [Person(-1, None, c, 0) for c in new]
    store.replace_source(source, records, new_persons=persons)

    # 3. the in-memory book mirrors what the store computed
    for i in range(len(new)):
        book.persons.pop(-2 - i, None)
    for record in records:
        if record.person_id <= -2:
            record.person_id = persons[-2 - record.person_id].person_id
    if reindex:  # the replaced faces may have emptied (deleted) or shifted any person
        book.reload(store.list_persons())
    else:
        for pid in touched | {p.person_id for p in persons}:
            book.refresh(store.get_person(pid))
    return len(new)


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
