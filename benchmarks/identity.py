"""dlib's identity network: dlib's own forward pass vs the same weights on ONNX Runtime.

    .venv/bin/python benchmarks/identity.py [--out identity.json] [--lfw 100] [--video-seconds 3]

Agreement: every face the default front end (MediaPipe) finds in
- the package photos (t1, astronaut, grace_hopper, biden, obama, obama2,
  obama3, every face_recognition test image, insightface's Tom Hanks) and
  altered copies of them (flipped, 0.6x, darker, brighter);
- the first --lfw faces of scikit-image's lfw_subset (25x25 grey, upscaled 8x
  and padded as benchmarks/quality.py does);
- every frame of the rendered demo clips (mien.demo.videos.demo_clips, mp4v /
  MJPG decoded by OpenCV) and a 1280x720 two-person pan;
is cut into dlib's 150x150 chip (dlib.get_face_chip, as DlibIdentity does) and
described by dlib's compute_face_descriptor and by dlib_resnet_onnx. Reported:
max |difference| per component (raw descriptors, and after L2 normalisation,
which is what stores hold), the minimum cosine and the face it belongs to.

Speed: CPU ms per face (process CPU time, one thread: dlib-bin is single
threaded, the ONNX session gets intra_op_num_threads=1), batch 1 and batch 8,
over the same chips, and the ONNX backend's load time (read .dat, build graph,
create session). Ratios are within this run; the machine may be shared, so CPU
time is the number to compare, wall time is shown too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_table, write_json  # noqa: E402

PHOTOS = ["t1", "astronaut", "grace_hopper", "biden", "obama", "obama2", "obama3"]
LFW_UPSCALE, LFW_PAD = 8, 100      # as benchmarks/quality.py


def photo_images() -> list[tuple[str, np.ndarray]]:
    import cv2

    from mien.demo import photos
    from mien.demo.videos import photo

    variants = {
        "orig": lambda im: im,
        "flip": lambda im: cv2.flip(im, 1),
        "s60": lambda im: cv2.resize(im, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA),
        "dark": lambda im: cv2.convertScaleAbs(im, alpha=0.7, beta=-10),
        "bright": lambda im: cv2.convertScaleAbs(im, alpha=1.2, beta=30),
    }
    out = []
    for name in PHOTOS:
        image = photo(name)
        for label, fn in variants.items():
            out.append((f"photo:{name}:{label}", np.ascontiguousarray(fn(image))))
    seen = {f"{n}.jpg" for n in PHOTOS}
    for path in sorted(photos.face_recognition_images_dir().iterdir()):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if path.name not in seen and image is not None:
            out.append((f"face_recognition:{path.name}", image))
    hanks = cv2.imread(str(photos.tom_hanks_path()), cv2.IMREAD_COLOR)
    if hanks is not None:  # a 112x112 aligned crop: give the detector some context
        out.append(("insightface:Tom_Hanks", cv2.copyMakeBorder(
            cv2.resize(hanks, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC), 120, 120, 120, 120,
            cv2.BORDER_REPLICATE)))
    return out


def lfw_images(count: int) -> list[tuple[str, np.ndarray]]:
    import cv2
    import skimage.data

    faces = skimage.data.lfw_subset()[:count]
    out = []
    for i, grey in enumerate(faces):
        bgr = cv2.cvtColor(np.round(grey * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        big = cv2.resize(bgr, None, fx=LFW_UPSCALE, fy=LFW_UPSCALE, interpolation=cv2.INTER_CUBIC)
        out.append((f"lfw_subset:{i}", cv2.copyMakeBorder(big, LFW_PAD, LFW_PAD, LFW_PAD, LFW_PAD,
                                                           cv2.BORDER_REPLICATE)))
    return out


def video_images(folder: Path, seconds: float) -> list[tuple[str, np.ndarray]]:
    import cv2

    from mien.demo.videos import demo_clips, write_clip

    clips = demo_clips(folder, fps=5.0, seconds=seconds)
    clips.append(write_clip(folder / "pan_720p.mp4", ["obama2", "biden"], motion="pan", fps=5.0,
                            size=(1280, 720), seconds=seconds))
    out = []
    for clip in clips:
        cap = cv2.VideoCapture(str(clip.path))
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            out.append((f"video:{clip.path.name}#{index}", frame))
            index += 1
        cap.release()
    return out


def collect_chips(images) -> tuple[list[np.ndarray], list[str]]:
    """dlib's 150x150 chips of every face the default detector finds (rejected ones too)."""
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.faces.identity_dlib import DlibIdentity

    cfg = EngineConfig()
    detector = FaceAnalyzer(cfg).detector
    ident = DlibIdentity(cfg, backend="onnx")
    chips, names = [], []
    for name, image in images:
        faces = detector.detect(image)
        for k, chip in enumerate(ident.chips(image, faces) if faces else []):
            chips.append(chip)
            names.append(f"{name}/face{k}")
    return chips, names


def agreement(dlib_rows: np.ndarray, onnx_rows: np.ndarray, names: list[str]) -> dict:
    from mien.engine.faces.identity import l2n

    a, b = l2n(dlib_rows), l2n(onnx_rows)
    cos = (a * b).sum(1).astype(np.float64)
    worst = int(np.argmin(cos))
    return {
        "faces": len(names),
        "max_abs_diff_raw": float(np.abs(dlib_rows - onnx_rows).max()),
        "max_abs_raw_value": float(np.abs(dlib_rows).max()),
        "max_abs_diff_normalised": float(np.abs(a - b).max()),
        "max_l2_distance_normalised": float(np.linalg.norm(a - b, axis=1).max()),
        "min_cosine": float(cos.min()),
        "one_minus_min_cosine": float(1.0 - cos.min()),
        "mean_cosine": float(cos.mean()),
        "worst_face": names[worst],
    }


def cpu_ms_per_face(fn, chips: list[np.ndarray], batch: int, min_seconds: float) -> tuple[float, float]:
    """(CPU ms, wall ms) per face of fn over chips in batches, repeated until min_seconds of CPU."""
    batches = [chips[i:i + batch] for i in range(0, len(chips) - batch + 1, batch)]
    fn(batches[0])   # warm-up
    faces, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
    while True:
        for group in batches:
            fn(group)
            faces += len(group)
        if time.process_time() - cpu0 >= min_seconds:
            break
    return ((time.process_time() - cpu0) * 1000 / faces, (time.perf_counter() - wall0) * 1000 / faces)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--lfw", type=int, default=100, help="faces of skimage's lfw_subset (first N, <= 100 faces)")
    ap.add_argument("--video-seconds", type=float, default=3.0, help="length of each rendered clip (5 fps)")
    ap.add_argument("--speed-chips", type=int, default=32, help="chips timed per backend and batch")
    ap.add_argument("--min-cpu-seconds", type=float, default=3.0, help="CPU seconds per timing")
    args = ap.parse_args()

    import cv2
    import dlib

    from mien.engine.faces import dlib_resnet_onnx as dro
    from mien.engine.faces.modelfiles import dlib_model

    cv2.setNumThreads(1)
    path = dlib_model(dro.MODEL_FILE)
    t0 = time.perf_counter()
    net = dro.load(path)
    t1 = time.perf_counter()
    model = dro.build_onnx(net)
    t2 = time.perf_counter()
    onnx_net = dro.DlibResNetONNX(path, threads=1)   # reads and builds again, plus the session
    t3 = time.perf_counter()
    load = {"read_dat_s": t1 - t0, "build_graph_s": t2 - t1, "onnx_bytes": len(model.SerializeToString()),
            "whole_backend_load_s": t3 - t2}
    start = time.perf_counter()
    dlib_net = dlib.face_recognition_model_v1(path)
    load["dlib_load_s"] = time.perf_counter() - start

    def run_dlib(chips):
        return np.array([list(d) for d in dlib_net.compute_face_descriptor(chips)], np.float32)

    with tempfile.TemporaryDirectory(prefix="mien-identity-") as tmp:
        sets = {"photos": photo_images(), "lfw_subset": lfw_images(args.lfw),
                "video_frames": video_images(Path(tmp), args.video_seconds)}
        collected = {key: collect_chips(images) for key, images in sets.items()}

    rows, report = [], {"load": load, "sets": {}}
    all_d, all_o, all_names = [], [], []
    for key, (chips, names) in collected.items():
        if not chips:
            continue
        d = np.concatenate([run_dlib(chips[i:i + 16]) for i in range(0, len(chips), 16)])
        o = np.concatenate([onnx_net(chips[i:i + 16]) for i in range(0, len(chips), 16)])
        stats = agreement(d, o, names)
        stats["images"] = len(sets[key])
        report["sets"][key] = stats
        rows.append({"faces from": key, **stats})
        all_d.append(d)
        all_o.append(o)
        all_names += names
    everything = agreement(np.concatenate(all_d), np.concatenate(all_o), all_names)
    report["all"] = everything
    rows.append({"faces from": "all", **everything})
    print("agreement: dlib compute_face_descriptor vs ONNX Runtime on the same chips")
    print_table(rows, ["faces from", "faces", "max_abs_diff_raw", "max_abs_diff_normalised",
                       "min_cosine", "one_minus_min_cosine", "worst_face"], floatfmt="{:.3g}")

    chips = [c for c, _ in zip(collected["photos"][0] * 4, range(args.speed_chips))]
    speed = []
    for batch in (1, 8):
        dcpu, dwall = cpu_ms_per_face(run_dlib, chips, batch, args.min_cpu_seconds)
        ocpu, owall = cpu_ms_per_face(onnx_net, chips, batch, args.min_cpu_seconds)
        speed.append({"batch": batch, "dlib_cpu_ms": dcpu, "onnx_cpu_ms": ocpu, "cpu_ratio": dcpu / ocpu,
                      "dlib_wall_ms": dwall, "onnx_wall_ms": owall, "wall_ratio": dwall / owall})
    report["speed_1_thread"] = speed
    print("\nper-face time, 1 thread")
    print_table(speed, ["batch", "dlib_cpu_ms", "onnx_cpu_ms", "cpu_ratio", "dlib_wall_ms", "onnx_wall_ms",
                        "wall_ratio"], floatfmt="{:.2f}")
    print("\nONNX backend load: read .dat {read_dat_s:.3f} s, build graph {build_graph_s:.3f} s, "
          "all with session {whole_backend_load_s:.3f} s (dlib's own load {dlib_load_s:.3f} s)".format(**load))
    write_json(args.out, report)


if __name__ == "__main__":
    main()
