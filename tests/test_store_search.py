"""Searches equal brute force on random data: filters, restricted, identity, tombstones, shards."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mien.engine.store import Store
from mien.engine.store import shards as shardio
from tests.store_support import ENC, brute, check_consistent, source_faces, source_record, unit


def fill(path, n_sources: int, shard_size: int):
    """A store of random faces; returns (person ids, {face_id: record})."""
    records = {}
    with Store(path, "w", ENC, shard_size=shard_size) as w:
        persons = [w.add_person(f"p{i}", np.ones(32)) for i in range(5)]
        for s in range(n_sources):
            uri = f"file:///a/{s}.mp4"
            faces = source_faces(uri, 0, persons=persons + [-1, -1])
            for fid, f in zip(w.replace_source(source_record(uri, 0), faces), faces):
                records[fid] = f
    return persons, records


@pytest.fixture(scope="module")
def flat_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("flat") / "s"
    persons, records = fill(path, 60, shard_size=100_000)
    with Store(path, "r") as r:
        yield r, persons, records


@pytest.fixture(scope="module")
def ivf_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("ivf") / "s"
    persons, records = fill(path, 200, shard_size=1000)
    yield path, persons, records


def random_filter(rng, persons, records):
    uris = sorted({f.source_uri for f in records.values()})
    kw = {}
    if rng.random() < 0.4:
        kw["persons"] = list(rng.choice(persons + [-1], size=int(rng.integers(1, 3)), replace=False))
    if rng.random() < 0.3:
        kw["exclude_persons"] = list(rng.choice(persons + [-1], size=int(rng.integers(1, 4)), replace=False))
    if rng.random() < 0.3:
        kw["sources"] = list(rng.choice(uris, size=int(rng.integers(1, 6)), replace=False))
    if rng.random() < 0.4:
        lo = int(rng.integers(0, 90_000))
        kw["time_range"] = (lo, lo + int(rng.choice([300, 5_000, 50_000])))
    if rng.random() < 0.3:
        kw["exclude_face"] = int(rng.choice(list(records)))
    return kw


def keep_fn(kw, records):
    def keep(fid):
        f = records[fid]
        if "persons" in kw and f.person_id not in kw["persons"]:
            return False
        if "exclude_persons" in kw and f.person_id in kw["exclude_persons"]:
            return False
        if "sources" in kw and f.source_uri not in kw["sources"]:
            return False
        if "time_range" in kw:
            lo, hi = kw["time_range"]
            if (lo is not None and f.timestamp_ms < lo) or (hi is not None and f.timestamp_ms > hi):
                return False
        return fid != kw.get("exclude_face")
    return keep


def assert_same(hits, want):
    assert [h.face_id for h in hits] == [w[0] for w in want]
    assert [h.distance for h in hits] == pytest.approx([w[1] for w in want], abs=1e-6)


def test_filters_equal_brute_force_exact_index(flat_store):
    store, persons, records = flat_store
    vecs = {fid: f.expression for fid, f in records.items()}
    rng = np.random.default_rng(1)
    for q in unit(rng, 60):
        kw = random_filter(rng, persons, records)
        k = int(rng.choice([1, 5, 10, 40]))
        assert_same(store.search(q, k, **kw), brute(store, vecs, q, k, keep_fn(kw, records)))


def test_filters_equal_brute_force_ivf(ivf_store):
    path, persons, records = ivf_store
    vecs = {fid: f.expression for fid, f in records.items()}
    rng = np.random.default_rng(2)
    # exhaustive probing: the IVF path (over-fetch, post-filter, re-rank) must then be exact
    with Store(path, "r", nprobe=4096, k_factor=16) as r:
        r.search(np.ones(16), 1)
        assert r.stats()["index"]["kind"] == "ivf-sq8" and r.stats()["shards"] >= 2
        for q in unit(rng, 60):
            kw = random_filter(rng, persons, records)
            k = int(rng.choice([1, 5, 10]))
            assert_same(r.search(q, k, **kw), brute(r, vecs, q, k, keep_fn(kw, records)))
    # default probing: selective filters fall back to exact scans; results stay exact
    with Store(path, "r", nprobe=1) as r:
        for q in unit(rng, 20):
            lo = int(rng.integers(0, 99_000))
            kw = {"time_range": (lo, lo + 400), "exclude_persons": [persons[0]]}
            assert_same(r.search(q, 10, **kw), brute(r, vecs, q, 10, keep_fn(kw, records)))
            kw = {"persons": [persons[1]], "time_range": (lo, None)}
            assert_same(r.search(q, 10, **kw), brute(r, vecs, q, 10, keep_fn(kw, records)))


def test_restricted_and_identity_equal_brute_force(ivf_store):
    path, persons, records = ivf_store
    vecs = {fid: f.expression for fid, f in records.items()}
    idents = {fid: f.identity for fid, f in records.items() if f.identity is not None}
    rng = np.random.default_rng(3)
    with Store(path, "r") as r:
        for q in unit(rng, 20):
            p = int(rng.choice(persons))
            want = brute(r, vecs, q, 10, lambda fid: records[fid].person_id == p)
            assert_same(r.search_person(q, p, 10), want)
        for q in unit(rng, 10, 32):
            ex = int(rng.choice(list(idents)))
            want = brute(r, idents, q, 7, lambda fid: fid != ex)
            assert_same(r.search_identity(q, 7, exclude_face=ex), want)


def test_ivf_recall_with_default_probing(ivf_store):
    path, persons, records = ivf_store
    vecs = {fid: f.expression for fid, f in records.items()}
    rng = np.random.default_rng(4)
    found = total = 0
    with Store(path, "r") as r:
        for q in unit(rng, 50):
            want = {w[0] for w in brute(r, vecs, q, 10)}
            found += len(want & {h.face_id for h in r.search(q, 10)})
            total += len(want)
    assert found / total > 0.9  # uniform random 16-d data is IVF's worst case


def test_tombstones_rebuild_and_live_reader(tmp_path):
    path = tmp_path / "s"
    persons, records = fill(path, 80, shard_size=300)
    reader = Store(path, "r")
    q = records[next(iter(records))].expression
    reader.search(q, 5)
    with Store(path, "w", shard_size=300) as w:
        assert w.stats()["shards"] >= 3
        gone = [f"file:///a/{s}.mp4" for s in range(0, 80, 3)]
        for uri in gone:
            w.remove_source(uri)
        records = {fid: f for fid, f in records.items() if f.source_uri not in gone}
        vecs = {fid: f.expression for fid, f in records.items()}
        assert w.stats()["tombstones"] > 0
        exact = brute(w, vecs, q, 10)
        with Store(path, "r", nprobe=4096, k_factor=16) as fresh:
            assert_same(fresh.search(q, 10), exact)
        assert not {h.face_id for h in reader.search(q, 200)} - set(records)
        before = set(shardio.files(str(path)))
        w.rebuild_shards()
        st = w.stats()
        assert st["tombstones"] == 0 and st["faces"] == len(records)
        assert not before & set(shardio.files(str(path)))  # old files replaced
        with Store(path, "r", nprobe=4096, k_factor=16) as fresh:
            assert_same(fresh.search(q, 10), exact)
            check_consistent(fresh)
        # a reader open across the rebuild reloads and agrees with a fresh one
        assert reader.stats()["faces"] == len(records)
        assert not {h.face_id for h in reader.search(q, 200)} - set(records)
        assert reader._idx.count_alive() == len(records)
    reader.close()


def test_stray_and_missing_shard_files_are_repaired(tmp_path):
    path = tmp_path / "s"
    persons, records = fill(path, 50, shard_size=250)
    files = shardio.files(str(path))
    assert len(files) >= 2
    sdir = os.path.join(path, shardio.SHARD_DIR)
    with open(os.path.join(sdir, "shard-e0000-000000999999-000001000000.npz"), "wb") as fh:
        fh.write(b"half a shard")
    with open(os.path.join(sdir, files[0] + ".tmp"), "wb") as fh:
        fh.write(b"torn")
    os.remove(os.path.join(sdir, files[1]))
    vecs = {fid: f.expression for fid, f in records.items()}
    q = unit(np.random.default_rng(5), 1)[0]
    with Store(path, "r", nprobe=4096, k_factor=16) as r:  # a reader copes before any repair
        assert_same(r.search(q, 10), brute(r, vecs, q, 10))
    Store(path, "w").close()
    assert shardio.files(str(path)) == files
    with Store(path, "r", nprobe=4096, k_factor=16) as r:
        assert_same(r.search(q, 10), brute(r, vecs, q, 10))
        assert r.stats()["faces"] == len(records)


def test_reader_switches_from_exact_to_ivf_when_the_first_shard_seals(tmp_path):
    path = tmp_path / "s"
    w = Store(path, "w", ENC, shard_size=400)
    r = Store(path, "r", nprobe=4096, k_factor=16)
    records = {}
    for s in range(60):
        uri = f"u{s}"
        faces = source_faces(uri, 0)
        records.update(zip(w.replace_source(source_record(uri, 0), faces), faces))
        if s == 2:
            r.search(np.ones(16), 1)
            assert r.stats()["index"]["kind"] == "flat"
    vecs = {fid: f.expression for fid, f in records.items()}
    q = unit(np.random.default_rng(6), 1)[0]
    assert_same(r.search(q, 10), brute(r, vecs, q, 10))
    assert r.stats()["index"]["kind"] == "ivf-sq8"
    r.close()
    w.close()


def test_restricted_probing_ivf_lists(ivf_store):
    """Above probe_min, search_person scans the query's nearest IVF lists of the person."""
    from mien.engine.store.expression_index import NO_LIST

    path, persons, records = ivf_store
    vecs = {fid: f.expression for fid, f in records.items()}
    rng = np.random.default_rng(5)
    with Store(path, "r", nprobe=1 << 12, probe_min=0) as r:  # every list probed: exact
        for q in unit(rng, 20):
            p = int(rng.choice(persons))
            want = brute(r, vecs, q, 10, lambda fid: records[fid].person_id == p)
            assert_same(r.search_person(q, p, 10), want)
        idx = r._idx
        assert idx.ivf and (idx.lists.a != NO_LIST).all()
        import faiss

        inv = faiss.extract_index_ivf(idx.ann).invlists
        for lst in range(inv.nlist):
            n = inv.list_size(lst)
            if n:
                assert (idx.lists.a[faiss.rev_swig_ptr(inv.get_ids(lst), n)] == lst).all()
    with Store(path, "r", nprobe=8, probe_min=0) as r:  # approximate: right person, exact distances
        for q in unit(rng, 20):
            p = int(rng.choice(persons))
            hits = r.search_person(q, p, 10)
            assert len(hits) == 10
            assert all(records[h.face_id].person_id == p for h in hits)
            for h in hits:
                assert h.distance == pytest.approx(float(((vecs[h.face_id] - q) ** 2).sum()), rel=1e-5)
            assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def test_restricted_probing_follows_a_writer(tmp_path):
    """A reader that already probed a person's IVF lists sees that person's faces
    added and removed by a writer afterwards (rows appended after the IVF exists
    get their list from the quantizer; the by-list order is rebuilt)."""
    path = tmp_path / "s"
    persons, records = fill(path, 120, shard_size=1000)
    vecs = {fid: f.expression for fid, f in records.items()}
    rng = np.random.default_rng(9)
    p = persons[0]
    with Store(path, "r", nprobe=1 << 12, probe_min=0) as r:  # every list probed: exact
        q = unit(rng, 1)[0]
        assert_same(r.search_person(q, p, 10), brute(r, vecs, q, 10, lambda f: records[f].person_id == p))
        assert r._idx.ivf and p in r._idx.by_list  # the person was probed by list
        with Store(path, "w", ENC, shard_size=1000) as w:
            uri = "file:///late.mp4"
            faces = source_faces(uri, 0, persons=[p], n=40)
            for fid, f in zip(w.replace_source(source_record(uri, 0), faces), faces):
                records[fid], vecs[fid] = f, f.expression
            near = faces[0].expression  # a query that the new faces must win
            want = brute(r, vecs, near, 10, lambda f: records[f].person_id == p)
            assert any(records[fid].source_uri == uri for fid, _ in want)
            assert_same(r.search_person(near, p, 10), want)
            assert (r._idx.lists.a != 0xFFFF).all()  # the new rows have their IVF lists
            w.remove_source(uri)
        for fid in [f for f in records if records[f].source_uri == uri]:
            del records[fid], vecs[fid]
        assert_same(r.search_person(near, p, 10), brute(r, vecs, near, 10, lambda f: records[f].person_id == p))


def test_searches_with_records_return_the_hits_records(ivf_store):
    path, persons, records = ivf_store
    rng = np.random.default_rng(11)
    with Store(path, "r") as r:
        for q, qi in zip(unit(rng, 5), unit(rng, 5, 32)):
            calls = [(r.search, (q, 10)), (r.search_person, (q, persons[2], 10)),
                     (r.search_identity, (qi, 10))]
            for fn, args in calls:
                plain, full = fn(*args), fn(*args, records=True, thumbnails=True)
                assert [(h.face_id, h.distance) for h in full] == [(h.face_id, h.distance) for h in plain]
                assert all(h.record is None for h in plain)
                for h in full:
                    want = records[h.face_id]
                    rec = h.record
                    assert rec.face_id == h.face_id
                    assert (rec.source_uri, rec.timestamp_ms, rec.person_id, rec.thumbnail) == (
                        want.source_uri, want.timestamp_ms, want.person_id, want.thumbnail)
        assert r.search(q, 3, records=True)[0].record.thumbnail == b""


def test_records_come_from_the_search_snapshot_while_a_writer_replaces_the_hits(tmp_path):
    """The hits' own source is rewritten over and over; a search never names a
    face whose record is gone (the old search-then-read could raise NotFound)."""
    import threading
    import time

    path = tmp_path / "s"
    fill(path, 5, shard_size=1000)
    uri = "file:///churn.mp4"
    faces = source_faces(uri, 0, n=30)
    q = faces[0].expression
    stop = threading.Event()
    rewrites = []

    def churn():
        with Store(path, "w", ENC, shard_size=1000) as w:
            while not stop.is_set():
                w.replace_source(source_record(uri, 0), source_faces(uri, 0, n=30))
                rewrites.append(1)

    with Store(path, "r") as r:
        writer = threading.Thread(target=churn)
        writer.start()
        try:
            # at least 400 searches and 6 rewrites: on a loaded machine the writer can
            # be slow, so count rewrites instead of assuming a pace (bounded by a minute)
            seen_churn, searches, give_up = 0, 0, time.monotonic() + 60
            while (searches < 400 or len(rewrites) <= 5) and time.monotonic() < give_up:
                hits = r.search(q, 5, records=True)
                assert all(h.record is not None and h.record.face_id == h.face_id for h in hits)
                seen_churn += any(h.record.source_uri == uri for h in hits)
                searches += 1
        finally:
            stop.set()
            writer.join()
    assert len(rewrites) > 5 and seen_churn > 0


def test_shards_map_their_float32_vectors_and_older_shards_still_search_exactly(tmp_path):
    """A search finishes on float32 vectors read from the shard files' mapped pages (not one
    LMDB get per face); a shard written before it had them is finished from LMDB, exactly."""
    path = tmp_path / "s"
    persons, records = fill(path, 50, shard_size=250)
    vecs = {fid: f.expression for fid, f in records.items()}
    names = shardio.files(str(path))
    assert len(names) >= 2
    with Store(path, "r") as r:
        for name in names:
            sh = shardio.load(str(path), name)
            assert sh["e32"] is not None
            mapped = b"".join(sh["e32"].row(i) for i in range(len(sh["face_ids"])))
            assert mapped == r.vectors(sh["face_ids"], kind="expression").astype("<f4").tobytes()
    # the first shard as an older mien wrote it: no float32 vectors in the file
    old = os.path.join(path, shardio.SHARD_DIR, names[0])
    with np.load(old) as z:
        arrays = {k: z[k] for k in z.files if k != "e32"}
    np.savez(old, **arrays)
    assert shardio.load(str(path), names[0])["e32"] is None
    rng = np.random.default_rng(12)
    with Store(path, "r", nprobe=4096, k_factor=16) as r:
        for q in unit(rng, 30):
            assert_same(r.search(q, 10), brute(r, vecs, q, 10))
            hits = r.search(q, 10, records=True)
            assert [h.record.person_id for h in hits] == [records[h.face_id].person_id for h in hits]


def test_mapped_shard_vectors_hold_no_file_open(tmp_path):
    """A reader maps every shard's vectors but keeps no descriptor per shard: a store of 100M
    faces has a thousand shards, and a default limit of 1024 open files would run out."""
    path = tmp_path / "s"
    fill(path, 60, shard_size=40)
    names = shardio.files(str(path))
    assert len(names) >= 20

    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    with Store(path, "r") as r:
        r.search(unit(np.random.default_rng(15), 1)[0], 10)
        assert sum(rows is not None for _, rows in r._idx._mapped) == len(names)
        assert open_files() - before < len(names) // 2


def test_a_query_vector_that_is_a_strided_view_gives_the_same_hits(ivf_store):
    """FAISS reads the query by pointer: a non-contiguous view must not be read as if it were one."""
    path, _, _ = ivf_store
    q = unit(np.random.default_rng(13), 1)[0]
    strided = np.stack([q, -q], axis=1)[:, 0]
    assert not strided.flags["C_CONTIGUOUS"]
    with Store(path, "r") as r:
        assert [(h.face_id, h.distance) for h in r.search(strided, 10)] == \
            [(h.face_id, h.distance) for h in r.search(q, 10)]


def test_hit_records_show_a_person_change_a_live_reader_replays(tmp_path):
    """Search hits take their person from the reader's index, synced to the search's
    transaction: a person set after the reader opened shows in its next search."""
    path = tmp_path / "s"
    persons, records = fill(path, 30, shard_size=250)
    q = unit(np.random.default_rng(14), 1)[0]
    with Store(path, "r") as r:
        before = r.search(q, 5, records=True)
        ids = [h.face_id for h in before]
        with Store(path, "w", shard_size=250) as w:
            w.set_faces_person(ids[:3], persons[4])
            w.set_faces_person(ids[3:], -1)
        after = r.search(q, 5, records=True)
        assert [h.face_id for h in after] == ids
        assert [h.record.person_id for h in after] == [persons[4]] * 3 + [-1] * 2
        assert [h.record.person_id for h in after] == [r.get_face(i).person_id for i in ids]


def test_the_compiled_finish_gives_the_python_finishs_hits(ivf_store):
    """An unfiltered search on mapped shards runs the exact finish in C++ (mien/native/rank.h): the same ids in the same order as FaceIndex.rank in Python, distances within
    float rounding; scaled queries too (larger distances, near ties the C++ side hands back)."""
    from mien.engine.store.expression_index import _native_exact_top

    # built by every install (pybind11 is a build requirement): a missing one is a broken build
    assert _native_exact_top() is not None, "mien.native._rank is not built: pip install -e . builds it"
    path, _, _ = ivf_store
    rng = np.random.default_rng(16)
    with Store(path, "r") as r:
        r.search(unit(rng, 1)[0], 10)
        idx = r._idx
        assert len(idx._mapped_table) and not idx.n_dead
        with r._begin() as txn:
            def refine(rows, ids):
                return r._search._exp32(txn, rows, ids)

            for q in unit(rng, 200):
                for scale, k in ((1.0, 10), (1.0, 1), (3.0, 25), (40.0, 10)):
                    qs = np.ascontiguousarray(q * scale, dtype=np.float32)
                    compiled = idx.nearest(qs, k, refine)
                    rows, d16 = idx.candidates(qs, k, None)
                    python = idx.rank(qs, k, rows, d16, None, refine)
                    assert [(f, row) for f, _, row in compiled] == [(f, row) for f, _, row in python]
                    assert [d for _, d, _ in compiled] == pytest.approx([d for _, d, _ in python], rel=1e-6)
