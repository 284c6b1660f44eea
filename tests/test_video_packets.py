"""PacketRangeReader gives RangeReader's frames while decoding only the packets its samples need.

Real files: clips rendered by OpenCV (mp4v in .mp4, MJPG in .avi) and encoded by PyAV's FFmpeg
(H.264 with and without B-frames, ProRes), read whole and cut into ranges; a damaged MJPG; an
MKV whose millisecond timestamps do not step evenly (RangeReader reads it). Each
read is compared with RangeReader's on the same file: frame numbers, timestamps, pixels, and the
fields the driver checks ranges with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

CUTS = [(0, None), (0, 3000), (3000, 6000), (6000, None), (1000, 5000)]


def encode(src: Path, dst: Path, codec: str, pix_fmt: str = "yuv420p", **options) -> Path:
    """`src` re-encoded frame for frame by PyAV's FFmpeg."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    fps = int(round(cap.get(cv2.CAP_PROP_FPS)))
    ok, image = cap.read()
    with av.open(str(dst), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], pix_fmt
        stream.options = options
        while ok:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
            ok, image = cap.read()
        out.mux(stream.encode())
    cap.release()
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from mien.demo.videos import write_clip

    root = tmp_path_factory.mktemp("packets")
    mp4 = write_clip(root / "mp4v.mp4", ["obama2", "biden"], motion="pan", fps=30, size=(320, 240),
                     seconds=8.0).path
    return {
        "mp4v": mp4,   # OpenCV's mp4v: a keyframe every 12 frames
        "mjpg": write_clip(root / "mjpg.avi", ["obama"], motion="zoom", fps=25, seconds=8.0).path,
        "h264": encode(mp4, root / "h264.mp4", "libx264", bf="0", g="20"),
        "prores": encode(mp4, root / "prores.mov", "prores_ks", pix_fmt="yuv422p10le"),
        "h264_bframes": encode(mp4, root / "h264_b.mp4", "libx264", g="30"),
    }


def both(path: Path, start: int, end: int | None, fps: float | None = 2.0):
    from mien.indexer.video import RangeReader
    from mien.indexer.video_packets import PacketRangeReader

    out = []
    for reader in (RangeReader(str(path), start, end, fps), PacketRangeReader(str(path), start, end, fps)):
        frames = [(f.index, f.timestamp_ms, f.image) for f in reader]
        out.append((frames, reader))
    return out


def assert_same(old, new):
    (frames_a, a), (frames_b, b) = old, new
    assert [f[:2] for f in frames_b] == [f[:2] for f in frames_a]
    for x, y in zip(frames_a, frames_b):
        assert np.array_equal(x[2], y[2]), f"frame {x[0]}: other pixels"
    for name in ("first", "next", "last", "backwards", "gaps"):
        assert getattr(b, name) == getattr(a, name), name


@pytest.mark.parametrize("name", ["mp4v", "mjpg", "h264", "prores"])
def test_same_frames_fewer_decoded(clips, name):
    for start, end in CUTS:
        old, new = both(clips[name], start, end)
        assert_same(old, new)
        assert new[1].handed_over is None, new[1].handed_over
        assert len(new[0]) > 0
        # a keyframe interval holds at most one sample of 2 a second here, or none
        assert new[1].frames_decoded < 0.6 * old[1].frames_decoded, (start, end)
    if name in ("mjpg", "prores"):   # intra-only: one decode per sample
        old, new = both(clips[name], 0, None)
        assert new[1].frames_decoded == len(new[0])


def test_every_frame_sampled(clips):
    for start, end in [(0, None), (2000, 5000)]:
        old, new = both(clips["mp4v"], start, end, fps=None)
        assert_same(old, new)
        assert len(new[0]) == len(old[0]) > 60


def test_b_frames_skip_frames_nothing_refers_to(clips):
    """H.264 with B-frames: every keyframe interval is decoded (a keyframe need not restart
    decoding), but not the B-frames no sample needs."""
    for start, end in CUTS:
        old, new = both(clips["h264_bframes"], start, end)
        assert_same(old, new)
        assert new[1].handed_over is None, new[1].handed_over
        assert new[1].frames_decoded < old[1].frames_decoded, (start, end)
    old, new = both(clips["h264_bframes"], 0, None)
    assert new[1].frames_decoded < 0.7 * old[1].frames_decoded


def test_every_frame_of_b_frames(clips):
    old, new = both(clips["h264_bframes"], 1000, 4000, fps=None)
    assert_same(old, new)
    assert len(new[0]) == 90


def test_damage_in_a_frame_not_decoded_is_found(clips, tmp_path):
    """Zeros over one frame that no sample needs (MJPG: each frame its own keyframe): RangeReader
    fails to decode it and seeks past it; PacketRangeReader finds it by its JPEG markers, and the
    range is RangeReader's, the gap and the frames it lost included."""
    data = bytearray(clips["mjpg"].read_bytes())
    with av.open(str(clips["mjpg"])) as container:
        stream = container.streams.video[0]
        packet = [p for p in container.demux(stream) if p.size][53]   # 2.12 s: not a sample at 2 fps
        at, size = packet.pos, packet.size
    data[at + 8:at + 8 + size] = bytes(size)    # the chunk's header stays, its JPEG goes
    holed = tmp_path / "holed.avi"
    holed.write_bytes(bytes(data))
    old, new = both(holed, 0, None)
    assert_same(old, new)
    assert "damaged JPEG" in new[1].handed_over
    (before, after), = new[1].gaps   # RangeReader skipped the damage, and says so
    assert before < 2120 < after


def test_uneven_timestamps_are_range_readers(clips, tmp_path):
    """MKV keeps milliseconds: at 30 fps frames last 33 or 34 ms, which is not one frame
    duration each; RangeReader reads the file (its frame numbers are counted from such stamps)."""
    mkv = encode(clips["mp4v"], tmp_path / "h264.mkv", "libx264", bf="0", g="20")
    for start, end in CUTS[:3]:
        old, new = both(mkv, start, end)
        assert_same(old, new)
        assert new[1].handed_over == "packets do not last one frame"


def test_mpeg_program_stream_ends(clips, tmp_path):
    """An MPEG-2 program stream (.mpg) whose last frame FFmpeg flushes without a timestamp: RangeReader
    took that for a clock restart and its resync read the file again and again, forever."""
    from itertools import islice

    from mien.indexer.video import RangeReader

    mpg = encode(clips["mp4v"], tmp_path / "mpeg2.mpg", "mpeg2video", bf="0", g="12")
    reader = RangeReader(str(mpg), 0, None, 2.0)
    frames = [(f.index, f.timestamp_ms) for f in islice(reader, 100)]
    assert len(frames) == 16 and frames[-1] == (225, 7500), frames[-3:]
    assert reader.last == (239, 7967)
    old, new = both(mpg, 0, None)
    assert_same(old, new)


def test_a_stream_with_one_keyframe_is_not_held_whole(clips, tmp_path, monkeypatch):
    """A keyframe interval waits in memory for the next keyframe; one longer than the limit (a
    recording with a single keyframe) goes to RangeReader instead of filling the memory."""
    from mien.indexer import video_packets

    single = encode(clips["mp4v"], tmp_path / "one_keyframe.mp4", "libx264", bf="0", g="100000",
                    **{"sc_threshold": "0"})
    old, new = both(single, 0, None)
    assert_same(old, new)
    assert new[1].handed_over is None
    monkeypatch.setattr(video_packets, "MAX_HELD_PACKETS", 100)   # 3.3 s of this 30 fps clip
    old, new = both(single, 0, None)
    assert_same(old, new)
    assert new[1].handed_over == "a keyframe interval too long to hold"


def test_without_pyav_range_reader_reads(clips, monkeypatch):
    from mien.indexer.video_packets import PacketRangeReader

    monkeypatch.setitem(sys.modules, "av", None)   # import av raises ImportError
    reader = PacketRangeReader(str(clips["mp4v"]), 0, 3000, 2.0)
    frames = [(f.index, f.timestamp_ms) for f in reader]
    assert reader.handed_over == "PyAV is not installed"
    assert len(frames) == 6 and reader.next is not None
