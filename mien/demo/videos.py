"""Test and demo videos generated from the package photos with cv2.VideoWriter.

A clip is a virtual camera over one or two "portraits" (a square crop around
a face of a package photo): it pans across them or zooms in, and chosen
frames are Gaussian-blurred or rotated. Everything is deterministic, and the
returned `Clip` says which frames were blurred or rotated and where each face
is, so tests can check the indexer against the truth.

.mp4 files are written with the mp4v codec, .avi files with MJPG; both are
decoded by the FFmpeg backend of opencv-python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Face boxes of the package photos as fractions (x1, y1, x2, y2) of the image,
# measured once with dlib's HOG detector. They only frame the virtual camera.
FACE_BOXES = {
    "obama": (0.384, 0.125, 0.678, 0.360),
    "obama2": (0.273, 0.242, 0.700, 0.465),
    "obama3": (0.452, 0.130, 0.649, 0.252),
    "biden": (0.430, 0.109, 0.760, 0.254),
    "astronaut": (0.342, 0.148, 0.518, 0.324),
    "grace_hopper": (0.352, 0.232, 0.715, 0.542),
    "t1_centre": (0.352, 0.333, 0.435, 0.454),   # one face of t1 (a smiling man)
}

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}

PORTRAIT_FACTOR = 2.4    # portrait side, in face widths


def photo(name: str) -> np.ndarray:
    """A package photo by name: t1, astronaut, grace_hopper, biden, obama, obama2, obama3."""
    from mien.demo import photos

    if name in ("t1", "t1_centre"):
        return photos.t1()
    if name == "astronaut":
        return photos.astronaut()
    if name == "grace_hopper":
        return photos.grace_hopper()
    return photos.face_recognition_photo(f"{name}.jpg")


def portrait(name: str) -> np.ndarray:
    """A square crop centred on the face of photo `name`, padded by edge replication."""
    import cv2

    image = photo(name)
    h, w = image.shape[:2]
    fx1, fy1, fx2, fy2 = FACE_BOXES[name]
    cx, cy = (fx1 + fx2) / 2 * w, (fy1 + fy2) / 2 * h
    side = int(round(max((fx2 - fx1) * w, (fy2 - fy1) * h) * PORTRAIT_FACTOR))
    pad = side
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    x1, y1 = int(round(cx - side / 2)) + pad, int(round(cy - side / 2)) + pad
    return np.ascontiguousarray(padded[y1:y1 + side, x1:x1 + side])


@dataclass
class Clip:
    path: Path
    fps: float
    size: tuple[int, int]                   # (width, height)
    frames: int
    people: list[str]
    blurred: set[int] = field(default_factory=set)   # frame indices
    rotated: set[int] = field(default_factory=set)
    # per frame, per person: face centre (x, y) and face side in pixels (unrotated frames)
    faces: list[list[tuple[float, float, float]]] = field(default_factory=list)

    def timestamp_ms(self, frame_index: int) -> int:
        return int(round(frame_index * 1000.0 / self.fps))

    @property
    def duration_ms(self) -> int:
        return self.timestamp_ms(self.frames - 1)


def _paste(canvas: np.ndarray, tile: np.ndarray, cx: float, cy: float, x_lo: int, x_hi: int) -> None:
    """Paste `tile` centred at (cx, cy), clipped to the canvas columns [x_lo, x_hi)."""
    th, tw = tile.shape[:2]
    x1, y1 = int(round(cx - tw / 2)), int(round(cy - th / 2))
    cx1, cy1 = max(x1, x_lo), max(y1, 0)
    cx2, cy2 = min(x1 + tw, x_hi), min(y1 + th, canvas.shape[0])
    if cx2 <= cx1 or cy2 <= cy1:
        return
    canvas[cy1:cy2, cx1:cx2] = tile[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]


def render_frame(portraits: list[np.ndarray], t: float, size: tuple[int, int], motion: str,
                 face_height: float) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """One frame at time t in [0, 1]: the canvas and each face's (cx, cy, side)."""
    import cv2

    width, height = size
    canvas = np.full((height, width, 3), 96, np.uint8)
    n = len(portraits)
    zoom = 1.0
    shift = 0.0
    if motion == "zoom":
        zoom = 0.8 + 0.5 * t          # faces grow by 60 % over the clip
    elif motion == "pan":
        shift = (t - 0.5) * 0.3       # the scene slides 30 % of a slot across the frame
    faces = []
    for k, tile in enumerate(portraits):
        slot_lo, slot_hi = int(width * k / n), int(width * (k + 1) / n)
        slot_w = slot_hi - slot_lo
        face_side = face_height * height * zoom
        scale = face_side * PORTRAIT_FACTOR / tile.shape[0]
        scaled = cv2.resize(tile, None, fx=scale, fy=scale,
                            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        cx = slot_lo + slot_w * (0.5 + shift)
        cy = height * 0.5
        _paste(canvas, scaled, cx, cy, slot_lo, slot_hi)
        faces.append((cx, cy, face_side))
    return canvas, faces


def write_clip(path, people=("obama",), *, motion: str = "pan", fps: float = 10.0,
               size: tuple[int, int] = (320, 240), seconds: float = 3.0,
               blur_frames=(), rotate_frames=(), blur_sigma: float = 2.5, rotate_deg: float = 30.0,
               face_height: float | None = None) -> Clip:
    """Write a clip of `people` (photo names, side by side) and return its truth.

    motion: "pan", "zoom" or "static". blur_frames / rotate_frames: frame
    indices to Gaussian-blur (sigma in pixels) or rotate about the centre.
    """
    import cv2

    path = Path(path)
    fourcc = FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise ValueError(f"write_clip writes {sorted(FOURCC)}, not {path.suffix!r}")
    if motion not in ("pan", "zoom", "static"):
        raise ValueError(f"motion must be pan, zoom or static, not {motion!r}")
    people = list(people)
    face_height = face_height or (0.45 if len(people) == 1 else 0.36)
    portraits = [portrait(name) for name in people]
    count = max(1, int(round(seconds * fps)))
    blurred, rotated = set(blur_frames) & set(range(count)), set(rotate_frames) & set(range(count))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), tuple(size))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} into {path}")
    clip = Clip(path, float(fps), tuple(size), count, people, blurred, rotated)
    try:
        for i in range(count):
            t = i / max(1, count - 1)
            frame, faces = render_frame(portraits, t, size, motion, face_height)
            if i in rotated:
                matrix = cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), rotate_deg, 1.0)
                frame = cv2.warpAffine(frame, matrix, tuple(size), borderMode=cv2.BORDER_REPLICATE)
            if i in blurred:
                frame = cv2.GaussianBlur(frame, (0, 0), blur_sigma)
            writer.write(frame)
            clip.faces.append(faces)
    finally:
        writer.release()
    return clip


def expression_clip(path, segments=(("obama.jpg", 3.0), ("obama2.jpg", 3.0), ("obama.jpg", 2.0)),
                     *, fps: float = 10.0, size=(640, 480)) -> list[tuple[float, float, str]]:
    """Write an MJPG AVI that shows package photos one after another.

    Each photo is scaled to fit the frame (centred, letterboxed), with a little
    per-frame noise so frames are not bit-identical. Returns the timeline as
    (start_s, end_s, photo). obama.jpg is a broad smile, obama2.jpg the same man
    speaking with his mouth open: two clearly different expressions of one person.
    """
    import cv2

    from mien.demo import photos

    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), "cv2.VideoWriter could not open an MJPG AVI"
    rng = np.random.default_rng(0)
    timeline, t = [], 0.0
    for name, seconds in segments:
        img = photos.face_recognition_photo(name)
        scale = min(w / img.shape[1], h / img.shape[0])
        small = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        frame = np.zeros((h, w, 3), np.uint8)
        y0, x0 = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
        frame[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
        for _ in range(int(round(seconds * fps))):
            noise = rng.integers(-2, 3, frame.shape, dtype=np.int16)
            writer.write(np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8))
        timeline.append((t, t + seconds, name))
        t += seconds
    writer.release()
    return timeline


def demo_clips(directory, *, fps: float = 10.0, seconds: float = 3.0) -> list[Clip]:
    """The demo archive's videos: a pan with blurred frames, a zoom with rotated
    frames, and a two-person clip (MJPG in .avi)."""
    directory = Path(directory)
    n = int(round(fps * seconds))
    return [
        write_clip(directory / "obama_pan.mp4", ["obama"], motion="pan", fps=fps, seconds=seconds,
                   blur_frames=range(n // 3, n // 3 + max(2, n // 6))),
        write_clip(directory / "astronaut_zoom.mp4", ["astronaut"], motion="zoom", fps=fps,
                   seconds=seconds, rotate_frames=range(n // 2, n // 2 + max(2, n // 6))),
        write_clip(directory / "obama_and_biden.avi", ["obama2", "biden"], motion="pan", fps=fps,
                   size=(640, 360), seconds=seconds),
    ]

