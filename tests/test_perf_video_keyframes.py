"""Track-guided video detection: full detection on keyframes, region re-detection between.

Only the dlib front end has region re-detection (detect_near): these tests pin
detector="dlib". Real clips written with cv2.VideoWriter from the package
photos, the real dlib models, real stores. No timing here (benchmarks/index.py
measures speed).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from indexer_support import all_faces, check_consistent
from mien.engine.faces import EngineConfig


DLIB = EngineConfig(detector="dlib")


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A fast pan (one face crossing most of the frame) and a face that enters at 0.5 s."""
    import cv2

    from mien.demo.videos import portrait, write_clip

    root = tmp_path_factory.mktemp("keyframes")
    # 3 s at 10 fps, 480x270: the pan moves the face ~14 px per sampled frame (2 fps)
    pan = write_clip(root / "pan" / "pan.mp4", ["obama"], motion="pan", fps=10, size=(480, 270), seconds=3.0)
    # a face that appears between two keyframes: grey until 0.5 s, then a portrait
    late = root / "late" / "late.avi"
    late.parent.mkdir(parents=True)
    face = cv2.resize(portrait("biden"), (240, 240), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(late), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (480, 270))
    for i in range(30):
        frame = np.full((270, 480, 3), 96, np.uint8)
        if i >= 5:
            frame[15:255, 120:360] = face
        writer.write(frame)
    writer.release()
    return {"root": root, "pan": pan, "late": late}


def sampled(path, fps=2.0):
    from mien.indexer.video import RangeReader

    return [(f.index, f.timestamp_ms, f.image) for f in RangeReader(str(path), 0, None, fps, seek=False)]


def index(paths, store, keyframe_seconds):
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    summary = index_paths(paths, store, options=IndexOptions(workers=1, show_progress=False,
                                                             keyframe_seconds=keyframe_seconds),
                          engine_config=DLIB)
    with Store(store, mode="r") as s:
        check_consistent(s)
        return summary, all_faces(s)


def test_detect_near_follows_the_panning_face(clips):
    """Each sampled frame's face is re-found from the previous frame's box alone."""
    from mien.engine.faces import FaceAnalyzer

    an = FaceAnalyzer(DLIB)
    frames = sampled(clips["pan"].path)
    assert len(frames) == 6
    full = [an.detect(image) for _, _, image in frames]
    assert all(len(f) == 1 for f in full)
    moved = full[-1][0].bbox[0] - full[0][0].bbox[0]
    assert moved > 40, "the clip must actually pan"
    box = full[0][0].bbox
    for (_, _, image), truth in zip(frames[1:], full[1:]):
        [near] = an.detector.detect_near(image, [box])
        assert near is not None
        assert iou(near.bbox, truth[0].bbox) > 0.6
        # landmarks are fitted on the full frame: close to the full detection's
        assert np.abs(near.landmarks5 - truth[0].landmarks5).max() < 0.08 * (box[2] - box[0])
        box = near.bbox


def test_detect_near_reports_lost_and_duplicate_faces(clips):
    from mien.engine.faces import FaceAnalyzer

    an = FaceAnalyzer(DLIB)
    frames = sampled(clips["late"])
    grey, with_face = frames[0][2], frames[-1][2]
    [face] = an.detect(with_face)
    assert an.detector.detect_near(grey, [face.bbox]) == [None]      # the face is gone
    shifted = tuple(v + 10 for v in face.bbox)
    found = an.detector.detect_near(with_face, [face.bbox, shifted])  # two boxes, one face
    assert found[0] is not None and found[1] is None


def test_guided_frames_match_full_detection(clips):
    """analyze_frames with and without guidance: same faces, boxes, QA verdicts and timestamps."""
    from mien.indexer import worker

    worker.init(DLIB, threads=1)
    frames = sampled(clips["pan"].path)
    full = worker.analyze_frames(frames, False)
    guided = worker.analyze_frames(frames, True)
    assert [(r.index, r.timestamp_ms) for r in guided] == [(r.index, r.timestamp_ms) for r in full]
    for a, b in zip(full, guided):
        assert len(a.faces) == len(b.faces) == 1
        assert iou(a.faces[0].bbox, b.faces[0].bbox) > 0.6
        assert a.faces[0].quality.passed == b.faces[0].quality.passed
        assert sorted(a.patches) == sorted(b.patches)


def test_keyframes_keep_the_track_and_timestamps(clips, tmp_path):
    """Indexing the pan with keyframes every 2 s and with full detection everywhere
    stores the same frames, one track, one person, nearly the same boxes."""
    pan = clips["pan"]
    s_full, full = index([pan.path.parent], tmp_path / "full", 0.0)
    s_key, keyed = index([pan.path.parent], tmp_path / "key", 2.0)
    assert s_full.frames == s_key.frames == 6
    stamps = [f.timestamp_ms for f in keyed]
    assert sorted(stamps) == sorted(f.timestamp_ms for f in full) == [0, 500, 1000, 1500, 2000, 2500]
    assert len({f.track_id for f in keyed}) == 1 and len({f.person_id for f in keyed}) == 1
    assert s_key.tracks == s_full.tracks == 1
    by_ts = {f.timestamp_ms: f for f in full}
    for f in keyed:
        assert iou(f.bbox, by_ts[f.timestamp_ms].bbox) > 0.6


def test_keyframe_seconds_zero_is_full_detection(clips, tmp_path):
    """keyframe_seconds=0 stores exactly what the detector finds on every sampled frame."""
    from mien.engine.faces import FaceAnalyzer

    an = FaceAnalyzer(DLIB)
    _, stored = index([clips["pan"].path.parent], tmp_path / "store", 0.0)
    expected = {}
    for index_, ts, image in sampled(clips["pan"].path):
        faces = [f for f in an.analyze(image, identity=False)]
        expected[ts] = [f.bbox for f in faces]
    got = {}
    for f in stored:
        got.setdefault(f.timestamp_ms, []).append(f.bbox)
    assert sorted(got) == sorted(ts for ts, boxes in expected.items() if boxes)
    for ts, boxes in got.items():
        assert np.allclose(sorted(boxes), sorted(expected[ts]), atol=1e-3)


def test_a_face_entering_between_keyframes_waits_for_the_next_one(clips, tmp_path):
    """The documented trade-off: with keyframes every 2 s, a face that appears at 0.5 s
    is first stored at the 2 s keyframe; full detection stores it from 0.5 s."""
    late = clips["late"]
    _, full = index([late], tmp_path / "full", 0.0)
    _, keyed = index([late], tmp_path / "key", 2.0)
    assert min(f.timestamp_ms for f in full) == 500
    assert min(f.timestamp_ms for f in keyed) == 2000
    assert {f.timestamp_ms for f in keyed} == {2000, 2500}
    assert len({f.track_id for f in keyed}) == 1
    assert os.path.realpath(late) == keyed[0].source_uri
