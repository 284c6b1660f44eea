"""Benchmark of the face engine: per-stage cost and end-to-end faces/s vs face_recognition.

    .venv/bin/python benchmarks/engine.py [--repeat 3] [--out engine.json]

Stages: detection (ms per image, by image size), then per face: landmarks,
FaceQA, alignment (+thumbnail), identity (dlib ResNet), expression encoders
(landmarks-v1; the default fer-au-v2 on faces with a mesh, its fer and AU
parts alone, and on faces without a mesh, where it runs FaceMesh itself;
fer-au-478, which runs the 478-point landmarker on each face),
FEENet (random init) at batch 1 and 32. End to end: FaceAnalyzer.analyze
with identity, faces/s. Baseline: the face_recognition library's own
pipeline (face_locations + face_encodings, the same dlib models) on the same
images, measured in the same run; ratio = ours / baseline.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def ensure_face_recognition():
    try:
        import face_recognition  # noqa: F401
    except ImportError:
        print("installing face-recognition==1.3.0 (no deps; dlib comes from dlib-bin) ...", flush=True)
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "face-recognition==1.3.0"]
        if subprocess.run(cmd).returncode != 0:
            sys.exit("could not install the baseline; run: " + " ".join(cmd))
    import face_recognition

    return face_recognition


def load_photos() -> dict[str, np.ndarray]:
    from mien.demo import photos

    images = {"t1.jpg": photos.t1(), "astronaut": photos.astronaut(), "grace_hopper.jpg": photos.grace_hopper()}
    for name in ("biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg"):
        images[name] = photos.face_recognition_photo(name)
    return images


def timed(fn, repeat):
    """Best-of-repeat wall time of fn() in ms, and its last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best, result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs per measurement")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--upsample", type=int, default=1, help="EngineConfig.upsample (face_recognition uses 1)")
    ap.add_argument("--min-face", type=int, default=40)
    ap.add_argument("--detector", default=None, help="EngineConfig.detector (default: the engine's default)")
    args = ap.parse_args(argv)

    import cv2
    from tqdm import tqdm

    from mien.engine.faces import EngineConfig, FaceAnalyzer, faceqa
    from mien.engine.faces.align import expression_crop
    from mien.engine.faces.analyzer import thumbnail
    from mien.engine.faces.dlib_landmarks import landmarks68, to_gray
    from mien.engine.faces import expression_fer as fer
    from mien.engine.faces import expression_fer_au as v2
    from mien.engine.faces.expression_fer_au import FerAu478ExpressionEncoder
    from mien.engine.faces.expression_landmarks import LandmarkExpressionEncoder

    images = load_photos()
    cfg = EngineConfig(upsample=args.upsample, min_face=args.min_face,
                       **({"detector": args.detector} if args.detector else {}))
    an = FaceAnalyzer(cfg)
    det = an.detector
    stages: dict[str, float] = {}
    per_image_rows = []
    per_face = {"landmarks": [], "faceqa": [], "alignment": [], "identity": [], "expression_landmarks": [],
                "expression_fer_au_v2": [], "expression_fer_part": [], "expression_au_part": [],
                "expression_fer_au_v2_filling_mesh": [], "expression_fer_au_478": []}
    landmarker_478 = FerAu478ExpressionEncoder().landmarker
    all_crops = []
    total_faces = 0
    for name, img in tqdm(list(images.items()), desc="stages", unit="img"):
        def hog():
            gray = to_gray(img)
            return det.hog(gray, (0, 0, gray.shape[1], gray.shape[0]), det.detection_scale(gray.shape))
        # dlib: HOG alone (its landmarks are a stage below); MediaPipe: BlazeFace + FaceMesh, whole detect()
        ms_det, _ = timed(hog if hasattr(det, "hog") else (lambda: det.detect(img)), args.repeat)
        faces = an.detect(img)
        total_faces += len(faces)
        per_image_rows.append((name, f"{img.shape[1]}x{img.shape[0]}", len(faces), ms_det))
        if not faces:
            continue
        gray = to_gray(img)
        n = len(faces)
        per_face["landmarks"].append(timed(lambda: [landmarks68(gray, f.bbox) for f in faces], args.repeat)[0] / n)
        per_face["faceqa"].append(timed(lambda: an.assess(img, faces), args.repeat)[0] / n)
        per_face["alignment"].append(timed(lambda: [thumbnail(expression_crop(img, f.landmarks5), 96)
                                                    for f in faces], args.repeat)[0] / n)
        an.align(img, faces)
        all_crops += [f.crop for f in faces]
        per_face["identity"].append(timed(lambda: an.identity_encoder.embed(img, faces), 1)[0] / n)
        per_face["expression_landmarks"].append(
            timed(lambda: LandmarkExpressionEncoder().encode_faces(faces), args.repeat)[0] / n)
        # fer-au-v2 on faces that carry a mesh (the MediaPipe front end), its two parts, and
        # on faces without one (dlib, insightface: the encoder runs FaceMesh itself)
        v2.ensure_mesh(img, faces)
        per_face["expression_fer_au_v2"].append(timed(lambda: v2.encode_image_faces(img, faces), args.repeat)[0] / n)
        per_face["expression_fer_part"].append(timed(lambda: fer.distributions(img, faces), args.repeat)[0] / n)
        per_face["expression_au_part"].append(timed(lambda: v2.au_matrix(img, faces), args.repeat)[0] / n)
        per_face["expression_fer_au_478"].append(
            timed(lambda: v2.encode_image_faces_478(img, faces, landmarker_478), args.repeat)[0] / n)

        def meshless():
            bare = [copy.copy(f) for f in faces]
            for f in bare:
                f.mesh = None
            v2.encode_image_faces(img, bare)
        per_face["expression_fer_au_v2_filling_mesh"].append(timed(meshless, args.repeat)[0] / n)

    for name, size, nf, ms in per_image_rows:
        stages[f"detection[{name} {size}]"] = ms
    stages["detection_mean_per_image"] = statistics.mean(r[3] for r in per_image_rows)
    for key, vals in per_face.items():
        stages[f"{key}_per_face"] = statistics.mean(vals)

    # FEENet (random init) if the training engineer's module is there
    try:
        from mien.engine.faces import feenet
        import torch

        torch.set_num_threads(2)
        model = feenet.build_feenet().eval()
        x1 = torch.from_numpy(feenet.preprocess(all_crops[:1], model.config))
        crops32 = (all_crops * 32)[:32]
        x32 = torch.from_numpy(feenet.preprocess(crops32, model.config))
        with torch.inference_mode():
            model(x1)
            stages["feenet_b1_per_face"] = timed(lambda: model(x1), args.repeat)[0]
            stages["feenet_b32_per_face"] = timed(lambda: model(x32), 1)[0] / 32
    except ImportError as exc:
        print(f"(FEENet skipped: {exc})")

    # end to end, ours vs face_recognition, same images
    fr = ensure_face_recognition()
    rgb = {k: cv2.cvtColor(v, cv2.COLOR_BGR2RGB) for k, v in images.items()}

    def ours():
        return sum(len(an.analyze(img, identity=True, keep_rejected=True)) for img in images.values())

    def baseline():
        n = 0
        for img in rgb.values():
            locs = fr.face_locations(img, number_of_times_to_upsample=1)
            n += len(fr.face_encodings(img, locs))
        return n

    ms_ours, faces_ours = timed(ours, args.repeat)
    ms_base, faces_base = timed(baseline, args.repeat)
    ms_noid, _ = timed(lambda: sum(len(an.analyze(i, identity=False, keep_rejected=True))
                                   for i in images.values()), args.repeat)
    result = {
        "faces_per_s": faces_ours / (ms_ours / 1000),
        "faces_per_s_without_identity": faces_ours / (ms_noid / 1000),
        "baseline_faces_per_s": faces_base / (ms_base / 1000),
        "faces": faces_ours, "baseline_faces": faces_base, "images": len(images),
        "config": cfg.to_dict(),
        "stages": {k: round(v, 3) for k, v in stages.items()},
    }
    result["ratio"] = result["faces_per_s"] / result["baseline_faces_per_s"]

    print(f"\n{'stage':48s} {'ms':>9s}")
    for k, v in stages.items():
        print(f"{k:48s} {v:9.2f}")
    print(f"\n{'end to end (' + str(len(images)) + ' photos)':48s} {'faces':>6s} {'faces/s':>9s}")
    print(f"{'mien analyze (identity on)':48s} {faces_ours:6d} {result['faces_per_s']:9.2f}")
    print(f"{'mien analyze (identity off)':48s} {faces_ours:6d} {result['faces_per_s_without_identity']:9.2f}")
    print(f"{'face_recognition locations+encodings':48s} {faces_base:6d} {result['baseline_faces_per_s']:9.2f}")
    print(f"{'ratio (identity on)':48s} {'':6s} {result['ratio']:9.2f}x")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
