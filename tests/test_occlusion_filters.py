"""Occluded faces (a hand over the mouth) are left out of tags, summaries and clusters by default,
counted back in on request, and left out of searches when asked.

Real photos with a synthetic hand (tests/test_faces_meshpose.py's cover_mouth), indexed by the
real indexer into a real store; a rendered video of a real photo whose mouth is covered for
its second half, tagged through the engine and the real `mien` command.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mien.engine import analytics
from test_faces_meshpose import cover_mouth


def _index(paths, store):
    from mien.indexer import IndexOptions, index_paths

    return index_paths([str(p) for p in paths], str(store),
                       options=IndexOptions(fps=2.0, workers=1, show_progress=False))


def _detect(image):
    from mien.engine.faces import EngineConfig
    from mien.engine.faces import registry

    return registry.build("detector", EngineConfig()).detect(image)


def _mien(*args):
    return subprocess.run([sys.executable, "-m", "mien.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def photo_store(tmp_path_factory):
    """obama and biden, each clear and with a hand over the mouth."""
    from mien.demo import photos
    from mien.engine.store import Store

    root = tmp_path_factory.mktemp("occluded_photos")
    folder = root / "photos"
    folder.mkdir()
    for name in ("obama", "biden"):
        image = photos.face_recognition_photo(name + ".jpg")
        (face,) = _detect(image)
        cv2.imwrite(str(folder / f"{name}.png"), image)
        cv2.imwrite(str(folder / f"{name}_covered.png"), cover_mouth(image, face))
    summary = _index([folder], root / "store")
    assert summary.faces_passed == 4
    store = Store(str(root / "store"), mode="w")
    yield {"store": store, "root": root, "folder": folder}
    store.close()


def _by_file(store):
    return {f.source_uri.rsplit("/", 1)[-1]: f for s in store.list_sources() for f in store.faces_of_source(s.uri)}


def test_the_store_knows_its_occluded_faces(photo_store):
    store = photo_store["store"]
    faces = _by_file(store)
    covered = sorted(f.face_id for name, f in faces.items() if "covered" in name)
    assert [faces[n].occluded for n in sorted(faces)] == ["covered" in n for n in sorted(faces)]
    assert store.occluded_face_ids().tolist() == covered
    table = store.face_table(occlusion=True)
    assert table["face_id"][table["occluded"]].tolist() == covered
    assert "occluded" not in store.face_table()  # the plain table stays as it was


def test_search_leaves_occluded_faces_out_only_when_asked(photo_store):
    store = photo_store["store"]
    faces = _by_file(store)
    query = store.vectors([faces["obama_covered.png"].face_id], kind="expression")[0]
    hits = store.search(query, 4, records=True)
    assert hits[0].face_id == faces["obama_covered.png"].face_id
    assert {h.face_id: h.record.occluded for h in hits} == {f.face_id: f.occluded for f in faces.values()}
    assert hits[0].record.occlusion == pytest.approx(faces["obama_covered.png"].occlusion)
    clear = store.search(query, 4, records=True, exclude_occluded=True)
    assert sorted(h.face_id for h in clear) == sorted(f.face_id for f in faces.values() if not f.occluded)
    # the same filter on a one-person search
    person = faces["biden_covered.png"].person_id
    assert person >= 0
    members = set(store.person_face_ids(person).tolist())
    mine = store.search_person(query, person, 4, exclude_occluded=True)
    assert {h.face_id for h in mine} == {i for i in members if not store.get_face(i).occluded}
    # and on identity searches
    ident = store.vectors([faces["obama_covered.png"].face_id], kind="identity")[0]
    assert store.search_identity(ident, 4)[0].face_id == faces["obama_covered.png"].face_id
    kept = store.search_identity(ident, 4, exclude_occluded=True)
    assert sorted(h.face_id for h in kept) == sorted(f.face_id for f in faces.values() if not f.occluded)


def test_tags_summaries_and_clusters_leave_occluded_faces_out_by_default(photo_store):
    store = photo_store["store"]
    faces = _by_file(store)
    n_covered = sum(f.occluded for f in faces.values())
    analytics.create_tag(store, "anything", face_ids=[faces["obama.png"].face_id], threshold=4.0, replace=True)
    report = analytics.tag_store(store, ["anything"])
    assert report.faces == len(faces) - n_covered and report.occluded_left_out == n_covered
    assert report.tagged["anything"] == report.faces  # threshold 4 = every face it looked at
    both = analytics.tag_store(store, ["anything"], include_occluded=True)
    assert both.faces == len(faces) and both.occluded_left_out == 0

    person = faces["biden_covered.png"].person_id
    members = store.person_face_ids(person).tolist()
    covered_members = sum(store.get_face(i).occluded for i in members)
    summary = analytics.summarize_person(store, person)
    assert summary.faces == len(members) - covered_members and summary.occluded_left_out == covered_members
    assert analytics.summarize_person(store, person, include_occluded=True).faces == len(members)

    clusters = analytics.cluster_store(store, 2)
    assert clusters.faces == len(faces) - n_covered and clusters.occluded_left_out == n_covered
    shown = {i for c in clusters.clusters for i in c.closest_face_ids}
    assert not shown & set(store.occluded_face_ids().tolist())
    assert analytics.cluster_store(store, 2, include_occluded=True).faces == len(faces)


def test_the_cli_counts_occluded_faces_back_in_on_request(photo_store):
    store = photo_store["store"]
    n = len(_by_file(store))
    n_covered = len(store.occluded_face_ids())
    out = _mien("tag", "store", "--store", str(photo_store["root"] / "store"), "--json")
    assert out.returncode == 0, out.stderr
    plain = json.loads(out.stdout)
    assert plain["faces"] == n - n_covered and plain["occluded_left_out"] == n_covered
    out = _mien("tag", "store", "--store", str(photo_store["root"] / "store"), "--include-occluded", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["faces"] == n
    out = _mien("clusters", "-k", "2", "--store", str(photo_store["root"] / "store"))
    assert out.returncode == 0, out.stderr
    assert f"{n_covered} occluded faces left out" in out.stdout


def test_the_occluded_list_follows_new_and_removed_faces(photo_store, tmp_path):
    """A reader's cached list is kept up to date by the store's log, not re-read."""
    from mien.demo import photos
    from mien.engine.store import Store

    store = photo_store["store"]
    reader = Store(str(photo_store["root"] / "store"), mode="r")
    try:
        before = reader.occluded_face_ids().tolist()
        image = photos.face_recognition_photo("obama2.jpg")
        (face,) = _detect(image)
        extra = tmp_path / "extra"
        extra.mkdir()
        cv2.imwrite(str(extra / "obama2_covered.png"), cover_mouth(image, face))
        store.close()  # the indexer takes the writer lock
        _index([extra], photo_store["root"] / "store")
        photo_store["store"] = store = Store(str(photo_store["root"] / "store"), mode="w")
        [new] = store.faces_of_source(str((extra / "obama2_covered.png").resolve()))
        assert new.occluded
        assert reader.occluded_face_ids().tolist() == sorted(before + [new.face_id])
        store.remove_source(new.source_uri)
        assert reader.occluded_face_ids().tolist() == before
    finally:
        reader.close()


@pytest.fixture(scope="module")
def covered_video(tmp_path_factory):
    """A real photo on screen for 6 s; a hand covers the mouth from 3 s to 6 s."""
    from mien.demo import photos
    from mien.engine.store import Store

    root = tmp_path_factory.mktemp("occluded_video")
    media = root / "media"
    media.mkdir()
    w, h, fps = 640, 480, 10.0
    img = photos.face_recognition_photo("obama.jpg")
    scale = min(w / img.shape[1], h / img.shape[0])
    small = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frame = np.zeros((h, w, 3), np.uint8)
    y0, x0 = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    frame[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    (face,) = _detect(frame)
    covered = cover_mouth(frame, face)
    path = media / "hand.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    rng = np.random.default_rng(0)
    for i in range(int(6 * fps)):
        base = frame if i < 3 * fps else covered
        noise = rng.integers(-2, 3, base.shape, dtype=np.int16)
        writer.write(np.clip(base.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    writer.release()
    summary = _index([media], root / "store")
    assert summary.videos == 1 and summary.failed_count == 0
    with Store(str(root / "store"), mode="w") as store:
        [source] = store.list_sources()
        faces = store.faces_of_source(source.uri)
        clear = next(f for f in faces if f.timestamp_ms < 3000)
        analytics.create_tag(store, "this face", face_ids=[clear.face_id], threshold=4.0)
    return {"root": root, "uri": source.uri, "faces": faces}


def test_video_tagging_leaves_the_covered_seconds_out_by_default(covered_video):
    from mien.engine.store import Store

    faces = covered_video["faces"]
    late = [f for f in faces if f.timestamp_ms >= 3000]
    early = [f for f in faces if f.timestamp_ms < 3000]
    assert late and early
    assert all(f.occluded for f in late) and not any(f.occluded for f in early)
    with Store(str(covered_video["root"] / "store"), mode="r") as store:
        report = analytics.tag_source(store, covered_video["uri"])
        assert report.faces == len(early) and report.occluded_left_out == len(late)
        [result] = report.results
        assert result.tagged == len(early)
        assert max(s.end_ms for s in result.segments) < 3000  # nothing tagged while the hand is there
        both = analytics.tag_source(store, covered_video["uri"], include_occluded=True)
        assert both.faces == len(faces) and both.occluded_left_out == 0
        assert max(s.end_ms for s in both.results[0].segments) >= 3000


def test_mien_tag_run_has_include_occluded(covered_video):
    store = str(covered_video["root"] / "store")
    n, n_late = len(covered_video["faces"]), sum(f.occluded for f in covered_video["faces"])
    out = _mien("tag", "run", "--source", covered_video["uri"], "--store", store)
    assert out.returncode == 0, out.stderr
    assert f"{n - n_late} faces" in out.stdout and f"{n_late} occluded faces left out" in out.stdout
    out = _mien("tag", "run", "--source", covered_video["uri"], "--store", store, "--include-occluded", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["faces"] == n
