"""FaceQA: eye sharpness and head pose, and the pass/fail decision.

Sharpness (sid): for an MxM patch centred on each eye, mean |P - P*Gaussian|
in grey levels, averaged over the two eyes. The patches are resampled to a
fixed scale where the inter-ocular distance is 70 px (the expression crop's
scale), with M = 0.5 x inter-ocular distance = 35 px: the eye and its lids,
not the brow. Measuring at a fixed face scale makes one threshold (3.0) mean
the same for a 40 px face and a 400 px face; faces far smaller than 70 px
IOD are upsampled, lose detail and correctly score low.

Head pose: for faces with a FaceMesh (the MediaPipe front end), Procrustes
of the mesh against a neutral reference mesh (meshpose.py); for others
(dlib, insightface), cv2.solvePnP of the 5 points against a generic 3D face
(mm, camera axes: x right, y down, z away from the camera; frontal face
looks at the camera), focal length = the image's longest side. PnP of 5
points is unreliable on small faces and its yaw sign disagrees with
mirroring on many faces; the mesh pose flips sign under mirroring within a
few degrees (tests/test_faces_mediapipe.py). Mesh convention:
yaw > 0: the person turns to their own left (nose towards the image's
right); pitch > 0: chin down; roll > 0: clockwise in the image.

Occlusion (faces with a mesh that passed the other checks): occlusion.py's
mouth score and flag go into Quality; they reject the face only with
EngineConfig.reject_occluded (indexing keeps occluded faces, flagged, so
tags and summaries can leave them out).
"""

from __future__ import annotations

import math

import numpy as np

from mien.engine.faces.align import EXPR_IOD, eyes_transform
from mien.engine.faces.config import EngineConfig
from mien.engine.faces.types import Face, Quality

PATCH_IOD = 0.5          # patch side M as a fraction of the inter-ocular distance
SHARP_SIGMA = 1.5        # Gaussian sigma (px at the 70 px IOD scale)
PATCH = int(round(PATCH_IOD * EXPR_IOD))

# Generic adult face, nose tip at the origin (mm): left eye centre, right eye
# centre, nose tip, left mouth corner, right mouth corner (image left/right).
FACE_3D = np.array([
    [-31.5, -33.0, 27.0],
    [31.5, -33.0, 27.0],
    [0.0, 0.0, 0.0],
    [-24.0, 31.0, 24.0],
    [24.0, 31.0, 24.0],
], dtype=np.float64)


def sharpness(image: np.ndarray, landmarks5: np.ndarray) -> float:
    """sid: mean |P - G(P)| over MxM eye patches at the 70 px IOD scale, both eyes averaged."""
    import cv2

    # Map each eye centre to the centre of its own MxM patch, IOD -> 70 px.
    half = PATCH / 2.0
    values = []
    for i in (0, 1):
        # same similarity as the expression crop, translated so eye i sits at the patch centre
        m = eyes_transform(landmarks5[0], landmarks5[1], (0.0, 0.0), (EXPR_IOD, 0.0))
        offset = np.array([half, half]) - (np.array([0.0, 0.0]) if i == 0 else np.array([EXPR_IOD, 0.0]))
        m[:, 2] += offset
        patch = cv2.warpAffine(image, m, (PATCH, PATCH), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float32) if patch.ndim == 3 \
            else patch.astype(np.float32)
        blurred = cv2.GaussianBlur(grey, (0, 0), SHARP_SIGMA, borderType=cv2.BORDER_REFLECT)
        values.append(float(np.abs(grey - blurred).mean()))
    return float(np.mean(values))


def camera_matrix(image_shape) -> np.ndarray:
    h, w = image_shape[:2]
    f = float(max(h, w))
    return np.array([[f, 0, w / 2.0], [0, f, h / 2.0], [0, 0, 1]], dtype=np.float64)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation (object -> camera) for angles in degrees, R = Rz(roll) Ry(yaw) Rx(pitch)."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def angles(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of rotation(): (yaw, pitch, roll) in degrees."""
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -rot[2, 0]))))
    pitch = math.degrees(math.atan2(rot[2, 1], rot[2, 2]))
    roll = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
    return yaw, pitch, roll


def project(yaw: float, pitch: float, roll: float, image_shape, centre, distance_mm: float = 600.0) -> np.ndarray:
    """Image points of FACE_3D at this pose, distance and image position (for tests and demos)."""
    import cv2

    cam = camera_matrix(image_shape)
    ray = np.linalg.solve(cam, np.array([centre[0], centre[1], 1.0]))
    tvec = ray / ray[2] * distance_mm
    rvec, _ = cv2.Rodrigues(rotation(yaw, pitch, roll))
    pts, _ = cv2.projectPoints(FACE_3D, rvec, tvec, cam, None)
    return pts.reshape(-1, 2).astype(np.float32)


def head_pose(landmarks5: np.ndarray, image_shape) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees by PnP of the 5 points against FACE_3D."""
    import cv2

    cam = camera_matrix(image_shape)
    pts = np.asarray(landmarks5, np.float64).reshape(-1, 1, 2)
    try:
        ok, rvec, tvec = cv2.solvePnP(FACE_3D, pts, cam, None, flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error:  # degenerate points (a detector's 5 keypoints on top of each other)
        ok = False
    if not ok:
        return float("nan"), float("nan"), float("nan")
    rot, _ = cv2.Rodrigues(rvec)
    return angles(rot)


def face_pose(face: Face, image_shape) -> tuple[float, float, float]:
    """(yaw, pitch, roll): from the mesh when the face has one, else PnP of the 5 points."""
    if face.mesh is not None:
        from mien.engine.faces.meshpose import head_pose as mesh_pose

        return mesh_pose(face.mesh)
    return head_pose(face.landmarks5, image_shape)


def assess_face(image: np.ndarray, face: Face, cfg: EngineConfig, occlusion: bool = True,
                mesher=None) -> Quality:
    """FaceQA's scores and verdict. occlusion=False spares the occlusion score's 2 mesh passes
    (left at 0, not occluded) where nothing reads it: a query photo's other faces, unless
    cfg.reject_occluded makes it part of the verdict. mesher: the FaceMesher those passes run on
    (default: the process's own)."""
    sid = sharpness(image, face.landmarks5)
    yaw, pitch, roll = face_pose(face, image.shape)
    reasons = []
    if not sid >= cfg.sharpness_min:
        reasons.append("blurry")
    if not abs(yaw) <= cfg.yaw_max:
        reasons.append("yaw")
    if cfg.pitch_max is not None and not abs(pitch) <= cfg.pitch_max:
        reasons.append("pitch")
    score, occluded = 0.0, False
    # rejected faces are not kept: spare the 2 mesh passes
    if face.mesh is not None and not reasons and (occlusion or cfg.reject_occluded):
        from mien.engine.faces.occlusion import THRESHOLD, occlusion_score

        score = occlusion_score(image, face.mesh, mesher)
        occluded = score > THRESHOLD
        if occluded and cfg.reject_occluded:
            reasons.append("occluded")
    return Quality(sharpness=sid, yaw=yaw, pitch=pitch, roll=roll,
                   passed=not reasons, reason=",".join(reasons), occluded=occluded, occlusion=score)
