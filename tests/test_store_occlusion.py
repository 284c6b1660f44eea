"""Face records carry the occlusion flag and score; values written before it still read."""

import struct

import numpy as np

from mien.engine.store import records as R


def record(**kw):
    base = dict(source_uri="/a/b.jpg", frame_index=3, timestamp_ms=1500, bbox=(1.0, 2.0, 30.0, 40.0),
                landmarks5=np.arange(10, dtype=np.float32).reshape(5, 2), det_score=0.9, sharpness=5.0,
                yaw=-12.0, pitch=3.0, roll=1.5, expression=np.eye(16, dtype=np.float32)[0],
                pooled=np.eye(16, dtype=np.float32)[1], identity=None, track_id=7)
    base.update(kw)
    return R.FaceRecord(**base)


def row(rec):
    return R.encode_row(rec.expression, rec.timestamp_ms, 1, -1)


def test_occlusion_round_trips():
    rec = record(occluded=True, occlusion=6.25)
    value = R.encode_face(rec)
    back = R.decode_face(11, value, row(rec), None, b"")
    assert back.occluded is True and back.occlusion == 6.25
    assert back.yaw == -12.0 and back.track_id == 7 and back.source_uri == "/a/b.jpg"
    assert np.array_equal(back.landmarks5, rec.landmarks5) and np.array_equal(back.pooled, rec.pooled)
    assert np.array_equal(R.pooled_of(value), rec.pooled)
    hit = R.decode_hit(11, value, row(rec))
    assert hit.bbox == rec.bbox and hit.frame_index == 3


def test_values_of_the_previous_binary_format_still_read():
    rec = record()
    uri = rec.source_uri.encode()
    old = R._FACE_HDR.pack(R._FACE_MAGIC, 3, 1500, *rec.bbox, 0.9, 5.0, -12.0, 3.0, 1.5, 7, len(uri))
    old += uri + rec.landmarks5.astype("<f4").tobytes() + rec.pooled.astype("<f4").tobytes()
    back = R.decode_face(1, old, row(rec), None, b"")
    assert back.occluded is False and back.occlusion == 0.0 and back.yaw == -12.0
    assert np.array_equal(back.pooled, rec.pooled) and np.array_equal(R.pooled_of(old), rec.pooled)
    assert R.decode_hit(1, old, row(rec)).track_id == 7
    assert struct.unpack_from("<4s", old)[0] == R._FACE_MAGIC
