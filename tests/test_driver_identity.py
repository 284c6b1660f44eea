"""A pool run's video identity step runs in the driver (driver_identity.py): the same vectors as a
pool worker computes, to the bit, and no thread left behind when the run ends.

Real photos, a real pool of worker processes, real dlib and ONNX Runtime models.
"""

from __future__ import annotations

import threading

import numpy as np

from mien.demo.videos import photo
from mien.engine.faces import EngineConfig, FaceAnalyzer
from mien.indexer import worker
from mien.indexer.runner import PoolRunner


def patches_of(names):
    """Identity patches of every face in the package photos `names`, cut as a video worker cuts them."""
    analyzer = FaceAnalyzer(EngineConfig())
    out = []
    for name in names:
        image = photo(name)
        for face in analyzer.analyze(image, identity=False):
            out.append(worker.identity_patch(image, face))
    return out


def identity_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("mien-identity")]


def test_the_driver_computes_the_vectors_a_pool_worker_computes():
    patches = patches_of(["obama", "biden", "grace_hopper", "t1"])
    assert len(patches) >= 6
    runner = PoolRunner(EngineConfig(), 2)
    try:
        in_worker = runner.submit(worker.embed_patches, patches).result(timeout=300)
        in_driver = runner.identity.submit(patches).result(timeout=300)
    finally:
        runner.close()
    assert len(in_driver) == len(in_worker) == len(patches)
    for a, b in zip(in_driver, in_worker):
        assert a.dtype == np.float32 and a.shape == (128,)
        assert np.array_equal(a, b)
    assert not identity_threads()


def test_a_pool_run_links_videos_by_the_drivers_identities_and_leaves_no_thread(tmp_path):
    import os

    from mien.demo.videos import write_clip
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    solo = write_clip(tmp_path / "in" / "solo.mp4", ["obama"], fps=10, seconds=3.0)
    duo = write_clip(tmp_path / "in" / "duo.mp4", ["obama2", "biden"], fps=10, seconds=3.0, size=(640, 360))
    summary = index_paths([tmp_path / "in"], tmp_path / "store", options=IndexOptions(workers=2, show_progress=False))
    assert summary.videos == 2 and not summary.failed
    assert not identity_threads()
    with Store(tmp_path / "store", mode="r") as store:
        def persons(clip, x_range):
            faces = store.faces_of_source(os.path.realpath(clip.path), thumbnail=False)
            return {f.person_id for f in faces if x_range[0] <= (f.bbox[0] + f.bbox[2]) / 2 < x_range[1]}
        obama, obama2, biden = persons(solo, (0, 320)), persons(duo, (0, 320)), persons(duo, (320, 640))
    # one person each, Obama the same one in both videos (the tracks' identities link them), Biden apart
    assert len(obama) == len(obama2) == len(biden) == 1
    assert obama == obama2 and biden != obama
    assert summary.persons_total == 2
