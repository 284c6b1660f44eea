"""Sample a video's frames at a fixed rate, decoding in a background thread.

Timestamps come from the container (CAP_PROP_POS_MSEC after each grab), so
variable-frame-rate files are sampled by time, not by frame count. Frames that
are not sampled are only grabbed, never converted to BGR. The queue between
the decoder thread and the consumer is bounded, so at most `queue_size`
decoded frames are in memory whatever the video length.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import numpy as np

from mien.errors import BadInputError, TooLargeError

_END = object()


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


def probe(path: str, max_pixels: int) -> VideoInfo:
    """Open `path` just far enough to know it is a decodable video of sane size."""
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            raise BadInputError("no video stream (the container opens to nothing decodable)")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            raise BadInputError("no video stream")
        if width * height > max_pixels:
            raise TooLargeError(f"video frames of {width}x{height} exceed {max_pixels} pixels")
        return VideoInfo(width, height, float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
                         int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    finally:
        cap.release()


class FrameSampler:
    """Iterate `Frame`s of `path` sampled at `fps` (None = every frame).

    Use as a context manager or call close(): closing stops the decoder thread
    even when the consumer stops early.
    """

    def __init__(self, path: str, fps: float | None = 2.0, *, max_pixels: int = 100_000_000,
                 queue_size: int = 8):
        self.path = path
        self.fps = fps
        self.info = probe(path, max_pixels)
        self.max_pixels = max_pixels
        self.frames_decoded = 0      # every grabbed frame
        self.duration_ms = 0         # timestamp of the last grabbed frame
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, name="mien-decode", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        import cv2

        cap = cv2.VideoCapture(self.path)
        try:
            step = None if not self.fps else 1000.0 / self.fps
            native = self.info.fps if self.info.fps > 0 else 25.0
            next_ms = 0.0
            index = -1
            last_ms = -1.0
            while not self._stop.is_set():
                if not cap.grab():
                    break
                index += 1
                ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                if ms <= 0 and index > 0:
                    ms = index * 1000.0 / native  # container without timestamps
                ms = max(ms, last_ms)  # never let time run backwards
                last_ms = ms
                self.frames_decoded = index + 1
                self.duration_ms = int(round(ms))
                if step is not None and ms + 1e-3 < next_ms:
                    continue
                ok, image = cap.retrieve()
                if not ok or image is None:
                    continue  # a damaged frame: skip it, keep the rest of the video
                if step is not None:
                    # the next sample is due one step after this one; catch up across gaps
                    next_ms = max(next_ms + step, ms + step * 0.5)
                if not self._put(Frame(index, int(round(ms)), image)):
                    return
            self._put(_END)
        except Exception as exc:  # surfaced to the consumer
            self._put(exc)
        finally:
            cap.release()

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise BadInputError(f"video decoding failed: {item}") from item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
