"""Stores keep their front end; new stores get the MediaPipe one and store occlusion flags.

Real photos, real stores, the real `mien` command.
"""

from __future__ import annotations

import subprocess
import sys

import cv2

from indexer_support import all_faces, check_consistent, copy_photo
from mien.engine.faces import EngineConfig
from mien.engine.faces.engine_record import matching_store


def index(paths, store, config=None):
    from mien.indexer import IndexOptions, index_paths

    return index_paths(paths, store, options=IndexOptions(workers=1, show_progress=False),
                       engine_config=config)


def stored(store):
    from mien.engine.store import Store

    with Store(str(store), mode="r") as s:
        check_consistent(s)
        return s.encoders, all_faces(s)


def test_an_old_dlib_store_goes_on_with_dlib(tmp_path):
    from mien.indexer.pipeline import engine_config_for

    store = tmp_path / "store"
    index([copy_photo("obama", tmp_path / "a" / "obama.jpg")], store, EngineConfig(detector="dlib"))
    encoders, faces = stored(store)
    assert encoders["detector"] == "dlib-hog" and len(faces) == 1
    # the default config, opened on this store, becomes a dlib one (index runs, queries, the server)
    assert EngineConfig().detector == "mediapipe"
    assert engine_config_for(store).detector == "dlib"
    assert matching_store(EngineConfig(), encoders).detector == "dlib"
    index([copy_photo("biden", tmp_path / "b" / "biden.jpg")], store, engine_config_for(store))
    encoders, faces = stored(store)
    assert encoders["detector"] == "dlib-hog" and len(faces) == 2
    assert all(not f.occluded and f.occlusion == 0.0 for f in faces)  # dlib faces have no mesh


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mien.cli", *args], capture_output=True, text=True)


def test_cli_keeps_the_stores_detector_and_refuses_another(tmp_path):
    store = tmp_path / "store"
    first = copy_photo("obama", tmp_path / "a" / "obama.jpg")
    done = run_cli("index", str(first.parent), "--store", str(store), "--detector", "dlib", "--quiet",
                   "--workers", "1")
    assert done.returncode == 0, done.stderr
    second = copy_photo("biden", tmp_path / "b" / "biden.jpg")
    refused = run_cli("index", str(second.parent), "--store", str(store), "--detector", "mediapipe",
                      "--quiet", "--workers", "1")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "dlib" in refused.stderr and "new store" in refused.stderr
    done = run_cli("index", str(second.parent), "--store", str(store), "--quiet", "--workers", "1")
    assert done.returncode == 0, done.stderr
    encoders, faces = stored(store)
    assert encoders["detector"] == "dlib-hog" and len(faces) == 2


def test_new_store_uses_mediapipe_and_stores_occlusion(tmp_path):
    from mien.demo import photos
    from test_faces_meshpose import cover_mouth

    from mien.engine.faces import registry

    image = photos.face_recognition_photo("obama.jpg")
    (face,) = registry.build("detector", EngineConfig()).detect(image)
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "clear.jpg"), image)
    cv2.imwrite(str(folder / "covered.png"), cover_mouth(image, face))
    store = tmp_path / "store"
    summary = index([folder], store)
    assert summary.faces_passed == 2  # the occluded face is kept, flagged
    encoders, faces = stored(store)
    assert encoders["detector"] == "mediapipe-blazeface-full+facemesh"
    by_name = {f.source_uri.rsplit("/", 1)[-1]: f for f in faces}
    assert by_name["covered.png"].occluded and by_name["covered.png"].occlusion > 4.5
    assert not by_name["clear.jpg"].occluded and by_name["clear.jpg"].occlusion > 0


def test_reject_occluded_drops_the_covered_face(tmp_path):
    from mien.demo import photos
    from test_faces_meshpose import cover_mouth

    from mien.engine.faces import registry

    image = photos.face_recognition_photo("obama.jpg")
    (face,) = registry.build("detector", EngineConfig()).detect(image)
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "covered.png"), cover_mouth(image, face))
    summary = index([folder], tmp_path / "store", EngineConfig(reject_occluded=True))
    assert summary.faces_passed == 0 and summary.rejected["occluded"] == 1


def test_guided_mediapipe_frames_match_full_detection(tmp_path):
    """Between keyframes the MediaPipe detector follows faces without tiles: same faces and verdicts."""
    from mien.demo.videos import write_clip
    from mien.engine.faces.boxes import iou
    from mien.indexer import worker
    from mien.indexer.video import RangeReader

    clip = write_clip(tmp_path / "pan.mp4", ["obama2", "biden"], motion="pan", fps=10, size=(1280, 720),
                      seconds=3.0, face_height=0.12)   # small faces: followed in regions
    frames = [(f.index, f.timestamp_ms, f.image) for f in RangeReader(str(clip.path), 0, None, 2.0, seek=False)]
    worker.init(EngineConfig(), threads=1)
    full = worker.analyze_frames(frames, False)
    guided = worker.analyze_frames(frames, True)
    for a, b in zip(full, guided):
        assert len(a.faces) == len(b.faces) == 2
        for fa, fb in zip(a.faces, b.faces):
            assert iou(fa.bbox, fb.bbox) > 0.8 and fa.quality.passed == fb.quality.passed
