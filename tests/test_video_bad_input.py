"""Bad video input meets the range reader: truncated and damaged files, lying headers
(frame count, rate), 0- and 1-frame videos, files that vanish or change after the probe,
non-media with a video name. `mien index` (the CLI, a real store) on 1 and 2 workers
with 1 s ranges must never crash or hang, must name each bad file with its reason, must
index the good files of the same run, and a re-run must change nothing.

Every file is made here from rendered clips (mien/demo/videos.py) with Python byte
edits; no ffmpeg is needed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer_support import check_consistent, env_for_subprocess, small_photo
from store_support import assert_same_faces

MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def _shift_chunk_offsets(box: bytes, delta: int) -> bytes:
    """An MP4 box with every stco chunk offset inside it moved by `delta` bytes."""
    size, kind = struct.unpack(">I4s", box[:8])
    payload = bytearray(box[8:size])
    if kind in MP4_CONTAINERS:
        out, off = b"", 0
        while off < len(payload):
            child = struct.unpack(">I", payload[off:off + 4])[0]
            out += _shift_chunk_offsets(bytes(payload[off:off + child]), delta)
            off += child
        payload = bytearray(out)
    elif kind == b"stco":
        for i in range(struct.unpack(">I", payload[4:8])[0]):
            at = 8 + 4 * i
            payload[at:at + 4] = struct.pack(">I", struct.unpack(">I", payload[at:at + 4])[0] + delta)
    return struct.pack(">I4s", 8 + len(payload), kind) + bytes(payload)


def faststart(src: Path, dst: Path) -> Path:
    """The MP4 OpenCV wrote (ftyp, free, mdat, moov) with its moov moved to the front, as
    cameras and `-movflags faststart` write it: cut short, such a file keeps its sample
    table and a decodable first part (OpenCV's own layout loses the moov and all)."""
    data, boxes, off = src.read_bytes(), {}, 0
    order = []
    while off < len(data):
        size, kind = struct.unpack(">I4s", data[off:off + 8])
        boxes[kind] = data[off:off + size]
        order.append(kind)
        off += size
    moov = boxes[b"moov"]
    rest = [k for k in order if k not in (b"ftyp", b"moov")]
    dst.write_bytes(boxes[b"ftyp"] + _shift_chunk_offsets(moov, len(moov)) + b"".join(boxes[k] for k in rest))
    return dst


def avi_header(src: Path, dst: Path, *, frames: int | None = None, rate: int | None = None,
               scale: int | None = None) -> Path:
    """An MJPG AVI whose headers claim `frames` frames (avih and strh) or a `rate` / `scale`
    (strh: frames per second = rate / scale)."""
    data = bytearray(src.read_bytes())
    avih, strh = data.find(b"avih") + 8, data.find(b"strh") + 8
    if frames is not None:
        data[avih + 16:avih + 20] = struct.pack("<I", frames)
        data[strh + 32:strh + 36] = struct.pack("<I", frames)
    if scale is not None:
        data[strh + 20:strh + 24] = struct.pack("<I", scale)
    if rate is not None:
        data[strh + 24:strh + 28] = struct.pack("<I", rate)
        data[avih:avih + 4] = struct.pack("<I", 0)   # microseconds per frame: unknown
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import cv2

    from mien.demo.videos import write_clip

    root = tmp_path_factory.mktemp("bad_video")
    made = root / "made"
    avi = write_clip(made / "good.avi", ["obama"], motion="pan", fps=10, seconds=4.0).path
    mp4 = write_clip(made / "good.mp4", ["biden"], motion="pan", fps=25, seconds=4.0).path
    fast = faststart(mp4, made / "fast.mp4")
    a, f = avi.read_bytes(), fast.read_bytes()
    bad = root / "archive"
    bad.mkdir()
    out = {"avi": shutil.copy(avi, bad / "good.avi"), "fast": shutil.copy(fast, bad / "fast.mp4")}
    # cut in the middle: the front half decodes
    out["half_fast"] = bad / "half_fast.mp4"
    out["half_fast"].write_bytes(f[:len(f) // 2])
    out["half_avi"] = bad / "half_avi.avi"
    out["half_avi"].write_bytes(a[:len(a) // 2])
    # cut in the middle of OpenCV's own layout: the moov (at the end) is gone
    out["half_mp4"] = bad / "half_mp4.mp4"
    out["half_mp4"].write_bytes(mp4.read_bytes()[:mp4.stat().st_size // 2])
    # random bytes over a middle block: the decoder conceals what it can
    noisy = bytearray(a)
    mid = len(noisy) // 2
    noisy[mid:mid + 3000] = np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    out["noisy"] = bad / "noisy.avi"
    out["noisy"].write_bytes(bytes(noisy))
    # zeros over a fifth of a 6 s file: the demuxer stops there, the frames after it decode
    long = write_clip(made / "long.avi", ["biden"], motion="pan", fps=10, seconds=6.0).path
    holed = bytearray(long.read_bytes())
    lo, hi = int(len(holed) * 0.4), int(len(holed) * 0.6)
    holed[lo:hi] = bytes(hi - lo)
    out["long"] = long
    out["holed"] = bad / "holed.avi"
    out["holed"].write_bytes(bytes(holed))
    # lying headers
    out["count_huge"] = avi_header(avi, bad / "count_huge.avi", frames=2**31 - 1)
    out["count_zero"] = avi_header(avi, bad / "count_zero.avi", frames=0)
    out["rate_zero"] = avi_header(avi, bad / "rate_zero.avi", rate=0)
    out["rate_tiny"] = avi_header(avi, bad / "rate_tiny.avi", rate=1, scale=10_000)   # 1e-4 fps
    # 1 frame, and a container with no frame at all
    out["one"] = write_clip(bad / "one.avi", ["obama"], fps=10, seconds=0.1).path
    writer = cv2.VideoWriter(str(bad / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    writer.release()
    out["empty"] = bad / "empty.avi"
    out["photo"] = small_photo("obama", bad / "photo.mp4", max_side=320)  # a JPEG named like a video
    out["text"] = bad / "notes.mp4"
    out["text"].write_bytes(b"not a video at all\n" * 50)
    return {k: Path(v) for k, v in out.items()}


def read(path, start, end, fps=2.0, seek=True):
    from mien.indexer.video import RangeReader

    reader = RangeReader(str(path), start, end, fps, seek=seek)
    return [(f.index, f.timestamp_ms, int(f.image.astype(np.int64).sum())) for f in reader], reader


def read_in_ranges(path, step_ms, end_ms):
    """What the driver assembles: ranges of step_ms, stopping at the range where the file
    ended, re-reading without seeking when ranges do not meet."""
    frames, expect = [], None
    for k, start in enumerate(range(0, end_ms, step_ms)):
        end = None if start + step_ms >= end_ms else start + step_ms
        got, reader = read(path, start, end)
        if k and (reader.first != expect or reader.backwards):
            return frames + read(path, start, None, seek=False)[0]
        frames += got
        expect = reader.next
        if reader.next is None:
            break
    return frames


# ------------------------------------------------------------ the reader alone

def test_lying_headers_are_not_trusted(files):
    """A frame count larger than the file's byte count, or NaN/inf/huge durations, plan one
    open range (or a bounded number), never billions."""
    from mien.indexer.video import probe
    from mien.indexer.video_jobs import MAX_RANGES, plan_spans

    assert probe(str(files["count_huge"]), 10**8).frame_count == 0
    assert probe(str(files["count_zero"]), 10**8).duration_ms == 0
    for bad in (float("nan"), float("inf"), -5.0, 0.0):
        assert [(s.start_ms, s.end_ms) for s in plan_spans(bad, 1000, 2, 1.0)] == [(0, None)]
    for seconds in (1.0, 0.0):
        spans = plan_spans(3.0e14, 1000, 2, seconds)   # ten thousand years
        assert len(spans) <= MAX_RANGES and spans[-1].end_ms is None
        assert all(a.end_ms == b.start_ms for a, b in zip(spans, spans[1:]))


@pytest.mark.parametrize("name", ["half_fast", "half_avi", "noisy", "holed", "count_huge", "count_zero",
                                  "rate_zero", "one"])
def test_ranges_read_what_one_read_reads(files, name):
    """Whatever the damage, 1 s ranges assembled as the driver does give the frames of one
    sequential read; a file cut in half gives its front half."""
    whole, reader = read(files[name], 0, None, seek=False)
    ranged = read_in_ranges(files[name], 1000, 6000)
    assert [f[:2] for f in ranged] == [f[:2] for f in whole]
    if name != "noisy":  # concealment of a damaged frame depends on where decoding started
        assert ranged == whole
    if name.startswith("half"):
        full, _ = read(files["fast" if name == "half_fast" else "avi"], 0, None, seek=False)
        assert 0 < len(whole) < len(full)
        assert whole == full[:len(whole)]  # the decodable part, exactly
    if name == "one":
        assert len(whole) == 1 and reader.last == (0, 0)


def test_damage_in_the_middle_loses_the_damage_not_the_rest(files):
    """Where a frame does not decode before the container's end, the reader seeks past the
    damaged stretch and goes on (the sequential reader before ranges stopped there)."""
    holed, _ = read(files["holed"], 0, None, fps=None, seek=False)
    full, _ = read(files["long"], 0, None, fps=None, seek=False)
    stamps = [t for _, t, _ in holed]
    assert stamps == sorted(set(stamps))
    hole = next(i for i, (a, b) in enumerate(zip(holed, full)) if a != b)
    assert 0 < hole < len(full) // 2
    assert holed[-1][:2] == full[-1][:2] and len(holed) > len(full) * 0.7
    assert holed[-2:] == full[-2:]  # the same pictures after the damage


def test_a_range_past_the_end(files):
    """A seek beyond the last frame (the file is shorter than its header says) finds
    nothing and says so: no first, no next."""
    got, reader = read(files["half_fast"], 3000, 4000)
    assert got == [] and reader.first is None and reader.next is None


def test_a_file_that_vanishes_or_changes_after_the_probe(files, tmp_path):
    """The worker reads the file later than the driver probed it: gone, replaced by text,
    or replaced by a larger video each give a result with a clear error, never an exception."""
    from mien.indexer.video import RangeReader, probe
    from mien.indexer.worker import analyze_range
    from mien.errors import BadInputError

    path = tmp_path / "v.avi"
    shutil.copy(files["avi"], path)
    probe(str(path), 10**8)
    path.unlink()
    with pytest.raises(BadInputError, match="gone"):
        list(RangeReader(str(path), 0, None))
    gone = analyze_range(str(path), 0, 1000, 2.0, 0.0, 8, 10**8)
    assert "gone" in gone.error and gone.reason == "vanished"   # counted as vanished, not as corrupt
    path.write_bytes(b"now it is text\n" * 40)
    assert "no video stream" in analyze_range(str(path), 0, 1000, 2.0, 0.0, 8, 10**8).error
    shutil.copy(files["fast"], path)  # 320x240 mp4 where a smaller limit was planned for
    result = analyze_range(str(path), 1000, 2000, 2.0, 0.0, 8, 320 * 240 - 1)
    assert result.too_large and "exceed" in result.error


# ------------------------------------------------------------ mien index, end to end

def mien_index(store: Path, archive: Path, *options: str) -> tuple[dict, subprocess.CompletedProcess]:
    out = store.parent / f"{store.name}-{len(list(store.parent.glob(store.name + '-*.json')))}.json"
    proc = subprocess.run([sys.executable, "-m", "mien.cli", "index", "--store", str(store), "--quiet",
                           "--json", str(out), *options, str(archive)],
                          capture_output=True, text=True, env=env_for_subprocess(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    return json.loads(out.read_text()), proc


def store_content(store: Path):
    from mien.engine.store import Store

    with Store(store, mode="r") as st:
        check_consistent(st)
        sources = {Path(s.uri).name: (s.status, s.frames, s.duration_ms, s.face_count, s.error, s.kind)
                   for s in st.list_sources()}
        faces = {Path(s.uri).name: st.faces_of_source(s.uri, thumbnail=False) for s in st.list_sources()}
    return sources, faces


def test_mien_index_names_bad_files_keeps_good_ones_and_reruns_clean(files, tmp_path):
    archive = files["avi"].parent
    one, _ = mien_index(tmp_path / "one", archive, "--workers", "1", "--range-seconds", "1000")
    many, proc = mien_index(tmp_path / "many", archive, "--workers", "2", "--range-seconds", "1")
    for summary in (one, many):
        failures = {Path(p).name: why for p, why in summary["failures"]}
        assert failures == {
            "empty.avi": "corrupt video: no decodable frames",
            "half_mp4.mp4": "no video stream or undecodable video: no video stream "
                            "(the container opens to nothing decodable)",
            "notes.mp4": "not media (content does not match its extension)",
        }, failures
        assert summary["indexed"] == len(list(archive.iterdir())) - 3
    assert many["video_ranges"] > one["video_ranges"]
    for name in failures:  # the table names them too
        assert name in proc.stdout + proc.stderr
    # stored "done", but flagged: cut short of the container's duration, or damage skipped;
    # the same flags whether a file was read as one range or as 1 s ranges on 2 workers
    assert many["partial"] == one["partial"]
    partial = {Path(p).name: lost for p, lost in many["partial"]}
    assert set(partial) == {"half_fast.mp4", "half_avi.avi", "noisy.avi", "holed.avi"}, partial
    for name in ("half_fast.mp4", "half_avi.avi"):  # 4 s clips cut at half their bytes
        assert re.fullmatch(r"decoded 0\u2013[12]\.\d s of 4\.0 s", partial[name]), partial[name]
    assert partial["holed.avi"].startswith("skipped damage between ")
    assert re.search(rf"^partly decodable +{len(partial)}$", proc.stdout, re.M), proc.stdout
    for path, lost in many["partial"]:  # and lists them
        assert f"  partly decodable: {path}: {lost}" in proc.stdout

    sources, faces = store_content(tmp_path / "many")
    sources_one, faces_one = store_content(tmp_path / "one")
    assert sources == sources_one
    # one range per file or 1 s ranges on 2 workers: the same store (the noisy file's
    # damaged frames are concealed a little differently when decoding starts elsewhere)
    assert_same_faces({k: v for k, v in faces.items() if k != "noisy.avi"},
                      {k: v for k, v in faces_one.items() if k != "noisy.avi"})
    assert [(f.frame_index, f.timestamp_ms) for f in faces["noisy.avi"]] == \
           [(f.frame_index, f.timestamp_ms) for f in faces_one["noisy.avi"]]
    good = sources["good.avi"]
    assert good[0] == "done" and good[1] == 40 and good[3] >= 6
    # the same pictures under lying headers: the same faces
    for name in ("count_huge.avi", "count_zero.avi"):
        assert sources[name][:4] == good[:4]
        assert [_seen(f) for f in faces[name]] == [_seen(f) for f in faces["good.avi"]]
    # cut in half: the faces of the half that decodes, and the frames and time it had
    half, whole = sources["half_fast.mp4"], sources["fast.mp4"]
    assert half[0] == "done" and 0 < half[3] < whole[3] and half[1] < whole[1] and half[2] < whole[2]
    assert [_seen(f) for f in faces["half_fast.mp4"]] == [_seen(f) for f in faces["fast.mp4"]][:half[3]]
    assert sources["one.avi"][:2] == ("done", 1)
    assert sources["photo.mp4"][0] == "done" and sources["photo.mp4"][3] == 1 and sources["photo.mp4"][5] == "image"
    assert sources["empty.avi"][0] == "failed"

    again, _ = mien_index(tmp_path / "many", archive, "--workers", "2", "--range-seconds", "1")
    assert again["indexed"] == 0 and again["faces_passed"] == 0 and again["video_ranges"] == 0
    assert store_content(tmp_path / "many")[0] == sources


def _seen(face) -> tuple:
    """Where a face was seen and what it showed, whatever file and ids it has."""
    return (face.frame_index, face.timestamp_ms, tuple(np.round(face.bbox, 1)),
            tuple(np.round(face.expression, 3)))


def test_plan_stays_small_for_a_file_claiming_billions_of_frames(files, tmp_path):
    """Before the bound, a header of 2^31 frames planned 10^8 ranges: memory grew by
    gigabytes and the run never ended. Now: one run, in a few ranges."""
    archive = tmp_path / "a"
    archive.mkdir()
    shutil.copy(files["count_huge"], archive / "v.avi")
    summary, _ = mien_index(tmp_path / "s", archive, "--workers", "2", "--range-seconds", "1")
    assert summary["indexed"] == 1 and summary["video_ranges"] <= 2
    assert not math.isnan(summary["video_ms"]) and summary["video_ms"] == 3900


def test_a_file_claiming_a_tiny_frame_rate_plans_no_more_ranges_than_it_has_frames(files, tmp_path):
    """Issue 22: a 0.5 MB AVI claiming 1e-4 fps (its 40 frames 10^4 s apart: 108 hours) was
    cut into 9,751 one-second ranges, almost all empty (48 s here against 4 s for its honest
    twin). The plan now holds at most as many ranges as the file has frames, and loses none."""
    from mien.indexer.video import probe
    from mien.indexer.video_jobs import plan_spans

    info = probe(str(files["rate_tiny"]), 10**8)
    assert info.fps == pytest.approx(1e-4) and info.frame_count == 40
    for seconds in (1.0, 0.0):
        spans = plan_spans(info.duration_ms, 1000, 2, seconds, info.frame_count)
        assert 1 < len(spans) <= 40 and spans[-1].end_ms is None
    archive = tmp_path / "a"
    archive.mkdir()
    shutil.copy(files["rate_tiny"], archive / "v.avi")
    summary, _ = mien_index(tmp_path / "s", archive, "--workers", "2", "--range-seconds", "1")
    assert summary["indexed"] == 1 and summary["failures"] == []
    assert summary["video_ranges"] <= 40 and summary["frames"] == 40   # every frame, each its own sample


# ------------------------------------------------------------ containers only ffmpeg makes

FFMPEG = shutil.which("ffmpeg")


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (apt-get install ffmpeg): the joined MPEG-TS, "
                    "audio-only MP4 and H.264/VP8 files are made with it; the tests above cover the rest")
def test_ffmpeg_made_files(files, tmp_path):
    """Two MPEG-TS recordings joined end to end (the clock restarts at 0 halfway), an
    audio-only MP4, H.264 (B-frames, 250-frame GOP) and VP8 files cut in half."""
    src = files["fast"]

    def ffmpeg(*args):
        subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True)

    ffmpeg("-i", src, "-c:v", "libx264", "-g", 25, "-bf", 0, "-pix_fmt", "yuv420p", "-f", "mpegts", tmp_path / "a.ts")
    joined = tmp_path / "joined.ts"
    joined.write_bytes((tmp_path / "a.ts").read_bytes() * 2)
    whole, reader = read(joined, 0, None, fps=None, seek=False)
    stamps = [t for _, t, _ in whole]
    assert stamps == sorted(set(stamps)) and len(whole) == 200 and stamps[-1] >= 7900
    # after a seek OpenCV stops at the first part's end (its frame count): seeking ranges
    # give the first part, and only frames the sequential read has (see the notes)
    sampled = read(joined, 0, None, seek=False)[0]
    ranged = read_in_ranges(joined, 1000, 9000)
    assert len(ranged) >= len(sampled) // 2 and ranged == sampled[:len(ranged)]

    ffmpeg("-f", "lavfi", "-i", "sine=d=2", "-c:a", "aac", tmp_path / "audio.mp4")
    from mien.errors import BadInputError
    from mien.indexer.video import probe
    with pytest.raises(BadInputError, match="no video stream"):
        probe(str(tmp_path / "audio.mp4"), 10**8)

    for name, args in (("x264.mp4", ("-c:v", "libx264", "-g", 250, "-bf", 3, "-pix_fmt", "yuv420p",
                                     "-movflags", "faststart")),
                       ("x264.mkv", ("-c:v", "libx264", "-g", 60, "-bf", 3, "-pix_fmt", "yuv420p")),
                       ("vp8.webm", ("-c:v", "libvpx", "-b:v", "500k"))):
        ffmpeg("-i", src, *args, tmp_path / name)
        data = (tmp_path / name).read_bytes()
        half = tmp_path / f"half_{name}"
        half.write_bytes(data[:len(data) // 2])
        full, _ = read(tmp_path / name, 0, None, seek=False)
        got, _ = read(half, 0, None, seek=False)
        assert 0 < len(got) < len(full), name
        assert [f[:2] for f in got] == [f[:2] for f in full[:len(got)]], name
        assert read_in_ranges(half, 1000, 6000) == got, name


def test_frames_over_max_pixels_fail_the_video_not_the_run(files, tmp_path):
    """max_pixels below the frame size: each video fails as "too large", named, and the
    photo of the same run is indexed."""
    from mien.indexer import IndexOptions, index_paths

    archive = tmp_path / "a"
    archive.mkdir()
    for name in ("avi", "fast"):
        shutil.copy(files[name], archive / files[name].name)
    small_photo("obama", archive / "p.jpg", max_side=200)
    summary = index_paths([archive], tmp_path / "s", options=IndexOptions(
        show_progress=False, workers=2, range_seconds=1, max_pixels=320 * 240 - 1))
    assert {Path(p).name: why for p, why in summary.failures} == {
        "good.avi": "too large: video frames of 320x240 exceed 76799 pixels",
        "fast.mp4": "too large: video frames of 320x240 exceed 76799 pixels"}
    assert summary.indexed == 1 and summary.faces_passed == 1
