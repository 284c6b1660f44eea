"""Sealed shard files: an immutable face-id range's IVF codes and bfloat16 rows.

A shard is derived data. It is written to `<name>.tmp`, fsynced, renamed, the
directory fsynced, and only then registered in LMDB. So a crash leaves either
an unregistered file (ignored, removed by the next writer) or a registered
complete one. A registered shard that is missing is rebuilt from LMDB.
"""

from __future__ import annotations

import io
import os

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
    import faiss

    with np.load(os.path.join(store_dir, SHARD_DIR, name)) as z:
        out = {k: z[k] for k in ("face_ids", "bf16", "ts", "src")}
        out["index"] = faiss.deserialize_index(z["index"])
    return out


def files(store_dir: str) -> list[str]:
    d = os.path.join(store_dir, SHARD_DIR)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def remove(store_dir: str, name: str) -> None:
    try:
        os.remove(os.path.join(store_dir, SHARD_DIR, name))
    except FileNotFoundError:
        pass
