"""The analysis jobs, run in worker processes (or in-process with one worker).

Each process owns one FaceAnalyzer, built once by `init`. Jobs take and return
small picklable values: results drop the 224x224 aligned crops, and video
faces carry a small "identity patch" (the face plus margin, at most ~160 px
wide) so the main process can pick the best few faces of each track and have
only those identity-embedded later, without keeping whole frames.
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from mien.errors import BadInputError, TooLargeError, VanishedError
from mien.indexer.beneath import OutsideRootsError
from mien.indexer.crawl import OUTSIDE_ROOTS, VANISHED

PATCH_FACE_WIDTH = 160   # identity patches are downscaled so the face is at most this wide
PATCH_MARGIN = 0.6       # margin around the box, in face widths, kept in the patch

_analyzer = None


def _exit_with_parent() -> None:
    """A worker whose parent was killed (kill -9) would wait for jobs forever: the
    job queue's pipe stays open in the worker itself. Watch the parent instead."""
    import multiprocessing
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:
        return  # this is the main process (in-process runner)

    def watch() -> None:
        parent.join()       # returns when the parent's sentinel closes, i.e. it died
        os._exit(1)

    threading.Thread(target=watch, name="mien-parent-watch", daemon=True).start()


def _exit_without_teardown() -> None:
    """A pool worker ends with os._exit once multiprocessing's own exit work is done: its
    results are all handed over by then, and tearing down the interpreter (torch, LiteRT, ONNX
    Runtime and their modules) kept `mien index` waiting ~0.1 s at the end of every run."""
    import multiprocessing
    import multiprocessing.util

    if multiprocessing.parent_process() is None:
        return  # this is the main process (in-process runner): its exit is the caller's

    def leave() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    # the lowest priority: multiprocessing's _exit_function runs it after every other finaliser
    multiprocessing.util.Finalize(None, leave, exitpriority=-(1 << 30))


def init(engine_config, threads: int = 1) -> None:
    """Process initialiser: pin library threads, load the models once."""
    global _analyzer
    _exit_with_parent()
    _exit_without_teardown()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import cv2

    cv2.setNumThreads(threads)
    from mien.engine.faces import FaceAnalyzer

    if _analyzer is not None and _analyzer.config == engine_config:
        return  # same models already loaded in this process (in-process runs, tests)
    _analyzer = FaceAnalyzer(engine_config)
    torch = sys.modules.get("torch")  # only FEENet needs torch; never import it just for this
    if torch is not None:
        torch.set_num_threads(threads)


def analyzer():
    if _analyzer is None:
        raise RuntimeError("worker.init() was not called in this process")
    return _analyzer


@dataclass
class Patch:
    image: np.ndarray    # small BGR patch around the face
    face: object         # the Face with coordinates moved into the patch


@dataclass
class FrameResult:
    index: int
    timestamp_ms: int
    faces: list                       # every detected Face, rejected ones included
    patches: dict = field(default_factory=dict)   # face position -> Patch (passed faces only)


@dataclass
class ImageResult:
    faces: list = field(default_factory=list)      # every detected Face
    error: str = ""
    too_large: bool = False
    reason: str = ""      # the summary's reason when not the usual one (OUTSIDE_ROOTS, VANISHED)


def _strip(face):
    face.crop = None  # 224x224x3 aligned crop: not needed after embedding
    face.mesh = None  # 468x3 floats (5.6 kB): the main process keeps every face of a video
    return face


def identity_patch(image: np.ndarray, face) -> Patch:
    import cv2

    x1, y1, x2, y2 = face.bbox
    w = max(1.0, x2 - x1)
    h, wid = image.shape[:2]
    px1 = int(max(0, np.floor(x1 - PATCH_MARGIN * w)))
    py1 = int(max(0, np.floor(y1 - PATCH_MARGIN * w)))
    px2 = int(min(wid, np.ceil(x2 + PATCH_MARGIN * w)))
    py2 = int(min(h, np.ceil(y2 + PATCH_MARGIN * w)))
    patch = image[py1:py2, px1:px2]
    scale = min(1.0, PATCH_FACE_WIDTH / w)
    if scale < 1.0:
        # INTER_AREA only where bilinear would alias (below half size): it is ~10x slower,
        # and every passed video face gets a patch
        patch = cv2.resize(patch, (max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR)
    moved = copy.copy(face)
    offset = np.array([px1, py1], dtype=np.float32)
    moved.bbox = tuple(float(v) for v in ((x1 - px1) * scale, (y1 - py1) * scale,
                                          (x2 - px1) * scale, (y2 - py1) * scale))
    moved.landmarks5 = ((face.landmarks5 - offset) * scale).astype(np.float32)
    if face.landmarks68 is not None:
        moved.landmarks68 = ((face.landmarks68 - offset) * scale).astype(np.float32)
    moved.crop, moved.thumbnail, moved.identity, moved.expression = None, b"", None, None
    moved.mesh = None  # identity needs the 5 / 68 points only
    return Patch(np.ascontiguousarray(patch), moved)


def _passed(face) -> bool:
    return face.quality is not None and face.quality.passed


def _detect_assess_align(image) -> list:
    """Detect and FaceQA every face; align (crop + thumbnail) only the passed ones."""
    an = analyzer()
    faces = an.assess(image, an.detect(image))
    an.align(image, [f for f in faces if _passed(f)])
    return faces


def _embed_expressions(images, per_image) -> None:
    """Expression vectors of all passed faces of several images in one encoder call."""
    passed = [[f for f in faces if _passed(f)] for faces in per_image]
    if any(passed):
        analyzer().embed_expressions(images, passed)  # batched where the encoder batches (FEENet)


MIN_SIDE = 8  # the detectors refuse smaller images (mien.engine.faces.imageio.check_image)


# a file the worker cannot analyse: its result says why (refusal), the run goes on
REFUSALS = (OutsideRootsError, VanishedError, TooLargeError, BadInputError)


def refusal(exc: Exception) -> dict:
    """The ImageResult / RangeResult fields of a REFUSALS error (the first class that matches)."""
    if isinstance(exc, OutsideRootsError):
        return {"error": exc.strerror, "reason": OUTSIDE_ROOTS}
    if isinstance(exc, VanishedError):
        return {"error": str(exc), "reason": VANISHED}
    if isinstance(exc, TooLargeError):
        return {"error": str(exc), "too_large": True}
    return {"error": str(exc)}


def _read(path: str, roots) -> bytes:
    """The file's bytes, opened beneath its allowed root when roots are given (beneath.py)."""
    from mien.indexer.beneath import found_file_errors, read_file

    with found_file_errors(f"read image {path}"):
        return read_file(path, roots)


def analyze_image(path: str, max_pixels: int, roots=None) -> ImageResult:
    """A still: detect and FaceQA every face; expression and identity for the passed ones.
    roots: the allowed roots of a server-side run, beneath which the file is opened."""
    from mien.engine.faces import load_image

    try:
        image = load_image(_read(path, roots), max_pixels=max_pixels, name=path)
        if min(image.shape[:2]) < MIN_SIDE:
            return ImageResult(faces=[])  # a valid image (a 1x1 PNG) too small to hold a face
        faces = _detect_assess_align(image)
        _embed_expressions([image], [faces])
        analyzer().embed_identity(image, [f for f in faces if _passed(f)])
    except REFUSALS as exc:
        return ImageResult(**refusal(exc))
    return ImageResult(faces=[_strip(f) for f in faces])


def _detect_segment(images: list, guided: bool) -> list[list]:
    """Faces of consecutive sampled frames. The first frame is a keyframe (full
    detection); with `guided`, later frames use what the detector offers to
    re-find the previous frame's faces cheaply, and fall back to a full
    detection when one of them is lost: MediaPipe's detect_following (the
    whole-picture pass without tiles + regions around small faces), dlib's
    detect_near (HOG in regions around each face). Faces too small for those
    that enter the picture between keyframes are found at the next one."""
    an = analyzer()
    follow = an.detector.detect_following if guided and an.detector.follows else None
    near = an.detector.detect_near if guided and an.detector.refinds else None
    per_image, previous = [], []
    for i, image in enumerate(images):
        if i == 0 or (near is None and follow is None):
            faces = an.detect(image)
        elif follow is not None:
            faces = follow(image, [f.bbox for f in previous])
            if faces is None:
                faces = an.detect(image)  # a face got lost: the full detection
        elif not previous:
            faces = []  # nobody in the last frame: wait for the next keyframe
        else:
            found = near(image, [f.bbox for f in previous])
            faces = [f for f in found if f is not None]
            if len(faces) < len(found):
                faces = an.detect(image)  # a face got lost: look at the whole frame
            faces.sort(key=lambda f: (f.bbox[0], f.bbox[1]))
        per_image.append(faces)
        previous = faces
    return per_image


def analyze_frames(frames: list, guided: bool = False, choice=None) -> list[FrameResult]:
    """Consecutive sampled video frames [(index, timestamp_ms, image)]; no identity yet (per
    track later). guided=True: the first frame is a keyframe, see _detect_segment. choice (a
    patch_choice.PatchChoice): it cuts the identity patches some track may choose; None: every
    passed face gets one."""
    from contextlib import nullcontext

    from mien.engine.faces import occlusion, still_faces

    an = analyzer()
    images = [image for _, _, image in frames]
    per_image = _detect_segment(images, guided)
    # a run of followed frames: a face whose mouth area did not change keeps its occlusion score
    with occlusion.carried_over() if guided else nullcontext():
        for image, faces in zip(images, per_image):
            an.assess(image, faces)
            an.align(image, [f for f in faces if _passed(f)])
    # ... and a face whose mesh did not move keeps its 478-point AUs (fer-au-478)
    with still_faces.reused_when_still() if guided else nullcontext():
        _embed_expressions(images, per_image)
    results = []
    for (index, ts, image), faces in zip(frames, per_image):
        if choice is None:
            patches = {i: identity_patch(image, f) for i, f in enumerate(faces) if _passed(f)}
            results.append(FrameResult(index, ts, [_strip(f) for f in faces], patches))
            continue
        result = FrameResult(index, ts, [_strip(f) for f in faces])
        choice.add(result, lambda pos, image=image, faces=result.faces: identity_patch(image, faces[pos]))
        results.append(result)
    return results


@dataclass
class RangeResult:
    """What a worker found in one time range of a video (see video.RangeReader)."""
    frames: list = field(default_factory=list)   # FrameResult per sampled frame, in time order
    first: tuple | None = None    # (index, timestamp_ms) of the first frame at or after the start
    next: tuple | None = None     # ... at or after the end; None: the file ended in the range
    last: tuple | None = None     # the file's last frame, when it ended in this range
    backwards: bool = False       # a timestamp ran backwards after a seek
    seeked: bool = False
    frames_decoded: int = 0       # grabbed by this worker, seeking included
    gaps: list = field(default_factory=list)   # (ms before, ms after) of damage skipped (RangeReader.gaps)
    error: str = ""               # the file cannot be read: corrupt, not a video, too large
    too_large: bool = False
    reason: str = ""              # the summary's reason when not the usual one (OUTSIDE_ROOTS, VANISHED)


def segments(frames, key_ms: float, batch_frames: int):
    """Group sampled frames into analysis segments, each starting with a keyframe.

    A segment is a keyframe bin floor(t / key_ms), cut every `batch_frames`
    frames counted from the bin's start; both are absolute, so a range that
    starts on a multiple of key_ms gets the segments the whole file gets.
    key_ms 0: runs of batch_frames (no guidance, so the grouping does not change
    results)."""
    batch, key = [], None
    for frame in frames:
        k = int(frame.timestamp_ms // key_ms) if key_ms > 0 else None
        if batch and (len(batch) >= batch_frames or k != key):
            yield batch
            batch = []
        key = k
        batch.append(frame)
    if batch:
        yield batch


def analyze_range(path: str, start_ms: int, end_ms: int | None, fps: float | None, key_ms: float,
                  batch_frames: int, max_pixels: int, seek: bool = True, roots=None,
                  identity_faces: int | None = None) -> RangeResult:
    """Read and analyse the sampled frames of `path` in [start_ms, end_ms): this worker opens the
    file itself (nothing but the path travels; beneath the allowed roots when given), guided
    detection within each segment. A seeking read decodes only the packets its samples need where
    the stream allows it, with the same frames (video_packets.py). identity_faces: the best faces
    per track the driver embeds; only patches it may choose are cut and shipped (patch_choice.py).
    None: every passed face gets one."""
    from mien.indexer.patch_choice import PatchChoice
    from mien.indexer.video import RangeReader
    from mien.indexer.video_packets import PacketRangeReader

    if seek:
        reader = PacketRangeReader(path, start_ms, end_ms, fps, max_pixels=max_pixels, roots=roots)
    else:   # counted frame numbers (a file whose ranges did not meet): every frame, from the first
        reader = RangeReader(path, start_ms, end_ms, fps, seek=False, max_pixels=max_pixels, roots=roots)
    out = RangeResult()
    guided = key_ms > 0
    choice = None if identity_faces is None else PatchChoice(identity_faces)
    try:
        for segment in segments(reader, key_ms, max(1, batch_frames)):
            out.frames.extend(analyze_frames([(f.index, f.timestamp_ms, f.image) for f in segment], guided,
                                             choice))
    except REFUSALS as exc:
        return RangeResult(**refusal(exc))
    except Exception as exc:  # noqa: BLE001 - OpenCV/FFmpeg failing on a damaged stream
        import cv2

        if not isinstance(exc, cv2.error):
            raise
        return RangeResult(error=f"video decoding failed: {exc}")
    out.first, out.next, out.last = reader.first, reader.next, reader.last
    out.backwards, out.seeked, out.frames_decoded = reader.backwards, reader.seeked, reader.frames_decoded
    out.gaps = list(reader.gaps)
    return out


def embed_patches(patches: list[Patch]) -> list[np.ndarray | None]:
    """Identity vectors of identity patches (one face each), in one encoder call."""
    return patch_identities(analyzer().identity_encoder, patches)


def patch_identities(encoder, patches: list[Patch]) -> list[np.ndarray | None]:
    """`encoder`'s identity vectors of identity patches, in one call (the driver's identity step,
    driver_identity.py, calls it with an encoder of its own)."""
    # copies: an encoder may fill a face's landmarks (dlib's 68 points), and the patches are the caller's
    vectors = encoder.embed_many([(patch.image, copy.copy(patch.face)) for patch in patches])
    return [None if v is None else np.asarray(v, np.float32) for v in vectors]


def encoders() -> dict:
    """The analyzer's encoder names (the store refuses to mix encoders)."""
    return dict(analyzer().encoders)
