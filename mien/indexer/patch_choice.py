"""Which identity patches of a video range can matter: a worker drops the rest before its result
travels to the driver.

The driver links the faces of consecutive samples into tracks (tracking.Tracker) and keeps the
`keep` best patches of each track by quality (video_jobs.JobQueue._feed). A worker cannot know
the tracks (they run across ranges, which workers analyse in parallel), so every passed face used
to ship its patch: ~370 KB each, 48 MB for 30 s of two faces, of which the driver kept a handful.
Writing and reading them cost ~3 % of a run's CPU.

What a worker can know for certain: some pairs of faces in consecutive samples that the driver's
tracker is bound to link. The tracker scores each (alive track, new box) pair (Tracker.affinity)
and takes pairs best first. Face b at sample j continues face a at sample j-1 whenever
- j >= max_gap: before that, tracks from samples before the range could still be alive;
- a scores strictly higher with b than any other place an alive track may have been last seen:
  every box of sample j-1, and the boxes of the samples before it not surely continued since;
- a scores strictly higher with b than with any other box of sample j.
No pair scoring at least as high involves track(a) or b, so the greedy matching takes theirs,
whatever else the frame holds. Faces joined by such links form chains, each inside one driver
track; a face that is not among the `keep` best of its chain (quality_score, then time order, as
the driver ranks them) has `keep` better ones in its track and can never be chosen. Its patch is
dropped; what the driver chooses, and the store, do not change (tests/test_patch_choice.py checks
this against the driver's tracker on random and crowded scenes cut into random ranges).
"""

from __future__ import annotations

from mien.indexer.records import counted, quality_score
from mien.indexer.tracking import Tracker


class PatchChoice:
    """Fed a range's FrameResults in order; cuts the patches some track may choose, and drops
    those that fall out of the running."""

    def __init__(self, keep: int):
        self.keep = keep
        self.rules = Tracker()        # the driver's tracker settings (FileRun's): the same links
        self.recent: list = []        # the last max_gap samples, oldest first: [[box, chain, continued]]
        self.best: dict = {}          # chain -> [(-quality, order, frame result, face position)]
        self.chains = 0
        self.sample = 0

    def add(self, result, cut) -> None:
        """One FrameResult (worker.FrameResult), its patches not cut yet: cut(position) cuts the
        patch of one of its faces, called for the faces that rank among their chain's best
        (most never do: that is where the resizing goes)."""
        boxes = [face.bbox for face in result.faces]
        linked = self._links(boxes) if self.sample >= self.rules.max_gap else {}
        here = []
        for pos, box in enumerate(boxes):
            chain = linked.get(pos)
            if chain is None:
                chain, self.chains = self.chains, self.chains + 1
            here.append([box, chain, False])
            face = result.faces[pos]
            if counted(face):   # a face the driver stores: its patch may give its track's identity
                self._rank(chain, (-quality_score(face), (self.sample, pos), result, pos), cut)
        self.recent = (self.recent + [here])[-self.rules.max_gap:]
        self.sample += 1

    def _links(self, boxes: list) -> dict:
        """{face position: chain} for the boxes that surely continue a box of the last sample."""
        affine = self.rules.affinity
        last = self.recent[-1]
        # where the tracks alive now were last seen: every box of the last sample, and the older
        # boxes not surely continued since (a continued box is no track's last position)
        seen = [entry for sample in self.recent[:-1] for entry in sample if not entry[2]] + last
        older = len(seen) - len(last)   # seen[older:] is the last sample
        out = {}
        for pos, box in enumerate(boxes):
            scores = [affine(entry[0], box) for entry in seen]
            best = max(range(len(seen)), key=scores.__getitem__, default=None)
            if best is None or scores[best] <= 0 or best < older:
                continue   # no source, or one from an older sample (missed at the last)
            top, source = scores[best], seen[best]
            if any(score >= top for k, score in enumerate(scores) if k != best):
                continue   # another track may take this box first
            if any(affine(source[0], other) >= top for k, other in enumerate(boxes) if k != pos):
                continue   # the source's track may take another box first
            out[pos] = source[1]
            source[2] = True
        return out

    def _rank(self, chain: int, entry: tuple, cut) -> None:
        ranked = self.best.setdefault(chain, [])
        ranked.append(entry)
        ranked.sort(key=lambda e: (e[0], e[1]))
        for _, _, result, pos in ranked[self.keep:]:
            result.patches.pop(pos, None)   # `keep` better faces in its chain, so in its track
        del ranked[self.keep:]
        if any(e is entry for e in ranked):
            entry[2].patches[entry[3]] = cut(entry[3])
