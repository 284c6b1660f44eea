"""From analysed faces to store records, and the counts a summary keeps of them
(shared by the image path in pipeline.py and the video path in video_jobs.py)."""

from __future__ import annotations

import numpy as np


def quality_score(face) -> float:
    """Which faces of a track are worth an identity embedding: big, frontal, sharp."""
    q = face.quality
    width = face.bbox[2] - face.bbox[0]
    return float(min(width, 200.0) * np.cos(np.radians(min(abs(q.yaw), 89.0))) * min(1.0, q.sharpness / 10.0))


def face_record(FaceRecord, uri: str, face, frame_index: int, ts: int, track_id: int, identity):
    q = face.quality
    expr = np.asarray(face.expression, dtype=np.float32)
    return FaceRecord(
        source_uri=uri, frame_index=int(frame_index), timestamp_ms=int(ts),
        bbox=tuple(float(v) for v in face.bbox), landmarks5=np.asarray(face.landmarks5, np.float32),
        det_score=float(face.det_score), sharpness=float(q.sharpness), yaw=float(q.yaw),
        pitch=float(q.pitch), roll=float(q.roll), expression=expr, pooled=expr.copy(),
        identity=None if identity is None else np.asarray(identity, np.float32),
        track_id=int(track_id), thumbnail=face.thumbnail or b"",
        occluded=bool(getattr(q, "occluded", False)), occlusion=float(getattr(q, "occlusion", 0.0)),
        features=None if face.expression_features is None else np.asarray(face.expression_features, np.float32),
    )


def counted(face) -> bool:
    """Whether a face is stored (a video face's patch may then give its track's identity)."""
    return face.quality is not None and face.quality.passed and face.expression is not None


def count_faces(faces, summary) -> list:
    """Count detections and FaceQA rejections in `summary`; return the passed faces."""
    passed = []
    for face in faces:
        summary.faces_detected += 1
        if counted(face):
            passed.append(face)
        else:
            reason = face.quality.reason if face.quality is not None and face.quality.reason else "rejected"
            summary.rejected[reason] += 1
    summary.faces_passed += len(passed)
    return passed
