"""MediaPipeDetector: BlazeFace full-range finds faces, FaceMesh places 468 points.

Per detection: FaceMesh in two passes (a rotated crop from BlazeFace's box
and eyes, then re-cropped from the first mesh); detections whose mesh
face-presence probability is below PRESENCE_MIN are dropped (BlazeFace's own
false hits), as are duplicates whose meshes landed on the same face.

What a Face gets:
- bbox: the mesh's extent (x/y min-max of the 468 points): forehead to chin;
- landmarks5: eye-contour centres, nose tip, mouth corners of the mesh;
- landmarks68 (only with the landmarks-v1 expression encoder; otherwise
  filled on demand by the 68-point dlib identity of older stores, see
  dlib_landmarks.fill_landmarks68, so faces that never need them don't pay for it; the
  default identity aligns on dlib's 5 points, fitted in the same box):
  dlib's 68-point shape predictor run in a box derived from the
  mesh's 5 points so that it looks like the box dlib's HOG detector gives the same face
  (see dlib_landmarks.dlib_box). The 68 points then land where they did with the dlib
  front end, which keeps the dlib identity vectors (aligned on the 68) and
  the landmarks-v1 expression encoder close to what they were; a fixed
  mesh->68 index map would shift the jaw and brow points dlib was trained on.

Tiling: the whole picture is fed to BlazeFace at 192 px, which reliably
finds faces from about WHOLE_MIN_INPUT px wide (measured by shrinking t1.jpg,
grace_hopper and obama.jpg until faces were lost: reliable at >= 20 px,
partial at 12-18). Pictures in which a min_face face would be smaller than
that are also cut into tiles (blazeface.py) — unless the whole pass found a
face of at least a quarter of the picture's height (a portrait or a talking
head: tiles would only look for small background faces, and they cost 2-4
BlazeFace runs, most of a portrait's detection time). With tiles the
smallest faces found reliably are ~20/192 of a tile: 76 px in a 1280 px
picture (dlib's HOG at min_face 40 upsamples and reaches 40 px). A face the
whole pass finds at >= WHOLE_MIN_INPUT keeps its whole-pass box (tiles only
add faces), so a query photo (detect_query) whose faces are all that large
skips the tiles and still gets, to the bit, the faces indexing finds: 1
BlazeFace run instead of 5 for a 640x480 photo with one 100 px face.

Video: between keyframes the worker calls detect_following: the
whole-picture BlazeFace pass only (1 run instead of 1 + tiles), plus BlazeFace
in a region around each previously seen face too small for that pass; if a
previous face is not found again, the worker runs the full detect(). Faces
are always found by BlazeFace: following a face by re-running FaceMesh from
its previous mesh (MediaPipe's own tracking, made for 30 fps) fails at 2 fps
and at cuts — on a cut between two photos of one man the mesh locked half a
face off the real one with presence 1.0.
What following does reuse is the previous frame's mesh ROI, for a face that
BlazeFace finds again at nearly the same place and size: that ROI, moved by
how far BlazeFace's box moved, replaces the first (box-derived) FaceMesh pass
(one pass per followed face instead of two; the second pass exists to centre
and scale the crop the way the previous mesh already does). A face found
elsewhere or at another size, or whose single pass scores below
PRESENCE_MIN, gets both passes.
"""

from __future__ import annotations

import numpy as np

from mien.engine.faces import blazeface
from mien.engine.faces.blazeface import BlazeFace
from mien.engine.faces.boxes import overlap
from mien.engine.faces.config import EngineConfig
from mien.engine.faces.dlib_landmarks import SHAPE_68, dlib_box, landmarks68, shape_predictor_68, to_gray
from mien.engine.faces.facemesh import FaceMesher, Roi, landmarks5, mesh_box, roi_from_box, roi_from_mesh
from mien.engine.faces.imageio import check_image
from mien.engine.faces.modelfiles import dlib_model
from mien.engine.faces.types import Face

PRESENCE_MIN = 0.5        # MediaPipe's own min face-presence for its landmark graphs
FIRST_PASS_MIN = 0.1      # below this after the first pass, a candidate is not re-cropped
# BlazeFace candidates from this score on (MediaPipe uses 0.5-0.6 without a mesh check); the
# mesh's presence score then removes false hits. On t1.jpg brightened (x1.3 + 25) two real
# faces score 0.41 and 0.47.
MIN_SCORE = 0.4
WHOLE_MIN_INPUT = blazeface.WHOLE_MIN_INPUT   # px in the 192 px input: smallest face the whole pass reliably finds
# a mesh whose box lies mostly (intersection / smaller area) inside a kept face's is the same
# face or a part of it (a low-scoring candidate on a mouth and chin gives a small "face")
DUPLICATE_OVERLAP = 0.5
FOLLOW_MARGIN = 0.75      # detect_following's region: the previous box plus this many face sides around
# detect_following reuses the previous mesh ROI (one FaceMesh pass) when BlazeFace's box moved by at
# most REUSE_SHIFT of its side and changed its side by at most REUSE_SCALE (x or 1/x); measured on the
# pan clip: faces move ~2-6 % of their side per sampled frame, a cut moves or resizes them far more
REUSE_SHIFT = 0.25
REUSE_SCALE = 1.2


class MediaPipeDetector:
    """BlazeFace full-range (+ tiles) -> FaceMesh x2 -> presence filter -> dlib 68 points."""

    name = "mediapipe-blazeface-full+facemesh"
    follows = True     # detect_following
    refinds = False    # re-running FaceMesh from the last mesh loses faces at 2 fps and at cuts

    def __init__(self, cfg: EngineConfig, threads: int | None = None):
        self.cfg = cfg
        self.blazeface = BlazeFace(threads, min_score=MIN_SCORE)
        self.mesher = FaceMesher(threads)
        self.eager_68 = cfg.expression == "landmarks"  # landmarks-v1 reads the 68 of every face
        # the last detect()/detect_following() result: face bbox -> (BlazeFace box, last ROI), so that
        # detect_following can reuse the ROI of a face it is given back
        self._last: dict = {}
        # the file is checked now, so a missing one fails at construction; it loads (0.7 s, a
        # 99 MB model) on first use: only landmarks-v1 and the 68-point identity of older stores
        # read the 68 points
        dlib_model(SHAPE_68)
        if self.eager_68:
            shape_predictor_68()

    def needs_tiles(self, shape) -> bool:
        """Would a min_face face be below what the whole-picture pass reliably finds?"""
        longest = float(max(shape[:2]))
        return self.cfg.min_face * blazeface.SIZE / longest < WHOLE_MIN_INPUT

    def detect(self, image: np.ndarray, query: bool = False) -> list[Face]:
        """Every face of a picture. query: a query photo's faces, without the tiles when the
        whole-picture pass found only faces it sees reliably (blazeface.BlazeFace.detect); those
        come out exactly as without query."""
        check_image(image)
        dets = self.blazeface.detect(image, tile=self.needs_tiles(image.shape), portrait_skips_tiles=True,
                                     query=query)
        rois = [roi_from_box(d.box, d.keypoints[0], d.keypoints[1]) for d in dets]
        return self._faces(image, rois, [d.score for d in dets], [d.box for d in dets])

    def detect_query(self, image: np.ndarray) -> list[Face]:
        return self.detect(image, query=True)

    def detect_following(self, image: np.ndarray, boxes) -> list[Face] | None:
        """Faces of a frame between keyframes, given the previous frame's face boxes; None when
        one of those faces is not found again (the caller then runs detect()). New faces too
        small for the whole-picture pass are found at the next keyframe."""
        check_image(image)
        h, w = image.shape[:2]
        reliable = WHOLE_MIN_INPUT * max(h, w) / blazeface.SIZE   # smallest face the whole pass finds
        dets = self.blazeface.detect(image, tile=False)
        for x1, y1, x2, y2 in boxes:
            side = max(x2 - x1, y2 - y1)
            if side < 1.5 * reliable:
                pad = FOLLOW_MARGIN * side
                region = (max(0, x1 - pad), max(0, y1 - pad), min(w, x2 + pad), min(h, y2 + pad))
                dets += self.blazeface.detect_region(image, region)
        dets = blazeface.weighted_nms(dets)
        previous = [self._last[tuple(b)] for b in boxes if tuple(b) in self._last]
        rois = [roi_from_box(d.box, d.keypoints[0], d.keypoints[1]) for d in dets]
        faces = self._faces(image, rois, [d.score for d in dets], [d.box for d in dets],
                            [reused_roi(d.box, previous) for d in dets])
        for x1, y1, x2, y2 in boxes:
            cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)
            if not any(np.hypot((f.bbox[0] + f.bbox[2]) / 2 - cx, (f.bbox[1] + f.bbox[3]) / 2 - cy) < side
                       for f in faces):
                return None
        return faces

    def _faces(self, image, rois, scores, det_boxes, reused=None) -> list[Face]:
        gray = to_gray(image) if self.eager_68 else None
        kept: list[Face] = []
        last = {}
        reused = reused or [None] * len(rois)
        for roi, score, det_box, again in sorted(zip(rois, scores, det_boxes, reused), key=lambda r: -r[1]):
            presence, final = 0.0, again
            if again is not None:  # a followed face: the previous frame's ROI, moved with the face
                mesh, presence = self.mesher.run(image, again)
            if presence < PRESENCE_MIN:
                final = roi
                mesh, presence = self.mesher.run(image, roi)
                if presence >= FIRST_PASS_MIN:  # most false hits end here, after one pass
                    final = roi_from_mesh(mesh)
                    mesh, presence = self.mesher.run(image, final)
            box = mesh_box(mesh)
            if presence >= PRESENCE_MIN and min(box[2] - box[0], box[3] - box[1]) >= self.cfg.min_face \
                    and not any(overlap(box, k.bbox) > DUPLICATE_OVERLAP for k in kept):
                five = landmarks5(mesh)
                kept.append(Face(bbox=box, det_score=float(score), landmarks5=five,
                                 landmarks68=None if gray is None else landmarks68(gray, dlib_box(five)), mesh=mesh,
                                 mesh_presence=float(presence)))
                last[box] = (np.asarray(det_box, np.float32), final)
        kept.sort(key=lambda f: (f.bbox[0], f.bbox[1]))
        self._last = last
        return kept


def reused_roi(det_box, previous):
    """The previous frame's final FaceMesh ROI of the face whose BlazeFace box this detection's is
    close to, moved and scaled like the boxes; None if there is none. previous = [(BlazeFace box,
    ROI)]. Reusing the ROI the last pass ran on (not one re-derived from its mesh) keeps the
    mesh where two passes put it when the face did not move."""
    cx, cy = (det_box[0] + det_box[2]) / 2, (det_box[1] + det_box[3]) / 2
    side = max(det_box[2] - det_box[0], det_box[3] - det_box[1])
    for box, roi in previous:
        pcx, pcy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        pside = max(box[2] - box[0], box[3] - box[1])
        if pside <= 0 or not 1 / REUSE_SCALE <= side / pside <= REUSE_SCALE \
                or np.hypot(cx - pcx, cy - pcy) > REUSE_SHIFT * pside:
            continue
        return Roi(roi.cx + float(cx - pcx), roi.cy + float(cy - pcy), roi.side, roi.angle)
    return None
