"""Persons kept by the store: counts and centroids follow the faces in the same transaction."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from mien.engine.store import Person, Store
from mien.errors import BadInputError, NotFoundError
from tests.store_support import ENC, popen_py, source_faces, source_record


@pytest.fixture
def w(tmp_path):
    with Store(str(tmp_path / "s"), "w", ENC) as s:
        yield s


def expected_centroid(store, pid, required=True):
    """The normalised sum of the person's faces' unit identity vectors, from the records."""
    ids = store.person_face_ids(pid)
    vs = [store.get_face(int(i)).identity for i in ids]
    vs = [v.astype(np.float64) / np.linalg.norm(v) for v in vs if v is not None]
    if not vs and not required:
        return None
    assert vs, "test data: the person needs faces with an identity"
    s = np.sum(vs, axis=0)
    return s / np.linalg.norm(s)


def assert_persons_exact(store):
    """Every person's count equals its faces; no anonymous person is empty."""
    for p in store.list_persons():
        n = len(store.person_face_ids(p.person_id))
        assert p.count == n, (p.person_id, p.count, n)
        assert p.name is not None or n > 0, f"orphan anonymous person {p.person_id}"
    assert store.check_persons() == []


def test_new_persons_in_replace_source(w):
    faces = source_faces("a.mp4", 1, persons=[-2, -3, -1, -2], n=12)
    created = [Person(-1, None, np.ones(32), 99), Person(-1, "named", np.eye(32)[0], 5)]
    ids = w.replace_source(source_record("a.mp4", 1), faces, new_persons=created)
    a, b = created[0].person_id, created[1].person_id
    assert a >= 1 and b == a + 1
    assert list(w.person_face_ids(b)) == ids[1::4]
    assert [f.person_id for f in faces[:4]] == [a, b, -1, a]
    pa, pb = w.get_person(a), w.get_person(b)
    assert (pa.count, pb.count) == (6, 3)  # the given counts are ignored
    # anonymous: its faces decide the centroid; named: the enrolled reference stays
    np.testing.assert_allclose(pa.centroid, expected_centroid(w, a), atol=1e-6)
    assert pa.reference is None
    np.testing.assert_array_equal(pb.centroid, np.eye(32)[0])
    assert_persons_exact(w)


def test_bad_new_persons_write_nothing(w):
    before = w.stats()
    with pytest.raises(BadInputError):  # placeholder without a new person
        w.replace_source(source_record("a.mp4", 1), source_faces("a.mp4", 1, persons=[-3], n=3),
                         new_persons=[Person(-1, None, np.ones(32), 0)])
    with pytest.raises(BadInputError):  # an anonymous new person no face refers to: an orphan
        w.replace_source(source_record("a.mp4", 1), source_faces("a.mp4", 1, persons=[-1], n=3),
                         new_persons=[Person(-1, None, np.ones(32), 0)])
    w.add_person("ann", np.ones(32))
    with pytest.raises(BadInputError):  # duplicate name
        w.replace_source(source_record("a.mp4", 1), source_faces("a.mp4", 1, persons=[-2], n=3),
                         new_persons=[Person(-1, "ann", np.ones(32), 0)])
    after = w.stats()
    assert (after["faces"], after["sources"], after["persons"]) == (before["faces"], before["sources"], 1)


def test_reindex_and_remove_follow_counts_and_centroids(w):
    named = w.add_person("ann", np.eye(32)[3])
    new = [Person(-1, None, np.ones(32), 0)]
    w.replace_source(source_record("a.mp4", 1), source_faces("a.mp4", 1, persons=[-2, named], n=10),
                     new_persons=new)
    anon = new[0].person_id
    w.replace_source(source_record("b.mp4", 1), source_faces("b.mp4", 1, persons=[anon, -1], n=8))
    assert (w.get_person(anon).count, w.get_person(named).count) == (5 + 4, 5)
    np.testing.assert_allclose(w.get_person(anon).centroid, expected_centroid(w, anon), atol=1e-6)
    # re-index a.mp4 without persons: a's contribution leaves anon's count and centroid
    w.replace_source(source_record("a.mp4", 2), source_faces("a.mp4", 2, persons=[-1], n=6))
    assert w.get_person(anon).count == 4 and w.get_person(named).count == 0
    np.testing.assert_allclose(w.get_person(anon).centroid, expected_centroid(w, anon), atol=1e-6)
    assert w.get_person(named).centroid[3] == 1.0  # named and empty: stays, reference kept
    assert_persons_exact(w)
    # removing b.mp4 empties the anonymous person: it goes in the same transaction
    w.remove_source("b.mp4")
    with pytest.raises(NotFoundError):
        w.get_person(anon)
    assert [p.person_id for p in w.list_persons()] == [named]
    assert_persons_exact(w)


def test_moves_merge_and_delete_person(w):
    a = w.add_person("alice", np.eye(32)[0])
    b = w.add_person(None, -np.ones(32))
    ids = w.replace_source(source_record("v.mp4", 1), source_faces("v.mp4", 1, persons=[a, b, -1], n=9))
    assert (w.get_person(a).count, w.get_person(b).count) == (3, 3)
    w.set_faces_person(ids[2::3], b)
    assert w.get_person(b).count == 6
    np.testing.assert_allclose(w.get_person(b).centroid, expected_centroid(w, b), atol=1e-6)
    with pytest.raises(BadInputError):
        w.delete_person(b)  # it has faces
    w.set_faces_person(w.person_face_ids(b), -1)  # all its faces gone: an anonymous person goes
    with pytest.raises(NotFoundError):
        w.get_person(b)
    c = w.add_person(None, np.ones(32))
    w.set_faces_person(ids[1::3], c)
    w.merge_persons(c, a)
    assert w.get_person(a).count == 6 and w.get_person(a).name == "alice"
    np.testing.assert_array_equal(w.get_person(a).centroid, np.eye(32)[0])  # reference wins
    empty = w.add_person(None, np.ones(32))
    w.delete_person(empty)
    with pytest.raises(NotFoundError):
        w.delete_person(empty)
    assert_persons_exact(w)


# A writer that indexes sources with new anonymous persons, re-indexes and removes
# sources, and moves faces, forever; argv = store_dir seed.
PERSON_WRITER = r"""
import sys, numpy as np
from mien.engine.store import Person, Store
from tests.store_support import ENC, source_faces, source_record
path, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
with Store(path, "w", ENC) as w:
    print("ready", flush=True)
    while True:
        uri = f"file:///v/{int(rng.integers(0, 12))}.mp4"
        version = int(rng.integers(0, 1_000_000))
        r = rng.random()
        if r < 0.1 and w.get_source(uri) is not None:
            w.remove_source(uri)
        elif r < 0.2 and w.list_persons():
            persons = w.list_persons()
            ids = w.person_face_ids(persons[int(rng.integers(0, len(persons)))].person_id)
            if len(ids):
                w.set_faces_person(ids[: max(1, len(ids) // 2)], -1)
        else:
            old = [p.person_id for p in w.list_persons()][:3]
            n_new = int(rng.integers(0, 4))
            marks = [-2 - i for i in range(n_new)] + old + [-1]
            n = len(marks) + int(rng.integers(0, 20))  # every new person gets faces
            w.replace_source(source_record(uri, version), source_faces(uri, version, persons=marks, n=n),
                             new_persons=[Person(-1, None, np.ones(32), 0) for _ in range(n_new)])
"""


def test_kill_minus_9_during_person_writes(tmp_path):
    path = str(tmp_path / "s")
    Store(path, "w", ENC).close()
    rng = np.random.default_rng(3)
    kills = 0
    for i in range(8):
        proc = popen_py(PERSON_WRITER, path, str(i))
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(float(rng.uniform(0.05, 0.5)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL, err  # killed, not failed
        kills += 1
        with Store(path, "r") as r:
            assert_persons_exact(r)
            for p in r.list_persons():
                want = expected_centroid(r, p.person_id, required=False)
                if want is not None:
                    np.testing.assert_allclose(p.centroid, want, atol=1e-5)
    assert kills == 8
    with Store(path, "r") as r:
        assert r.stats()["faces"] > 0 and r.list_persons()


def test_store_from_older_mien_gets_counts_recomputed_once(tmp_path):
    """Person records without the identity sum (older mien, caller-written counts) are fixed on writer open."""
    import lmdb

    from mien.engine.store.records import _pack, id_key

    path = str(tmp_path / "s")
    with Store(path, "w", ENC) as w:
        a = w.add_person("ann", np.eye(32)[0])
        b = w.add_person(None, np.ones(32))
        w.replace_source(source_record("a.mp4", 1), source_faces("a.mp4", 1, persons=[a, b, b, -1], n=12))
        want = {p.person_id: p for p in w.list_persons()}
    # rewrite the person records as an older mien did: JSON header + centroid, a wrong count
    env = lmdb.open(path, max_dbs=20)
    persons, meta = env.open_db(b"persons"), env.open_db(b"meta")
    with env.begin(write=True) as txn:
        for pid, c in ((a, np.eye(32)[0]), (b, np.ones(32))):
            txn.put(id_key(pid), _pack({"n": want[pid].name, "c": 99, "d": 32}, c.astype(np.float32)), db=persons)
        txn.delete(b"person_stats", db=meta)
    env.close()
    with Store(path, "r") as r:
        assert sorted(r.check_persons()) == [a, b] and r.get_person(b).count == 99
    with Store(path, "w") as w:  # the writer recomputes once
        assert w.check_persons() == []
        for pid in (a, b):
            got = w.get_person(pid)
            assert got.count == want[pid].count
            np.testing.assert_allclose(got.centroid, want[pid].centroid, atol=1e-6)
        assert w.get_person(a).reference is not None  # a named person's old centroid is its reference
        assert_persons_exact(w)


def test_merge_refuses_persons_sharing_a_frame(w):
    """Two faces of one frame are two people: merge_persons says where, and writes nothing."""
    a = w.add_person(None, np.ones(32))
    b = w.add_person(None, -np.ones(32))
    faces = source_faces("v.mp4", 1, persons=[a, b], n=4)
    for f in faces:
        f.timestamp_ms = 500 if f.frame_index < 2 else 900 + f.frame_index  # faces 0 (a) and 1 (b) share a frame
    ids = w.replace_source(source_record("v.mp4", 1), faces)
    assert w.frame_conflicts(w.person_face_ids(a), w.person_face_ids(b)) == [("v.mp4", 500)]
    with pytest.raises(BadInputError, match="same frame"):
        w.merge_persons(a, b)
    assert (w.get_person(a).count, w.get_person(b).count) == (2, 2)
    # two faces of one person in different frames are no conflict; the explicit override merges
    assert w.frame_conflicts(ids[0::2], ids[0::2]) == []
    w.merge_persons(a, b, allow_same_frame=True)
    assert w.get_person(b).count == 4
    assert_persons_exact(w)


def test_split_and_delete_person(w):
    named = w.add_person("ann", np.eye(32)[0])
    ids = w.replace_source(source_record("v.mp4", 1), source_faces("v.mp4", 1, persons=[named], n=6))
    new = w.split_person(ids[:2])
    assert new != named and w.get_person(new).name is None
    assert sorted(w.person_face_ids(new)) == ids[:2] and w.get_person(named).count == 4
    assert w.get_person(named).name == "ann"  # ids and names of the rest stay
    with pytest.raises(BadInputError):
        w.split_person([ids[0], ids[3]])  # faces of two persons
    with pytest.raises(NotFoundError):
        w.split_person([999_999])
    with pytest.raises(BadInputError):
        w.delete_person(named)  # it has faces
    w.delete_person(named, release_faces=True)
    with pytest.raises(NotFoundError):
        w.get_person(named)
    assert all(w.get_face(i).person_id == -1 for i in ids[2:])
    assert w.stats()["faces"] == 6  # the faces stay, unknown
    assert_persons_exact(w)


def test_person_rules_are_recorded(w):
    assert w.person_rules() is None
    rules = {"identity": "dlib-resnet", "threshold": 0.36, "margin": 0.04}
    assert w.record_person_rules(rules) is None
    assert w.record_person_rules(rules) is None  # the same rules again: nothing to say
    other = dict(rules, threshold=0.5)
    assert w.record_person_rules(other) == rules  # a later run with another threshold is told
    got = w.person_rules()
    assert got["threshold"] == 0.5 and got["previous"] == [rules]
