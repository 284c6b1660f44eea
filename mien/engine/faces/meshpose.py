"""Head pose from the FaceMesh: Procrustes of the mesh against a neutral reference.

The reference (mesh_reference.py) is the mean FaceMesh of the near-frontal
faces of the public photos and their mirror images (so it is exactly
left/right symmetric), in a head frame: x from the person's right eye centre
to their left eye centre (image left -> right on a frontal face), y down
through the face, z = x cross y (away from the camera); pitch 0 is the
median of those faces (people looking at the camera). Built by
benchmarks/mesh_reference.py.

A mesh's pose is the rotation of the best similarity fit (Kabsch / Umeyama,
no reflection) of the reference's RIGID points (forehead, nose, eye corners,
cheekbones: points expressions barely move) to the mesh's, both in camera
axes (x right, y down, z away; FaceMesh's z is depth in pixel units).

Sign convention (degrees):
- yaw > 0: the person turns to their own left, i.e. the nose points to the
  image's right. Mirroring the image flips the sign.
- pitch > 0: the person looks down (chin down).
- roll > 0: the face is rotated clockwise in the image (the eye line goes
  down to the image right).
"""

from __future__ import annotations

import math

import numpy as np

# Points expressions barely move: forehead, nose bridge/tip, eye corners, cheekbones, temples.
RIGID = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 108, 337, 67, 297, 109, 338,
         33, 133, 263, 362, 234, 454, 127, 356, 116, 345, 123, 352, 50, 280]


def fit_rotation(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float]:
    """Rotation R (3x3, det +1) and scale s minimising |s R src_c - dst_c| (centred rows)."""
    a = src - src.mean(0)
    b = dst - dst.mean(0)
    u, sig, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    fix = np.diag([1.0, 1.0, d])
    rot = vt.T @ fix @ u.T
    scale = float((sig * np.diag(fix)).sum() / max((a ** 2).sum(), 1e-12))
    return rot, scale


def angles(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a head-frame -> camera rotation (convention above)."""
    n = -rot[:, 2]                # the face's forward direction (towards the camera when frontal)
    yaw = math.degrees(math.atan2(n[0], -n[2]))
    pitch = math.degrees(math.atan2(n[1], math.hypot(n[0], n[2])))
    x = rot[:, 0]                 # the eye line (right eye -> left eye)
    roll = math.degrees(math.atan2(x[1], x[0]))
    return yaw, pitch, roll


def rotation(mesh: np.ndarray) -> np.ndarray:
    """Head-frame -> camera rotation of a (468, 3) mesh."""
    from mien.engine.faces.mesh_reference import reference

    rot, _ = fit_rotation(reference()[RIGID], np.asarray(mesh, np.float64)[RIGID])
    return rot


def head_pose(mesh: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a (468, 3) mesh in image pixels."""
    return angles(rotation(mesh))


def head_frame(mesh: np.ndarray) -> np.ndarray:
    """The mesh with head rotation removed: centred on the rigid points, in reference axes, unit scale
    (the reference's rigid points have RMS radius 1)."""
    from mien.engine.faces.mesh_reference import reference

    ref = reference()
    pts = np.asarray(mesh, np.float64)
    rot, scale = fit_rotation(ref[RIGID], pts[RIGID])
    return ((pts - pts[RIGID].mean(0)) @ rot) / max(scale, 1e-12)
