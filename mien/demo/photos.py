"""Real photos that ship inside installed packages, for the demo and the tests.

Nothing here is committed to the repository: every photo is read from the
package that ships it. The face_recognition test photos come from that
project's source distribution on PyPI, fetched once with pip and cached.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from functools import lru_cache
from pathlib import Path

import numpy as np

FACE_RECOGNITION_SDIST = "face-recognition==1.3.0"


def cache_dir() -> Path:
    """Where fetched test material is cached (MIEN_CACHE, else ~/.cache/mien)."""
    root = os.environ.get("MIEN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "mien"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _read_bgr(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read package photo {path}")
    return image


def insightface_t1_path() -> Path:
    """insightface's t1.jpg: 6 faces (2 neutral women left, smiling/laughing men, ...)."""
    import importlib.util

    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("insightface is not installed; it ships t1.jpg")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "images" / "t1.jpg"
    if not path.exists():
        raise FileNotFoundError(f"insightface does not ship {path}")
    return path


def tom_hanks_path() -> Path:
    """insightface's Tom_Hanks_54745.png: one 112x112 aligned face."""
    return insightface_t1_path().parent / "Tom_Hanks_54745.png"


def grace_hopper_path() -> Path:
    """matplotlib's sample photo grace_hopper.jpg: one face."""
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def t1() -> np.ndarray:
    return _read_bgr(insightface_t1_path())


def grace_hopper() -> np.ndarray:
    return _read_bgr(grace_hopper_path())


def astronaut() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins, smiling), as BGR."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])


@lru_cache(maxsize=1)
def face_recognition_images_dir() -> Path:
    """tests/test_images of face_recognition 1.3.0's sdist, fetched once with pip.

    Holds biden.jpg, obama.jpg, obama2.jpg, obama3.jpg, 32bit.png and partial faces.
    """
    target = cache_dir() / "face_recognition-1.3.0" / "tests" / "test_images"
    if (target / "biden.jpg").exists():
        return target
    download = cache_dir() / "sdist"
    download.mkdir(parents=True, exist_ok=True)
    archives = list(download.glob("face_recognition-1.3.0.tar.gz")) + list(
        download.glob("face-recognition-1.3.0.tar.gz")
    )
    if not archives:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", FACE_RECOGNITION_SDIST, "-d", str(download)],
            check=True,
        )
        archives = list(download.glob("face*recognition-1.3.0.tar.gz"))
    if not archives:
        raise FileNotFoundError(f"pip download of {FACE_RECOGNITION_SDIST} gave no sdist")
    with tarfile.open(archives[0]) as tar:
        members = [m for m in tar.getmembers() if "/tests/test_images/" in m.name and m.isfile()]
        for member in members:
            name = Path(member.name).name
            target.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src:  # type: ignore[union-attr]
                (target / name).write_bytes(src.read())
    if not (target / "biden.jpg").exists():
        raise FileNotFoundError(f"{archives[0]} holds no tests/test_images/biden.jpg")
    return target


def face_recognition_photo(name: str) -> np.ndarray:
    """One of biden.jpg, obama.jpg, obama2.jpg, obama3.jpg, 32bit.png, ..."""
    return _read_bgr(face_recognition_images_dir() / name)


FACE_API_NPM = "@vladmandic/face-api@1.7.15"


@lru_cache(maxsize=1)
def face_api_samples_dir() -> Path:
    """demo/sample1.jpg .. sample6.jpg of the npm package @vladmandic/face-api (MIT): group
    photos of 3-6 young women each (same sex and age, several East-Asian), fetched once with
    `npm pack` and cached. FileNotFoundError when npm is missing or the registry can't be reached.
    """
    import shutil

    target = cache_dir() / "face-api-1.7.15" / "demo"
    if (target / "sample6.jpg").exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(f"npm is not installed; it fetches {FACE_API_NPM}'s sample photos")
    download = cache_dir() / "npm"
    download.mkdir(parents=True, exist_ok=True)
    packed = sorted(download.glob("vladmandic-face-api-1.7.15.tgz"))
    if not packed:
        proc = subprocess.run([npm, "pack", FACE_API_NPM, "--silent", "--pack-destination", str(download)],
                              capture_output=True, text=True, timeout=300)
        packed = sorted(download.glob("vladmandic-face-api-1.7.15.tgz"))
        if proc.returncode != 0 or not packed:
            raise FileNotFoundError(f"npm pack {FACE_API_NPM} failed: {proc.stderr.strip()[-300:]}")
    with tarfile.open(packed[0]) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and member.name.startswith("package/demo/sample") and name.endswith(".jpg"):
                target.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src:  # type: ignore[union-attr]
                    (target / name).write_bytes(src.read())
            elif member.isfile() and member.name == "package/LICENSE":
                target.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src:  # type: ignore[union-attr]
                    (target / "LICENSE").write_bytes(src.read())
    if not (target / "sample6.jpg").exists():
        raise FileNotFoundError(f"{packed[0]} holds no package/demo/sample6.jpg")
    return target
