"""An image query takes a path of its own: fewer detector passes, the same face as indexing gives.

A one-face photo whose face is not large enough to count as a portrait (the astronaut on a
640x480 grey canvas, as benchmarks/grpc.py queries it: the face is 0.21 of the height) used to
run BlazeFace's whole-picture pass and its 2x2 tiles, and the occlusion score on every face. The
query path runs the whole-picture pass alone when every face it found is one it sees reliably,
and the faces it returns are, to the bit, the faces indexing finds there; a group photo with small
faces keeps its tiles. Real photos, real models, a real store indexed by `mien index`'s pipeline.
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from faces_support import analyzer, t1
from mien.demo import photos


def one_face_640x480() -> np.ndarray:
    canvas = np.full((480, 640, 3), 127, np.uint8)
    canvas[:, 80:560] = cv2.resize(photos.astronaut(), (480, 480))
    return canvas


class CountedRuns:
    """Counts the runs of a real LiteRT model while the block lasts (the model still runs)."""

    def __init__(self, model):
        self.model, self.runs = model, 0

    def __enter__(self):
        real = self.model.run

        def run(tensor):
            self.runs += 1
            return real(tensor)

        self.model.run = run
        return self

    def __exit__(self, *exc):
        del self.model.run   # back to the class's method


def same_faces(a, b) -> None:
    assert len(a) == len(b)
    for fa, fb in zip(a, b):
        assert fa.bbox == fb.bbox
        np.testing.assert_array_equal(fa.mesh, fb.mesh)
        np.testing.assert_array_equal(fa.landmarks5, fb.landmarks5)


def test_a_one_face_photo_is_detected_with_one_blazeface_pass_and_the_same_face():
    an = analyzer(detector="mediapipe")
    image = one_face_640x480()
    blazeface = an.detector.blazeface.model
    with CountedRuns(blazeface) as indexed:
        full = an.detect(image)
    with CountedRuns(blazeface) as queried:
        query = an.detect_query(image)
    assert len(full) == 1 and indexed.runs == 5    # the whole picture and 2x2 tiles
    assert queried.runs == 1                       # the whole picture alone
    same_faces(query, full)


def test_a_group_photo_with_small_faces_keeps_its_tiles_and_every_face():
    an = analyzer(detector="mediapipe")
    with CountedRuns(an.detector.blazeface.model) as queried:
        query = an.detect_query(t1())
    assert queried.runs == 5 and len(query) == 6   # the sixth face is found by a tile only
    same_faces(query, an.detect(t1()))


def test_tiles_leave_a_face_the_whole_picture_sees_reliably_where_it_was():
    """Indexing (with tiles) keeps the whole-picture box of a face large enough for that pass,
    which is what lets a query skip the tiles: the tiles' own detection of it is left out."""
    from mien.engine.faces import blazeface as bf

    model = analyzer(detector="mediapipe").detector.blazeface
    image = one_face_640x480()
    (whole,) = model.detect(image, tile=True, query=True)
    tiled = [d for d in model.detect(image, tile=True)
             if bf.iou_matrix(d.box[None], whole.box[None])[0, 0] > bf.NMS_IOU]
    assert len(tiled) == 1
    np.testing.assert_array_equal(tiled[0].box, whole.box)
    np.testing.assert_array_equal(tiled[0].keypoints, whole.keypoints)
    # the tiles do find that face on their own (so they used to move its box)
    work, scale = bf.shrink(image, int(bf.SIZE * (2 - bf.TILE_OVERLAP)))
    rgb = cv2.cvtColor(work, cv2.COLOR_BGR2RGB)
    uncut = [d for t in bf.tiles(rgb.shape[1], rgb.shape[0]) for d in model.run(rgb[t[1]:t[3], t[0]:t[2]], t[:2])
             if not bf.cut_by_tile(d.box, t, rgb.shape[1], rgb.shape[0])]
    assert any(bf.iou_matrix(d.box[None] / scale, whole.box[None])[0, 0] > bf.NMS_IOU for d in uncut)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A store indexed from the one-face picture and t1.jpg by the indexer's pipeline."""
    from mien.indexer import IndexOptions, index_paths

    root = tmp_path_factory.mktemp("query-path")
    archive = root / "archive"
    archive.mkdir()
    cv2.imwrite(str(archive / "astronaut_640x480.png"), one_face_640x480())
    cv2.imwrite(str(archive / "t1.png"), t1())
    index_paths([str(archive)], str(root / "store"), IndexOptions(workers=1, show_progress=False))
    return root


def image_query(data: bytes, face_index: int | None = None):
    from mien.v1 import common_pb2

    q = common_pb2.FaceQuery(image=common_pb2.ImageInput(data=data))
    if face_index is not None:
        q.face_index = face_index
    return q


def test_a_query_photo_lands_exactly_on_its_indexed_face(indexed):
    from mien.server.context import ServerContext

    ctx = ServerContext(indexed / "store")
    try:
        data = cv2.imencode(".png", one_face_640x480())[1].tobytes()
        vec, source = ctx.resolve_query(image_query(data))
        hits = ctx.store.search(vec, 1, records=True)
        assert hits[0].record.source_uri.endswith("astronaut_640x480.png")
        assert hits[0].distance < 1e-10
        assert source.verdict.passed and source.verdict.occlusion > 0    # measured on the query face
        # every face of the group photo, each where indexing put it
        group = cv2.imencode(".png", t1())[1].tobytes()
        for i in range(6):
            vec, source = ctx.resolve_query(image_query(group, i))
            assert len(source.faces) == 6
            hits = ctx.store.search(vec, 1, records=True)
            assert hits[0].record.source_uri.endswith("t1.png") and hits[0].distance < 1e-10
            # the reply's other faces skip the occlusion passes; the query face has them
            assert [f.quality.occlusion > 0 for f in source.faces if f.quality.passed] == \
                [f is source.faces[i] for f in source.faces if f.quality.passed]
    finally:
        ctx.close()


def test_the_servers_two_thread_models_give_the_same_faces_and_vectors():
    """A server runs one image query at a time and gives its LiteRT models (detection and the
    expression landmarker) two threads; the faces, their occlusion scores and vectors are the
    one-thread ones, to the bit."""
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.server.context import _query_threads

    one, two = FaceAnalyzer(EngineConfig(), threads=1), FaceAnalyzer(EngineConfig(), threads=2)
    assert one.detector.mesher.model is not two.detector.mesher.model
    assert one.expression_encoder.landmarker.model is not two.expression_encoder.landmarker.model
    assert _query_threads() == min(2, len(__import__("os").sched_getaffinity(0)))
    for image in (one_face_640x480(), t1(), photos.face_recognition_photo("obama.jpg")):
        a, b = one.detect_query(image), two.detect_query(image)
        same_faces(a, b)
        one.assess(image, a)
        two.assess(image, b)
        for fa, fb in zip(a, b):
            one.embed_query_expression(image, fa)
            two.embed_query_expression(image, fb)
            assert fa.quality == fb.quality
            np.testing.assert_array_equal(fa.expression, fb.expression)


def test_the_landmark_pass_runs_beside_faceqa_and_changes_nothing():
    """query_face (the server's call) runs fer-au-478's landmark pass on a helper thread with a
    one-thread model while FaceQA runs on the caller's; the vectors, components and verdicts are
    those of the same steps in order, to the bit, on every face of three photos."""

    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.faces.query_qa import image_face_verdict

    parallel, in_order = FaceAnalyzer(EngineConfig(), threads=2), FaceAnalyzer(EngineConfig(), threads=2)
    for image in (one_face_640x480(), t1(), photos.face_recognition_photo("obama.jpg")):
        for i in range(len(in_order.detect_query(image))):
            a, b = parallel.detect_query(image), in_order.detect_query(image)
            verdict = parallel.query_face(image, a, a[i])
            in_order.assess(image, [f for f in b if f is not b[i]], occlusion=False)
            in_order.assess(image, [b[i]])
            expected = image_face_verdict(image, b[i], in_order.config)
            in_order.embed_query_expression(image, b[i])
            assert verdict == expected
            assert [f.quality for f in a] == [f.quality for f in b]
            np.testing.assert_array_equal(a[i].expression, b[i].expression)
            np.testing.assert_array_equal(a[i].expression_features, b[i].expression_features)
            assert a[i].expression_components == b[i].expression_components
    # where the pass ran: the helper's own one-thread model, on its thread; not the analyzer's
    helper_model = parallel.expression_encoder._helper[1].model
    threads = []
    real = helper_model.run

    def run(tensor):
        threads.append(threading.current_thread().name)
        return real(tensor)

    helper_model.run = run
    try:
        image = one_face_640x480()
        faces = parallel.detect_query(image)
        with CountedRuns(parallel.expression_encoder.landmarker.model) as analyzers_own:
            parallel.query_face(image, faces, faces[0])
    finally:
        del helper_model.run
    assert analyzers_own.runs == 0 and len(threads) == 1
    assert threads[0].startswith("mien-landmarks") and threads[0] != threading.current_thread().name
    assert helper_model.interpreter is not parallel.expression_encoder.landmarker.model.interpreter


def test_image_queries_from_many_threads_run_the_analyzer_on_one(indexed):
    """The server's front serves calls on a pool of threads in turn; the analyzer's work for every
    image query (decoding included) runs on the server's one analysis thread, so the models' thread
    pools stay warm (mien/server/analysis_thread.py). The answers are the ones the caller's thread
    got before: the same vector, to the bit, whichever thread asked."""
    from mien.server.context import ServerContext

    ctx = ServerContext(indexed / "store")
    try:
        data = cv2.imencode(".png", one_face_640x480())[1].tobytes()
        detector = ctx.analyzer().detector
        ran_on: list[str] = []
        real = detector.detect_query

        def detect_query(image):
            ran_on.append(threading.current_thread().name)
            return real(image)

        detector.detect_query = detect_query
        vectors = {}

        def ask(name):
            vectors[name] = ctx.resolve_query(image_query(data))[0]

        callers = [threading.Thread(target=ask, args=(f"caller-{i}",), name=f"caller-{i}") for i in range(3)]
        for caller in callers:
            caller.start()
            caller.join(120)
        assert len(ran_on) == 3 and len(set(ran_on)) == 1, ran_on
        assert ran_on[0].startswith("mien-analyzer") and not ran_on[0].startswith("caller")
        for vec in vectors.values():
            np.testing.assert_array_equal(vec, vectors["caller-0"])
        in_order = analyzer(detector="mediapipe")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        faces = in_order.detect_query(image)
        in_order.query_face(image, faces, faces[0])
        np.testing.assert_array_equal(vectors["caller-0"], faces[0].expression)
    finally:
        ctx.close()


def test_the_analysis_thread_stops_at_the_callers_deadline(indexed):
    """The analysis thread works on behalf of the caller's call: its safe points see that call's
    deadline, so a query whose caller is gone stops there (DEADLINE_EXCEEDED) instead of running
    the models for nobody."""
    from mien.server import calls
    from mien.server.call_bridge import CallContext
    from mien.server.context import ServerContext

    ctx = ServerContext(indexed / "store")
    try:
        data = cv2.imencode(".png", one_face_640x480())[1].tobytes()
        ctx.resolve_query(image_query(data))       # a live call, below, gets an answer
        live = CallContext({"metadata": (), "peer": "test", "deadline": time.time() + 60})
        previous = calls.enter(live)
        try:
            assert ctx.resolve_query(image_query(data))[1].verdict.passed
        finally:
            calls.leave(previous)
        expired = CallContext({"metadata": (), "peer": "test", "deadline": time.time() - 1})
        previous = calls.enter(expired)
        try:
            with pytest.raises(calls.CallEndedError) as ended:
                ctx.resolve_query(image_query(data))
        finally:
            calls.leave(previous)
        assert ended.value.code == "DEADLINE_EXCEEDED"
    finally:
        ctx.close()
