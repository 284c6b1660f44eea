"""Incremental indexing (unchanged, changed, pruned sources) and person enrollment."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from indexer_support import all_faces, check_consistent, small_photo

OPTS = dict(workers=1, show_progress=False)


def index(paths, store_dir, **kw):
    from mien.indexer import IndexOptions, index_paths

    return index_paths(paths, store_dir, options=IndexOptions(**{**OPTS, **kw}))


def open_store(path):
    from mien.engine.store import Store

    return Store(path, mode="r")


@pytest.fixture
def archive(tmp_path):
    folder = tmp_path / "archive"
    small_photo("obama2", folder / "a.jpg")
    small_photo("biden", folder / "b.jpg")
    return folder


def test_unchanged_rerun_does_nothing(archive, tmp_path):
    store_dir = tmp_path / "store"
    first = index([archive], store_dir)
    assert first.indexed == 2 and first.faces_passed == 2
    with open_store(store_dir) as store:
        before = sorted((f.face_id, f.person_id) for f in all_faces(store))
        generation = store.stats()["generation"]
    second = index([archive], store_dir)
    assert second.indexed == 0 and second.unchanged == 2 and second.frames == 0
    with open_store(store_dir) as store:
        assert sorted((f.face_id, f.person_id) for f in all_faces(store)) == before
        assert store.stats()["generation"] == generation     # not one write
        check_consistent(store)


def test_changed_file_is_reindexed(archive, tmp_path):
    store_dir = tmp_path / "store"
    index([archive], store_dir)
    uri = os.path.realpath(archive / "b.jpg")
    with open_store(store_dir) as store:
        old = store.faces_of_source(uri, thumbnail=False)
        old_fp = store.get_source(uri).fingerprint
    assert len(old) == 1
    small_photo("t1", archive / "b.jpg", max_side=1280)    # same name, now six people
    summary = index([archive], store_dir)
    assert summary.indexed == 1 and summary.unchanged == 1
    with open_store(store_dir) as store:
        new = store.faces_of_source(uri, thumbnail=False)
        assert store.get_source(uri).fingerprint != old_fp
        assert len(new) >= 4
        assert not ({f.face_id for f in old} & {f.face_id for f in new})   # old faces dropped
        assert store.stats()["faces"] == len(new) + 1
        check_consistent(store)


def test_prune_removes_deleted_files_only(archive, tmp_path):
    store_dir = tmp_path / "store"
    other = tmp_path / "other"
    small_photo("grace_hopper", other / "g.jpg")
    index([archive, other], store_dir)
    os.remove(archive / "a.jpg")
    kept = index([archive], store_dir)                   # without --prune nothing is removed
    assert kept.pruned == 0
    with open_store(store_dir) as store:
        assert store.get_source(os.path.realpath(archive / "a.jpg")) is not None
    pruned = index([archive], store_dir, prune=True)
    assert pruned.pruned == 1
    with open_store(store_dir) as store:
        uris = {s.uri for s in store.list_sources()}
        assert os.path.realpath(archive / "a.jpg") not in uris
        assert os.path.realpath(other / "g.jpg") in uris     # outside the pruned root
        assert os.path.realpath(archive / "b.jpg") in uris
        check_consistent(store)


def test_enrollment_names_matching_faces(tmp_path):
    from mien.cli import main
    from mien.demo.videos import write_clip
    from mien.indexer import enroll_person

    folder = tmp_path / "archive"
    small_photo("obama2", folder / "o2.jpg")
    small_photo("obama3", folder / "o3.jpg", max_side=1000)
    small_photo("biden", folder / "b.jpg")
    store_dir = tmp_path / "store"
    first = index([folder], store_dir)
    assert first.persons_total == 2                      # two Obamas, one Biden, no names
    reference = small_photo("obama", tmp_path / "ref" / "obama.jpg")

    result = enroll_person(store_dir, "Barack Obama", [reference])
    assert result["faces"] == 2 and len(result["merged"]) == 1
    with open_store(store_dir) as store:
        named = store.find_person("Barack Obama")
        by_file = {os.path.basename(f.source_uri): f.person_id for f in all_faces(store)}
        assert by_file["o2.jpg"] == by_file["o3.jpg"] == named.person_id
        assert by_file["b.jpg"] != named.person_id
        check_consistent(store)

    # faces indexed after the enrollment link to the named person
    write_clip(tmp_path / "later" / "obama.mp4", ["obama"], fps=10, seconds=1.0)
    index([tmp_path / "later"], store_dir)
    with open_store(store_dir) as store:
        later = store.faces_of_source(os.path.realpath(tmp_path / "later" / "obama.mp4"), thumbnail=False)
        assert later and {f.person_id for f in later} == {named.person_id}

    # the person CLI: rename, list, merge
    assert main(["person", "rename", "Barack Obama", "Obama", "--store", str(store_dir)]) == 0
    biden_id = str(by_file["b.jpg"])
    assert main(["person", "rename", biden_id, "Biden", "--store", str(store_dir)]) == 0
    assert main(["person", "merge", "Biden", "Obama", "--store", str(store_dir)]) == 0
    with open_store(store_dir) as store:
        assert store.find_person("Biden") is None
        assert len(store.person_face_ids(named.person_id)) == 3 + len(later)


def test_person_list_and_bad_enrollment(tmp_path, capsys):
    from mien.cli import main
    from mien.errors import BadInputError
    from mien.indexer import enroll_person

    store_dir = tmp_path / "store"
    photo = small_photo("grace_hopper", tmp_path / "g.jpg")
    assert main(["person", "add", "Grace Hopper", str(photo), "--store", str(store_dir)]) == 0
    capsys.readouterr()
    assert main(["person", "list", "--json", "--store", str(store_dir)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed] == ["Grace Hopper"] and listed[0]["face_count"] == 0
    blank = tmp_path / "blank.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(BadInputError):
        enroll_person(store_dir, "Nobody", [blank])
    with pytest.raises(BadInputError):
        enroll_person(store_dir, "  ", [photo])
    shutil.rmtree(store_dir)


def test_next_run_repairs_persons_left_half_written(archive, tmp_path):
    """An empty anonymous person is removed by the next run; counts and centroids follow the faces."""
    import numpy as np

    from mien.engine.store import Store

    store_dir = tmp_path / "store"
    index([archive], store_dir)
    with Store(store_dir, mode="w") as store:
        real = store.list_persons()[0]
        centroid = real.centroid.copy()
        orphan = store.add_person(None, np.ones(len(real.centroid), np.float32) / np.sqrt(len(real.centroid)))
        store.update_person(real.person_id, centroid=-centroid)  # an anonymous seed: its faces win
    summary = index([archive], store_dir)                # nothing to index, still repairs
    assert summary.indexed == 0
    with open_store(store_dir) as store:
        ids = {p.person_id for p in store.list_persons()}
        assert orphan not in ids
        fixed = store.get_person(real.person_id)
        assert fixed.count == len(store.person_face_ids(real.person_id)) == 1
        assert float(np.dot(fixed.centroid, centroid)) > 0.99   # recomputed from its faces
        check_consistent(store)
