"""Indexing throughput: mien's indexer vs the face_recognition library's pipeline.

    .venv/bin/python benchmarks/index.py [--copies 6] [--video-seconds 20] [--out index.json]

Images: the package photos (t1, astronaut, grace_hopper, biden, obama, obama2,
obama3), scaled to at most 1280 px and replicated with flips, scales and
brightness changes. Baseline: face_recognition's own pipeline on the same
files (load_image_file -> face_locations(upsample=1) -> face_encodings), the
same dlib HOG + ResNet models, in one process (the library API) and in two
processes (like its CLI's --cpus 2). mien does more per face (68 landmarks,
FaceQA, alignment, expression, thumbnail, store commit) and its time includes
starting the worker processes and loading models, the baseline's does not.

Video: a generated 1280x720 clip at 30 fps with two faces, indexed at 2
sampled fps; real-time factor = clip duration / wall time (startup included).
Also reported with min_face=80 (no HOG upsampling at 720p).

Needs face-recognition==1.3.0 (`pip install --no-deps face-recognition==1.3.0`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_table, write_json  # noqa: E402

PHOTOS = ["t1", "astronaut", "grace_hopper", "biden", "obama", "obama2", "obama3"]


def build_folder(folder: Path, copies: int) -> list[Path]:
    """Each photo in `copies` variants: original, flip, scales, brighter, darker."""
    import cv2
    import numpy as np

    from mien.demo.videos import photo

    variants = [
        ("orig", lambda im: im),
        ("flip", lambda im: cv2.flip(im, 1)),
        ("s70", lambda im: cv2.resize(im, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)),
        ("bright", lambda im: cv2.convertScaleAbs(im, alpha=1.0, beta=40)),
        ("dark", lambda im: cv2.convertScaleAbs(im, alpha=0.8, beta=-20)),
        ("flip_s85", lambda im: cv2.flip(cv2.resize(im, None, fx=0.85, fy=0.85), 1)),
        ("contrast", lambda im: cv2.convertScaleAbs(im, alpha=1.3, beta=-30)),
        ("s55", lambda im: cv2.resize(im, None, fx=0.55, fy=0.55, interpolation=cv2.INTER_AREA)),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        image = photo(name)
        scale = min(1.0, 1280 / max(image.shape[:2]))
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        for k in range(copies):
            label, fn = variants[k % len(variants)]
            out = np.ascontiguousarray(fn(image))
            path = folder / f"{name}_{k}_{label}.jpg"
            cv2.imwrite(str(path), out, [cv2.IMWRITE_JPEG_QUALITY, 92])
            paths.append(path)
    return paths


def fr_one(path: str) -> int:
    import face_recognition

    image = face_recognition.load_image_file(path)
    locations = face_recognition.face_locations(image, number_of_times_to_upsample=1)
    return len(face_recognition.face_encodings(image, locations))


def fr_warm(_=None) -> int:
    import face_recognition  # noqa: F401  (loads the models)

    return 0


def baseline(paths: list[Path], processes: int) -> tuple[int, float]:
    files = [str(p) for p in paths]
    if processes <= 1:
        fr_warm()
        start = time.perf_counter()
        faces = sum(fr_one(f) for f in files)
        return faces, time.perf_counter() - start
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(fr_warm, range(processes * 2))
        start = time.perf_counter()
        faces = sum(pool.map(fr_one, files, chunksize=1))
        return faces, time.perf_counter() - start


def run_mien(paths_or_folder, store: Path, workers: int, engine_config=None):
    from mien.indexer import IndexOptions, index_paths

    start = time.perf_counter()
    summary = index_paths([paths_or_folder], store, options=IndexOptions(workers=workers, show_progress=False),
                          engine_config=engine_config)
    return summary, time.perf_counter() - start


def peak_rss_mb() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(me, children) / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=6, help="variants per package photo")
    parser.add_argument("--video-seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=0, help="mien analysis processes (0 = cores)")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args()

    from mien.demo.videos import write_clip
    from mien.engine.faces import EngineConfig

    work = Path(tempfile.mkdtemp(prefix="mien-bench-index-"))
    paths = build_folder(work / "photos", args.copies)
    print(f"{len(paths)} images in {work / 'photos'}; {os.cpu_count()} cores", flush=True)

    base_faces, base_s = baseline(paths, 1)
    base2_faces, base2_s = baseline(paths, 2)
    summary, mien_s = run_mien(work / "photos", work / "store-images", args.workers)

    clip = write_clip(work / "video" / "two_people_720p.mp4", ["obama2", "biden"], motion="pan", fps=30.0,
                      size=(1280, 720), seconds=args.video_seconds)
    duration_s = clip.frames / clip.fps
    vsum, video_s = run_mien(work / "video", work / "store-video", args.workers)
    vsum80, video80_s = run_mien(work / "video", work / "store-video-80", args.workers, EngineConfig(min_face=80))

    rows = [
        {"pipeline": "face_recognition, 1 process", "images": len(paths), "faces": base_faces,
         "seconds": base_s, "images/s": len(paths) / base_s, "faces/s": base_faces / base_s},
        {"pipeline": "face_recognition, 2 processes", "images": len(paths), "faces": base2_faces,
         "seconds": base2_s, "images/s": len(paths) / base2_s, "faces/s": base2_faces / base2_s},
        {"pipeline": f"mien index (workers={args.workers or os.cpu_count()}, incl. startup)",
         "images": summary.images, "faces": summary.faces_detected, "seconds": mien_s,
         "images/s": summary.images / mien_s, "faces/s": summary.faces_detected / mien_s},
    ]
    print()
    print_table(rows, ["pipeline", "images", "faces", "seconds", "images/s", "faces/s"], "{:.2f}")
    vrows = [
        {"video": "720p 30fps, 2 faces, sampled 2 fps", "config": "default (min_face=40)",
         "duration_s": duration_s, "frames": vsum.frames, "faces": vsum.faces_passed, "seconds": video_s,
         "realtime_x": duration_s / video_s},
        {"video": "720p 30fps, 2 faces, sampled 2 fps", "config": "min_face=80",
         "duration_s": duration_s, "frames": vsum80.frames, "faces": vsum80.faces_passed, "seconds": video80_s,
         "realtime_x": duration_s / video80_s},
    ]
    print()
    print_table(vrows, ["video", "config", "duration_s", "frames", "faces", "seconds", "realtime_x"], "{:.2f}")
    result = {
        "images": len(paths),
        "faces_per_s": summary.faces_detected / mien_s,
        "images_per_s": summary.images / mien_s,
        "faces_passed": summary.faces_passed,
        "baseline_faces_per_s": base_faces / base_s,
        "baseline_images_per_s": len(paths) / base_s,
        "baseline_2proc_faces_per_s": base2_faces / base2_s,
        "ratio": (summary.faces_detected / mien_s) / (base_faces / base_s),
        "ratio_vs_2proc": (summary.faces_detected / mien_s) / (base2_faces / base2_s),
        "video_realtime_factor": duration_s / video_s,
        "video_realtime_factor_min_face_80": duration_s / video80_s,
        "peak_rss_mb": peak_rss_mb(),
        "load_average": os.getloadavg()[0],
    }
    print(f"\nratio (mien faces/s / face_recognition faces/s): {result['ratio']:.2f} "
          f"(vs 2 processes: {result['ratio_vs_2proc']:.2f}); peak RSS {result['peak_rss_mb']:.0f} MB; "
          f"load average {result['load_average']:.1f}")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
