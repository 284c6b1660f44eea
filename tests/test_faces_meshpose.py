"""Head pose from the FaceMesh and mouth occlusion, on real package photos."""

import numpy as np
import pytest

from faces_support import analyzer, t1
from mien.demo import photos
from mien.engine.faces import faceqa
from mien.engine.faces.facemesh import LEFT_EYE, RIGHT_EYE
from mien.engine.faces.meshpose import head_pose
from mien.engine.faces.occlusion import THRESHOLD, occlusion_score


def detect(image):
    return analyzer(detector="mediapipe").detect(image)


def mirrored(image):
    return np.ascontiguousarray(image[:, ::-1])


@pytest.mark.parametrize("name", ["t1", "obama2.jpg", "biden.jpg", "obama.jpg"])
def test_mirroring_flips_yaw_and_roll(name):
    image = t1() if name == "t1" else photos.face_recognition_photo(name)
    faces, flipped = detect(image), detect(mirrored(image))
    assert len(faces) == len(flipped) >= 1
    width = image.shape[1]
    for f in faces:
        cx = (f.bbox[0] + f.bbox[2]) / 2
        g = min(flipped, key=lambda g: abs(width - (g.bbox[0] + g.bbox[2]) / 2 - cx))
        (y1, p1, r1), (y2, p2, r2) = head_pose(f.mesh), head_pose(g.mesh)
        assert abs(y1 + y2) < 5 and abs(r1 + r2) < 5 and abs(p1 - p2) < 5


def test_yaw_sign_convention_on_t1():
    """t1's standing man (Joey, top right) turns to his right: the nose points to the image left."""
    faces = detect(t1())
    joey = min(faces, key=lambda f: np.hypot((f.bbox[0] + f.bbox[2]) / 2 - 935, (f.bbox[1] + f.bbox[3]) / 2 - 132))
    yaw, _, _ = head_pose(joey.mesh)
    assert yaw < -25
    nose, eyes_mid = joey.landmarks5[2], joey.landmarks5[:2].mean(0)
    assert nose[0] < eyes_mid[0]  # the picture agrees: nose left of the eyes' midpoint


def test_frontal_faces_read_near_zero():
    for image in (photos.astronaut(), photos.grace_hopper(), photos.face_recognition_photo("obama.jpg")):
        (face,) = detect(image)
        yaw, pitch, roll = head_pose(face.mesh)
        assert abs(yaw) < 8 and abs(roll) < 8 and abs(pitch) < 12


def test_faceqa_uses_the_mesh_pose():
    image = photos.face_recognition_photo("obama2.jpg")
    (face,) = detect(image)
    q = faceqa.assess_face(image, face, analyzer(detector="mediapipe").config)
    assert (q.yaw, q.pitch, q.roll) == pytest.approx(head_pose(face.mesh))


def cover_mouth(image, face, seed=0):
    """A skin-coloured, finger-striped ellipse (a hand) over mouth and chin, colour from the cheeks."""
    import cv2

    rng = np.random.default_rng(seed)
    m = face.mesh
    iod = np.linalg.norm(m[LEFT_EYE, :2].mean(0) - m[RIGHT_EYE, :2].mean(0))
    h, w = image.shape[:2]
    cheeks = [image[max(0, int(y) - 2):min(h, int(y) + 3), max(0, int(x) - 2):min(w, int(x) + 3)].reshape(-1, 3)
              for x, y in m[[50, 280, 117, 346], :2]]
    colour = np.median(np.concatenate(cheeks), axis=0) * rng.uniform(0.9, 1.1)
    cx, cy = m[[61, 291, 17, 0], :2].mean(0)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (int(cx), int(cy + 0.1 * iod)), (int(0.95 * iod), int(0.55 * iod)),
                rng.uniform(-20, 20), 0, 360, 255, -1)
    yy = np.mgrid[0:h, 0:w][0]
    patch = np.empty((h, w, 3), np.float32)
    patch[:] = colour
    patch *= (1.0 - 0.12 * (np.sin((yy - cy) / (0.12 * iod)) > 0.85))[..., None]
    patch += rng.normal(0, 4, patch.shape)
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.05 * iod).astype(np.float32)[..., None] / 255
    return (image * (1 - alpha) + patch * alpha).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg", "astronaut", "grace_hopper"])
def test_a_hand_over_the_mouth_is_flagged_and_a_clear_mouth_is_not(name):
    image = {"astronaut": photos.astronaut, "grace_hopper": photos.grace_hopper}.get(
        name, lambda: photos.face_recognition_photo(name))()
    (face,) = detect(image)
    clear = occlusion_score(image, face.mesh)
    covered_image = cover_mouth(image, face)
    (covered,) = detect(covered_image)
    score = occlusion_score(covered_image, covered.mesh)
    assert clear < THRESHOLD < score
    cfg = analyzer(detector="mediapipe").config
    q = faceqa.assess_face(covered_image, covered, cfg)
    assert q.occluded and q.passed and q.occlusion == pytest.approx(score)  # flagged, not rejected
    from dataclasses import replace

    q = faceqa.assess_face(covered_image, covered, replace(cfg, reject_occluded=True))
    assert not q.passed and "occluded" in q.reason


def put_mask(image, face, mask):
    """A surgical-mask photo (insightface ships them) warped over nose, mouth and chin by the mesh."""
    import cv2

    m = face.mesh[:, :2]
    tl, tr = m[234] * 0.35 + m[195] * 0.65, m[454] * 0.35 + m[195] * 0.65   # cheeks below the eyes
    bl, br = m[172] * 0.8 + m[152] * 0.2, m[397] * 0.8 + m[152] * 0.2       # the jaw near the chin
    h, w = mask.shape[:2]
    warp = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), np.float32([tl, tr, br, bl]))
    size = (image.shape[1], image.shape[0])
    alpha = cv2.warpPerspective(np.full((h, w), 255, np.uint8), warp, size).astype(np.float32)[..., None] / 255
    return (image * (1 - alpha) + cv2.warpPerspective(mask, warp, size) * alpha).astype(np.uint8)


@pytest.mark.parametrize("mask_name", ["mask_blue.jpg", "mask_black.jpg"])
def test_a_surgical_mask_is_flagged(mask_name):
    import cv2

    mask = cv2.imread(str(photos.insightface_t1_path().parent / mask_name))
    for image in (photos.face_recognition_photo("obama.jpg"), photos.face_recognition_photo("biden.jpg")):
        (face,) = detect(image)
        masked = put_mask(image, face, mask)
        (found,) = detect(masked)
        assert occlusion_score(masked, found.mesh) > THRESHOLD > occlusion_score(image, face.mesh)


def test_video_runs_carry_an_unchanged_mouths_score_and_rescore_a_covered_one(tmp_path):
    """Frames of one followed run: a face whose mouth area is unchanged keeps its occlusion score (no
    mesh passes), a hand that comes over the mouth in a later frame is scored afresh and flagged,
    exactly as analysing each frame alone flags it."""
    from mien.demo.videos import write_clip
    from mien.engine.faces import EngineConfig, occlusion
    from mien.indexer import worker
    from mien.indexer.video import RangeReader

    clip = write_clip(tmp_path / "pan.mp4", ["obama2", "biden"], motion="pan", fps=10, size=(1280, 720),
                      seconds=2.0)
    frames = [(f.index, f.timestamp_ms, f.image) for f in RangeReader(str(clip.path), 0, None, 2.0, seek=False)]
    worker.init(EngineConfig(), threads=1)
    an = worker.analyzer()
    # frames 2 and 3: a hand over the left person's mouth
    for i in (2, 3):
        image = frames[i][2]
        left = min(an.detect(image), key=lambda f: f.bbox[0])
        frames[i] = (frames[i][0], frames[i][1], cover_mouth(image, left))
    alone = worker.analyze_frames(frames, False)
    before = dict(occlusion.counts)
    followed = worker.analyze_frames(frames, True)
    scored = occlusion.counts["scored"] - before["scored"]
    carried = occlusion.counts["carried"] - before["carried"]
    flags = [[f.quality.occluded for f in r.faces] for r in followed]
    assert flags == [[f.quality.occluded for f in r.faces] for r in alone]
    assert flags == [[False, False], [False, False], [True, False], [True, False]]
    # scored: both faces on the keyframe, the covered face when the hand came; the rest carried
    assert scored >= 3 and carried >= 2 and scored + carried == 2 * len(frames)
