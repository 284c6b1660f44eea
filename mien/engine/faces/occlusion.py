"""Occlusion of the mouth (a hand, a microphone, a mask) from the FaceMesh's own uncertainty.

FaceMesh always places the lips, also when something covers them: then it
guesses, and the guess moves with the crop. So the lips are re-fitted from
two crops 1.25x larger and smaller than its own (PERTURBATIONS) and the
spread of the lip points across the fits (after undoing each fit's rigid
motion on the RIGID head points) is the occlusion score, in inter-ocular
distances (IOD) x 100. A visible mouth keeps its lips within ~1 % IOD of
each other; a covered one scatters them several times further.
The face's own mesh (from the detector's second pass) is one of the fits.
The face-presence score does not see occlusion (it stays ~1 with a hand
over the mouth), which is why this exists.

Cost: len(PERTURBATIONS) = 2 FaceMesh passes per face.

Video: inside `carried_over()` (the indexer's worker wraps each run of
followed frames in it) a face whose mouth-and-chin area looks as it did when
its score was last computed (same place, grey patch in the face's own frame
within SAME_MOUTH of the scored one) keeps that score instead of paying the
2 passes again. Anything that enters the mouth area (a hand, a microphone)
or a mouth that moves (speech) changes the patch and is scored afresh; the
memory lasts one run of frames (one keyframe interval).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from mien.engine.faces.boxes import iou
from mien.engine.faces.facemesh import LEFT_EYE, RIGHT_EYE, FaceMesher, Roi, mesh_box, roi_from_mesh
from mien.engine.faces.meshpose import RIGID, fit_rotation
from mien.engine.faces.warp import warp_affine

# outer and inner lip contours
LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
        78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415]
# (dx, dy as a fraction of the ROI side, rotation in degrees, scale factor)
PERTURBATIONS = [(0.0, 0.0, 0.0, 1.25), (0.0, 0.0, 0.0, 0.8)]
# Score above which the mouth counts as occluded. Calibrated on the 15 faces of the
# public photos (clear: 1.3-4.2) and the same faces with a synthetic skin-coloured
# hand patch over mouth and chin, 2 patches each (covered: 3.4, then 4.7-9.7):
# AUC 0.995. Crops rotated by +-15 deg separated them worse (AUC 0.77), shifts too
# (0.71); rotation + rescaling 0.95 with 2 passes, 0.99 with 4.
THRESHOLD = 4.5


def perturbed(roi: Roi, dx: float, dy: float, degrees: float, scale: float) -> Roi:
    c, s = math.cos(roi.angle), math.sin(roi.angle)
    ox, oy = dx * roi.side, dy * roi.side
    return Roi(roi.cx + ox * c - oy * s, roi.cy + ox * s + oy * c, roi.side * scale,
               roi.angle + math.radians(degrees))


def lip_spread(meshes: list[np.ndarray]) -> float:
    """Mean distance of the lip points to their mean over the fits, after aligning each fit to the
    first on the rigid points; in units of 1 % of the inter-ocular distance."""
    base = np.asarray(meshes[0], np.float64)
    iod = float(np.linalg.norm(base[LEFT_EYE].mean(0) - base[RIGHT_EYE].mean(0)))
    lips = []
    for mesh in meshes:
        m = np.asarray(mesh, np.float64)
        rot, s = fit_rotation(m[RIGID], base[RIGID])
        moved = s * (m - m[RIGID].mean(0)) @ rot.T + base[RIGID].mean(0)
        lips.append(moved[LIPS])
    lips = np.stack(lips)
    spread = np.linalg.norm(lips - lips.mean(0), axis=2).mean()
    return float(100.0 * spread / max(iod, 1e-6))


def occlusion_score(image_bgr: np.ndarray, mesh: np.ndarray, mesher: FaceMesher | None = None) -> float:
    """The mouth-occlusion score of a face whose mesh is known (higher = more likely covered)."""
    memory = _memory
    if memory is not None:
        signature = mouth_patch(image_bgr, mesh)
        box = mesh_box(mesh)
        known = memory.lookup(box, signature)
        if known is not None:
            return known
    mesher = mesher or _mesher()
    roi = roi_from_mesh(mesh)
    fits = [mesh] + [mesher.run(image_bgr, perturbed(roi, *p))[0] for p in PERTURBATIONS]
    score = lip_spread(fits)
    if memory is not None:
        memory.store(box, signature, score)
    return score


# Carry-over between the frames of a video. The patch: PATCH x PATCH grey pixels of a square
# centred 30 % of the way from the mouth corners' midpoint to the chin (mouth, lips and chin),
# MOUTH_SIDE x the eyes-to-mouth distance wide, levelled with the eyes, then zero mean / unit
# variance (lighting changes cancel).
# SAME_MOUTH: largest mean absolute difference (in patch standard deviations) of a patch to the
# scored one that keeps the score. Measured (benchmarks/occlusion_carry.py): the same faces in
# the next sampled frame of the pan clip 0.010-0.096; the synthetic hand patch over the mouths
# of 6 portraits 0.59-1.17; three photos of one man against each other 0.94-1.02. Not measured:
# a real speaking mouth (expected well above 0.2: the lips, teeth and mouth opening move).
PATCH = 24
MOUTH_SIDE = 1.6
SAME_MOUTH = 0.2
SAME_PLACE = 0.5   # IoU of the mesh boxes
CHIN = 152


def mouth_patch(image_bgr: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    import cv2

    pts = np.asarray(mesh[:, :2], np.float64)
    eyes = (pts[LEFT_EYE].mean(0), pts[RIGHT_EYE].mean(0))
    mouth = (pts[61] + pts[291]) / 2
    centre = 0.7 * mouth + 0.3 * pts[CHIN]   # the mouth and the chin below it
    dx, dy = eyes[0] - eyes[1]
    angle = math.atan2(dy, dx)
    side = MOUTH_SIDE * max(float(np.linalg.norm((eyes[0] + eyes[1]) / 2 - mouth)), 1.0)
    n = 4 * PATCH   # warped at 4x, then averaged down (warpAffine has no area filter: it would alias)
    k = n / side
    c, s = math.cos(angle), math.sin(angle)
    m = np.array([[c * k, s * k, n / 2 - k * (c * centre[0] + s * centre[1])],
                  [-s * k, c * k, n / 2 - k * (-s * centre[0] + c * centre[1])]])
    grey = cv2.cvtColor(warp_affine(image_bgr, m, (n, n), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE), cv2.COLOR_BGR2GRAY)
    grey = cv2.resize(grey, (PATCH, PATCH), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (grey - grey.mean()) / max(float(grey.std()), 1.0)


class Memory:
    """Scores computed in the current run of frames: [(mesh box, mouth patch, score)]."""

    def __init__(self):
        self.entries: list = []

    def lookup(self, box, patch) -> float | None:
        for old_box, old_patch, score in self.entries:
            if iou(box, old_box) >= SAME_PLACE and float(np.abs(patch - old_patch).mean()) <= SAME_MOUTH:
                counts["carried"] += 1
                return score
        return None

    def store(self, box, patch, score: float) -> None:
        counts["scored"] += 1
        self.entries = [e for e in self.entries if iou(box, e[0]) < SAME_PLACE] + [(box, patch, score)]


_memory: Memory | None = None
counts = {"scored": 0, "carried": 0}   # inside carried_over() blocks, this process (benchmarks, tests)


@contextmanager
def carried_over():
    """Within this block, occlusion_score reuses the score of a face whose mouth area is unchanged
    (consecutive frames of one video run). Yields the Memory."""
    global _memory
    outer, _memory = _memory, Memory()
    try:
        yield _memory
    finally:
        _memory = outer


_default: FaceMesher | None = None


def _mesher() -> FaceMesher:
    global _default
    if _default is None:
        _default = FaceMesher()
    return _default
