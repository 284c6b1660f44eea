"""ProposeTriplet / RateTriplet over gRPC, on both server fronts: the Rate page's two calls."""

from __future__ import annotations

import grpc
import pytest

from server_support import FRONTS, build_photo_store, serving


@pytest.fixture(scope="module")
def photo_store(tmp_path_factory):
    return build_photo_store(tmp_path_factory.mktemp("rating"))


@pytest.mark.parametrize("front", FRONTS)
def test_propose_and_rate_over_grpc(photo_store, tmp_path, front):
    from mien.training.rated import read_rated
    from mien.v1 import analytics_pb2, analytics_pb2_grpc

    ratings = tmp_path / "answers.csv"
    with serving(photo_store.store_dir, front=front, ratings=ratings) as target:
        with grpc.insecure_channel(target) as channel:
            stub = analytics_pb2_grpc.AnalyticsStub(channel)
            p = stub.ProposeTriplet(analytics_pb2.ProposeTripletRequest(mode="random", rater="ann"))
            assert len(set(p.face_ids)) == 3 and p.type.endswith("_TRIPLET") and "most unlike" in p.question
            r = stub.RateTriplet(analytics_pb2.RateTripletRequest(face_ids=p.face_ids, type=p.type, rater="ann",
                                                                   answer=2))
            assert r.recorded and r.rater_answers == 1
            r = stub.RateTriplet(analytics_pb2.RateTripletRequest(face_ids=p.face_ids, type=p.type, rater="ann",
                                                                   answer=0))
            assert not r.recorded and r.rater_answers == 1          # can't tell: not recorded
            for bad, why in ((dict(answer=4, rater="ann"), "answer"), (dict(answer=1, rater=""), "rater"),
                             (dict(answer=1, rater="a,b"), "rater")):
                with pytest.raises(grpc.RpcError) as err:
                    stub.RateTriplet(analytics_pb2.RateTripletRequest(face_ids=p.face_ids, type=p.type, **bad))
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and why in err.value.details()
            with pytest.raises(grpc.RpcError) as err:
                stub.ProposeTriplet(analytics_pb2.ProposeTripletRequest(mode="sideways"))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    triplets, stats = read_rated([ratings])
    assert stats.malformed == 0 and [t.answers for t in triplets] == [[("ann", 2)]]
