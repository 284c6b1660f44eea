"""Store records and writer API on a real LMDB: round trips, persons, tags, locks, encoders."""

from __future__ import annotations

import numpy as np
import pytest

from mien.engine.store import Store, Tag
from mien.errors import BadInputError, EncoderMismatchError, NotFoundError, StoreLockedError
from tests.store_support import ENC, run_py, source_faces, source_record


@pytest.fixture
def w(tmp_path):
    with Store(tmp_path / "s", "w", ENC) as store:
        yield store


def test_face_round_trip_and_source_order(w):
    faces = source_faces("a.mp4", 1)
    ids = w.replace_source(source_record("a.mp4", 1), faces)
    assert ids == sorted(ids) and len(set(ids)) == len(faces) and min(ids) >= 1
    f = w.get_face(ids[3])
    src = faces[3]
    assert (f.source_uri, f.frame_index, f.timestamp_ms, f.track_id) == ("a.mp4", 3, src.timestamp_ms, src.track_id)
    assert f.bbox == pytest.approx(src.bbox)
    np.testing.assert_allclose(f.landmarks5, src.landmarks5, rtol=1e-6)
    np.testing.assert_array_equal(f.expression, src.expression)
    np.testing.assert_array_equal(f.pooled, src.pooled)
    assert f.identity is None or np.allclose(f.identity, src.identity)
    assert (f.sharpness, f.yaw, f.pitch, f.roll) == pytest.approx((src.sharpness, 1.0, 2.0, 3.0))
    assert w.get_thumbnail(ids[3]) == src.thumbnail
    listed = w.faces_of_source("a.mp4")
    assert [(x.timestamp_ms, x.face_id) for x in listed] == sorted((x.timestamp_ms, x.face_id) for x in listed)
    assert w.faces_of_source("nope") == []
    assert w.get_source("a.mp4").face_count == len(faces)
    np.testing.assert_array_equal(w.vectors(ids, "pooled"), np.stack([x.pooled for x in faces]))
    ident = w.vectors(ids, "identity")
    for row, x in zip(ident, faces):
        assert np.isnan(row).all() if x.identity is None else np.allclose(row, x.identity)
    with pytest.raises(NotFoundError):
        w.get_face(10**9)
    with pytest.raises(NotFoundError):
        w.vectors([ids[0], 10**9])


def test_replace_source_never_duplicates_and_remove_leaves_search(w):
    first = w.replace_source(source_record("a.jpg", 1), source_faces("a.jpg", 1, n=5))
    w.replace_source(source_record("b.jpg", 1), source_faces("b.jpg", 1, n=4))
    second = w.replace_source(source_record("a.jpg", 2), source_faces("a.jpg", 2, n=3))
    assert not set(first) & set(second)
    assert w.stats()["faces"] == 7 and len(w.list_sources()) == 2
    assert w.get_source("a.jpg").fingerprint == "v2"
    q = w.get_face(second[0]).expression
    assert w.search(q, 1)[0].face_id == second[0]
    assert not {h.face_id for h in w.search(q, 50)} & set(first)
    w.remove_source("a.jpg")
    assert w.get_source("a.jpg") is None and w.stats()["faces"] == 4
    assert not {h.face_id for h in w.search(q, 50)} & set(second)
    with pytest.raises(NotFoundError):
        w.remove_source("a.jpg")


def test_persons_merge_and_assignment(w):
    a = w.add_person("alice", np.ones(32))
    b = w.add_person(None, -np.ones(32))
    with pytest.raises(BadInputError):
        w.add_person("alice", np.ones(32))
    ids = w.replace_source(source_record("v.mp4", 1), source_faces("v.mp4", 1, persons=[a, b, -1], n=9))
    assert list(w.person_face_ids(a)) == ids[0::3] and list(w.person_face_ids(b)) == ids[1::3]
    w.set_faces_person(ids[2::3], b)
    assert w.get_face(ids[2]).person_id == b
    assert (w.get_person(a).count, w.get_person(b).count) == (3, 6)  # the store counts
    w.merge_persons(b, a)
    assert sorted(w.person_face_ids(a)) == sorted(ids) and w.get_person(a).count == 9
    with pytest.raises(NotFoundError):
        w.get_person(b)
    w.update_person(a, name="alice2")  # renaming keeps the faces
    assert w.find_person("alice2").count == 9 and w.find_person("alice") is None
    assert [h.face_id for h in w.search_person(w.get_face(ids[4]).expression, a, 1)] == [ids[4]]
    with pytest.raises(NotFoundError):
        w.set_faces_person(ids[:1], 999)
    with pytest.raises(NotFoundError):
        w.search_person(np.ones(16), 999)


def test_tags(w):
    v = np.eye(16, dtype=np.float32)[:2]
    w.put_tag(Tag("smile", v, 0.4, [1, 2]))
    t = w.get_tag("smile")
    assert (t.name, t.threshold, t.reference_face_ids) == ("smile", 0.4, [1, 2]) and t.created_ms > 0
    np.testing.assert_array_equal(t.vectors, v)
    assert [x.name for x in w.list_tags()] == ["smile"]
    w.delete_tag("smile")
    with pytest.raises(NotFoundError):
        w.get_tag("smile")
    with pytest.raises(BadInputError):
        w.put_tag(Tag("bad", np.ones((1, 3))))


def test_bad_inputs(w):
    faces = source_faces("x.jpg", 1, n=2)
    faces[1].expression = np.ones(15)
    with pytest.raises(BadInputError, match="16"):
        w.replace_source(source_record("x.jpg", 1), faces)
    assert w.get_source("x.jpg") is None  # nothing half-written
    with pytest.raises(BadInputError):
        w.search(np.full(16, np.nan))
    with pytest.raises(BadInputError):
        w.search_identity(np.ones(5))


def test_second_writer_is_refused_until_the_first_closes(tmp_path):
    path = tmp_path / "s"
    first = Store(path, "w", ENC)
    with pytest.raises(StoreLockedError, match="already open for writing"):
        Store(path, "w", ENC)
    code = "import sys; from mien.engine.store import Store; Store(sys.argv[1], 'w')"
    other = run_py(code, str(path))
    assert other.returncode != 0 and "StoreLockedError" in other.stderr
    reader = Store(path, "r")  # readers are never refused, even alongside a writer
    first.close()
    with Store(path, "w") as again:  # lock released on close
        again.add_person("x", np.ones(32))
    assert reader.find_person("x") is not None
    with pytest.raises(BadInputError, match="read-only"):
        reader.add_person("y", np.ones(32))
    reader.close()


def test_lock_is_released_when_the_writer_process_dies(tmp_path):
    path = str(tmp_path / "s")
    code = ("import os, sys; from mien.engine.store import Store; from tests.store_support import ENC\n"
            "s = Store(sys.argv[1], 'w', ENC); os.kill(os.getpid(), 9)")
    assert run_py(code, path).returncode == -9
    with Store(path, "w", ENC):
        pass


def test_encoder_mismatch_names_both(tmp_path):
    path = tmp_path / "s"
    Store(path, "w", ENC).close()
    other = dict(ENC, identity="arcface", identity_dim=512)
    with pytest.raises(EncoderMismatchError) as e:
        Store(path, "w", other)
    msg = str(e.value)
    assert "dlib-resnet" in msg and "arcface" in msg and "512" in msg and "32" in msg
    with pytest.raises(EncoderMismatchError):
        Store(path, "r", dict(ENC, expression="feenet-abc"))
    with Store(path, "w", dict(ENC, detector="insightface")):  # detectors don't change vectors
        pass
    with pytest.raises(NotFoundError):
        Store(tmp_path / "missing", "r")
    with pytest.raises(BadInputError):
        Store(tmp_path / "new", "w")  # a new store needs encoders


def test_identity_search_follows_adds_and_removals(w):
    a = source_faces("a.jpg", 1, n=6)
    ids_a = w.replace_source(source_record("a.jpg", 1), a)
    probe = a[1].identity
    assert w.search_identity(probe, 1)[0].face_id == ids_a[1]  # loads the identity index
    b = source_faces("b.jpg", 1, n=6)
    b[2].identity = probe.copy()
    ids_b = w.replace_source(source_record("b.jpg", 1), b)
    hits = w.search_identity(probe, 2)
    assert {h.face_id for h in hits} == {ids_a[1], ids_b[2]} and hits[1].distance < 1e-6
    assert w.search_identity(probe, 1, exclude_face=ids_a[1])[0].face_id == ids_b[2]
    w.remove_source("a.jpg")
    hits = w.search_identity(probe, 10)
    assert hits[0].face_id == ids_b[2] and not {h.face_id for h in hits} & set(ids_a)
    assert len(hits) == sum(f.identity is not None for f in b)


def test_hit_records_are_the_full_records_fields(w):
    faces = source_faces("h.mp4", 1)
    ids = w.replace_source(source_record("h.mp4", 1), faces)
    pid = w.add_person("hit", np.ones(8, np.float32))
    w.set_faces_person([ids[2]], pid)
    order = [ids[2], ids[0], ids[-1]]
    hits = w.hit_records(order, thumbnail=True)
    full = w.get_faces(order, thumbnail=True)
    assert [h.face_id for h in hits] == order
    for h, f in zip(hits, full):
        assert (h.source_uri, h.frame_index, h.timestamp_ms, h.track_id, h.person_id, h.thumbnail) == (
            f.source_uri, f.frame_index, f.timestamp_ms, f.track_id, f.person_id, f.thumbnail)
        assert h.bbox == pytest.approx(f.bbox)
    assert hits[0].person_id == pid and hits[1].person_id == -1
    assert w.hit_records(order)[0].thumbnail == b""
    with pytest.raises(NotFoundError, match=str(10**9)):
        w.hit_records([ids[0], 10**9])


def test_hit_decoding_reads_the_older_json_face_values():
    from mien.engine.store.records import _pack, decode_face, decode_hit, encode_row

    header = {"s": "old.mp4", "f": 7, "t": 3500, "b": [1.0, 2.0, 30.0, 40.0], "d": 0.9,
              "q": [5.0, 1.0, 2.0, 3.0], "tr": 4}
    old = _pack(header, np.zeros(10, np.float32), np.ones(16, np.float32))
    row = encode_row(np.zeros(16, np.float32), 3500, 0, 12)
    hit, full = decode_hit(99, old, row), decode_face(99, old, row, None, b"")
    assert (hit.source_uri, hit.frame_index, hit.timestamp_ms, hit.bbox, hit.track_id, hit.person_id) == (
        full.source_uri, full.frame_index, full.timestamp_ms, full.bbox, full.track_id, full.person_id)
    assert (hit.source_uri, hit.person_id, hit.bbox) == ("old.mp4", 12, (1.0, 2.0, 30.0, 40.0))
