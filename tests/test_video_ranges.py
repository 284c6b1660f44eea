"""Videos cut into time ranges that workers read themselves give the store one range gives.

Rendered clips (mien.demo.videos: mp4v in .mp4, MJPG in .avi) and a
variable-frame-rate MP4 (a rendered clip whose per-frame durations are
rewritten in its sample table, as a phone or screen recorder writes them).
Real models, real worker processes, real stores; no mocks.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
from pathlib import Path

import numpy as np
import pytest

from indexer_support import all_faces, check_consistent, pool_workers
from store_support import assert_same_faces

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def retime_mp4(src: Path, dst: Path, deltas: list[int]) -> Path:
    """Copy a one-track MP4 written by OpenCV with per-frame durations `deltas` (in the
    track's timescale): a variable-frame-rate file. Only the sample table (stts) and the
    durations change; the moov box follows the media data, so no chunk offset moves."""
    data = Path(src).read_bytes()
    scales = {}

    def walk(off: int, end: int) -> bytes:
        out = b""
        while off < end:
            size, kind = struct.unpack(">I4s", data[off:off + 8])
            payload = bytearray(data[off + 8:off + size])
            if kind in CONTAINERS:
                payload = walk(off + 8, off + size)
            elif kind == b"stts":
                entries = struct.unpack(">I", payload[4:8])[0]
                assert sum(struct.unpack(">I", payload[8 + 8 * i:12 + 8 * i])[0] for i in range(entries)) \
                    == len(deltas), "one duration per frame"
                payload = payload[:4] + struct.pack(">I", len(deltas)) + b"".join(
                    struct.pack(">II", 1, d) for d in deltas)
            elif kind == b"mvhd":
                scales["movie"] = struct.unpack(">I", payload[12:16])[0]
            elif kind == b"mdhd":
                scales["media"] = struct.unpack(">I", payload[12:16])[0]
                payload[16:20] = struct.pack(">I", sum(deltas))
            out += struct.pack(">I4s", 8 + len(payload), kind) + bytes(payload)
            off += size
        return out

    body = bytearray(walk(0, len(data)))
    movie_duration = sum(deltas) * scales["movie"] // scales["media"]
    for kind, at in ((b"mvhd", 16), (b"tkhd", 20), (b"elst", 8)):  # version 0 layouts
        i = body.find(kind) + 4
        body[i + at:i + at + 4] = struct.pack(">I", movie_duration)
    Path(dst).write_bytes(bytes(body))
    return Path(dst)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from mien.demo.videos import write_clip

    root = tmp_path_factory.mktemp("ranges")
    out = {
        # mp4v: a keyframe every 12 frames, so a seek decodes from the keyframe before it
        "hd": write_clip(root / "hd.mp4", ["obama2", "biden"], motion="pan", fps=30, size=(1280, 720),
                         seconds=5.0).path,
        "avi": write_clip(root / "avi.avi", ["obama"], motion="zoom", fps=10, seconds=7.0).path,
        "mp4": write_clip(root / "mp4.mp4", ["obama"], motion="pan", fps=25, seconds=7.0,
                          blur_frames=range(60, 70)).path,
    }
    # 25 fps source (timescale 12800: 512 = 40 ms); 80 ms, 20 ms and a 1 s gap follow
    base = write_clip(root / "cfr.mp4", ["obama2", "biden"], motion="pan", fps=25, seconds=8.0,
                      size=(480, 270)).path
    deltas = [512] * 60 + [1024] * 40 + [256] * 60 + [12800] + [512] * 39
    out["vfr"] = retime_mp4(base, root / "vfr.mp4", deltas)
    return out


def read(path, start, end, fps, seek=True):
    from mien.indexer.video import RangeReader

    reader = RangeReader(str(path), start, end, fps, seek=seek)
    frames = [(f.index, f.timestamp_ms, int(f.image.astype(np.int64).sum())) for f in reader]
    return frames, reader


def test_unit_and_plan():
    from mien.indexer.video_jobs import plan_spans, range_unit_ms

    assert range_unit_ms(2.0, 2000.0) == 2000
    assert range_unit_ms(3.0, 2000.0) == 2000
    assert range_unit_ms(0.7, 2000.0) == 10000      # 7 samples of 1/0.7 s in 10 s
    assert range_unit_ms(None, 2000.0) == 2000       # every frame
    assert range_unit_ms(2.0, 0.0) == 500            # no keyframes: the sampling step
    spans = plan_spans(20000, 2000, workers=2)
    assert [(s.start_ms, s.end_ms) for s in spans] == [(0, 6000), (6000, 12000), (12000, 16000), (16000, None)]
    hour = plan_spans(3_600_000, 2000, workers=2)
    assert len(hour) == 60 and all(s.end_ms is None or s.end_ms - s.start_ms <= 60000 for s in hour)
    assert [s.start_ms for s in plan_spans(9000, 2000, 2, range_seconds=3)] == [0, 4000, 8000]
    assert [(s.start_ms, s.end_ms) for s in plan_spans(3000, 2000, 2)] == [(0, None)]   # at least 4 s
    assert [(s.start_ms, s.end_ms) for s in plan_spans(0, 2000, 2)] == [(0, None)]      # unknown length
    assert [(s.start_ms, s.end_ms) for s in plan_spans(9000, None, 2)] == [(0, None)]   # no common unit
    # a file other files follow is cut only where ranges would pass MAX_RANGE_MS
    assert [(s.start_ms, s.end_ms) for s in plan_spans(20000, 2000, 2, spread=False)] == [(0, None)]
    assert [(s.start_ms, s.end_ms) for s in plan_spans(120000, 2000, 2, spread=False)] == [(0, 60000), (60000, None)]
    assert len(plan_spans(3_600_000, 2000, 2, spread=False)) == 60


def test_only_the_last_video_of_a_run_is_spread_over_the_workers(tmp_path):
    """Three 10 s clips: the first two each one range (the jobs after them keep the workers busy),
    the last cut so that both workers finish together; the same store as one range each."""
    from mien.demo.videos import write_clip

    for name in ("a", "b", "c"):
        write_clip(tmp_path / "in" / f"{name}.mp4", ["obama"], fps=10, seconds=10.0, size=(320, 240))
    auto = _index([tmp_path / "in"], tmp_path / "auto", workers=2)
    whole = _index([tmp_path / "in"], tmp_path / "whole", workers=2, range_seconds=1000)
    assert auto.videos == 3 and not auto.failed and whole.video_ranges == 3
    assert auto.video_ranges == 1 + 1 + 2
    assert_same_store(tmp_path / "whole", tmp_path / "auto")


@pytest.mark.parametrize("name", ["hd", "avi", "mp4"])
@pytest.mark.parametrize("fps,step", [(2.0, 1000), (None, 500), (3.0, 2000)])
def test_ranges_read_what_the_whole_file_reads(clips, name, fps, step):
    """Seeking is exact on constant-rate files: the ranges' frames (index, timestamp and
    pixels) are the sequential read's, and consecutive ranges meet on the same frame."""
    whole, reader = read(clips[name], 0, None, fps, seek=False)
    assert len(whole) >= 8
    got, expect, seeks, ends = [], None, 0, []
    for start in range(0, 8000, step):  # the clips are 5 to 7 s long: the last ranges are past the end
        end = start + step if start + step < 8000 else None
        frames, r = read(clips[name], start, end, fps)
        if start:
            assert r.first == expect, (start, r.first, expect)
        seeks += r.seeked
        expect = r.next
        got += frames
        ends += [r.last] if r.last is not None else []
    assert got == whole
    assert seeks >= 3
    assert expect is None and ends[0] == reader.last


def test_variable_frame_rate_ranges_do_not_meet(clips):
    """OpenCV seeks a variable-rate file by its average rate: a range lands on other frames
    and reports frame numbers that are not the file's. The ranges then do not meet, which
    is what makes the driver read the rest without seeking."""
    whole, _ = read(clips["vfr"], 0, None, 2.0, seek=False)
    stamps = [t for _, t, _ in whole]
    # 40 ms frames to 2.4 s, 80 ms to 5.6 s, 20 ms to 6.8 s, a 1 s gap, 40 ms again
    assert {1520, 2000, 2560, 5520, 6000, 6500, 7800} <= set(stamps)
    assert not any(6800 < t < 7800 for t in stamps)
    mismatched, expect = 0, None
    for start in range(0, 10000, 2000):
        end = start + 2000 if start < 8000 else None
        _, r = read(clips["vfr"], start, end, 2.0)
        if start and r.first != expect:
            mismatched += 1
        expect = r.next
    assert mismatched >= 1
    # without seeking a range is exact whatever the file
    tail, _ = read(clips["vfr"], 4000, None, 2.0, seek=False)
    assert tail == [f for f in whole if f[1] >= 4000]


def _index(paths, store, **options):
    from mien.indexer import IndexOptions, index_paths

    return index_paths(paths, store, options=IndexOptions(show_progress=False, **options))


def _content(store_dir):
    from mien.engine.store import Store

    with Store(store_dir, mode="r") as st:
        check_consistent(st)
        sources = {s.uri: (s.status, s.frames, s.duration_ms, s.face_count) for s in st.list_sources()}
        faces = {s: st.faces_of_source(s, thumbnail=False) for s in sources}
        persons = sorted((p.person_id, p.count) for p in st.list_persons())
    return sources, faces, persons


def assert_same_store(a, b):
    sources_a, faces_a, persons_a = _content(a)
    sources_b, faces_b, persons_b = _content(b)
    assert sources_a == sources_b
    assert persons_a == persons_b
    assert_same_faces(faces_a, faces_b)


def test_one_range_or_many_the_same_store(clips, tmp_path):
    """The whole archive as one range per video, and cut into 2 s ranges on 2 worker
    processes: the same faces, frame numbers, timestamps, tracks, persons and vectors.
    The variable-rate file's ranges do not meet, so its rest is read without seeking."""
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ("hd", "avi", "mp4", "vfr"):
        os.symlink(clips[name], archive / clips[name].name)
    one = _index([archive], tmp_path / "one", workers=2, range_seconds=1000)
    many = _index([archive], tmp_path / "many", workers=2, range_seconds=2)
    assert one.failed_count == 0 and many.failed_count == 0, (one.failures, many.failures)
    assert one.video_ranges == 4 and one.video_rereads == 0
    assert many.video_ranges >= 12 and many.video_rereads >= 1
    assert one.frames == many.frames and one.faces_passed == many.faces_passed >= 40
    assert one.tracks == many.tracks
    assert_same_store(tmp_path / "one", tmp_path / "many")
    # and the in-process runner with automatic ranges
    inline = _index([archive], tmp_path / "inline", workers=1)
    assert inline.video_ranges > 4
    assert_same_store(tmp_path / "one", tmp_path / "inline")


def test_every_frame_in_ranges(clips, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    os.symlink(clips["avi"], archive / "avi.avi")
    one = _index([archive], tmp_path / "one", workers=1, every_frame=True, range_seconds=1000)
    many = _index([archive], tmp_path / "many", workers=1, every_frame=True, range_seconds=2)
    assert one.frames == many.frames == 70 and many.video_ranges == 4
    assert_same_store(tmp_path / "one", tmp_path / "many")


def test_a_worker_killed_on_every_attempt_fails_the_video(clips, tmp_path):
    """A worker dies while a video's ranges are in flight, every time: the video is
    retried once, alone, then failed with "analysis crashed"; the run goes on."""
    from mien.engine.store import Store

    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy(clips["mp4"], archive / "a.mp4")
    shutil.copy(clips["avi"], archive / "b.avi")
    kills = []

    def progress(event):
        if event["current"].endswith("a.mp4") and event["files_done"] == 0:
            workers = pool_workers()
            if workers:
                workers[0].send_signal(signal.SIGKILL)
                kills.append(workers[0].pid)

    from mien.indexer import IndexOptions, index_paths

    summary = index_paths([archive], tmp_path / "store", progress=progress,
                          options=IndexOptions(workers=2, range_seconds=2, show_progress=False))
    assert len(kills) >= 2
    assert summary.failed == {"analysis crashed": 1} and summary.videos == 1, summary.failures
    assert summary.failures[0][0].endswith("a.mp4")
    with Store(tmp_path / "store", mode="r") as store:
        check_consistent(store)
        assert {Path(s.uri).name: s.status for s in store.list_sources()} == {"a.mp4": "failed", "b.avi": "done"}
        faces = all_faces(store)
        assert faces and len(faces) == summary.faces_passed
