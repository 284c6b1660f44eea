"""A followed run of video frames reuses a still face's 478-point pass and reads a changed face again.

Real models (the default fer-au-478 encoder) on rendered frames: package photos on a 720p canvas
(mien.demo.videos.render_frame), analysed as a pool worker analyses one segment of a video.
"""

from __future__ import annotations

import numpy as np

from mien.engine.faces import EngineConfig


def _aus(face) -> np.ndarray:
    from mien.engine.faces import expression_au as au

    return np.array([face.expression_components[name] for name in au.NAMES])


def _frames(first_two, last_two):
    from mien.demo.videos import render_frame

    return [(i, 500 * i, render_frame(people, t, (1280, 720), "pan", 0.36)[0])
            for i, (people, t) in enumerate(zip([first_two] * 2 + [last_two] * 2, (0.0, 0.1, 0.2, 0.3)))]


def test_a_still_face_keeps_its_landmark_pass_and_a_changed_one_is_read_again():
    """Biden stays still while the canvas pans: his AUs are the keyframe's to the bit, his emotion
    distribution his own frame's. Where Obama stood, another photo of Obama comes in frame 2: that
    face is read again (and then kept in frame 3). Every reused vector stays close to the one the
    frame gives analysed alone (0.01-0.03 here)."""
    from mien.demo.videos import portrait
    from mien.engine.faces import still_faces
    from mien.indexer import worker

    worker.init(EngineConfig(), threads=1)
    frames = _frames([portrait("obama2"), portrait("biden")], [portrait("obama"), portrait("biden")])
    alone = worker.analyze_frames(frames, False)
    before = dict(still_faces.counts)
    run = worker.analyze_frames(frames, True)
    computed = still_faces.counts["computed"] - before["computed"]
    reused = still_faces.counts["reused"] - before["reused"]
    assert [len(r.faces) for r in run] == [2, 2, 2, 2] and all(f.quality.passed for r in run for f in r.faces)
    left, right = [r.faces[0] for r in run], [r.faces[1] for r in run]

    for face in right[1:]:
        assert np.array_equal(_aus(face), _aus(right[0]))            # the keyframe's pass
    assert len({round(f.expression_components["happy"], 6) for f in right}) == 4   # fer ran on each frame
    assert np.abs(_aus(left[2]) - _aus(left[0])).max() > 0.5           # another face: read again
    assert np.array_equal(_aus(left[3]), _aus(left[2]))                 # and kept while it is still
    assert np.linalg.norm(left[2].expression - alone[2].faces[0].expression) < 0.05
    assert computed + reused == 8 and reused >= 4

    for face, own in [*zip(right[1:], [a.faces[1] for a in alone[1:]]), (left[3], alone[3].faces[0])]:
        assert np.linalg.norm(face.expression - own.expression) < 0.1   # the reused ones


def test_outside_a_video_run_every_face_gets_its_own_pass():
    """Frames analysed one by one (photos, queries, unguided frames) never reuse a pass."""
    from mien.demo.videos import portrait
    from mien.engine.faces import still_faces
    from mien.indexer import worker

    worker.init(EngineConfig(), threads=1)
    frames = _frames([portrait("biden")], [portrait("biden")])
    before = dict(still_faces.counts)
    results = worker.analyze_frames(frames, False)
    assert still_faces.counts == before
    assert len({tuple(_aus(r.faces[0])) for r in results}) == 4


def test_the_memory_belongs_to_the_thread_in_the_block():
    """A face met again inside the block is not read again; the same face on another thread (a
    query beside an in-process index) is, and so is any face after the block."""
    import threading

    from mien.demo.videos import portrait
    from mien.engine.faces import still_faces
    from mien.indexer import worker

    worker.init(EngineConfig(), threads=1)
    image = portrait("biden")
    (face,) = worker.analyzer().detect(image)
    reads = []

    def read(image, mesh):
        reads.append(threading.get_ident())
        return ("aus", "code")

    with still_faces.reused_when_still():
        assert still_faces.parts_of(image, face.mesh, read) == ("aus", "code")
        assert still_faces.parts_of(image, face.mesh, read) == ("aus", "code")
        assert len(reads) == 1
        other = threading.Thread(target=still_faces.parts_of, args=(image, face.mesh, read))
        other.start()
        other.join()
        assert len(reads) == 2 and reads[1] != reads[0]
    still_faces.parts_of(image, face.mesh, read)
    assert len(reads) == 3
