"""FaceQA verdicts for query faces: would the indexer have kept this face, and if not, why.

A query face is searched whatever FaceQA says (the user chose it), but a blurry,
turned or covered query face gives a vector the store's faces were never allowed
to have, so the reply says so. Image queries: the Quality the analyzer assessed,
plus the mouth-occlusion score even when another check failed (FaceQA skips it
then to spare two mesh passes; one query face can afford them). Stored faces
(face_id queries) passed FaceQA when they were indexed; their record says
whether the mouth was covered.
"""

from __future__ import annotations

import numpy as np

from mien.engine.faces.config import EngineConfig
from mien.engine.faces.types import Face
from mien.results.search import QueryQuality  # the verdict, as the clients read it back


def _explain(passed: bool, reasons: list[str], sharpness: float, yaw: float, pitch: float,
             occluded: bool, occlusion: float, cfg: EngineConfig) -> str:
    from mien.engine.faces.occlusion import THRESHOLD

    said = []
    if "blurry" in reasons:
        said.append(f"blurry eyes (sharpness {sharpness:.2f} < {cfg.sharpness_min:g})")
    if "yaw" in reasons:
        said.append(f"head turned {abs(yaw):.0f} deg (limit {cfg.yaw_max:g})")
    if "pitch" in reasons:
        said.append(f"head tilted {abs(pitch):.0f} deg up/down (limit {cfg.pitch_max:g})")
    covered = f"mouth covered (occlusion {occlusion:.1f} > {THRESHOLD:g}): its expression is partly guessed"
    if "occluded" in reasons:  # EngineConfig.reject_occluded
        said.append(covered)
    if not passed:
        text = "the indexer would have rejected this face: " + ", ".join(said)
        return text + ("; " + covered if occluded and "occluded" not in reasons else "")
    return covered + "; indexed faces like it are flagged and left out of tags and summaries" if occluded else ""


def verdict(reasons: list[str], sharpness: float, yaw: float, pitch: float, roll: float,
            occluded: bool, occlusion: float, cfg: EngineConfig) -> QueryQuality:
    passed = not reasons
    return QueryQuality(passed, ",".join(reasons),
                        _explain(passed, reasons, sharpness, yaw, pitch, occluded, occlusion, cfg),
                        float(sharpness), float(yaw), float(pitch), float(roll), bool(occluded), float(occlusion))


def image_face_verdict(image: np.ndarray, face: Face, cfg: EngineConfig) -> QueryQuality:
    """The verdict for a face the analyzer assessed (face.quality set; assessed here if not)."""
    from mien.engine.faces.faceqa import assess_face

    q = face.quality if face.quality is not None else assess_face(image, face, cfg)
    occluded, occlusion = q.occluded, q.occlusion
    if face.mesh is not None and not q.passed and "occluded" not in q.reason:
        from mien.engine.faces.occlusion import THRESHOLD, occlusion_score

        occlusion = occlusion_score(image, face.mesh)  # FaceQA skipped it for a rejected face
        occluded = occlusion > THRESHOLD
    reasons = [r for r in q.reason.split(",") if r]
    return verdict(reasons, q.sharpness, q.yaw, q.pitch, q.roll, occluded, occlusion, cfg)


def record_verdict(record, cfg: EngineConfig | None = None) -> QueryQuality:
    """The verdict for a stored face: it passed FaceQA when indexed (occluded ones were kept, flagged)."""
    cfg = cfg or EngineConfig()  # only the wording uses it: a face_id query loads no models
    occluded = bool(getattr(record, "occluded", False))
    return verdict([], record.sharpness, record.yaw, record.pitch, record.roll, occluded,
                   float(getattr(record, "occlusion", 0.0)), cfg)
