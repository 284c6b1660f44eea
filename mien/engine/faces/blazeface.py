"""BlazeFace full-range (face_detection_full_range_sparse.tflite) run by LiteRT.

The model sees a 192x192 RGB image in [-1, 1]; the picture is letterboxed
into it (scaled to fit, zero-padded, centred). It predicts, for each of the
2304 SSD anchors of one 48x48 grid (stride 4, one fixed-size anchor per cell,
centres at (i + 0.5) / 48 — MediaPipe's face_detection_full_range anchor
options), a box offset (cx, cy, w, h in input pixels) and 6 keypoints:
the person's right eye (image left on a frontal face), left eye, nose tip,
mouth centre, right and left ear tragion. Scores are sigmoids of logits
clipped at +-100; detections overlapping by IoU > 0.3 are merged by
score-weighted averaging (MediaPipe's WEIGHTED non-maximum suppression).

Small faces in large pictures shrink below what the 192x192 input resolves,
so large images are also cut into square tiles of 1/1.75 of the longer side
(2x2 on a square picture, 2x1 on 16:9 video, 1x2 tiles as wide as a tall
portrait) that overlap by >= 20 % of a tile; tile detections touching an
inner tile edge (faces cut by it) are dropped, and everything is merged with
the whole-picture detections by the same weighted NMS — except the faces the
whole-picture pass found at a size it sees reliably (WHOLE_MIN_INPUT): those
keep their own box, and the tiles' detections of them are left out. So the
tiles only add the faces they exist for, and whether they ran does not move
a face the whole pass found: a query photo (detect(query=True)) skips them
when every face it found is that large and gets the same face, to the bit,
as indexing the photo gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mien.engine.faces.litert import load

MODEL = "face_detection_full_range_sparse.tflite"
SIZE = 192
GRID = 48                 # 192 / stride 4
MIN_SCORE = 0.6           # MediaPipe's full-range min_score_thresh
NMS_IOU = 0.3             # MediaPipe's min_suppression_threshold
TILE_OVERLAP = 0.25       # tile side = longer picture side / (2 - TILE_OVERLAP)
# Neighbouring tiles overlap by at least this fraction of a tile (16:9 video: 2 tiles, 22 %);
# a face larger than the overlap is found by the whole-picture pass.
TILE_MIN_OVERLAP = 0.2
TILE_SLACK = 0.1          # see tiles()
TILE_MIN_SIDE = 480       # images with a longer side below this are not tiled
PORTRAIT_FACE = 0.25      # a face this large (of the shorter side) makes the picture a portrait
# px in the 192 px input: the smallest face the whole-picture pass reliably finds (measured by
# shrinking t1.jpg, grace_hopper and obama.jpg until faces were lost: reliable at >= 20 px,
# partial at 12-18); smaller ones are what the tiles are for
WHOLE_MIN_INPUT = 20.0
EDGE_MARGIN = 1.0         # px (of the working copy): a tile box this close to an inner tile edge was cut by it


@dataclass
class Detection:
    box: np.ndarray        # x1, y1, x2, y2 in source pixels
    keypoints: np.ndarray  # 6 x 2 in source pixels
    score: float


@lru_cache(maxsize=1)
def anchors() -> np.ndarray:
    """(2304, 2) anchor centres in [0, 1] of the model input, row-major."""
    c = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    ys, xs = np.meshgrid(c, c, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def letterbox(image_rgb: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """192x192 float input in [-1, 1] and (scale, pad_x, pad_y): input = image * scale + pad."""
    import cv2

    h, w = image_rgb.shape[:2]
    scale = SIZE / float(max(h, w))
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if scale < 1:
        resized = shrink(image_rgb, SIZE)[0]
    elif (nw, nh) != (w, h):
        resized = cv2.resize(image_rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    else:
        resized = image_rgb   # a tile of the working copy: already at the model's scale
    canvas = np.zeros((SIZE, SIZE, 3), np.float32)
    px, py = (SIZE - nw) // 2, (SIZE - nh) // 2
    view = canvas[py:py + nh, px:px + nw]
    np.multiply(resized, np.float32(2.0 / 255.0), out=view, dtype=np.float32)
    view -= 1.0
    return canvas, scale, float(px), float(py)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, min_score: float = MIN_SCORE):
    """Model outputs -> (boxes N x 4, keypoints N x 6 x 2 in input pixels, scores N) above min_score."""
    logits = raw_scores.reshape(-1)
    # the sigmoid is monotonic: compare logits with min_score's, take the sigmoid of the few kept
    floor = -np.inf if min_score <= 0 else np.log(min_score / (1.0 - min_score)) if min_score < 1 else np.inf
    keep = np.nonzero(logits >= floor)[0]
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep].astype(np.float64), -100.0, 100.0)))
    raw = raw_boxes.reshape(-1, 16)[keep]
    centre = anchors()[keep] * SIZE
    cx, cy = centre[:, 0] + raw[:, 0], centre[:, 1] + raw[:, 1]
    w, h = raw[:, 2], raw[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = raw[:, 4:16].reshape(-1, 6, 2) + centre[:, None, :]
    return boxes, kps, scores


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def weighted_nms(dets: list[Detection], threshold: float = NMS_IOU) -> list[Detection]:
    """Best first: each remaining detection absorbs those overlapping it by IoU > threshold;
    its box and keypoints become their score-weighted mean, its score the best one."""
    if not dets:
        return []
    order = sorted(range(len(dets)), key=lambda i: -dets[i].score)
    boxes = np.stack([d.box for d in dets])
    overlap = iou_matrix(boxes, boxes)
    left, out = list(order), []
    while left:
        best = left[0]
        group = [i for i in left if overlap[best, i] > threshold]
        weights = np.array([dets[i].score for i in group], np.float64)
        weights /= weights.sum()
        box = np.einsum("i,ij->j", weights, boxes[group])
        kps = np.einsum("i,ijk->jk", weights, np.stack([dets[i].keypoints for i in group]))
        out.append(Detection(box.astype(np.float32), kps.astype(np.float32), dets[best].score))
        left = [i for i in left if i not in group]
    return out


def tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Tiles (x1, y1, x2, y2) covering the picture, all fed to the model at one scale: squares of
    side S = longer side / 1.75, neighbours overlapping by at least TILE_MIN_OVERLAP of a tile:
    2x2 for a square picture, 2x1 for 16:9 video (whose 2x2 tiles would be half letterbox
    padding). Along a side at most TILE_SLACK longer than S there is one tile as long as the
    picture (letterboxing feeds it at >= 1 / (1 + TILE_SLACK) of S's scale) instead of two that
    nearly coincide: a tall portrait's 207x336 px working copy gets 2 tiles of 207x192, not 4
    of 192x192 in two columns 15 px apart; a 148x336 one 2 tiles of 148x192, not 3 squares of
    148 px blown up to 192."""
    side = int(round(max(width, height) / (2 - TILE_OVERLAP)))

    def span(length: int) -> int:
        return length if length <= side * (1 + TILE_SLACK) else side

    def starts(length: int, size: int) -> list[int]:
        if length <= size:
            return [0]
        n = int(np.ceil((length - size * TILE_MIN_OVERLAP) / (size * (1 - TILE_MIN_OVERLAP))))
        return [int(round(i * (length - size) / (n - 1))) for i in range(n)]

    tw, th = span(width), span(height)
    return [(x, y, x + tw, y + th) for y in starts(height, th) for x in starts(width, tw)]


class BlazeFace:
    """Whole-picture (+ tiled) BlazeFace detections of a BGR image, in source pixels."""

    def __init__(self, threads: int | None = None, min_score: float = MIN_SCORE):
        self.model = load(MODEL, threads)
        self.min_score = min_score

    def run(self, image_rgb: np.ndarray, origin=(0, 0)) -> list[Detection]:
        """Detections of one (sub)image, mapped to source pixels by its origin."""
        tensor, scale, px, py = letterbox(image_rgb)
        outs = self.model.run(tensor[None])
        raw_boxes = next(o for o in outs if o.shape[-1] == 16)
        raw_scores = next(o for o in outs if o.shape[-1] == 1)
        boxes, kps, scores = decode(raw_boxes, raw_scores, self.min_score)
        ox, oy = origin
        boxes = (boxes - np.array([px, py, px, py], np.float32)) / scale + np.array([ox, oy, ox, oy], np.float32)
        kps = (kps - np.array([px, py], np.float32)) / scale + np.array([ox, oy], np.float32)
        return weighted_nms([Detection(b, k, float(s)) for b, k, s in zip(boxes, kps, scores)])

    def detect(self, image_bgr: np.ndarray, tile: bool | None = None,
               portrait_skips_tiles: bool = False, query: bool = False) -> list[Detection]:
        """All faces; tile=None tiles images whose longer side is >= TILE_MIN_SIDE.

        portrait_skips_tiles: no tiles when the whole-picture pass found a face
        at least PORTRAIT_FACE of the picture's shorter side (a portrait, a
        talking head), where faces small enough to need tiles are background.
        query: no tiles either when the whole-picture pass found faces and all
        of them at a size it sees reliably (a query photo's face: what only the
        tiles would add is smaller than anything it found). Faces the whole
        pass sees reliably keep their own box with or without tiles, so both
        give the same detections of them.
        Everything runs on one RGB copy no larger than the tiles need (a tile
        is 1/1.75 of the picture and is fed at 192 px, so 336 px), made once.
        """
        h, w = image_bgr.shape[:2]
        tiled = bool(tile) or (tile is None and max(h, w) >= TILE_MIN_SIDE)
        work, scale = shrink(image_bgr, int(SIZE * (2 - TILE_OVERLAP)) if tiled else SIZE)
        import cv2

        rgb = cv2.cvtColor(work, cv2.COLOR_BGR2RGB)
        found = self.run(rgb)
        if tiled and portrait_skips_tiles and any(
                _side(d.box) >= PORTRAIT_FACE * min(rgb.shape[:2]) for d in found):
            tiled = False
        reliable = WHOLE_MIN_INPUT * max(rgb.shape[:2]) / SIZE   # in the working copy's pixels
        sure = [d for d in found if _side(d.box) >= reliable]
        if tiled and query and found and len(sure) == len(found):
            tiled = False
        if tiled:
            unsure = [d for d in found if _side(d.box) < reliable]
            wh, ww = rgb.shape[:2]
            for x1, y1, x2, y2 in tiles(ww, wh):   # at most 2x2
                for det in self.run(rgb[y1:y2, x1:x2], (x1, y1)):
                    if not cut_by_tile(det.box, (x1, y1, x2, y2), ww, wh) and not _covers(sure, det):
                        unsure.append(det)
            found = sorted(sure + weighted_nms(unsure), key=lambda d: -d.score)
        for det in found:
            det.box /= scale
            det.keypoints /= scale
        return found

    def detect_region(self, image_bgr: np.ndarray, region) -> list[Detection]:
        """Faces inside region (x1, y1, x2, y2) of the picture, in source pixels; faces cut by
        the region's edge (inside the picture) are left out."""
        import cv2

        h, w = image_bgr.shape[:2]
        x1, y1, x2, y2 = (int(v) for v in region)
        work, scale = shrink(image_bgr[y1:y2, x1:x2], SIZE)
        found = self.run(cv2.cvtColor(work, cv2.COLOR_BGR2RGB))
        out = []
        for det in found:
            det.box = det.box / scale + np.array([x1, y1, x1, y1], np.float32)
            det.keypoints = det.keypoints / scale + np.array([x1, y1], np.float32)
            if not cut_by_tile(det.box, (x1, y1, x2, y2), w, h):
                out.append(det)
        return out


def shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy whose longer side is max_side (or the image itself if it is no longer), and its
    scale (<= 1). An area-like filter without INTER_AREA's cost: exact 2x2 halvings while the
    picture is >= 4x too large, then bilinear to twice the target and one more halving (a
    bilinear sample grid at <= 1 source pixel spacing, averaged 2x2). INTER_AREA costs 1.3 ms
    for a non-integer 640 -> 336 and 10 ms from 1434x2333; this 0.2-1.5 ms."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_side / float(max(h, w)))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    src = image
    while max(src.shape[:2]) >= 4 * max_side and min(src.shape[:2]) >= 4:
        src = halve(src)
    small = halve(cv2.resize(src, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR))
    return small, (size[0] / float(w) if w >= h else size[1] / float(h))


def halve(image: np.ndarray) -> np.ndarray:
    """Each 2x2 block averaged (OpenCV's fast exact-half INTER_AREA; an odd last row or column is
    dropped: at most one source pixel)."""
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image[:h - h % 2, :w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def _side(box) -> float:
    return float(max(box[2] - box[0], box[3] - box[1]))


def _covers(sure: list[Detection], det: Detection) -> bool:
    """Is det a detection of one of the faces in sure (weighted NMS would merge it into one)?"""
    return bool(sure) and bool((iou_matrix(np.stack([d.box for d in sure]), det.box[None])[:, 0] > NMS_IOU).any())


def cut_by_tile(box, tile, width: int, height: int) -> bool:
    """True if the box reaches an edge of the tile that is inside the picture."""
    x1, y1, x2, y2 = tile
    bx1, by1, bx2, by2 = box
    return ((x1 > 0 and bx1 <= x1 + EDGE_MARGIN) or (y1 > 0 and by1 <= y1 + EDGE_MARGIN)
            or (x2 < width and bx2 >= x2 - EDGE_MARGIN) or (y2 < height and by2 >= y2 - EDGE_MARGIN))
