"""FACS-style action-unit (AU) intensities from the pose-normalised FaceMesh.

The 468-point mesh (facemesh.py, source-image pixels, z in the same scale)
is first put in a head frame, which removes head rotation: the rotation of
the Procrustes fit of the neutral reference mesh's rigid points (forehead,
nose, eye corners, cheekbones; meshpose.py, the same fit that gives FaceQA's
head pose) is undone, so x runs from the person's right to left eye centre, y
down through the face, z away from the camera; origin at the midpoint of the
eye centres, unit = the 3-D inter-ocular distance (IOD). The reference is
exactly left/right symmetric and the bilateral AUs are the mean of both
sides, so a mirrored face gives the same values (an asymmetric expression,
a smirk, reads as half of the symmetric one).

Each AU is a geometric measure in IOD units, centred on its NEUTRAL value
and divided by its typical RANGE, so ~0 is a relaxed face and ~1 a strong
action. NEUTRAL: the median over the relaxed faces of the package photos
(insightface t1's two women on the left, Grace Hopper, Biden; see
tests/test_faces_expression_fer_au.py), rounded. RANGE: about the change from
neutral to a full action, read off the package photos' strongest cases
(t1's laughing man, Obama's smile, obama2's open mouth) and, for actions
they don't show, set a priori from the FACS descriptions at roughly the
size of comparable measures. A priori ranges are flagged "a priori" below.

Mesh indices (MediaPipe's canonical topology; R = person's right = image
left on a frontal face, L = the other side).
"""

from __future__ import annotations

import numpy as np

from mien.engine.faces.facemesh import LEFT_EYE, RIGHT_EYE

# -- mesh indices ---------------------------------------------------------
NOSE_BASE = [2, 94]                      # subnasale: the skin between the nostrils and the upper lip
BROW_INNER = ([107, 55, 66, 65], [336, 285, 296, 295])
BROW_OUTER = ([70, 46, 63, 53], [300, 276, 293, 283])
LID_UPPER = ([159, 158, 160], [386, 385, 387])
LID_LOWER = ([145, 144, 153], [374, 373, 380])
EYE_CORNERS = ([33, 133], [263, 362])    # outer, inner
EYE_INNER = (133, 362)
CHEEK = ([117, 118, 50, 101], [346, 347, 280, 330])   # the cheek below the eye (malar fat pad)
NOSE_WING = ([48, 64, 98], [278, 294, 327])           # nasal alae
LIP_CORNER = (61, 291)
UPPER_LIP_TOP, UPPER_LIP_INNER, LOWER_LIP_INNER, LOWER_LIP_BOTTOM = 0, 13, 14, 17
CHIN = 152

# name: (FACS action unit, neutral value, typical range); what is measured above each row.
# Order = vector order.
AUS: dict[str, tuple[str, float, float]] = {
    # height of the inner brow ends above the eye centres (range a priori)
    "inner_brow_raise": ("AU1", 0.315, 0.1),
    # height of the outer brow ends above the eye centres (range a priori)
    "outer_brow_raise": ("AU2", 0.26, 0.1),
    # inner brow ends drawn together (neutral gap minus gap) (range a priori)
    "brow_lowerer": ("AU4", -0.64, 0.08),
    # upper lid above the line of the eye corners (range a priori)
    "upper_lid_raise": ("AU5", 0.065, 0.04),
    # lower lid raised towards the line of the eye corners (range a priori)
    "lid_tighten": ("AU7", -0.045, 0.03),
    # eye aperture narrowed (neutral aperture minus aperture) (range a priori)
    "eye_closure": ("AU43", -0.115, 0.06),
    # cheek below the eye raised towards it (range a priori)
    "cheek_raise": ("AU6", -0.35, 0.05),
    # nose wings raised towards the inner eye corners (range a priori)
    "nose_wrinkle": ("AU9", -0.59, 0.05),
    # upper lip raised towards the nose base
    "upper_lip_raise": ("AU10", -0.22, 0.06),
    # lip corners pulled up and out: half the mouth width minus the corners' depth below the nose base
    # (the oblique pull of zygomaticus major)
    "lip_corner_pull": ("AU12", 0.07, 0.2),
    # lip corners below the line where the lips meet
    "lip_corner_depress": ("AU15", 0.005, 0.08),
    # mouth width (lip corner to lip corner)
    "lip_stretch": ("AU20", 0.8, 0.3),
    # visible red of the lips thinned (range a priori)
    "lip_press": ("AU24", -0.24, 0.06),
    # gap between the inner lips
    "lips_part": ("AU25", 0.02, 0.3),
    # chin below the nose base
    "jaw_drop": ("AU26", 1.01, 0.2),
    # lower lip pushed up by the chin (lower lip to chin distance shrinks) (range a priori)
    "chin_raise": ("AU17", -0.51, 0.15),
}
NAMES = list(AUS)


def head_frame(mesh: np.ndarray) -> np.ndarray:
    """The mesh in the head frame (see the module doc), IOD units, float64 (468, 3)."""
    from mien.engine.faces.meshpose import rotation

    pts = np.asarray(mesh, np.float64)
    if pts.shape != (468, 3) or not np.all(np.isfinite(pts)):
        raise ValueError(f"expected a (468, 3) FaceMesh, got shape {pts.shape}")
    pts = pts @ rotation(pts)          # camera axes -> head axes (rows: p @ R = R^T p)
    eye_r, eye_l = pts[RIGHT_EYE].mean(0), pts[LEFT_EYE].mean(0)
    iod = float(np.linalg.norm(eye_l - eye_r))
    if iod < 1e-6:
        raise ValueError("degenerate mesh: the eye centres coincide")
    return (pts - (eye_r + eye_l) / 2) / iod


def raw_measures(mesh: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
    """The AU measures in IOD units, before centring and scaling, in NAMES order (frame: the
    mesh's head_frame, when the caller has it already)."""
    p = head_frame(mesh) if frame is None else frame
    x, y = p[:, 0], p[:, 1]

    def both(pair, fn):
        return (fn(pair[0], 0) + fn(pair[1], 1)) / 2

    eye_y = (y[RIGHT_EYE].mean(), y[LEFT_EYE].mean())
    corner_y = (y[EYE_CORNERS[0]].mean(), y[EYE_CORNERS[1]].mean())
    lips_meet_y = (y[UPPER_LIP_INNER] + y[LOWER_LIP_INNER]) / 2
    nose_y = y[NOSE_BASE].mean()
    values = {
        "inner_brow_raise": both(BROW_INNER, lambda idx, s: eye_y[s] - y[idx].mean()),
        "outer_brow_raise": both(BROW_OUTER, lambda idx, s: eye_y[s] - y[idx].mean()),
        "brow_lowerer": -(x[BROW_INNER[1]].mean() - x[BROW_INNER[0]].mean()),
        "upper_lid_raise": both(LID_UPPER, lambda idx, s: corner_y[s] - y[idx].mean()),
        "lid_tighten": -both(LID_LOWER, lambda idx, s: y[idx].mean() - corner_y[s]),
        "eye_closure": -(both(LID_LOWER, lambda idx, s: y[idx].mean())
                         - both(LID_UPPER, lambda idx, s: y[idx].mean())),
        "cheek_raise": -both(CHEEK, lambda idx, s: y[idx].mean() - eye_y[s]),
        "nose_wrinkle": -both(NOSE_WING, lambda idx, s: y[idx].mean() - y[EYE_INNER[s]]),
        "upper_lip_raise": -(y[UPPER_LIP_TOP] - nose_y),
        "lip_corner_pull": (abs(x[LIP_CORNER[1]] - x[LIP_CORNER[0]]) / 2
                            - (y[list(LIP_CORNER)].mean() - nose_y)),
        "lip_corner_depress": y[list(LIP_CORNER)].mean() - lips_meet_y,
        "lip_stretch": float(np.linalg.norm(p[LIP_CORNER[1]] - p[LIP_CORNER[0]])),
        "lip_press": -((y[UPPER_LIP_INNER] - y[UPPER_LIP_TOP]) + (y[LOWER_LIP_BOTTOM] - y[LOWER_LIP_INNER])),
        "lips_part": y[LOWER_LIP_INNER] - y[UPPER_LIP_INNER],
        "jaw_drop": y[CHIN] - nose_y,
        "chin_raise": -(y[CHIN] - y[LOWER_LIP_BOTTOM]),
    }
    return np.array([values[n] for n in NAMES], np.float64)


_NEUTRAL = np.array([AUS[n][1] for n in NAMES], np.float64)
_RANGE = np.array([AUS[n][2] for n in NAMES], np.float64)


def intensities(mesh: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
    """Centred, scaled AU intensities (NAMES order): ~0 relaxed, ~1 a strong action."""
    return (raw_measures(mesh, frame) - _NEUTRAL) / _RANGE


def components(mesh: np.ndarray) -> dict[str, float]:
    return {n: float(v) for n, v in zip(NAMES, intensities(mesh))}
