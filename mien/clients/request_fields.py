"""Request fields shared by several calls: person references, search filters, and
max_distance / distinct on the three search kinds."""

from __future__ import annotations

import numpy as np

from mien.filenames import escape
from mien.v1 import common_pb2

DISTINCT = {"none": 1, "track": 2, "source": 3}


def person_ref(person: int | str) -> common_pb2.PersonRef:
    """An id (an int, or a string of digits such as "7") or a name."""
    if isinstance(person, (int, np.integer)) or (isinstance(person, str) and person.strip().isdigit()):
        return common_pb2.PersonRef(person_id=int(person))
    return common_pb2.PersonRef(name=str(person))


def filters(persons=(), exclude_persons=(), sources=(), time_range=None,
            exclude_occluded: bool = False) -> common_pb2.Filters:
    out = common_pb2.Filters(
        persons=[person_ref(p) for p in persons],
        exclude_persons=[person_ref(p) for p in exclude_persons],
        sources=[escape(str(s)) for s in sources], exclude_occluded=exclude_occluded,  # file names as text
    )
    if time_range is not None:
        out.time_range.start_ms = int(time_range[0] or 0)
        out.time_range.end_ms = int(time_range[1] or 0)
    return out


def refine(req, max_distance, distinct) -> None:
    """max_distance (squared L2) and distinct ("none" | "track" | "source") on a search request."""
    if max_distance is not None:
        req.max_distance = float(max_distance)
    if distinct is not None:
        if distinct not in DISTINCT:
            raise ValueError(f"distinct must be one of {', '.join(DISTINCT)}, not {distinct!r}")
        req.distinct = DISTINCT[distinct]
