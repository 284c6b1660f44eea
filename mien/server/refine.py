"""What every search kind refines the same way: source and time filters, one hit per
track or per source, and a distance limit.

The store ranks faces (filters it applies itself, such as persons, go to it
directly); this module walks its ranking in order and keeps the hits that
pass. When too few remain it asks the store for a longer ranking (4x, up to a
cap), so `top_k` distinct hits come back whenever the store holds them. Hits
arrive sorted by distance, so the first one beyond `max_distance` ends the
walk: it is the nearest face beyond the limit, reported so a client can say
"nothing within d; the nearest is at D".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mien.errors import BadInputError, NotFoundError
from mien.filenames import find

NONE, TRACK, SOURCE = "none", "track", "source"
GROWTH = 4


@dataclass
class Refinement:
    persons: frozenset | None = None           # person ids a hit must have
    exclude_persons: frozenset | None = None   # person ids a hit must not have
    sources: frozenset | None = None           # source URIs a hit must come from
    time_range: tuple | None = None            # (start_ms, end_ms) inclusive; end None = open
    distinct: str = NONE                       # none | track | source
    max_distance: float | None = None

    def filters(self) -> bool:
        """True when hits must be filtered here (the store did not)."""
        return any(v is not None for v in (self.persons, self.exclude_persons, self.sources, self.time_range))


@dataclass
class Refined:
    hits: list
    beyond_max_distance: bool = False          # a face beyond max_distance would have been next
    nearest_beyond: float | None = None        # its distance
    fetched: list = field(default_factory=list)


def check_sources(store, uris) -> frozenset | None:
    """The source filter; a URI the store does not hold is NOT_FOUND (it would match nothing)."""
    if not uris:
        return None
    # a client writes a file name that is not UTF-8 escaped (mien/filenames.py): the stored name
    found = [find(u, lambda name: store.get_source(name) is not None) for u in uris]
    missing = [u for u, name in zip(uris, found) if name is None]
    if missing:
        raise NotFoundError(f"no indexed source {missing[0]!r}"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                            + "; ListSources lists them as stored (absolute paths)",
                            reason="SOURCE_NOT_FOUND", resource=("mien.v1.Source", missing[0]))
    return frozenset(found)


def check_max_distance(value: float | None) -> float | None:
    if value is None:
        return None
    if not value >= 0:  # also NaN
        raise BadInputError(f"max_distance must be >= 0, got {value}", field="max_distance")
    return float(value)


def _key(hit, distinct: str):
    rec = hit.record
    if distinct == TRACK:
        return (rec.source_uri, rec.track_id)
    if distinct == SOURCE:
        return rec.source_uri
    return hit.face_id


def _passes(hit, r: Refinement) -> bool:
    rec = hit.record
    if r.persons is not None and rec.person_id not in r.persons:
        return False
    if r.exclude_persons is not None and rec.person_id in r.exclude_persons:
        return False
    if r.sources is not None and rec.source_uri not in r.sources:
        return False
    if r.time_range is not None:
        lo, hi = r.time_range
        if (lo is not None and rec.timestamp_ms < lo) or (hi is not None and rec.timestamp_ms > hi):
            return False
    return True


def refine(fetch, k: int, r: Refinement, cap: int, should_stop=None) -> Refined:
    """Top-k hits of `fetch(n)` (a ranking of n hits with records, ascending distance)
    that pass `r`; cap bounds n. should_stop() ends the search early (a cancelled call)."""
    if k <= 0:
        return Refined([])
    plain = not r.filters() and r.distinct == NONE
    if plain and r.max_distance is None:  # every hit passes and is its own key: the first k
        ranked = fetch(k)
        return Refined(ranked[:k], fetched=ranked)
    n = k if plain else min(cap, k * GROWTH)
    while True:
        ranked = fetch(n)
        kept, seen = [], set()
        out = Refined(kept, fetched=ranked)
        for hit in ranked:
            if not _passes(hit, r):
                continue
            key = _key(hit, r.distinct)
            if key in seen:
                continue
            if r.max_distance is not None and hit.distance > r.max_distance:
                out.beyond_max_distance, out.nearest_beyond = True, float(hit.distance)
                return out  # sorted: everything after is farther still
            seen.add(key)
            kept.append(hit)
            if len(kept) == k:
                return out
        if len(ranked) < n or n >= cap or (should_stop is not None and should_stop()):
            return out  # the store has no more (or we may not look further)
        n = min(cap, n * GROWTH)


_DISTINCT_NAMES = {0: NONE, 1: NONE, 2: TRACK, 3: SOURCE}


def distinct_of(value: int) -> str:
    if value not in _DISTINCT_NAMES:
        raise BadInputError(f"unknown distinct value {value}", field="distinct")
    return _DISTINCT_NAMES[value]


def candidate_cap(k: int) -> int:
    """How many ranked faces a refined search may look at: enough for one hit per
    source or track in all but pathological stores, bounded so a call stays cheap."""
    return min(65536, max(4096, 64 * k))
