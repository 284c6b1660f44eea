"""fer-au-478 in a video: a face that kept its expression keeps the AUs of its last 478-point pass.

The 478-point landmark pass is the largest model of a video worker (a quarter of its time,
benchmarks/video_floor.py). Inside `reused_when_still()` (the indexer's worker wraps each run of
followed frames in it, as it does occlusion.carried_over) a face whose 468-point FaceMesh, in the
head frame (expression_au.head_frame), lies within STILL of the mesh its refined parts were last
read from takes those parts (AUs and mesh code) instead of running the pass again. fer runs on
every frame, so the vector still follows the face's emotion. The face is the entry whose last
mesh box overlaps its own by SAME_PLACE; the memory lasts one run of frames (one keyframe
interval), so how a file is cut into ranges changes nothing.

STILL: on the rated set's 313 video faces with a sample 0.5 s before (benchmarks/landmark_reuse.py
--rated), reusing that sample's AUs for the stillest half (mean movement <= 0.006 inter-ocular
distances) changed none of the raters' verdicts on balance (11 triplets gained, 11 lost, of 1,216
unanimous); the stillest three quarters (<= 0.011): 15 gained, 22 lost (p = 0.32); all of them:
31 / 74, p < 0.001. Consecutive samples' full vectors differ by 0.16-0.19 (L2); a reused face's
vector lies 0.03-0.09 from its full one (the same benchmark).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from mien.engine.faces.boxes import iou

STILL = 0.006      # mean absolute movement of the head-frame mesh, inter-ocular distances
SAME_PLACE = 0.3   # IoU of the mesh boxes: the same face as the entry's (as the rated check matched)

counts = {"computed": 0, "reused": 0}   # inside reused_when_still() blocks, this process (tests, benchmarks)


class Memory:
    """Refined parts read in the current run of frames: [[last mesh box, head-frame mesh they were
    read from, parts]]."""

    def __init__(self):
        self.entries: list = []

    def lookup(self, box, shape: np.ndarray):
        """The parts of the entry this face continues if it is still since they were read, else
        None. The entry follows the face's box either way."""
        entry = max(self.entries, key=lambda e: iou(box, e[0]), default=None)
        if entry is None or iou(box, entry[0]) < SAME_PLACE:
            return None
        entry[0] = box
        if float(np.abs(shape - entry[1]).mean()) > STILL:
            return None
        counts["reused"] += 1
        return entry[2]

    def store(self, box, shape: np.ndarray, parts) -> None:
        counts["computed"] += 1
        self.entries = [e for e in self.entries if iou(box, e[0]) < SAME_PLACE] + [[box, shape, parts]]


_local = threading.local()   # the Memory of the block this thread is in: another thread's
                             # frames (a query beside an in-process index) never see it


@contextmanager
def reused_when_still():
    """Within this block, on this thread, refined parts are reused for faces still since their last
    pass (one video run of frames, in time order). Yields the Memory."""
    outer = getattr(_local, "memory", None)
    _local.memory = Memory()
    try:
        yield _local.memory
    finally:
        _local.memory = outer


def parts_of(image: np.ndarray, mesh: np.ndarray, read):
    """read(image, mesh): the face's refined parts, or, inside reused_when_still(), those of its
    last pass when the face is still since then."""
    from mien.engine.faces import expression_au as au
    from mien.engine.faces.facemesh import mesh_box

    memory = getattr(_local, "memory", None)
    if memory is None:
        return read(image, mesh)
    try:
        shape = au.head_frame(mesh)
    except ValueError:
        return read(image, mesh)   # a degenerate mesh: nothing to compare, no entry
    box = mesh_box(mesh)
    known = memory.lookup(box, shape)
    if known is not None:
        return known
    parts = read(image, mesh)
    memory.store(box, shape, parts)
    return parts
