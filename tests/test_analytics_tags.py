"""Custom tags on a real Store filled with designed expression vectors."""

from __future__ import annotations

import numpy as np
import pytest

from analytics_support import add_source, basis, face, open_store
from mien.engine import analytics
from mien.errors import BadInputError, NotFoundError

SMILE, NEUTRAL, OTHER = 0, 1, 2
URI = "/archive/talk.mp4"


@pytest.fixture()
def store(tmp_path):
    """A video with two known persons and one unknown track, sampled every 500 ms.

    Alice: smile 0-1500, neutral 2000-3000, smile 3500-4500 (best smile at 4000),
           absent 5000-7500, smile 8000-8500  -> 3 smile segments, 1 neutral.
    Bob:   neutral throughout 0-4500            -> no smile.
    track 7 (unknown): smile at 1000 only.
    """
    s = open_store(tmp_path / "store")
    alice = s.add_person("Alice", basis(OTHER))
    bob = s.add_person("Bob", basis(OTHER))
    faces = []
    for ts in range(0, 4501, 500):
        if ts <= 1500 or 3500 <= ts <= 4500:
            exact = ts == 4000
            faces.append(face(URI, ts, basis(SMILE, 0.0 if exact else 0.2), person=alice, track=1))
        else:
            faces.append(face(URI, ts, basis(NEUTRAL, 0.1), person=alice, track=1))
        faces.append(face(URI, ts, basis(NEUTRAL), person=bob, track=2))
    for ts in (8000, 8500):
        faces.append(face(URI, ts, basis(SMILE, 0.3), person=alice, track=3))
    faces.append(face(URI, 1000, basis(SMILE, 0.1), track=7))
    add_source(s, URI, faces, duration_ms=9000)
    # a second source so store-wide tagging has more than one video
    add_source(s, "/archive/photo.jpg", [face("/archive/photo.jpg", 0, basis(SMILE), person=bob)],
               kind="image")
    s.person_ids = {"alice": alice, "bob": bob}
    yield s
    s.close()


def _smile_neutral(store):
    analytics.create_tag(store, "smile", vectors=basis(SMILE))
    analytics.create_tag(store, "neutral", vectors=basis(NEUTRAL))


def _result(report, person_id, tag, track=-1):
    [r] = [r for r in report.results if r.person_id == person_id and r.tag == tag and r.track_id == track]
    return r


def test_segments_merge_adjacent_samples_and_respect_timestamps(store):
    _smile_neutral(store)
    report = analytics.tag_source(store, URI)
    assert report.sample_period_ms == 500 and report.duration_ms == 9000
    alice = store.person_ids["alice"]
    smile = _result(report, alice, "smile")
    spans = [(s.start_ms, s.end_ms) for s in smile.segments]
    # the neutral run splits 0-1500 from 3500-4500; the 3.5 s absence splits off 8000-8500
    assert spans == [(0, 1500), (3500, 4500), (8000, 8500)]
    assert [s.faces for s in smile.segments] == [4, 3, 2]
    best = smile.segments[1]
    assert best.best_distance == pytest.approx(0.0, abs=1e-6)
    assert store.get_face(best.best_face_id).timestamp_ms == 4000
    neutral = _result(report, alice, "neutral")
    assert [(s.start_ms, s.end_ms) for s in neutral.segments] == [(2000, 3000)]
    # the whole-video gap limit off: the absence no longer splits
    merged = analytics.tag_source(store, URI, ["smile"], max_gap_ms=None)
    assert [(s.start_ms, s.end_ms) for s in _result(merged, alice, "smile").segments] == [
        (0, 1500), (3500, 8500)]


def test_appearance_rates_add_up(store):
    _smile_neutral(store)
    report = analytics.tag_source(store, URI)
    alice, bob = store.person_ids["alice"], store.person_ids["bob"]
    for pid in (alice, bob):
        smile, neutral = _result(report, pid, "smile"), _result(report, pid, "neutral")
        # every face is exactly one of the two expressions
        assert smile.tagged + neutral.tagged == smile.faces
        assert smile.rate + neutral.rate == pytest.approx(1.0)
        for r in (smile, neutral):
            assert r.rate == pytest.approx(r.tagged / r.faces)
            assert sum(s.faces for s in r.segments) == r.tagged
    assert _result(report, alice, "smile").faces == 12
    assert _result(report, alice, "smile").tagged == 9
    assert _result(report, bob, "smile").tagged == 0 and _result(report, bob, "smile").segments == []
    unknown = _result(report, -1, "smile", track=7)
    assert (unknown.faces, unknown.tagged, unknown.person_name) == (1, 1, None)
    assert sum(r.faces for r in report.results if r.tag == "smile") == report.faces


def test_threshold_is_per_tag(store):
    # only the exact smile (distance 0) is within 0.01; wobbled smiles are ~0.04+ away
    analytics.create_tag(store, "exact-smile", vectors=basis(SMILE), threshold=0.01)
    report = analytics.tag_source(store, URI)
    r = _result(report, store.person_ids["alice"], "exact-smile")
    assert r.tagged == 1 and [(s.start_ms, s.end_ms) for s in r.segments] == [(4000, 4000)]


def test_tag_crud_and_references_from_faces(store):
    ids = store.person_face_ids(store.person_ids["bob"]).tolist()
    tag = analytics.create_tag(store, "bob-neutral", face_ids=ids[:2], threshold=0.3)
    assert tag.reference_face_ids == ids[:2] and tag.threshold == pytest.approx(0.3)
    stored = store.get_tag("bob-neutral")
    np.testing.assert_allclose(stored.vectors, store.vectors(ids[:2], kind="expression"), atol=1e-6)
    analytics.create_tag(store, "a-smile", vectors=[basis(SMILE) * 3])  # normalised on the way in
    assert np.linalg.norm(store.get_tag("a-smile").vectors[0]) == pytest.approx(1.0)
    assert [t.name for t in analytics.list_tags(store)] == ["a-smile", "bob-neutral"]
    with pytest.raises(BadInputError, match="already exists"):
        analytics.create_tag(store, "a-smile", vectors=basis(NEUTRAL))
    analytics.create_tag(store, "a-smile", vectors=basis(NEUTRAL), replace=True)
    np.testing.assert_allclose(store.get_tag("a-smile").vectors[0], basis(NEUTRAL), atol=1e-6)
    analytics.delete_tag(store, "a-smile")
    assert [t.name for t in analytics.list_tags(store)] == ["bob-neutral"]
    with pytest.raises(NotFoundError):
        analytics.delete_tag(store, "a-smile")
    with pytest.raises(NotFoundError):
        analytics.create_tag(store, "ghost", face_ids=[10 ** 9])
    for bad in ("", " padded", "a/b", "x" * 65):
        with pytest.raises(BadInputError):
            analytics.create_tag(store, bad, vectors=basis(SMILE))
    for bad in (0.0, -1.0, 4.5):
        with pytest.raises(BadInputError):
            analytics.create_tag(store, "t", vectors=basis(SMILE), threshold=bad)
    with pytest.raises(BadInputError, match="at least one"):
        analytics.create_tag(store, "empty")
    with pytest.raises(BadInputError):
        analytics.create_tag(store, "short", vectors=np.ones(8, np.float32))
    with pytest.raises(NotFoundError):
        analytics.tag_source(store, URI, ["nope"])
    with pytest.raises(NotFoundError):
        analytics.tag_source(store, "/not/indexed.mp4", ["bob-neutral"])


def test_no_tags_is_a_clear_error(store):
    with pytest.raises(NotFoundError, match="no tags"):
        analytics.tag_source(store, URI)


def test_tag_store_counts_per_person(store):
    _smile_neutral(store)
    alice, bob = store.person_ids["alice"], store.person_ids["bob"]
    report = analytics.tag_store(store)
    assert report.faces == 24
    smile = {p.person_id: p for p in report.persons if p.tag == "smile"}
    assert smile[alice].tagged == 9 and smile[alice].faces == 12
    assert smile[bob].tagged == 1 and smile[bob].faces == 11  # only the photo
    assert smile[-1].tagged == 1 and smile[-1].person_name is None
    assert store.get_face(smile[alice].best_face_id).timestamp_ms == 4000
    assert smile[alice].best_distance == pytest.approx(0.0, abs=1e-6)
    assert report.tagged["smile"] == sum(p.tagged for p in smile.values()) == 11
    assert report.tagged["smile"] + report.tagged["neutral"] == report.faces
    order = [p.person_id for p in report.persons if p.tag == "smile"]
    assert order[0] == alice  # most tagged first
    # chunking must not change the answer (chunk boundaries split persons)
    small = analytics.tag_store(store, ["neutral", "smile"], chunk=5)
    assert small == report


def test_tag_distances_match_bruteforce():
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(200, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    from mien.engine.store import Tag

    tags = [Tag(name=f"t{i}", vectors=vecs[i * 3:(i + 1) * 3 + i]) for i in range(4)]
    got = analytics.tag_distances(vecs, tags)
    for t, tag in enumerate(tags):
        want = ((vecs[:, None, :] - tag.vectors[None, :, :]) ** 2).sum(-1).min(1)
        np.testing.assert_allclose(got[:, t], want, atol=1e-5)


def test_merge_segments_same_timestamp_counts_as_one_sample():
    segs = analytics.merge_segments(
        [0, 0, 500, 1000, 1000], [1, 2, 3, 4, 5], [0.4, 0.1, 0.2, 0.9, 0.3],
        [True, True, True, False, True], max_gap_ms=1000)
    # 1000 holds an untagged and a tagged face: any tagged face tags the sample
    assert [(s.start_ms, s.end_ms, s.faces, s.best_face_id) for s in segs] == [(0, 1000, 4, 2)]
    assert analytics.merge_segments([], [], [], [], max_gap_ms=None) == []
