"""Tags made from a photo keep its face's picture; thresholds change in place; clusters carry labels.

A real store of package photos and a real server on both fronts: CreateTag
from obama.jpg's bytes keeps a JPEG of the face (a tag made from a stored face
keeps its id instead), UpdateTag changes the threshold and keeps the
references (refusing a bad threshold or an unknown tag), and Summarize's
clusters carry their centre's named components. The store reads a tag
written without pictures as before.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from server_support import FRONTS, build_photo_store, serving, copied_store
from mien.v1 import analytics_pb2, analytics_pb2_grpc, common_pb2


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return build_photo_store(tmp_path_factory.mktemp("tag-pictures"))


@pytest.mark.parametrize("front", FRONTS)
def test_pictures_thresholds_and_labels(photos, front, tmp_path):
    store = copied_store(photos.store_dir, tmp_path)
    with serving(store, front=front) as target:
        stub = analytics_pb2_grpc.AnalyticsStub(grpc.insecure_channel(target))
        image = photos.archive["obama.jpg"].read_bytes()
        tag = stub.CreateTag(analytics_pb2.CreateTagRequest(
            name="smile", threshold=0.4,
            references=[common_pb2.FaceQuery(image=common_pb2.ImageInput(data=image))]))
        assert len(tag.reference_pictures) == 1 and tag.reference_pictures[0][:3] == b"\xff\xd8\xff"
        assert not tag.reference_face_ids
        by_face = stub.CreateTag(analytics_pb2.CreateTagRequest(
            name="by-face", references=[common_pb2.FaceQuery(face_id=photos.face_ids["obama.jpg"][0])]))
        assert list(by_face.reference_face_ids) == photos.face_ids["obama.jpg"][:1] and not by_face.reference_pictures
        changed = stub.UpdateTag(analytics_pb2.UpdateTagRequest(name="smile", threshold=0.25))
        assert changed.threshold == pytest.approx(0.25)
        assert changed.reference_pictures == tag.reference_pictures
        assert np.allclose(changed.vectors[0].values, tag.vectors[0].values)
        listed = {t.name: t for t in stub.ListTags(analytics_pb2.ListTagsRequest()).tags}
        assert listed["smile"].threshold == pytest.approx(0.25) and listed["smile"].reference_pictures
        for name, threshold, code in (("smile", 0.0, grpc.StatusCode.INVALID_ARGUMENT),
                                      ("smile", 9.0, grpc.StatusCode.INVALID_ARGUMENT),
                                      ("nope", 0.5, grpc.StatusCode.NOT_FOUND),
                                      ("", 0.5, grpc.StatusCode.INVALID_ARGUMENT)):
            with pytest.raises(grpc.RpcError) as err:
                stub.UpdateTag(analytics_pb2.UpdateTagRequest(name=name, threshold=threshold))
            assert err.value.code() == code, (name, threshold)
        summary = stub.Summarize(analytics_pb2.SummarizeRequest(person=common_pb2.PersonRef(name="Biden"), k=2))
        for cluster in summary.clusters:
            names = {c.name for c in cluster.components}
            assert {"happy", "neutral", "lip_corner_pull"} <= names
            emotions = [c.value for c in cluster.components if c.kind == "emotion"]
            assert sum(emotions) == pytest.approx(1.0, abs=1e-3)


def test_a_tag_written_without_pictures_reads_as_before():
    from mien.engine.store.records import Tag, decode_tag, encode_tag

    old = encode_tag(Tag("t", np.eye(16, dtype=np.float32)[:1], 0.5, [3], 123))
    assert b'"p"' not in old
    tag = decode_tag(old)
    assert tag.reference_pictures == [] and tag.reference_face_ids == [3]
    again = decode_tag(encode_tag(Tag("t", np.eye(16, dtype=np.float32)[:1], 0.5, [], 1, [b"\xff\xd8jpeg"])))
    assert again.reference_pictures == [b"\xff\xd8jpeg"]
