"""Read a video's sampled frames, the whole file or one time range of it.

Sampling is absolute, so it never depends on where reading started: a frame
is sampled iff it is the first decoded frame of its time bin
floor(t / step), step = 1000 / fps ms (every frame when fps is None). A
range [start_ms, end_ms) whose bounds are multiples of the step therefore
holds exactly the samples the sequential read has in that span, and a long
video can be cut into ranges that workers read on their own (video_jobs.py).

Timestamps come from the container (CAP_PROP_POS_MSEC after each grab), so
variable-frame-rate files are sampled by time, not by frame count. Frames that
are not sampled are only grabbed, never converted to BGR.

`RangeReader` seeks near the range start and reads forward to it. OpenCV's
seek lands on a frame number it derives from the average frame rate, which is
exact for constant-frame-rate files and wrong for variable ones; so a reader
reports the first frame at or after its start and the first frame at or after
its end, and the driver checks that consecutive ranges meet on the same
(frame index, timestamp). When they do not, the rest of the file is read
without seeking (see video_jobs.py).

Bad input: the container's figures (rate, frame count) are bounded before
anyone plans on them; a frame that does not decode before the container's end
is damage, skipped by seeking past it (`_resync`), so a file damaged in the
middle keeps what follows and a truncated one keeps what it has; a container
clock that restarts (recordings joined end to end) runs on from the frame
before; a file gone, replaced, or decoding to frames over max_pixels fails
with a BadInputError / TooLargeError that the worker reports, never raises.
The file is opened once, beneath its allowed root in a server (beneath.py),
and OpenCV reads that open file, never the name again.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from mien.errors import BadInputError, TooLargeError


@dataclass
class Frame:
    index: int          # frame number in the container, from 0
    timestamp_ms: int
    image: np.ndarray   # BGR uint8


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int

    @property
    def duration_ms(self) -> float:
        """The container's estimate (frame count / average rate); 0 when it has none."""
        return self.frame_count * 1000.0 / self.fps if self.fps > 0 and self.frame_count > 0 else 0.0


# the container's figures are only trusted within these bounds: a damaged or hostile
# header can claim 0, negative, NaN or absurd values, and a plan built on them would be
# absurd too (billions of ranges)
MAX_FPS = 10_000.0
MIN_FRAME_BYTES = 1     # no codec stores a frame in less (a file of N bytes has at most N frames)


def _figure(value) -> float:
    """A container figure as a finite number >= 0 (0: unknown)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def _info(cap, max_pixels: int, file_bytes: int | None = None) -> VideoInfo:
    import cv2

    if not cap.isOpened():
        raise BadInputError("no video stream (the container opens to nothing decodable)")
    width = int(_figure(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
    height = int(_figure(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if width <= 0 or height <= 0:
        raise BadInputError("no video stream")
    if width * height > max_pixels:
        raise TooLargeError(f"video frames of {width}x{height} exceed {max_pixels} pixels")
    fps = _figure(cap.get(cv2.CAP_PROP_FPS))
    if fps > MAX_FPS:
        fps = 0.0
    frames = int(_figure(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    if file_bytes is not None and frames * MIN_FRAME_BYTES > file_bytes:
        frames = 0  # more frames than the file has bytes: the header lies
    return VideoInfo(width, height, fps, frames)


def _open_file(path: str, roots) -> int:
    """A descriptor of the video (beneath its allowed root when roots are given: beneath.py),
    or BadInputError when the file is not there any more. OutsideRootsError passes."""
    from mien.indexer.beneath import found_file_errors, open_file

    with found_file_errors("open the file"):
        return open_file(path, roots)


def _capture(fd: int):
    """A cv2.VideoCapture reading the open file `fd` (never its name: see beneath.py).

    FFmpeg decodes on as many threads as OpenCV may use: one in a pool worker (the other
    cores run the other workers; a second decoding thread there costs ~35 % more CPU per
    frame for the same frames), the machine's otherwise."""
    import cv2

    from mien.indexer.beneath import fd_path

    if cv2.getNumThreads() == 1:
        return cv2.VideoCapture(fd_path(fd), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    return cv2.VideoCapture(fd_path(fd))


def probe_open(fd: int, max_pixels: int) -> VideoInfo:
    """The open file `fd` read just far enough to know it is a decodable video of sane size."""
    cap = _capture(fd)
    try:
        return _info(cap, max_pixels, os.fstat(fd).st_size)
    finally:
        cap.release()


def probe(path: str, max_pixels: int, roots=None) -> VideoInfo:
    """Open `path` just far enough to know it is a decodable video of sane size."""
    fd = _open_file(path, roots)
    try:
        return probe_open(fd, max_pixels)
    finally:
        os.close(fd)


def sample_bin(timestamp_ms: int, fps: float | None) -> int | None:
    """The sampling bin of a timestamp (None: every frame is sampled)."""
    if not fps:
        return None
    return math.floor(timestamp_ms * fps / 1000.0 + 1e-9)


def mark_frame(reader, index: int, t: int) -> bool | None:
    """A frame read, in the reader's first / next / last (its first frame at or after start_ms,
    at or after end_ms, the last read): None when it lies before the range, False when it ends
    the range (the file goes on: no last), True inside."""
    reader.last = (index, t)
    if t < reader.start_ms:
        return None
    if reader.first is None:
        reader.first = (index, t)
    if reader.end_ms is not None and t >= reader.end_ms:
        reader.next, reader.last = (index, t), None
        return False
    return True


class RangeReader:
    """Iterate the sampled `Frame`s of `path` with start_ms <= timestamp < end_ms.

    end_ms None = to the end of the file. seek=False reads from the first frame
    (grabbing, not converting, the frames before start_ms): slower, but the
    frame numbers are counted, not derived from timestamps.

    After iterating: `first` and `next` are (index, timestamp_ms) of the first
    frame at or after start_ms and at or after end_ms (None: the file ended
    before), `last` the last frame of the file when it ended within the range,
    `backwards` whether a timestamp ran backwards after a seek, `seeked`
    whether the reader seeked, `gaps` the (last good ms, next good ms) of each
    damaged stretch skipped whose last good frame is in the range (so each gap
    belongs to exactly one range, however the file is cut).
    """

    # how far before the start a seek aims, in frames of the average rate: the first
    # try, then a second when the first landed past the start
    MARGINS = (2, 60)
    # a frame that does not decode before the container's end: seek 1, 2, ... 10 steps
    # past the last good frame, then 20, 40, ... steps, then the container's last frame
    # (damage in the middle of a file loses the damaged stretch, not the rest of the
    # file; a truncated file costs a few failed seeks per range past its end)
    RESYNC_STEP_MS = 1000.0
    RESYNC_LINEAR = 10
    RESYNC_TRIES = 40
    # the container's clock running back by more than this (or 2 frames) is a restart
    # (streams joined end to end): time goes on from the frame before
    RESTART_MS = 500.0

    def __init__(self, path: str, start_ms: int = 0, end_ms: int | None = None, fps: float | None = 2.0,
                 *, seek: bool = True, max_pixels: int = 100_000_000, roots=None, fd: int | None = None):
        self.path, self.start_ms, self.end_ms, self.fps = path, int(start_ms), end_ms, fps
        self.seek, self.max_pixels = seek, max_pixels
        self.roots = roots      # allowed roots: the file is opened beneath them (beneath.py)
        self._fd = fd           # the open file, while iterating: every capture reads it (given:
                                # a descriptor the caller opened, closed here after reading)
        self.info: VideoInfo | None = None
        self.first = self.next = self.last = None
        self.backwards = False
        self.seeked = False
        self.frames_decoded = 0   # frames grabbed by this reader (seeking included)
        self.gaps: list = []      # (ms before, ms after) of damage skipped by _resync

    def _open(self):
        if self._fd is None:
            self._fd = _open_file(self.path, self.roots)
        cap = _capture(self._fd)
        try:
            self.info = _info(cap, self.max_pixels, os.fstat(self._fd).st_size)
        except Exception:
            cap.release()
            raise
        return cap

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _position(self, cap):
        """Seek near start_ms: (cap, index, ms) of the first frame there; index None to
        read from the first frame; ms None when the file ends before start_ms."""
        import cv2

        native = self.info.fps if self.info.fps > 0 else 25.0
        for margin in self.MARGINS:
            target = self.start_ms - margin * 1000.0 / native
            if target <= 0 or not cap.set(cv2.CAP_PROP_POS_MSEC, target):
                break
            if not cap.grab():
                # nothing decodes there: damage (frames further on, found by seeking past it)
                # or the end of the file (if the seek lied, the driver sees the ranges do not meet)
                self.seeked = True
                found = self._resync(cap, target)
                return (cap, found[0], found[1]) if found else (cap, -1, None)
            self.frames_decoded += 1
            index = int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) - 1
            ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            if not math.isfinite(ms):
                break  # no usable time after the seek: read from the first frame
            if index >= 0 and ms + 1e-3 < self.start_ms:
                self.seeked = True
                return cap, index, ms
            if margin == self.MARGINS[-1] and index >= 0:
                self.seeked = True  # landed past the start: the driver's check decides
                return cap, index, ms
        # cannot seek here: read from the first frame
        cap.release()
        return self._open(), None, None

    def _resync(self, cap, raw_ms: float | None):
        """The frame after a stretch that does not decode: (index, container ms) of the first
        frame past raw_ms found by seeking forward, or None at the container's end."""
        import cv2

        end = self.info.duration_ms
        if raw_ms is None or end <= 0:
            return None
        last_frame = end - 1000.0 / (self.info.fps if self.info.fps > 0 else 25.0)
        tried = raw_ms
        for k in range(1, self.RESYNC_TRIES + 1):
            steps = k if k <= self.RESYNC_LINEAR else self.RESYNC_LINEAR * 2 ** (k - self.RESYNC_LINEAR)
            target = min(raw_ms + steps * self.RESYNC_STEP_MS, last_frame)  # the last try: the last frame
            if target <= tried or not cap.set(cv2.CAP_PROP_POS_MSEC, target):
                return None
            tried = target
            while cap.grab():  # the seek may land before raw_ms: read on past it
                self.frames_decoded += 1
                ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                if not math.isfinite(ms) or ms > target + self.RESYNC_STEP_MS:
                    break
                if ms > raw_ms:
                    return int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) - 1, ms
        return None

    def __iter__(self):
        import cv2

        try:
            cap = self._open()
        except BaseException:
            self._close()
            raise
        try:
            native = self.info.fps if self.info.fps > 0 else 25.0
            index, ms, pending = -1, None, False
            if self.seek and self.start_ms > 0:
                cap, at, at_ms = self._position(cap)
                if at is not None and at_ms is None:
                    return  # past the end of the file
                if at is not None:
                    index, ms, pending = at, at_ms, True
            last_ms = -1.0
            raw_last = None  # the container's time of the previous frame
            offset = 0.0     # added to the container's time since its clock restarted
            restart = max(self.RESTART_MS, 2000.0 / native)
            taken = None   # the sampling bin whose frame was taken
            gap_from = None  # time of the last good frame before a resync
            while True:
                if pending:
                    pending = False  # the frame the seek grabbed
                elif cap.grab():
                    self.frames_decoded += 1
                    index += 1
                    ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                else:
                    # after a clock restart a container time names a moment of each part: a
                    # seek by it could land back in an earlier part and read it again, forever
                    found = self._resync(cap, raw_last) if offset == 0 else None
                    if found is None:
                        break
                    index, ms = max(found[0], index + 1), found[1]
                    gap_from = last_ms
                if not math.isfinite(ms):
                    ms = 0.0
                if ms <= 0 and index > 0:
                    # no timestamp (a container without them, or the frame FFmpeg flushes at the
                    # end of an MPEG program stream): taken for a clock restart, it sent the
                    # resync back to the start of the file, again and again
                    ms = index * 1000.0 / native
                if raw_last is not None and ms < raw_last - restart:
                    offset = last_ms + 1000.0 / native - ms
                raw_last = ms
                ms += offset
                if ms < last_ms and self.seeked:
                    self.backwards = True
                ms = max(ms, last_ms)  # never let time run backwards
                last_ms = ms
                t = int(round(ms))
                if gap_from is not None:
                    before, gap_from = int(round(gap_from)), None
                    if before >= self.start_ms:  # the previous range reports gaps that start in it
                        self.gaps.append((before, t))
                place = mark_frame(self, index, t)
                if place is None:
                    continue
                if not place:
                    return
                b = sample_bin(t, self.fps)
                if b is not None and b == taken:
                    continue
                ok, image = cap.retrieve()
                if not ok or image is None:
                    continue  # a damaged frame: skip it, keep the rest of the video
                if image.shape[0] * image.shape[1] > self.max_pixels:
                    # the stream's size changed after the header (or the header lied)
                    raise TooLargeError(f"a video frame of {image.shape[1]}x{image.shape[0]} exceeds "
                                        f"{self.max_pixels} pixels")
                taken = b
                yield Frame(index, t, image)
        finally:
            cap.release()
            self._close()
