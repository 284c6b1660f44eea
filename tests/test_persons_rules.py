"""Persons you can trust (issue 12): cannot-link, no chaining, ambiguity, enrolment, naming.

Real package photos, clips rendered from them, the real indexer and a real LMDB store.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from faces_support import analyzer
from indexer_support import small_photo

OPTS = dict(workers=1, show_progress=False)


def index(paths, store_dir):
    from mien.indexer import IndexOptions, index_paths

    return index_paths(paths, store_dir, options=IndexOptions(**OPTS))


def identity(name: str) -> np.ndarray:
    """The unit identity vector of the largest face of a package photo."""
    from mien.demo.videos import photo

    faces = [f for f in analyzer().analyze(photo(name)) if f.identity is not None]
    face = max(faces, key=lambda f: f.bbox[2] - f.bbox[0])
    return face.identity / np.linalg.norm(face.identity)


def twin_photo(path):
    """The same Obama photo twice, side by side: two faces of one image, identical identities."""
    import cv2

    from mien.demo.videos import photo

    image = photo("obama")
    image = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.hstack([image, image]))
    return path


def same_frame_persons(store) -> list:
    """(uri, frame, person) held by more than one face: must be empty."""
    seen, bad = set(), []
    for s in store.list_sources():
        for f in store.faces_of_source(s.uri, thumbnail=False):
            key = (s.uri, f.frame_index, f.person_id)
            if f.person_id >= 0 and key in seen:
                bad.append(key)
            seen.add(key)
    return bad


def rules():
    from mien.indexer.persons import link_rules

    return link_rules(analyzer().encoders)


def face_record(uri: str, frame: int, track: int, ident: np.ndarray):
    from mien.engine.store import FaceRecord

    e = np.zeros(16, np.float32)
    e[frame % 16] = 1.0
    return FaceRecord(source_uri=uri, frame_index=frame, timestamp_ms=100 * frame, bbox=(10.0, 10.0, 90.0, 90.0),
                      landmarks5=np.zeros((5, 2), np.float32), det_score=0.9, sharpness=8.0, yaw=0.0, pitch=0.0,
                      roll=0.0, expression=e, pooled=e, identity=ident.astype(np.float32), track_id=track)


def commit(store, book, uri: str, tracks: list[np.ndarray], labels=None):
    """Commit a video source of one face per track (each in its own frame), grouped by `labels`."""
    from mien.engine.store import SourceRecord
    from mien.indexer.commit import Group, commit_source

    records = [face_record(uri, i, i, v) for i, v in enumerate(tracks)]
    labels = list(range(len(tracks))) if labels is None else list(labels)
    groups = [Group(np.stack([tracks[i] for i in range(len(tracks)) if labels[i] == lab]),
                    [i for i in range(len(tracks)) if labels[i] == lab],
                    {i for i in range(len(tracks)) if labels[i] == lab}) for lab in sorted(set(labels))]
    source = SourceRecord(uri=uri, fingerprint="f", kind="video", status="done")
    created = commit_source(store, book, source, records, groups)
    return [r.person_id for r in records], created


def test_same_frame_faces_never_share_a_person(tmp_path, capsys):
    """One image with the same face twice, and a clip of it twice side by side: two persons
    each; `person merge` refuses them without the override; enrolment takes only one."""
    from mien.cli import main
    from mien.demo.videos import write_clip
    from mien.engine.store import Store
    from mien.indexer import enroll_person

    folder = tmp_path / "archive"
    twin = twin_photo(folder / "twin.jpg")
    write_clip(folder / "twins.mp4", ["obama", "obama"], fps=10, seconds=1.0)
    store_dir = tmp_path / "store"
    index([folder], store_dir)
    with Store(store_dir, "r") as store:
        assert same_frame_persons(store) == []
        pair = [f.person_id for f in store.faces_of_source(os.path.realpath(twin), thumbnail=False)]
        clip = store.faces_of_source(os.path.realpath(folder / "twins.mp4"), thumbnail=False)
        assert len(pair) == 2 and pair[0] != pair[1] and min(pair) >= 0
        assert len({f.person_id for f in clip}) >= 2

    # merging the twins is refused, and nothing changes
    assert main(["person", "merge", str(pair[0]), str(pair[1]), "--store", str(store_dir)]) == 1
    assert "same frame" in capsys.readouterr().err
    with Store(store_dir, "r") as store:
        assert {store.get_person(p).count for p in pair} == {1 + sum(f.person_id == p for f in clip) for p in pair}

    # enrolment takes one of the twins, never both
    result = enroll_person(store_dir, "Obama", [small_photo("obama", tmp_path / "ref" / "obama.jpg")])
    assert result["merged"], result
    assert result["skipped"] and all("frame" in why for _, why in result["skipped"])
    with Store(store_dir, "r") as store:
        assert same_frame_persons(store) == []
        named = store.find_person("Obama").person_id
        owners = [f.person_id for f in store.faces_of_source(os.path.realpath(twin), thumbnail=False)]
        assert owners.count(named) == 1

    # the explicit override merges (the user says the detector found one face twice)
    left = [p for p in pair if p != named]
    assert main(["person", "merge", str(left[0]), "Obama", "--allow-same-frame", "--store", str(store_dir)]) == 0


def test_a_chain_of_tracks_does_not_become_one_person(tmp_path):
    """A~B and B~C, A and C different people: never one cluster, never one person."""
    from mien.engine.store import Store
    from mien.indexer.persons import PersonBook, cluster, distances, normalise

    a, c = identity("obama"), identity("biden")
    b = normalise(a + c)  # a track whose best faces mix both people: its mean lies between them
    t = rules().threshold
    d = distances(np.stack([a, b, c]), np.stack([a, b, c]))
    assert d[0, 1] <= t and d[1, 2] <= t and d[0, 2] > t  # the chain single linkage would follow

    labels = cluster(np.stack([a, b, c]), t)
    assert labels[0] != labels[2]
    assert list(cluster(np.stack([a, c, a]), t, cannot_link=[(0, 2)])) == [0, 1, 2]  # same frame: apart

    with Store(str(tmp_path / "s"), "w", analyzer().encoders) as store:
        book = PersonBook.from_store(store, rules())
        persons, _ = commit(store, book, "v1.mp4", [a, b, c], labels)
        assert persons[0] != persons[2]
        # across sources: B joins A's person, then C is judged against A's faces, not a drifted centroid
        book = PersonBook.from_store(store, rules())
        first, _ = commit(store, book, "v2.mp4", [a])
        second, _ = commit(store, book, "v3.mp4", [b])
        third, _ = commit(store, book, "v4.mp4", [c])
        assert first[0] != third[0]
        assert len({first[0], second[0], third[0]}) >= 2


def test_an_ambiguous_cluster_becomes_a_new_person(tmp_path):
    from mien.engine.store import Store
    from mien.indexer.persons import PersonBook, distances, normalise

    obama, biden = identity("obama"), identity("biden")
    between = normalise(obama + biden)
    r = rules()
    d = distances(between, np.stack([obama, biden]))[0]
    assert d.max() <= r.threshold and abs(d[0] - d[1]) < r.margin  # close to both, closer to neither

    with Store(str(tmp_path / "s"), "w", analyzer().encoders) as store:
        book = PersonBook.from_store(store, r)
        (p_obama,), _ = commit(store, book, "obama.mp4", [obama])
        (p_biden,), _ = commit(store, book, "biden.mp4", [biden])
        decision = book.match(between[None, :])
        assert decision.person_id is None and decision.reason == "ambiguous"
        (p_new,), created = commit(store, book, "between.mp4", [between])
        assert created == 1 and p_new not in (p_obama, p_biden)
        # a clear match still links: another photo of Obama
        (p_again,), created = commit(store, book, "obama2.mp4", [identity("obama2")])
        assert created == 0 and p_again == p_obama
        # a named person is preferred over an anonymous one when both are clear
        store.update_person(p_obama, name="Obama")
        assert PersonBook.from_store(store, r).match(identity("obama3")[None, :]).person_id == p_obama


def test_person_add_on_a_group_photo_needs_face_index(tmp_path, capsys):
    import cv2

    from mien.cli import main
    from mien.demo.videos import photo

    store_dir = str(tmp_path / "store")
    group = tmp_path / "t1.jpg"
    assert cv2.imwrite(str(group), photo("t1"))
    assert main(["person", "add", "Someone", str(group), "--store", store_dir]) == 1
    err = capsys.readouterr().err
    faces = analyzer().analyze(photo("t1"), keep_rejected=True)
    assert f"shows {len(faces)} faces" in err
    for i, f in enumerate(faces):
        assert f"--face-index {i}: box (" in err
    assert "FaceQA: passed" in err

    passed = [i for i, f in enumerate(faces) if f.quality.passed]
    assert main(["person", "add", "Someone", str(group), "--face-index", str(passed[0]), "--store", store_dir]) == 0
    out = capsys.readouterr().out
    assert f"enrolled face {passed[0]} of {group}" in out

    # a face FaceQA rejects is refused with the reason
    blurred = tmp_path / "blurred.jpg"
    image = cv2.GaussianBlur(photo("grace_hopper"), (0, 0), 6)
    assert cv2.imwrite(str(blurred), image)
    found = analyzer().analyze(image, keep_rejected=True)
    assert len(found) == 1 and not found[0].quality.passed  # precondition: FaceQA rejects it
    assert main(["person", "add", "Grace", str(blurred), "--store", store_dir]) == 1
    assert f"rejected by FaceQA ({found[0].quality.reason}" in capsys.readouterr().err
    assert main(["person", "add", "Someone", str(group), "--face-index", "99", "--store", store_dir]) == 1
    assert "has faces 0.." in capsys.readouterr().err


def test_ids_stay_when_naming_and_split_delete(tmp_path, capsys):
    from mien.cli import main
    from mien.engine.store import Store
    from mien.indexer import enroll_person

    folder = tmp_path / "archive"
    small_photo("obama2", folder / "o2.jpg")
    small_photo("obama3", folder / "o3.jpg", max_side=1000)
    small_photo("biden", folder / "b.jpg")
    store_dir = tmp_path / "store"
    index([folder], store_dir)
    with Store(store_dir, "r") as store:
        before = {os.path.basename(s.uri): [(f.face_id, f.person_id) for f in store.faces_of_source(s.uri)]
                  for s in store.list_sources()}
    (biden_face, biden), = before["b.jpg"]
    (o3_face, obama), = before["o3.jpg"]
    assert before["o2.jpg"][0][1] == obama != biden

    assert main(["person", "rename", str(biden), "Biden", "--store", str(store_dir)]) == 0
    result = enroll_person(store_dir, "Barack Obama", [small_photo("obama", tmp_path / "ref.jpg")])
    assert result["person_id"] == obama and result["renamed"] == obama and result["merged"] == [obama]
    with Store(store_dir, "r") as store:
        assert store.get_person(biden).name == "Biden" and store.get_person(obama).name == "Barack Obama"
        after = {os.path.basename(s.uri): [(f.face_id, f.person_id) for f in store.faces_of_source(s.uri)]
                 for s in store.list_sources()}
    assert after == before  # naming moved no face and changed no id

    capsys.readouterr()
    assert main(["person", "split", "Barack Obama", str(o3_face), "--store", str(store_dir)]) == 0
    assert "to new person" in capsys.readouterr().out
    with Store(store_dir, "r") as store:
        moved = store.get_face(o3_face).person_id
        assert moved not in (obama, biden) and store.get_person(moved).name is None
        assert store.get_person(obama).count == 1
    assert main(["person", "split", "Biden", str(o3_face), "--store", str(store_dir)]) == 1  # not Biden's
    assert main(["person", "delete", str(moved), "--store", str(store_dir)]) == 0
    with Store(store_dir, "r") as store:
        assert store.get_face(o3_face).person_id == -1
        assert moved not in {p.person_id for p in store.list_persons()}
        assert store.check_persons() == []


def test_a_run_with_another_threshold_says_so(tmp_path, caplog):
    import logging

    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    store_dir = tmp_path / "store"
    small_photo("biden", tmp_path / "a" / "b.jpg")
    index([tmp_path / "a"], store_dir)
    with Store(store_dir, "r") as store:
        recorded = store.person_rules()
    assert recorded["threshold"] == rules().threshold and recorded["identity"] == analyzer().encoders["identity"]
    small_photo("obama2", tmp_path / "a" / "o.jpg")
    with caplog.at_level(logging.WARNING, logger="mien.indexer.pipeline"):
        index_paths([tmp_path / "a"], store_dir, options=IndexOptions(person_threshold=0.3, **OPTS))
    assert any("linked with identity threshold" in r.getMessage() and "0.3" in r.getMessage()
               for r in caplog.records)
    with Store(store_dir, "r") as store:
        now = store.person_rules()
    assert now["threshold"] == 0.3 and now["previous"][-1]["threshold"] == recorded["threshold"]
