"""Sealed shard files: an immutable face-id range's IVF codes, bfloat16 rows and float32 vectors.

The float32 vectors (`e32`, 64 B per face) are not read into memory: a reader
maps them (`load` gives a MappedRows) and reads the dozen rows a search
finishes on exactly from the page cache, one cache line each, where a get per
face from LMDB walks its B-tree (~4 us per face on a cold cache, more than half
of a search's time outside FAISS). Shards written before they had the vectors
load without them; their faces are finished from LMDB as before.

A shard is derived data. It is written to `<name>.tmp`, fsynced, renamed, the
directory fsynced, and only then registered in LMDB. So a crash leaves either
an unregistered file (ignored, removed by the next writer) or a registered
complete one. A registered shard that is missing is rebuilt from LMDB.
"""

from __future__ import annotations

import ctypes
import io
import os
import weakref

import numpy as np

SHARD_DIR = "shards"


def shard_name(first_id: int, last_id: int, epoch: int) -> str:
    return f"shard-e{epoch:04d}-{first_id:012d}-{last_id:012d}.npz"


def build(template_bytes: bytes, face_ids: np.ndarray, rows: np.ndarray) -> dict:
    """IVF-SQ8 codes of the rows (ids local 0..n-1) plus the bfloat16 rows."""
    import faiss

    from mien.engine.store.rows import to_bf16

    index = faiss.deserialize_index(np.frombuffer(template_bytes, dtype=np.uint8))
    e = np.ascontiguousarray(rows["e"], dtype=np.float32)
    index.add_with_ids(e, np.arange(len(face_ids), dtype=np.int64))
    return {
        "index": faiss.serialize_index(index),
        "face_ids": np.asarray(face_ids, dtype=np.int64),
        "bf16": to_bf16(e),
        "ts": rows["ts"].astype(np.int64),
        "src": rows["src"].astype(np.int32),
        "e32": e.astype("<f4"),
    }


def write(store_dir: str, name: str, shard: dict) -> str:
    """Write atomically; returns the final path. The caller registers it after."""
    d = os.path.join(store_dir, SHARD_DIR)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name)
    tmp = path + ".tmp"
    buf = io.BytesIO()
    np.savez(buf, **shard)
    with open(tmp, "wb") as fh:
        fh.write(buf.getbuffer())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return path


def load(store_dir: str, name: str) -> dict:
    """The shard's arrays; "e32" is a MappedRows of its float32 vectors, or None (an older shard)."""
    import faiss

    path = os.path.join(store_dir, SHARD_DIR, name)
    with np.load(path) as z:
        out = {k: z[k] for k in ("face_ids", "bf16", "ts", "src")}
        out["index"] = faiss.deserialize_index(z["index"])
    out["e32"] = MappedRows.open(path, "e32", len(out["face_ids"]))
    return out


class MappedRows:
    """Fixed-size rows of an uncompressed .npy member of an .npz file, mapped read-only:
    row(i) is a memoryview of its `width` bytes (no copy; valid while this object lives).

    Mapped with libc's mmap and the file closed at once: Python's mmap keeps a descriptor per
    mapping, and a store of 100M faces has a thousand shards (a default limit of 1024 open
    files would run out). Unmapped when the object goes."""

    def __init__(self, address: int, length: int, offset: int, width: int):
        self._view = memoryview((ctypes.c_char * length).from_address(address)).cast("B")
        self._offset, self.width = offset, width
        self.address = address + offset  # of row 0's bytes (mien.native's exact_top reads rows there)
        weakref.finalize(self, _munmap, address, length)

    @classmethod
    def open(cls, path: str, member: str, count: int) -> "MappedRows | None":
        """None when the file has no such member of `count` little-endian float32 rows of 16,
        stored uncompressed (np.savez stores; savez_compressed would not map)."""
        import struct
        import zipfile

        with zipfile.ZipFile(path) as zf:
            try:
                info = zf.getinfo(member + ".npy")
            except KeyError:
                return None
            if info.compress_type != zipfile.ZIP_STORED:
                return None
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)   # the zip local file header: name and extra field lengths at 26
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                return None
            name_len, extra_len = struct.unpack_from("<HH", local, 26)
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
            length = os.fstat(fh.fileno()).st_size
            if fortran or dtype != np.dtype("<f4") or shape != (count, 16) or count == 0 \
                    or offset + count * 64 > length:
                return None
            address = _mmap(fh.fileno(), length)
        return None if address is None else cls(address, length, offset, 64)

    def bytes(self) -> tuple[memoryview, int]:
        """The mapped file's bytes and the offset of row 0 in them (valid while this object lives)."""
        return self._view, self._offset

    def row(self, i: int) -> memoryview:
        at = self._offset + i * self.width
        return self._view[at:at + self.width]


_PROT_READ, _MAP_SHARED = 1, 1
_libc = None


def _lib():
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long]
        libc.munmap.restype = ctypes.c_int
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        _libc = libc
    return _libc


def _mmap(fd: int, length: int) -> int | None:
    """The address of a read-only shared mapping of the whole file, or None (the caller then reads
    those vectors from LMDB)."""
    try:
        address = _lib().mmap(None, length, _PROT_READ, _MAP_SHARED, fd, 0)
    except (OSError, AttributeError):
        return None
    return None if address in (None, ctypes.c_void_p(-1).value) else address


def _munmap(address: int, length: int) -> None:
    _lib().munmap(address, length)


def files(store_dir: str) -> list[str]:
    d = os.path.join(store_dir, SHARD_DIR)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def remove(store_dir: str, name: str) -> None:
    try:
        os.remove(os.path.join(store_dir, SHARD_DIR, name))
    except FileNotFoundError:
        pass
