"""The default expression encoder: 16-d, from dlib's 68 landmarks, no weights.

Landmarks are first normalised: origin at the midpoint of the eye centres,
x along the left->right eye axis (undoes in-plane rotation), unit = the
inter-ocular distance (IOD). y grows downwards. "left"/"right" are image
left/right, as everywhere in mien. Each component is a geometric measure
minus its typical value on a neutral frontal face, divided by a typical
range of that measure over expressions, so ~0 is neutral and ~±1 a strong
expression. The vector is normalise([15 components, BIAS]): the fixed bias
makes a neutral face map to a stable point (0, ..., 0, 1) instead of the
direction of a near-zero vector, and the bias size sets how far a given
deformation moves the vector. A mirrored face gives the same vector with
the left/right pairs swapped (MIRROR_PERMUTATION).
"""

from __future__ import annotations

import numpy as np

VERSION = "landmarks-v1"
BIAS = 1.0

# name: (neutral value, typical range), both in IOD units. Neutral values are
# those of dlib's 68-point mean shape on a relaxed frontal face; ranges are
# about the change from neutral to a full expression.
COMPONENTS: dict[str, tuple[float, float]] = {
    # horizontal distance between the lip corners (48-54): widens in smiles, narrows in pouts
    "mouth_width": (0.85, 0.25),
    # gap between the inner lips (61-67, 62-66, 63-65): speech, laughing, surprise
    "mouth_open": (0.04, 0.20),
    # height of the left lip corner (48) above the inner-lip midline: smile lifts, sadness drops
    "lip_corner_lift_left": (-0.02, 0.15),
    "lip_corner_lift_right": (-0.02, 0.15),
    # mean height of the left brow (17-21) above the left eye centre: surprise, fear
    "brow_raise_left": (0.30, 0.12),
    "brow_raise_right": (0.30, 0.12),
    # inner brow ends (21, 22) drawn together (neutral gap minus gap): anger, concentration
    "brow_furrow": (0.05, 0.15),
    # inner brow end raised relative to outer end (21 vs 17): sadness, worry
    "brow_tilt_left": (0.12, 0.15),
    "brow_tilt_right": (0.12, 0.15),
    # eye opening (lid distance, 37-41, 38-40): wide in surprise, narrowed in laughter and squint
    "eye_aperture_left": (0.10, 0.06),
    "eye_aperture_right": (0.10, 0.06),
    # lower-lip bow: centre of the lower lip (57) below the corners' line: the U of a smile
    "lip_curvature": (0.15, 0.20),
    # chin (8) below the nose base (33): jaw drop
    "jaw_drop": (1.10, 0.30),
    # upper lip (51) below the nose base (33): shrinks when the upper lip is raised (disgust, grin)
    "nose_mouth": (0.25, 0.10),
    # visible lip thickness (outer height minus inner gap): pressed or stretched lips thin out
    "lip_thickness": (0.22, 0.12),
}
NAMES = list(COMPONENTS)
DIM = len(NAMES) + 1  # + the bias
assert DIM == 16

_PAIRS = [("lip_corner_lift_left", "lip_corner_lift_right"), ("brow_raise_left", "brow_raise_right"),
          ("brow_tilt_left", "brow_tilt_right"), ("eye_aperture_left", "eye_aperture_right")]


def _mirror_permutation() -> np.ndarray:
    perm = list(range(DIM))
    for a, b in _PAIRS:
        i, j = NAMES.index(a), NAMES.index(b)
        perm[i], perm[j] = j, i
    return np.array(perm)


MIRROR_PERMUTATION = _mirror_permutation()  # v(mirrored face) == v(face)[MIRROR_PERMUTATION]

_NEUTRAL = np.array([COMPONENTS[n][0] for n in NAMES], np.float64)
_RANGE = np.array([COMPONENTS[n][1] for n in NAMES], np.float64)


def normalise_landmarks(lm68: np.ndarray) -> np.ndarray:
    """68 points in the eye frame: origin between the eyes, x along the eye axis, unit = IOD."""
    pts = np.asarray(lm68, np.float64)
    left, right = pts[36:42].mean(0), pts[42:48].mean(0)
    axis = right - left
    iod = float(np.hypot(*axis))
    if iod < 1e-6:
        raise ValueError("degenerate landmarks: the eye centres coincide")
    c, s = axis / iod
    rot = np.array([[c, s], [-s, c]])  # rotates the eye axis onto +x
    return (pts - (left + right) / 2) @ rot.T / iod


def raw_components(lm68: np.ndarray) -> np.ndarray:
    """The 15 geometric measures in IOD units (before centring and scaling), in NAMES order."""
    p = normalise_landmarks(lm68)
    x, y = p[:, 0], p[:, 1]

    def dist(i, j):
        return float(np.hypot(*(p[i] - p[j])))

    inner_mid_y = (y[62] + y[66]) / 2
    # The image-right side mirrors to the image-left: measure both the same way.
    left_eye_y, right_eye_y = y[36:42].mean(), y[42:48].mean()
    inner_gap = (dist(61, 67) + dist(62, 66) + dist(63, 65)) / 3
    values = {
        "mouth_width": dist(48, 54),
        "mouth_open": inner_gap,
        "lip_corner_lift_left": inner_mid_y - y[48],
        "lip_corner_lift_right": inner_mid_y - y[54],
        "brow_raise_left": left_eye_y - y[17:22].mean(),
        "brow_raise_right": right_eye_y - y[22:27].mean(),
        # neutral gap between inner brow ends is ~0.45 IOD (dlib mean shape)
        "brow_furrow": 0.45 - dist(21, 22),
        "brow_tilt_left": y[17] - y[21],
        "brow_tilt_right": y[26] - y[22],
        "eye_aperture_left": (dist(37, 41) + dist(38, 40)) / 2,
        "eye_aperture_right": (dist(43, 47) + dist(44, 46)) / 2,
        "lip_curvature": y[57] - (y[48] + y[54]) / 2,
        "jaw_drop": y[8] - y[33],
        "nose_mouth": y[51] - y[33],
        "lip_thickness": (y[57] - y[51]) - inner_gap,
    }
    return np.array([values[n] for n in NAMES], np.float64)


def components(lm68: np.ndarray) -> dict[str, float]:
    """Centred and scaled components: ~0 neutral, ~±1 a strong expression."""
    z = (raw_components(lm68) - _NEUTRAL) / _RANGE
    return {n: float(v) for n, v in zip(NAMES, z)}


def encode(lm68: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """(16-d L2-normalised float32 vector, named components) of one face."""
    comps = components(lm68)
    v = np.array([comps[n] for n in NAMES] + [BIAS], np.float64)
    v /= np.linalg.norm(v)
    return v.astype(np.float32), comps


class LandmarkExpressionEncoder:
    """Encoder object the analyzer uses: it reads the faces' 68 points alone, so all faces at once."""

    name = VERSION
    dim = DIM
    batches_faces = True
    reads_crop = False

    def encode_faces(self, faces) -> None:
        for face in faces:
            if face.landmarks68 is None:
                raise ValueError("the landmark expression encoder needs 68 landmarks")
            face.expression, face.expression_components = encode(face.landmarks68)
