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
"""

from __future__ import annotations

import math

import numpy as np

from mien.engine.faces.facemesh import LEFT_EYE, RIGHT_EYE, FaceMesher, Roi, roi_from_mesh
from mien.engine.faces.meshpose import RIGID, fit_rotation

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
    mesher = mesher or _mesher()
    roi = roi_from_mesh(mesh)
    fits = [mesh] + [mesher.run(image_bgr, perturbed(roi, *p))[0] for p in PERTURBATIONS]
    return lip_spread(fits)


_default: FaceMesher | None = None


def _mesher() -> FaceMesher:
    global _default
    if _default is None:
        _default = FaceMesher()
    return _default
