"""Turn per-sample tag decisions of one person into time segments.

Pure functions over arrays, so the merging rules can be tested without a store.
"""

from __future__ import annotations

import numpy as np

from mien.results.analytics import Segment


def sample_period_ms(timestamps_ms) -> int:
    """The typical step between sampled frames: median gap of distinct timestamps (0 if < 2)."""
    ts = np.unique(np.asarray(timestamps_ms, dtype=np.int64))
    if ts.size < 2:
        return 0
    return int(np.median(np.diff(ts)))


def merge_segments(
    timestamps_ms,
    face_ids,
    distances,
    tagged,
    *,
    max_gap_ms: int | None,
) -> list[Segment]:
    """Merge the tagged samples of one person into segments.

    Inputs are per face, in any order. Faces sharing a timestamp form one sample,
    tagged when any of them is. Two tagged samples are adjacent (same segment)
    when no untagged sample of this person lies between them and they are at
    most `max_gap_ms` apart (None: no gap limit) — so a person leaving the
    picture for a while starts a new segment, a single missed detection does not.
    """
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    ids = np.asarray(face_ids, dtype=np.int64)
    dist = np.asarray(distances, dtype=np.float64)
    mask = np.asarray(tagged, dtype=bool)
    if ts.size == 0:
        return []
    order = np.lexsort((ids, ts))
    ts, ids, dist, mask = ts[order], ids[order], dist[order], mask[order]

    segments: list[Segment] = []
    current: Segment | None = None
    last_ts = None
    i = 0
    while i < ts.size:
        j = i
        while j < ts.size and ts[j] == ts[i]:  # one sample = all faces at this time
            j += 1
        sample_mask = mask[i:j]
        if not sample_mask.any():
            current = None  # an untagged sample breaks the run
        else:
            hit = np.flatnonzero(sample_mask) + i
            best = hit[np.argmin(dist[hit])]
            gap_ok = (
                current is not None
                and last_ts is not None
                and (max_gap_ms is None or ts[i] - last_ts <= max_gap_ms)
            )
            if gap_ok:
                current.end_ms = int(ts[i])
                current.faces += int(hit.size)
                if dist[best] < current.best_distance:
                    current.best_distance = float(dist[best])
                    current.best_face_id = int(ids[best])
            else:
                current = Segment(int(ts[i]), int(ts[i]), float(dist[best]), int(ids[best]), int(hit.size))
                segments.append(current)
            last_ts = int(ts[i])
        i = j
    return segments
