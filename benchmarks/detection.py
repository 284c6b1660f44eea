"""Face detection: recall and time of the MediaPipe front end vs dlib HOG (the 0.1 default).

    .venv/bin/python benchmarks/detection.py [--repeat 3] [--out detection.json]
    .venv/bin/python benchmarks/detection.py --build-truth   # re-derive the photo truth (then look at it)

Material (all public, nothing downloaded but the packages' own photos):
- photos: every photo mien.demo.photos can read (insightface's t1.jpg and
  Tom_Hanks, skimage's astronaut, matplotlib's grace_hopper, face_recognition's
  8 test photos), each as is, at half size, and rotated by 25 degrees;
- frames: 1280x720 clips rendered by mien.demo.videos (30 fps, sampled at
  2 fps by the indexer's RangeReader, so with the codec's artefacts): a pan
  over two faces, a zoom, and a 6-person row of small faces.

Truth: photos — benchmarks/data/detection_truth.json, the union of both
detectors' hits on the original photos (by --build-truth), every one checked
by eye on the contact sheet it writes (/tmp/detection_truth.png); the half
size and rotated variants map those faces with the same transform. Frames —
the renderer's own face positions. A face counts if its side is >= 48 px
(both detectors run with min_face 40). A detection finds a face if the mean
of its 5 points is within 0.5 face sides of the face's centre; detections
matching no face are listed as `extra` (partial faces at the edge of a
portrait count there too).

Time: CPU time (time.process_time) of each detector's detect() per image,
alternated image by image, the smallest of --repeat runs (the machine is
shared: CPU time and the minimum are the least disturbed by other
processes, for both detectors alike), one thread each (LiteRT 1 thread, OpenCV 1 thread,
dlib is single-threaded); the machine is shared, so ratios within one run are
what to read.

--profile adds where the MediaPipe front end's CPU time goes on the photos
(each stage's own time, without the stages it calls; the run with the
smallest total per image): BlazeFace and FaceMesh invokes, working copies,
letterboxing, decoding, NMS, mesh crops, the rest (Python).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_table, write_json  # noqa: E402

TRUTH = Path(__file__).resolve().parent / "data" / "detection_truth.json"
MIN_SIDE = 48
MATCH = 0.5


def photo_sources() -> dict:
    import cv2

    from mien.demo import photos

    out = {"t1": photos.t1(), "astronaut": photos.astronaut(), "grace_hopper": photos.grace_hopper(),
           "Tom_Hanks_54745": cv2.imread(str(photos.tom_hanks_path()))}
    folder = photos.face_recognition_images_dir()
    for name in sorted(os.listdir(folder)):
        out[Path(name).stem] = photos.face_recognition_photo(name)
    return out


def face_of(face) -> list[float]:
    """(cx, cy, side) of a detected face: its 5 points' mean and 2.2 inter-ocular distances."""
    c = face.landmarks5.mean(0)
    return [float(c[0]), float(c[1]), float(max(2.2 * face.inter_ocular, 1.0))]


def build_truth(detectors) -> int:
    import cv2

    truth, crops = {}, []
    for name, image in photo_sources().items():
        found = []
        for det in detectors.values():
            for face in det.detect(image):
                f = face_of(face)
                if not any(np.hypot(f[0] - g[0], f[1] - g[1]) < MATCH * g[2] for g in found):
                    found.append(f)
        truth[name] = found
        for cx, cy, side in found:
            s = int(side)
            patch = cv2.getRectSubPix(image, (2 * s, 2 * s), (cx, cy))
            crops.append(cv2.putText(cv2.resize(patch, (160, 160)), name[:14], (2, 12),
                                     cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1))
    TRUTH.parent.mkdir(parents=True, exist_ok=True)
    TRUTH.write_text(json.dumps(truth, indent=1) + "\n")
    rows = [np.hstack(crops[i:i + 8] + [np.zeros_like(crops[0])] * (8 - len(crops[i:i + 8])))
            for i in range(0, len(crops), 8)]
    cv2.imwrite("/tmp/detection_truth.png", np.vstack(rows))
    print(f"wrote {TRUTH} ({sum(len(v) for v in truth.values())} faces) and /tmp/detection_truth.png")
    return 0


def photo_cases() -> list[tuple[str, np.ndarray, list]]:
    import cv2

    truth = json.loads(TRUTH.read_text())
    cases = []
    for name, image in photo_sources().items():
        faces = truth[name]
        cases.append((name, image, faces))
        half = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        cases.append((name + "@0.5", half, [[x / 2, y / 2, s / 2] for x, y, s in faces]))
        h, w = image.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 25.0, 1.0)
        rotated = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        moved = [[*(m @ np.array([x, y, 1.0])), s] for x, y, s in faces]
        inside = [f for f in moved if 0 <= f[0] < w and 0 <= f[1] < h]
        cases.append((name + "@rot25", rotated, inside))
    return cases


def frame_cases(folder: Path) -> list[tuple[str, np.ndarray, list]]:
    from mien.demo.videos import write_clip
    from mien.indexer.video import RangeReader

    clips = {
        "pan2": write_clip(folder / "pan2.mp4", ["obama2", "biden"], motion="pan", fps=30, size=(1280, 720),
                           seconds=3.0),
        "zoom": write_clip(folder / "zoom.mp4", ["astronaut"], motion="zoom", fps=30, size=(1280, 720),
                           seconds=3.0),
        "row6": write_clip(folder / "row6.mp4", ["obama", "biden", "astronaut", "grace_hopper", "obama3",
                                                 "t1_centre"], motion="pan", fps=30, size=(1280, 720),
                           seconds=3.0, face_height=0.12),
    }
    cases = []
    for name, clip in clips.items():
        for frame in RangeReader(str(clip.path), 0, None, 2.0, seek=False):
            truth = [list(f) for f in clip.faces[frame.index]]
            cases.append((f"{name}#{frame.index}", frame.image, truth))
    return cases


def score(faces, truth) -> tuple[int, int, int]:
    """(faces counted, found, extra detections)."""
    counted = [t for t in truth if t[2] >= MIN_SIDE]
    used = set()
    found = 0
    for t in counted:
        for i, f in enumerate(faces):
            c = f.landmarks5.mean(0)
            if i not in used and np.hypot(c[0] - t[0], c[1] - t[1]) < MATCH * t[2]:
                used.add(i)
                found += 1
                break
    extra = sum(1 for i, f in enumerate(faces) if i not in used
                and not any(np.hypot(*(f.landmarks5.mean(0) - t[:2])) < MATCH * t[2] for t in truth))
    return len(counted), found, extra


class StageClock:
    """Exclusive CPU time per named stage: wraps module functions in place (restored by close())."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.stack: list[list[float]] = []
        self.patched: list = []

    def wrap(self, owner, attr: str, stage) -> None:
        fn = getattr(owner, attr)

        def timed(*args, **kwargs):
            name = stage(*args) if callable(stage) else stage
            self.stack.append([time.process_time(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                start, inner = self.stack.pop()
                spent = time.process_time() - start
                self.seconds[name] = self.seconds.get(name, 0.0) + spent - inner
                self.calls[name] = self.calls.get(name, 0) + 1
                if self.stack:
                    self.stack[-1][1] += spent

        setattr(owner, attr, timed)
        self.patched.append((owner, attr, fn))

    def reset(self) -> None:
        self.seconds, self.calls = {}, {}

    def close(self) -> None:
        for owner, attr, fn in reversed(self.patched):
            setattr(owner, attr, fn)


def profile_mediapipe(detector, cases, repeat: int) -> list[dict]:
    """Per-stage CPU time of detector.detect over the cases, summed over the cases."""
    from mien.engine.faces import blazeface, facemesh, litert, mediapipe_detector

    clock = StageClock()
    names = {blazeface.MODEL: "BlazeFace invoke", facemesh.MODEL: "FaceMesh invoke"}
    clock.wrap(litert.TFLiteModel, "run", lambda model, *_: names.get(model.name, model.name))
    clock.wrap(blazeface, "shrink", "working copies (shrink)")
    clock.wrap(blazeface, "letterbox", "letterbox")
    clock.wrap(blazeface, "decode", "decode")
    clock.wrap(blazeface, "weighted_nms", "weighted NMS")
    clock.wrap(facemesh, "crop", "FaceMesh crops")
    clock.wrap(mediapipe_detector.MediaPipeDetector, "detect", "rest (Python)")
    totals: dict[str, list[float]] = {}
    try:
        for _, image, _ in cases:
            best = None
            for _ in range(repeat):
                clock.reset()
                detector.detect(image)
                spent = sum(clock.seconds.values())
                if best is None or spent < best[0]:
                    best = (spent, dict(clock.seconds), dict(clock.calls))
            for name, sec in best[1].items():
                row = totals.setdefault(name, [0.0, 0])
                row[0] += sec
                row[1] += best[2][name]
    finally:
        clock.close()
    whole = sum(sec for sec, _ in totals.values())
    rows = [{"stage": name, "ms": 1000 * sec, "share": sec / whole, "calls": n,
             "ms_per_call": 1000 * sec / max(n, 1)}
            for name, (sec, n) in sorted(totals.items(), key=lambda kv: -kv[1][0])]
    rows.append({"stage": "total", "ms": 1000 * whole, "share": 1.0, "calls": len(cases), "ms_per_call": ""})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build-truth", action="store_true")
    ap.add_argument("--no-frames", action="store_true")
    ap.add_argument("--profile", action="store_true",
                    help="also: the MediaPipe front end's time per stage on the photos")
    ap.add_argument("--out")
    args = ap.parse_args()
    os.environ.setdefault("MIEN_LITERT_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)
    from mien.engine.faces import EngineConfig
    from mien.engine.faces import registry

    detectors = {"dlib": registry.build("detector", EngineConfig(detector="dlib")),
                 "mediapipe": registry.build("detector", EngineConfig(detector="mediapipe"))}
    if args.build_truth:
        return build_truth(detectors)
    groups = {"photos": photo_cases()}
    if not args.no_frames:
        with tempfile.TemporaryDirectory(prefix="mien-detbench-") as tmp:
            groups["frames"] = frame_cases(Path(tmp))
    report, rows = {}, []
    for group, cases in groups.items():
        stats = {n: {"faces": 0, "found": 0, "extra": 0, "seconds": []} for n in detectors}
        misses = {n: [] for n in detectors}
        for case, image, truth in cases:
            for name, det in detectors.items():
                times = []
                for _ in range(args.repeat):
                    t = time.process_time()
                    faces = det.detect(image)
                    times.append(time.process_time() - t)
                n, found, extra = score(faces, truth)
                st = stats[name]
                st["faces"] += n
                st["found"] += found
                st["extra"] += extra
                st["seconds"].append(float(np.min(times)))
                if found < n:
                    misses[name].append(f"{case}:{n - found}")
        for name, st in stats.items():
            sec = np.array(st["seconds"])
            row = {"set": group, "detector": name, "images": len(sec), "faces": st["faces"],
                   "found": st["found"], "recall": st["found"] / max(1, st["faces"]), "extra": st["extra"],
                   "median_ms": 1000 * float(np.median(sec)), "total_s": float(sec.sum())}
            rows.append(row)
            report[f"{group}/{name}"] = {**row, "missed": misses[name]}
        d, m = report[f"{group}/dlib"], report[f"{group}/mediapipe"]
        report[f"{group}/speedup_total"] = d["total_s"] / m["total_s"]
        report[f"{group}/speedup_median"] = d["median_ms"] / m["median_ms"]
    print_table(rows, ["set", "detector", "images", "faces", "found", "recall", "extra", "median_ms", "total_s"])
    for group in groups:
        print(f"{group}: mediapipe is {report[f'{group}/speedup_total']:.1f}x faster in total, "
              f"{report[f'{group}/speedup_median']:.1f}x per median image")
        for name in detectors:
            print(f"  {name} missed: {', '.join(report[f'{group}/{name}']['missed']) or '-'}")
    if args.profile:
        profile = profile_mediapipe(detectors["mediapipe"], groups["photos"], args.repeat)
        print("\nMediaPipe front end on the photos, CPU time per stage (own time, best run per image):")
        print_table(profile, ["stage", "ms", "share", "calls", "ms_per_call"])
        report["photos/mediapipe_profile"] = profile
    write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
