"""One store, one detection scale: later runs and queries detect like the store did.

dlib's 68 landmarks, and so the landmark expression vector, shift with the
HOG detection scale (min_face). A store built with --min-face 64 must be
extended and queried at 64, or the same photo no longer finds itself.
"""

from __future__ import annotations

import shutil

import numpy as np

from mien.demo import photos


def test_later_runs_and_queries_use_the_store_min_face(tmp_path):
    import cv2

    from mien.cli import main
    from mien.clients.client import Client
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.store import Store
    from mien.indexer.pipeline import engine_config_for
    from mien.server.app import build_server

    archive, store_dir = tmp_path / "archive", str(tmp_path / "store")
    archive.mkdir()
    shutil.copyfile(photos.face_recognition_images_dir() / "obama.jpg", archive / "obama.jpg")
    assert main(["index", str(archive), "--store", store_dir, "--min-face", "64",
                 "--workers", "1", "--quiet"]) == 0
    grace = archive / "grace.jpg"
    shutil.copyfile(photos.grace_hopper_path(), grace)
    assert main(["index", str(archive), "--store", store_dir, "--workers", "1", "--quiet"]) == 0

    with Store(store_dir) as store:
        assert store.encoders["detector_min_face"] == 64
        assert store.stats()["faces"] == 2
    assert engine_config_for(store_dir).min_face == 64

    # the scale matters for this photo: the engine's default (40) gives another vector
    image = cv2.imread(str(grace))
    at_40 = FaceAnalyzer(EngineConfig(min_face=40)).analyze(image)[0].expression
    at_64 = FaceAnalyzer(EngineConfig(min_face=64)).analyze(image)[0].expression
    assert float(np.sum((at_40 - at_64) ** 2)) > 1e-3

    server, port = build_server(store_dir, port=0)
    server.start()
    try:
        with Client(f"127.0.0.1:{port}") as client:
            hit = client.search(str(grace), k=1).hits[0]
        assert hit.source_uri.endswith("grace.jpg")
        assert hit.distance < 1e-4
    finally:
        server.stop(None)
