"""Videos: sampling by container time, FaceQA on blurred frames, tracks, persons, pooling.

Clips are rendered from package photos with cv2.VideoWriter (mien.demo.videos)
and indexed once per module with the real default models.
"""

from __future__ import annotations

import numpy as np
import pytest

from indexer_support import all_faces, check_consistent


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from mien.demo.videos import write_clip
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    root = tmp_path_factory.mktemp("video")
    solo = write_clip(root / "in" / "solo.mp4", ["obama"], motion="pan", fps=10, seconds=3.0,
                      blur_frames=range(10, 15), rotate_frames=range(20, 25))
    duo = write_clip(root / "in" / "duo.avi", ["obama2", "biden"], motion="pan", fps=10, seconds=2.0,
                     size=(640, 360))
    events = []
    summary = index_paths([root / "in"], root / "store", options=IndexOptions(workers=1, show_progress=False),
                          progress=events.append)
    store = Store(root / "store", mode="r")
    yield {"solo": solo, "duo": duo, "summary": summary, "store": store, "events": events}
    store.close()


def faces_of(indexed, clip):
    import os

    return indexed["store"].faces_of_source(os.path.realpath(clip.path), thumbnail=False)


def test_sampler_timestamps_come_from_the_container(indexed):
    from mien.indexer.video import RangeReader

    clip = indexed["solo"]
    reader = RangeReader(str(clip.path), 0, None, fps=2.0, seek=False)
    frames = [(f.index, f.timestamp_ms) for f in reader]
    assert frames == [(i, clip.timestamp_ms(i)) for i in range(0, 30, 5)]
    assert reader.frames_decoded == 30
    every = [(f.index, f.timestamp_ms) for f in RangeReader(str(clip.path), 0, None, fps=None, seek=False)]
    assert every == [(i, i * 100) for i in range(30)]
    stamps = [f.timestamp_ms for f in RangeReader(str(clip.path), 0, None, fps=3.0, seek=False)]
    # each sample is the first frame at or after the previous sample + 1/3 s, at 10 fps
    assert stamps == [0, 400, 700, 1000, 1400, 1700, 2000, 2400, 2700]


def test_stored_timestamps_match_frames(indexed):
    faces = faces_of(indexed, indexed["solo"])
    assert faces, "the solo clip must yield faces"
    for f in faces:
        assert f.frame_index % 5 == 0
        assert f.timestamp_ms == f.frame_index * 100
    source = indexed["store"].get_source(faces[0].source_uri)
    assert source.kind == "video" and source.frames == 30 and source.duration_ms == 2900


def test_faceqa_rejects_blurred_frames(indexed):
    solo = indexed["solo"]
    stamps = {f.timestamp_ms for f in faces_of(indexed, solo)}
    blurred_samples = {solo.timestamp_ms(i) for i in solo.blurred if i % 5 == 0}
    assert blurred_samples == {1000}
    assert not (stamps & blurred_samples)
    assert indexed["summary"].rejected["blurry"] >= len(blurred_samples)
    # the sharp samples around it are kept
    assert {0, 500, 1500} <= stamps


def test_rotated_frames_are_recognised_as_rolled(indexed):
    solo = indexed["solo"]
    for f in faces_of(indexed, solo):
        if f.frame_index in solo.rotated:
            assert abs(f.roll) > 15.0
        else:
            assert abs(f.roll) < 10.0


def test_one_face_across_frames_is_one_track_and_person(indexed):
    faces = faces_of(indexed, indexed["solo"])
    assert len({f.track_id for f in faces}) == 1
    assert len({f.person_id for f in faces}) == 1 and faces[0].person_id >= 0
    ids = np.stack([f.identity for f in faces])
    assert np.allclose(ids, ids[0])           # one identity per track
    assert abs(np.linalg.norm(ids[0]) - 1.0) < 1e-4


def test_two_people_two_tracks_two_persons(indexed):
    duo = indexed["duo"]
    faces = faces_of(indexed, duo)
    left = [f for f in faces if (f.bbox[0] + f.bbox[2]) / 2 < duo.size[0] / 2]
    right = [f for f in faces if (f.bbox[0] + f.bbox[2]) / 2 >= duo.size[0] / 2]
    assert len(left) >= 3 and len(right) >= 3
    assert len({f.track_id for f in left}) == 1 and len({f.track_id for f in right}) == 1
    assert left[0].track_id != right[0].track_id
    assert len({f.person_id for f in left}) == 1 and len({f.person_id for f in right}) == 1
    assert left[0].person_id != right[0].person_id


def test_same_person_linked_across_videos(indexed):
    """obama.jpg in the solo clip and obama2.jpg in the duo clip: one global person."""
    solo = faces_of(indexed, indexed["solo"])
    duo = indexed["duo"]
    obama2 = [f for f in faces_of(indexed, duo) if (f.bbox[0] + f.bbox[2]) / 2 < duo.size[0] / 2]
    biden = [f for f in faces_of(indexed, duo) if (f.bbox[0] + f.bbox[2]) / 2 >= duo.size[0] / 2]
    assert solo[0].person_id == obama2[0].person_id
    assert biden[0].person_id != solo[0].person_id
    assert indexed["summary"].persons_total == 2
    store = indexed["store"]
    person = store.get_person(solo[0].person_id)
    assert person.count == len(solo) + len(obama2)
    assert len(store.person_face_ids(person.person_id)) == person.count


def test_pooling_is_a_centred_three_frame_median(indexed):
    faces = sorted(faces_of(indexed, indexed["solo"]), key=lambda f: f.timestamp_ms)
    raw = np.stack([f.expression for f in faces])
    for i, f in enumerate(faces):
        window = raw[max(0, i - 1): i + 2]
        expected = np.median(window, axis=0)
        expected /= np.linalg.norm(expected)
        assert np.allclose(f.pooled, expected, atol=1e-5)
    assert not np.allclose(raw, np.stack([f.pooled for f in faces]))


def test_store_consistent_and_progress_reported(indexed):
    check_consistent(indexed["store"])
    events = indexed["events"]
    assert events[-1]["files_done"] == events[-1]["files_total"] == 2
    assert events[-1]["faces"] == len(all_faces(indexed["store"]))
    assert events[-1]["frames"] == indexed["summary"].frames == 6 + 4
    assert all(set(e) == {"files_done", "files_total", "frames", "faces", "current"} for e in events)
