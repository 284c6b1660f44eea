"""Link face boxes across sampled frames into tracks.

Greedy matching, best pair first, on IoU; when the IoU is low (fast pans at
2 sampled fps move a face a lot between samples) a pair still matches if the
centres are within `centre_factor` of the face size and the sizes are
similar. A track ends after `max_gap` samples without a match. Identity is
NOT used here: it is computed once per track afterwards, and identity
clustering merges tracks of one person later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mien.engine.faces.boxes import iou


def _centre_affinity(a, b, centre_factor: float) -> float:
    """1 at equal centres, 0 at `centre_factor` face sizes apart or very different sizes."""
    wa, wb = a[2] - a[0], b[2] - b[0]
    size = max(wa, wb, 1e-6)
    if min(wa, wb) / size < 0.6:
        return 0.0
    cxa, cya = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    cxb, cyb = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    dist = ((cxa - cxb) ** 2 + (cya - cyb) ** 2) ** 0.5 / size
    return max(0.0, 1.0 - dist / centre_factor)


@dataclass
class Track:
    track_id: int
    bbox: tuple
    last_sample: int
    members: list = field(default_factory=list)  # opaque items given to update()


class Tracker:
    def __init__(self, *, iou_min: float = 0.3, centre_factor: float = 1.0, max_gap: int = 2):
        self.iou_min = iou_min
        self.centre_factor = centre_factor
        self.max_gap = max_gap
        self.active: list[Track] = []
        self.finished: list[Track] = []
        self._next_id = 0
        self._sample = -1

    def affinity(self, track_box, box) -> float:
        """How well `box` continues a track last seen at `track_box`: > 1 by overlap, in (0, 1] by
        nearby centres, 0 when they cannot be one track (patch_choice.py relies on this test)."""
        overlap = iou(track_box, box)
        if overlap >= self.iou_min:
            return 1.0 + overlap
        return _centre_affinity(track_box, box, self.centre_factor)

    def update(self, boxes: list, items: list | None = None) -> list[int]:
        """Feed one sampled frame's boxes; returns the track id of each box."""
        self._sample += 1
        items = items if items is not None else list(range(len(boxes)))
        # retire tracks unseen for too long
        still = []
        for track in self.active:
            (still if self._sample - track.last_sample <= self.max_gap else self.finished).append(track)
        self.active = still

        pairs = []
        for ti, track in enumerate(self.active):
            for bi, box in enumerate(boxes):
                score = self.affinity(track.bbox, box)
                if score > 0:
                    pairs.append((score, ti, bi))
        pairs.sort(reverse=True)
        used_t, used_b = set(), set()
        ids = [-1] * len(boxes)
        for _, ti, bi in pairs:
            if ti in used_t or bi in used_b:
                continue
            used_t.add(ti)
            used_b.add(bi)
            track = self.active[ti]
            track.bbox, track.last_sample = tuple(boxes[bi]), self._sample
            track.members.append(items[bi])
            ids[bi] = track.track_id
        for bi, box in enumerate(boxes):
            if ids[bi] == -1:
                track = Track(self._next_id, tuple(box), self._sample, [items[bi]])
                self._next_id += 1
                self.active.append(track)
                ids[bi] = track.track_id
        return ids

    def finish(self) -> list[Track]:
        """All tracks, ordered by id (call once at the end of the video)."""
        tracks = sorted(self.finished + self.active, key=lambda t: t.track_id)
        self.finished, self.active = tracks, []
        return tracks
