"""Real media end to end: a generated video of two expressions, indexed, then tagged.

The clip shows obama.jpg (broad smile) for 0-3 s, obama2.jpg (the same man
speaking, mouth open) for 3-6 s, obama.jpg again for 6-8 s. A tag made from the
smiling photo must find the smiling seconds and none of the speaking ones; a tag
made from the speaking photo the reverse.
"""

from __future__ import annotations

import pytest

from analytics_support import expression_video, png_size
from mien.engine import analytics


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.faces.engine_record import matching_store
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    root = tmp_path_factory.mktemp("video")
    media = root / "media"
    media.mkdir()
    timeline = expression_video(media / "smile_speak.avi")
    summary = index_paths([str(media)], str(root / "store"),
                          options=IndexOptions(fps=2.0, workers=1, show_progress=False))
    assert summary.videos == 1 and summary.failed_count == 0
    store = Store(str(root / "store"), mode="w")
    analyzer = FaceAnalyzer(matching_store(EngineConfig(), store.encoders))
    yield {"store": store, "analyzer": analyzer, "timeline": timeline, "root": root}
    store.close()


def _inside(ts_ms, timeline, photo):
    return any(a * 1000 <= ts_ms < b * 1000 for a, b, name in timeline if name == photo)


def test_tag_from_one_face_finds_its_frames_and_not_the_other_expression(indexed):
    from mien.demo import photos

    store, timeline = indexed["store"], indexed["timeline"]
    smile_photo = photos.face_recognition_images_dir() / "obama.jpg"
    speak_photo = photos.face_recognition_images_dir() / "obama2.jpg"
    analytics.create_tag(store, "smile", images=[smile_photo], analyzer=indexed["analyzer"])
    analytics.create_tag(store, "speaking", images=[speak_photo.read_bytes()], analyzer=indexed["analyzer"])
    [source] = store.list_sources()
    report = analytics.tag_source(store, source.uri)
    assert report.sample_period_ms == 500 and report.faces >= 12
    persons = {(r.person_id, r.track_id) for r in report.results}
    assert len(persons) == 1, f"one man on screen, got lanes {persons}"

    smile = next(r for r in report.results if r.tag == "smile")
    speaking = next(r for r in report.results if r.tag == "speaking")
    faces = store.faces_of_source(source.uri)
    smile_times = [f.timestamp_ms for f in faces if _inside(f.timestamp_ms, timeline, "obama.jpg")]
    speak_times = [f.timestamp_ms for f in faces if _inside(f.timestamp_ms, timeline, "obama2.jpg")]
    # every tagged moment lies in the photo's own seconds, and most of those are found
    for result, own, other in ((smile, "obama.jpg", "obama2.jpg"), (speaking, "obama2.jpg", "obama.jpg")):
        assert result.segments, f"{result.tag}: nothing tagged"
        for seg in result.segments:
            assert _inside(seg.start_ms, timeline, own) and _inside(seg.end_ms, timeline, own), seg
            assert not any(seg.start_ms <= t <= seg.end_ms
                           for t in (smile_times if own == "obama2.jpg" else speak_times))
    assert len(smile.segments) == 2  # 0-3 s and 6-8 s, split by the speaking seconds
    assert len(speaking.segments) == 1
    assert smile.tagged >= 0.8 * len(smile_times) and speaking.tagged >= 0.8 * len(speak_times)
    assert smile.rate + speaking.rate <= 1.0 + 1e-9  # no face is both
    assert smile.segments[0].start_ms == 0

    from mien.clients.analytics_pictures import timeline_png

    out = timeline_png(report, indexed["root"] / "timeline.png")
    assert png_size(out) == (1200, 200)


def test_summary_of_the_indexed_person_separates_the_two_expressions(indexed):
    store = indexed["store"]
    [person] = store.list_persons()
    summary = analytics.summarize_person(store, person.person_id, k=2, seed=0)
    assert summary.k == 2 and summary.faces == len(store.person_face_ids(person.person_id))
    reps = [store.get_face(c.representative_face_id) for c in summary.clusters]
    photos_of = sorted(
        "obama.jpg" if _inside(r.timestamp_ms, indexed["timeline"], "obama.jpg") else "obama2.jpg"
        for r in reps)
    assert photos_of == ["obama.jpg", "obama2.jpg"]  # one representative per expression
    assert summary.clusters[0].size == 10  # the smile shows for 5 s of 8: 10 of 16 samples
