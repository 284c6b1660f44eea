"""A video range's sampled frames, decoding only the packets they need (PyAV).

RangeReader (video.py) decodes every frame: OpenCV only grabs forward, so 2 sampled frames a
second of a 30 fps file cost 30 decodes. A frame needs only the packets from its keyframe up to
itself. Where keyframes restart decoding, a sample costs the frames since its keyframe, the rest
of that keyframe interval is never decoded, and an interval with no sample costs nothing: on the
benchmarks' 720p clip (mp4v, a keyframe every 12 frames, a sample every 15) that is 1,320 decodes
of 3,600; on intra-only files (MJPEG, ProRes, DNxHD, DV) one decode per sample.

PacketRangeReader has RangeReader's interface and gives its results, frame for frame (numbers,
timestamps, pixels: tests/test_video_packets.py), and it only reads what that holds for:
- the stream shows frames in the order it stores them (no B-frames: FFmpeg's has_b_frames 0);
- its keyframes restart decoding (CLEAN_KEYFRAMES; H.264's only at IDR pictures);
- every packet has a timestamp one frame duration after the last (constant frame rate, the frame
  numbers RangeReader derives after a seek), and decodes to exactly one frame.
Any other range is RangeReader's. One that stops being such part way (damage, a clock that jumps,
a packet that does not decode, packets that end before the container's frame count) is read
again by RangeReader on the same open file, which yields only the frames after those already
yielded (the same frames: the range was clean up to there) and reports its own first, next, last
and gaps, so damage is flagged as RangeReader flags it. Reads without seeking (a file whose
ranges did not meet) are RangeReader's too, and so is every read without PyAV.
"""

from __future__ import annotations

import os

from mien.errors import TooLargeError
from mien.indexer.video import Frame, RangeReader, _capture, _info, _open_file, sample_bin

# codecs whose keyframes need nothing decoded before them (intra-only ones, and those whose
# predicted frames refer only back to the last keyframe or later); H.264 only at IDR pictures
CLEAN_KEYFRAMES = frozenset({
    "mjpeg", "prores", "dnxhd", "dvvideo", "png", "rawvideo", "ffv1", "huffyuv", "utvideo",
    "mpeg4", "mpeg1video", "mpeg2video", "h263", "h263p", "flv1", "msmpeg4v2", "msmpeg4v3", "vp8",
    "h264"})

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

    def __iter__(self):
        try:
            import av
        except ImportError:
            yield from self._hand_over(None, "PyAV is not installed")
            return
        fd = _open_file(self.path, self.roots)
        try:
            cap = _capture(fd)
            try:
                self.info = _info(cap, self.max_pixels, os.fstat(fd).st_size)
            finally:
                cap.release()
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
            if codec.name not in CLEAN_KEYFRAMES or codec.has_b_frames or stream.start_time is None:
                raise NotClean(f"{codec.name}: keyframes do not restart decoding here")
            fps = self.info.fps
            if fps <= 0:
                raise NotClean("no frame rate")
            codec.thread_type = "SLICE"   # frame threads would hold frames back
            codec.thread_count = 1 if cv2.getNumThreads() == 1 else 0   # as _capture decides for OpenCV
            base, start = float(stream.time_base), stream.start_time
            length_size = 0
            if codec.name == "h264":
                extra = codec.extradata or b""
                length_size = (extra[4] & 3) + 1 if len(extra) > 4 and extra[0] == 1 else 0

            def ms_of(pts: int) -> float:
                return (pts - start) * base * 1000.0

            if self.start_ms > 0:
                aim = self.start_ms - SEEK_MARGIN_FRAMES * 1000.0 / fps
                if aim > 0:
                    container.seek(start + int(aim / 1000.0 / base), stream=stream, backward=True)
                    self.seeked = True
            gop, step, last_pts, taken_bin = [], None, None, object()
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue   # the demuxer's end-of-stream marker
                pts = packet.pts
                if pts is None or (last_pts is not None and pts - last_pts != step):
                    raise NotClean("a packet out of step")
                if step is None:
                    step = packet.duration
                    if not step or abs(step * base * fps - 1.0) > 1e-3:
                        raise NotClean("packets do not last one frame")
                if codec.name == "mjpeg" and not whole_jpeg(memoryview(packet)):
                    raise NotClean("a damaged JPEG")   # found in every packet, decoded or not
                keyframe = packet.is_keyframe and (codec.name != "h264" or h264_idr(bytes(packet), length_size))
                if keyframe and gop:
                    yield from self._decode(codec, gop)
                    gop = []
                if not gop and not keyframe:
                    raise NotClean("the read does not start at a keyframe")
                last_pts = pts
                ms = ms_of(pts)
                t = int(round(ms))
                index = int(round(ms * fps / 1000.0))
                self.last = (index, t)
                wanted = False
                if t >= self.start_ms:
                    if self.first is None:
                        self.first = (index, t)
                    if self.end_ms is not None and t >= self.end_ms:
                        self.next, self.last = (index, t), None
                        break
                    b = sample_bin(t, self.fps)
                    wanted = b is None or b != taken_bin
                    taken_bin = b
                gop.append((packet, index, t, wanted))
            if self.first is None and self.last is None and self.start_ms == 0:
                raise NotClean("no packets")
            if self.next is None and self.last is not None and self.last[0] + 1 < self.info.frame_count:
                # the packets end before the container's count: damage RangeReader seeks past
                raise NotClean("the packets end early")
            yield from self._decode(codec, gop)

    def _decode(self, codec, gop: list):
        """Decode a keyframe interval's packets up to its last wanted one; yield the wanted frames."""
        wanted = [i for i, item in enumerate(gop) if item[3]]
        if not wanted:
            return
        for packet, index, t, want in gop[:wanted[-1] + 1]:
            frames = codec.decode(packet)
            if len(frames) != 1 or frames[0].pts != packet.pts:
                raise NotClean("a packet did not decode to its frame")
            self.frames_decoded += 1
            if not want:
                continue
            frame = frames[0]
            if frame.width * frame.height > self.max_pixels:
                raise TooLargeError(f"a video frame of {frame.width}x{frame.height} exceeds "
                                    f"{self.max_pixels} pixels")
            image = frame.to_ndarray(format="bgr24")
            self._yielded_ms = t
            yield Frame(index, t, image)
