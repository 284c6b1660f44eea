"""A video range's sampled frames, decoding only the packets they need (PyAV).

RangeReader (video.py) decodes every frame: OpenCV only grabs forward, so 2 sampled frames a
second of a 30 fps file cost 30 decodes. PacketRangeReader reads the packets first (demuxing
costs next to nothing), knows which frames the samples are, and decodes less:
- frames shown in the order they are stored, keyframes that restart decoding (CLEAN_KEYFRAMES;
  H.264's IDR pictures): the packets from a sample's keyframe up to the sample; the rest of a
  keyframe interval, and an interval with no sample, are never decoded. The benchmarks' 720p
  clip (mp4v, a keyframe every 12 frames, a sample every 15): 1,320 decodes of 3,600;
  intra-only files (MJPEG, ProRes, DNxHD, DV): one decode per sample.
- B-frames (SKIPS_UNREFERENCED): every packet is decoded but those of the frames no other frame
  refers to and no sample is, which FFmpeg skips when asked per packet (skip_frame NONREF).
  Real H.264: 12-26 % less decoding CPU (the frames skipped are the cheapest ones).

It gives RangeReader's results, frame for frame (numbers, timestamps, pixels:
tests/test_video_packets.py), and reads only where that holds: every frame a timestamp one frame
duration after the one shown before it (constant frame rate, the frame numbers RangeReader
derives after a seek), each wanted frame decoded. Any other range is RangeReader's. One that
stops being such part way (damage, a clock that jumps, a frame that does not decode, packets
that end before the container's frame count, a keyframe interval too long to hold) is read
again by RangeReader on the same open file, which yields only the frames after those already
yielded (the same frames: the range was clean up to there) and reports its own first, next,
last and gaps, so damage is flagged as RangeReader flags it, though only damage in a packet
this reader decodes, or in any MJPEG frame, is seen. Reads without seeking (a file whose ranges did not meet) are RangeReader's too,
and so is every read without PyAV.
"""

from __future__ import annotations

import os
from collections import deque

from mien.errors import TooLargeError
from mien.indexer.video import Frame, RangeReader, _open_file, mark_frame, probe_open, sample_bin

# codecs whose keyframes need nothing decoded before them (intra-only ones, and those whose
# predicted frames refer only back to the last keyframe or later); H.264 only at IDR pictures
CLEAN_KEYFRAMES = frozenset({
    "mjpeg", "prores", "dnxhd", "dvvideo", "png", "rawvideo", "ffv1", "huffyuv", "utvideo",
    "mpeg4", "mpeg1video", "mpeg2video", "h263", "h263p", "flv1", "msmpeg4v2", "msmpeg4v3", "vp8",
    "h264"})

# codecs whose decoder skips, when asked per packet, the frames no other frame refers to
# (FFmpeg's skip_frame NONREF): B-frames, whose pictures are shown out of decode order
SKIPS_UNREFERENCED = frozenset({"h264", "hevc", "mpeg4", "mpeg1video", "mpeg2video"})

# a keyframe interval is held in memory until the next keyframe; a stream with few keyframes
# (a screen or live recording can have one) is RangeReader's beyond these
MAX_HELD_PACKETS = 20_000
MAX_HELD_BYTES = 64 << 20

SEEK_MARGIN_FRAMES = 2   # the seek aims this many frames before the start, as RangeReader's first try


class NotClean(Exception):
    """The stream stopped being one this reader gives RangeReader's results for."""


def h264_idr(data: bytes, length_size: int) -> bool:
    """Whether an H.264 packet holds an IDR slice (NAL type 5): `length_size` bytes of length
    before each NAL (MP4's avcC), or 0 for start codes (Annex B)."""
    if length_size:
        at = 0
        while at + length_size < len(data):
            size = int.from_bytes(data[at:at + length_size], "big")
            if data[at + length_size] & 0x1F == 5:
                return True
            at += length_size + size
        return False
    at = data.find(b"\x00\x00\x01")
    while 0 <= at < len(data) - 3:
        if data[at + 3] & 0x1F == 5:
            return True
        at = data.find(b"\x00\x00\x01", at + 3)
    return False


def whole_jpeg(data: memoryview) -> bool:
    """Whether a JPEG (an MJPEG packet) starts with its SOI marker and ends with its EOI, padding
    zeros aside: damage RangeReader would find in frames this reader does not decode (a stretch
    of zeros or noise in an AVI cuts a frame short), so it is found wherever it is."""
    tail = bytes(data[-64:]).rstrip(b"\x00")
    return bytes(data[:2]) == b"\xff\xd8" and tail.endswith(b"\xff\xd9")


class PacketRangeReader:
    """RangeReader's sampled frames of [start_ms, end_ms) and its after-reading fields (first,
    next, last, backwards, seeked, frames_decoded, gaps, info), decoding only the packets the
    samples need where the stream allows it (the module's docstring). `handed_over`: why RangeReader
    read the range instead (None: it did not)."""

    def __init__(self, path: str, start_ms: int = 0, end_ms: int | None = None, fps: float | None = 2.0,
                 *, max_pixels: int = 100_000_000, roots=None):
        self.path, self.start_ms, self.end_ms, self.fps = path, int(start_ms), end_ms, fps
        self.max_pixels, self.roots = max_pixels, roots
        self.info = None
        self.first = self.next = self.last = None
        self.backwards = False
        self.seeked = False
        self.frames_decoded = 0
        self.gaps: list = []
        self.handed_over: str | None = None   # why RangeReader read the range, when it did
        self._yielded_ms = None   # timestamp of the last frame yielded
        self._clock = None        # (start pts, seconds per pts unit, frames per second)
        self._pending = deque()   # pts of the samples planned and not decoded yet, in order
        self._last_pts = None     # of the last frame planned
        self._last_bin = None     # ... and its sampling bin (None before the range)

    def __iter__(self):
        try:
            import av
        except ImportError:
            yield from self._hand_over(None, "PyAV is not installed")
            return
        fd = _open_file(self.path, self.roots)
        try:
            self.info = probe_open(fd, self.max_pixels)   # OpenCV's figures: RangeReader's frame numbers
            try:
                yield from self._packets(av, fd)
                return
            except NotClean as exc:
                why = str(exc)
            except av.FFmpegError as exc:
                why = f"FFmpeg: {exc}"
            yield from self._hand_over(fd, why)
        finally:
            os.close(fd)

    def _hand_over(self, fd, why: str):
        """The range read by RangeReader (on the open file `fd` when given), less the frames
        already yielded; its fields replace this reader's."""
        self.handed_over = why
        reader = RangeReader(self.path, self.start_ms, self.end_ms, self.fps, max_pixels=self.max_pixels,
                             roots=self.roots, fd=None if fd is None else os.dup(fd))   # it closes its own
        yielded = self._yielded_ms
        for frame in reader:
            if yielded is None or frame.timestamp_ms > yielded:
                yield frame
        decoded = self.frames_decoded
        for name in ("info", "first", "next", "last", "backwards", "seeked", "frames_decoded", "gaps"):
            setattr(self, name, getattr(reader, name))
        self.frames_decoded += decoded

    def _packets(self, av, fd):
        import cv2

        from mien.indexer.beneath import fd_path

        with av.open(fd_path(fd)) as container:
            if len(container.streams.video) != 1:
                raise NotClean("not one video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context
            reordered = bool(codec.has_b_frames)
            if stream.start_time is None or self.info.fps <= 0:
                raise NotClean("no start time or frame rate")
            if reordered and codec.name not in SKIPS_UNREFERENCED:
                raise NotClean(f"{codec.name} with B-frames")
            if not reordered and codec.name not in CLEAN_KEYFRAMES:
                raise NotClean(f"{codec.name}: keyframes do not restart decoding")
            codec.thread_type = "SLICE"   # frame threads would hold frames back
            codec.thread_count = 1 if cv2.getNumThreads() == 1 else 0   # as _capture decides for OpenCV
            self._clock = (stream.start_time, float(stream.time_base), self.info.fps)
            if self.start_ms > 0:
                aim = self.start_ms - SEEK_MARGIN_FRAMES * 1000.0 / self.info.fps
                if aim > 0:
                    container.seek(stream.start_time + int(aim / 1000.0 / self._clock[1]), stream=stream,
                                   backward=True)
                    self.seeked = True
            for gop in self._gops(container.demux(stream), codec, clean=not reordered):
                wanted, done = self._plan(gop)
                self._pending.extend(sorted(wanted))
                if reordered:
                    yield from self._decode_all(codec, gop, wanted, to_last_wanted=done)
                else:
                    yield from self._decode_to_last_wanted(codec, gop, wanted)
                if done:
                    break
            else:
                if self.first is None and self.last is None and self.start_ms == 0:
                    raise NotClean("no packets")
                if self.last is not None and self.last[0] + 1 < self.info.frame_count:
                    # the packets end before the container's count: damage RangeReader seeks past
                    raise NotClean("the packets end early")
            if reordered:
                yield from self._emit(codec.decode(None))   # the frames held back
            if self._pending:
                raise NotClean("a wanted frame did not decode")

    def _gops(self, packets, codec, clean: bool):
        """Keyframe intervals (lists of packets in decode order), split where a keyframe restarts
        decoding when `clean`, at every keyframe otherwise (nothing is then left undecoded that
        a later frame could need)."""
        length_size = 0
        if codec.name == "h264":
            extra = codec.extradata or b""
            length_size = (extra[4] & 3) + 1 if len(extra) > 4 and extra[0] == 1 else 0
        gop, held = [], 0
        for packet in packets:
            if packet.size == 0:
                continue   # the demuxer's end-of-stream marker
            held += packet.size
            if len(gop) >= MAX_HELD_PACKETS or held > MAX_HELD_BYTES:
                raise NotClean("a keyframe interval too long to hold")
            if packet.pts is None:
                raise NotClean("a packet without a timestamp")
            if codec.name == "mjpeg" and not whole_jpeg(memoryview(packet)):
                raise NotClean("a damaged JPEG")   # found in every packet, decoded or not
            split = packet.is_keyframe and (not clean or codec.name != "h264"
                                            or h264_idr(bytes(packet), length_size))
            if split and gop:
                yield gop
                gop, held = [], packet.size
            if not gop and not split:
                raise NotClean("the read does not start at a keyframe")
            gop.append(packet)
        if gop:
            yield gop

    def _place(self, pts: int) -> tuple[int, int]:
        """(frame number, ms) of a timestamp, as RangeReader derives them after a seek."""
        start, base, fps = self._clock
        ms = (pts - start) * base * 1000.0
        return int(round(ms * fps / 1000.0)), int(round(ms))

    def _plan(self, gop: list) -> tuple[set, bool]:
        """A keyframe interval's frames in the order they are shown: first, next and last, and
        the timestamps (pts) of those sampled (the first of each bin). Its frames must follow
        the last interval's one frame duration apart. Returns (wanted pts, whether the range
        ends in it)."""
        _, base, fps = self._clock
        step = gop[0].duration
        if not step or abs(step * base * fps - 1.0) > 1e-3:
            raise NotClean("packets do not last one frame")
        wanted = set()
        for pts in sorted(p.pts for p in gop):
            if self._last_pts is not None and pts - self._last_pts != step:
                raise NotClean("a frame out of step")
            self._last_pts = pts
            index, t = self._place(pts)
            place = mark_frame(self, index, t)
            if place is None:
                continue
            if not place:
                return wanted, True
            b = sample_bin(t, self.fps)
            if b is None or b != self._last_bin:
                wanted.add(pts)
            self._last_bin = b
        return wanted, False

    @staticmethod
    def _to_last_wanted(gop: list, wanted: set) -> list:
        """The interval's packets up to its last wanted one (a frame's references come before it
        in decode order)."""
        return gop[:1 + max((i for i, p in enumerate(gop) if p.pts in wanted), default=-1)]

    def _decode_to_last_wanted(self, codec, gop: list, wanted: set):
        """Frames shown in decode order, keyframes that restart decoding: the packets up to the
        last wanted one, each one frame; the rest of the interval is never decoded."""
        for packet in self._to_last_wanted(gop, wanted):
            frames = codec.decode(packet)
            if len(frames) != 1 or frames[0].pts != packet.pts:
                raise NotClean("a packet did not decode to its frame")
            yield from self._emit(frames)

    def _decode_all(self, codec, gop: list, wanted: set, to_last_wanted: bool):
        """Frames shown out of decode order (B-frames): every packet is decoded but those of
        unwanted frames that no other frame refers to, which FFmpeg skips (its skip_frame,
        honoured per packet); frames come out in the order they are shown, some packets later.
        to_last_wanted: the read ends in this interval, so nothing after its last wanted packet
        is needed."""
        for packet in self._to_last_wanted(gop, wanted) if to_last_wanted else gop:
            codec.skip_frame = "DEFAULT" if packet.pts in wanted else "NONREF"
            yield from self._emit(codec.decode(packet))
        codec.skip_frame = "DEFAULT"

    def _emit(self, frames: list):
        """Yield the decoded frames that are samples (the next pending ones). Frames come out in
        the order they are shown, so a frame later than the next sample means it never will."""
        for frame in frames:
            self.frames_decoded += 1
            if frame.pts is None:
                raise NotClean("a frame without a timestamp")
            if not self._pending or frame.pts < self._pending[0]:
                continue
            if frame.pts > self._pending[0]:
                raise NotClean("a wanted frame did not decode")
            self._pending.popleft()
            if frame.width * frame.height > self.max_pixels:
                raise TooLargeError(f"a video frame of {frame.width}x{frame.height} exceeds "
                                    f"{self.max_pixels} pixels")
            index, t = self._place(frame.pts)
            self._yielded_ms = t
            yield Frame(index, t, frame.to_ndarray(format="bgr24"))
