"""Fixtures and helpers for the indexer tests: real files, real stores, no mocks."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np


def box(kind: bytes, payload: bytes) -> bytes:
    """One ISO-BMFF box."""
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_without_video(path: Path) -> Path:
    """A well-formed MP4 container (ftyp + moov with a movie header) holding no track."""
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    mvhd = box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, 1000, 3000)
               + struct.pack(">I", 0x00010000) + struct.pack(">H", 0x0100) + bytes(10)
               + struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
               + bytes(24) + struct.pack(">I", 2))
    path.write_bytes(ftyp + box(b"moov", mvhd))
    return path


def png_bomb(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def copy_photo(name: str, target: Path) -> Path:
    """A package photo written to `target` (by name: obama, biden, t1, astronaut, ...)."""
    import cv2

    from mien.demo.videos import photo

    target.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), photo(name)):
        raise RuntimeError(f"cannot write {target}")
    return target


def small_photo(name: str, target: Path, max_side: int = 640) -> Path:
    """A package photo downscaled (faster to index, still a clear face)."""
    import cv2

    from mien.demo.videos import photo

    image = photo(name)
    scale = min(1.0, max_side / max(image.shape[:2]))
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])  # any file name
    assert ok
    target.write_bytes(data.tobytes())
    return target


def all_faces(store) -> list:
    return [f for s in store.list_sources() for f in store.faces_of_source(s.uri, thumbnail=False)]


def face_key(f) -> tuple:
    return (f.source_uri, f.frame_index, tuple(round(v, 1) for v in f.bbox))


def check_consistent(store) -> None:
    """No duplicate faces, no orphans: every face belongs to a done source and an existing person."""
    faces = all_faces(store)
    keys = [face_key(f) for f in faces]
    assert len(keys) == len(set(keys)), "duplicate (source, frame, bbox)"
    persons = {p.person_id for p in store.list_persons()}
    for f in faces:
        assert f.person_id == -1 or f.person_id in persons, f"face {f.face_id} has a missing person"
    for s in store.list_sources():
        assert s.face_count == len(store.faces_of_source(s.uri, thumbnail=False))
    ids = set()
    for p in persons:
        fids = set(int(i) for i in store.person_face_ids(p))
        assert not (fids & ids)
        ids |= fids
    assert ids == {f.face_id for f in faces if f.person_id >= 0}
    assert store.stats()["faces"] == len(faces)


def env_for_subprocess() -> dict:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def fork_servers(pid: int | None = None) -> list:
    """The fork servers (mien.indexer.pool_start) among the children of process `pid` (this one
    by default)."""
    import psutil

    servers = []
    for proc in psutil.Process(pid).children():
        try:
            if any("forkserver" in part for part in proc.cmdline()):
                servers.append(proc)
        except psutil.Error:  # gone meanwhile
            continue
    return servers


def pool_workers() -> list:
    """This process's analysis pool workers: the children of its fork server, leaving out one
    killed a moment ago and not yet reaped."""
    import psutil

    workers = []
    for server in fork_servers():
        try:
            workers += [w for w in server.children() if w.status() != psutil.STATUS_ZOMBIE]
        except psutil.Error:  # gone meanwhile
            continue
    return workers


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)
