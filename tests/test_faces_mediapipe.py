"""MediaPipe front end on real package photos: FaceMesh, BlazeFace, landmarks."""

import numpy as np
import pytest

from faces_support import analyzer, t1
from mien.demo import photos
from mien.engine.faces import facemesh


@pytest.fixture(scope="module")
def dlib_faces():
    return analyzer(detector="dlib").detect(t1())


def test_mesh_from_dlib_faces_lands_on_the_face(dlib_faces):
    assert len(dlib_faces) == 6
    for face in dlib_faces:
        facemesh.fill_mesh(t1(), face)
        assert face.mesh.shape == (468, 3) and face.mesh.dtype == np.float32
        assert face.mesh_presence > 0.9
        # the mesh's 5 points agree with dlib's within a fraction of the eye distance
        err = np.linalg.norm(facemesh.landmarks5(face.mesh) - face.landmarks5, axis=1) / face.inter_ocular
        assert err.max() < 0.25, err
        # z is in pixels: the face's depth extent is comparable to its width
        width = np.ptp(face.mesh[:, 0])
        assert 0.4 * width < np.ptp(face.mesh[:, 2]) < 1.2 * width


def test_second_pass_is_stable():
    img = photos.face_recognition_photo("obama.jpg")
    face = analyzer(detector="dlib").detect(img)[0]
    mesher = facemesh.FaceMesher()
    roi = facemesh.roi_from_box(face.bbox, face.landmarks5[0], face.landmarks5[1])
    two, _ = mesher.mesh(img, roi, passes=2)
    three, _ = mesher.mesh(img, roi, passes=3)
    iod = face.inter_ocular
    assert np.abs(two[:, :2] - three[:, :2]).max() / iod < 0.05


# -- BlazeFace: anchors, decoding, tiling -------------------------------------

def test_anchor_grid_and_decoding_of_a_synthetic_output():
    from mien.engine.faces import blazeface

    a = blazeface.anchors()
    assert a.shape == (2304, 2)
    assert np.allclose(a[0], [0.5 / 48, 0.5 / 48]) and np.allclose(a[48], [0.5 / 48, 1.5 / 48])
    raw = np.zeros((1, 2304, 16), np.float32)
    scores = np.full((1, 2304, 1), -10.0, np.float32)
    i = 20 * 48 + 30                       # row 20, column 30
    raw[0, i, :4] = [2.0, -3.0, 40.0, 50.0]  # offset (px of the 192 input), w, h
    raw[0, i, 4:6] = [-10.0, -8.0]          # first keypoint relative to the anchor
    scores[0, i, 0] = 3.0
    boxes, kps, s = blazeface.decode(raw, scores)
    assert len(boxes) == 1 and s[0] == pytest.approx(1 / (1 + np.exp(-3.0)))
    cx, cy = 30.5 * 4 + 2.0, 20.5 * 4 - 3.0
    assert np.allclose(boxes[0], [cx - 20, cy - 25, cx + 20, cy + 25])
    assert np.allclose(kps[0, 0], [30.5 * 4 - 10, 20.5 * 4 - 8])


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces():
    from mien.engine.faces.blazeface import Detection, weighted_nms

    kp = np.zeros((6, 2), np.float32)
    dets = [Detection(np.array([0, 0, 10, 10], np.float32), kp, 0.9),
            Detection(np.array([1, 1, 11, 11], np.float32), kp + 1, 0.6),
            Detection(np.array([50, 50, 60, 60], np.float32), kp, 0.7)]
    out = weighted_nms(dets)
    assert len(out) == 2 and out[0].score == 0.9
    assert np.allclose(out[0].box, [0.4, 0.4, 10.4, 10.4])   # score-weighted mean (0.9, 0.6)


@pytest.mark.parametrize("size", [(1280, 720), (1280, 886), (910, 1137), (970, 2204), (1434, 2333), (512, 512),
                                  (336, 207)])
def test_tiles_cover_the_picture_at_one_scale_with_overlap(size):
    from mien.engine.faces.blazeface import TILE_MIN_OVERLAP, TILE_OVERLAP, TILE_SLACK, tiles

    w, h = size
    t = tiles(w, h)
    side = round(max(w, h) / (2 - TILE_OVERLAP))
    for x1, y1, x2, y2 in t:   # squares of the side, or as long as a side at most TILE_SLACK longer
        assert x2 - x1 == side or x2 - x1 == w <= side * (1 + TILE_SLACK)
        assert y2 - y1 == side or y2 - y1 == h <= side * (1 + TILE_SLACK)
    covered = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in t:
        assert 0 <= x1 and 0 <= y1 and x2 <= w and y2 <= h
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    xs, ys = sorted({x for x, _, _, _ in t}), sorted({y for _, y, _, _ in t})
    for starts in (xs, ys):  # neighbours overlap by at least TILE_MIN_OVERLAP of a tile
        assert all(b - a <= side * (1 - TILE_MIN_OVERLAP) + 1 for a, b in zip(starts, starts[1:]))
    assert len(t) == {(1280, 720): 2, (1280, 886): 4, (512, 512): 4, (970, 2204): 2, (1434, 2333): 2,
                      (336, 207): 2}.get(size, len(t))


@pytest.mark.parametrize("loader,side", [(t1, 336), (t1, 192), (photos.grace_hopper, 336), (photos.astronaut, 192)])
def test_working_copies_look_like_inter_area(loader, side):
    """shrink's halvings + bilinear-to-twice + halving stand in for INTER_AREA (3x cheaper): same size,
    same scale, within a grey level or so of it."""
    import cv2

    from mien.engine.faces.blazeface import shrink

    image = loader()
    h, w = image.shape[:2]
    small, scale = shrink(image, side)
    size = (round(w * side / max(h, w)), round(h * side / max(h, w)))
    assert small.shape[1::-1] == size and scale == pytest.approx(side / max(h, w), rel=1e-3)
    area = cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(small.astype(np.float32) - area).mean() < 1.0
    same, one = shrink(image, max(h, w))   # no larger than asked: the picture itself, no copy
    assert same is image and one == 1.0


def test_tiles_find_the_small_faces_of_a_group_photo():
    from mien.engine.faces.blazeface import BlazeFace

    bf = BlazeFace()
    whole = bf.detect(t1(), tile=False)
    tiled = bf.detect(t1(), tile=True)
    assert len(tiled) == 6 and len(whole) <= len(tiled)
    for det in tiled:  # eyes level-ish and inside the box
        x1, y1, x2, y2 = det.box
        assert all(x1 <= k[0] <= x2 and y1 <= k[1] <= y2 for k in det.keypoints[:4])


# -- the detector --------------------------------------------------------------

@pytest.fixture(scope="module")
def mp_faces():
    return analyzer(detector="mediapipe").detect(t1())


def test_landmarks_v1_gets_the_68_points_with_every_detection():
    faces = analyzer(detector="mediapipe", expression="landmarks").detect(t1())
    assert len(faces) == 6 and all(f.landmarks68.shape == (68, 2) for f in faces)


def test_mediapipe_detector_finds_every_t1_face_with_mesh_and_68(mp_faces):
    from faces_support import T1_CENTRES, find

    assert len(mp_faces) == 6
    for xy in T1_CENTRES.values():
        find(mp_faces, xy)
    from mien.engine.faces.dlib_landmarks import fill_landmarks68

    assert all(f.landmarks68 is None for f in mp_faces)  # fitted on demand (identity), not per detection
    fill_landmarks68(t1(), mp_faces)
    for f in mp_faces:
        assert f.mesh.shape == (468, 3) and f.mesh_presence >= 0.5
        assert f.landmarks68.shape == (68, 2) and f.landmarks5.shape == (5, 2)
        le, re, nose, lm, rm = f.landmarks5
        assert le[0] < re[0] and lm[0] < rm[0] and nose[1] > max(le[1], re[1]) - 5


def test_landmarks_agree_with_dlib_on_the_same_faces(mp_faces, dlib_faces):
    from mien.engine.faces.identity_dlib import DlibIdentity
    from mien.engine.faces import EngineConfig

    from mien.engine.faces.dlib_landmarks import fill_landmarks68

    fill_landmarks68(t1(), mp_faces)
    ident = DlibIdentity(EngineConfig())
    for fd in dlib_faces:
        fm = min(mp_faces, key=lambda f: np.linalg.norm(f.landmarks5.mean(0) - fd.landmarks5.mean(0)))
        iod = fd.inter_ocular
        assert np.linalg.norm(fm.landmarks5 - fd.landmarks5, axis=1).max() / iod < 0.25
        assert np.linalg.norm(fm.landmarks68 - fd.landmarks68, axis=1).mean() / iod < 0.1
        a, b = ident.embed(t1(), [fm])[0], ident.embed(t1(), [fd])[0]
        assert np.linalg.norm(a - b) < 0.15   # same person by far (dlib's threshold is 0.6)


def test_mediapipe_detects_every_video_frame_in_full(mp_faces):
    """No detect_near: following a mesh from frame to frame locks onto the wrong place at a cut."""
    det = analyzer(detector="mediapipe").detector
    assert not hasattr(det, "detect_near")
    shifted = np.ascontiguousarray(np.roll(t1(), (12, -15), axis=(0, 1)))
    moved = det.detect(shifted)
    assert len(moved) == len(mp_faces)
    for before in mp_faces:
        after = min(moved, key=lambda f: np.linalg.norm(f.landmarks5.mean(0) - before.landmarks5.mean(0)))
        assert np.allclose(after.landmarks5.mean(0) - before.landmarks5.mean(0), [-15, 12], atol=4)


def test_detect_following_refinds_faces_and_reports_a_lost_one(mp_faces):
    det = analyzer(detector="mediapipe").detector
    shifted = np.ascontiguousarray(np.roll(t1(), (12, -15), axis=(0, 1)))
    boxes = [f.bbox for f in mp_faces]
    found = det.detect_following(shifted, boxes)
    assert found is not None and len(found) == len(mp_faces)
    for before in mp_faces:
        after = min(found, key=lambda f: np.linalg.norm(f.landmarks5.mean(0) - before.landmarks5.mean(0)))
        assert np.allclose(after.landmarks5.mean(0) - before.landmarks5.mean(0), [-15, 12], atol=4)
    blank = np.full_like(t1(), 127)
    assert det.detect_following(blank, boxes) is None      # lost: the caller runs detect()
    assert det.detect_following(blank, []) == []


def test_portraits_skip_tiles_group_photos_keep_them():
    from mien.engine.faces.blazeface import BlazeFace

    bf = BlazeFace(min_score=0.4)
    portrait = photos.face_recognition_photo("obama.jpg")
    assert len(bf.detect(portrait, tile=True, portrait_skips_tiles=True)) == 1
    # the group photo's faces are small: its tiles still run and find the sixth face
    assert len(bf.detect(t1(), tile=True, portrait_skips_tiles=True)) == 6
    assert len(bf.detect(t1(), tile=False)) < 6


def test_thin_strips_and_huge_blank_pictures_find_nothing_quickly():
    """A 40x3000 strip gets 2 tiles as wide as the strip, not ~90 squares (no timing asserted)."""
    from mien.engine.faces.blazeface import tiles

    assert len(tiles(40, 3000)) == 2
    an = analyzer(detector="mediapipe")
    for shape in [(40, 3000, 3), (3000, 60, 3), (8, 8, 3)]:
        assert an.analyze(np.full(shape, 128, np.uint8)) == []


def test_following_reuses_the_previous_mesh_roi_with_one_pass(mp_faces):
    """A face BlazeFace finds again near where it was gets one FaceMesh pass from the previous mesh's
    ROI (moved with the face) instead of two; its points land where two passes put them."""
    from mien.engine.faces import mediapipe_detector

    det = analyzer(detector="mediapipe").detector
    before = det.detect(t1())
    shifted = np.ascontiguousarray(np.roll(t1(), (6, -8), axis=(0, 1)))
    calls = []
    run = det.mesher.run
    det.mesher.run = lambda image, roi: calls.append(roi) or run(image, roi)
    try:
        found = det.detect_following(shifted, [f.bbox for f in before])
    finally:
        del det.mesher.run
    assert found is not None and len(found) == len(before)
    # the image moved by (-8, +6) px: the 5 points should too, about as well as with two passes
    # (FaceMesh itself moves them by up to ~0.1 IOD from one pass to the next on these ~100 px faces)
    errors = {"follow": [], "two passes": []}
    for name, faces in (("follow", found), ("two passes", det.detect(shifted))):
        for b in before:
            truth = b.landmarks5 + np.float32([-8, 6])
            iod = np.linalg.norm(b.landmarks5[0] - b.landmarks5[1])
            errors[name].append(min(np.linalg.norm(f.landmarks5 - truth, axis=1).max() / iod for f in faces))
    assert max(errors["follow"]) < 0.15
    assert np.mean(errors["follow"]) < 1.5 * np.mean(errors["two passes"]) + 0.01, errors
    assert len(calls) < 2 * len(before)   # most faces took one pass (false BlazeFace hits take their own)
    # a face that jumped (a cut) or changed size is not given the old ROI
    box = np.array(before[0].bbox, np.float32)
    side = box[2] - box[0]
    prev = [(box, facemesh.roi_from_mesh(before[0].mesh))]
    assert mediapipe_detector.reused_roi(box + np.float32(0.05 * side), prev) is not None
    assert mediapipe_detector.reused_roi(box + np.float32(0.5 * side), prev) is None
    assert mediapipe_detector.reused_roi(box * np.float32([1, 1, 1.5, 1.5]), prev) is None
