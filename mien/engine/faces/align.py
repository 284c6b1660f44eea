"""Alignment: similarity transforms from the 5 points to fixed crops.

Expression crop (224x224): the two eye centres alone define the transform, so
roll is undone exactly and the inter-ocular distance is exactly 70 px, eyes
on the row EYE_Y. Identity crop (112x112): least-squares similarity of all 5
points to insightface's ArcFace template (as insightface's norm_crop).
"""

from __future__ import annotations

import numpy as np

from mien.engine.faces.warp import warp_affine

EXPR_SIZE = 224
EXPR_IOD = 70.0
EYE_Y = 80.0  # eyes at 80/224: brows and forehead above, chin (~1.85 IOD below) still inside
EXPR_LEFT_EYE = np.array([(EXPR_SIZE - EXPR_IOD) / 2, EYE_Y], dtype=np.float64)
EXPR_RIGHT_EYE = np.array([(EXPR_SIZE + EXPR_IOD) / 2, EYE_Y], dtype=np.float64)

ARCFACE_SIZE = 112
ARCFACE_DST = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


def eyes_transform(left_eye, right_eye, dst_left=EXPR_LEFT_EYE, dst_right=EXPR_RIGHT_EYE) -> np.ndarray:
    """2x3 similarity mapping the two eye centres exactly onto dst_left/dst_right."""
    src = np.asarray(right_eye, np.float64) - np.asarray(left_eye, np.float64)
    dst = np.asarray(dst_right, np.float64) - np.asarray(dst_left, np.float64)
    # complex-number form: z -> a*z + b with a = dst/src
    a = complex(dst[0], dst[1]) / complex(src[0], src[1]) if np.any(src) else complex(1.0, 0.0)
    rot = np.array([[a.real, -a.imag], [a.imag, a.real]])
    t = np.asarray(dst_left, np.float64) - rot @ np.asarray(left_eye, np.float64)
    return np.hstack([rot, t[:, None]])


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) src -> dst, 2x3."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1
    rot = u @ fix @ vt
    var = (s ** 2).sum() / len(src)
    scale = (sig * np.diag(fix)).sum() / var if var > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def expression_matrix(landmarks5: np.ndarray) -> np.ndarray:
    return eyes_transform(landmarks5[0], landmarks5[1])


def expression_crop(image: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
    """224x224 BGR crop, eyes level, inter-ocular distance 70 px."""
    import cv2

    return warp_affine(image, expression_matrix(landmarks5), (EXPR_SIZE, EXPR_SIZE),
                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def arcface_matrix(landmarks5: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    dst = ARCFACE_DST * (size / 112.0)
    return umeyama(landmarks5, dst)


def arcface_crop(image: np.ndarray, landmarks5: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """size x size BGR crop on the standard ArcFace 5-point template."""
    import cv2

    return warp_affine(image, arcface_matrix(landmarks5, size), (size, size),
                       flags=cv2.INTER_LINEAR, borderValue=0.0)
