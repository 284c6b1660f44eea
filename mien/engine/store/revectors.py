"""Replace every face's expression vectors at once (a new expression metric), crash-safe.

One LMDB write transaction rewrites each face's search row (`vec`: the expression)
and its pooled vector (the last 16 floats of its `faces` value), records the new
encoders, and drops the shard registry (shards hold the old vectors): the faces
all become the LMDB "tail" until they are sealed again. So at every instant a
reader sees either the old store or the new one, never a mix; readers in other
processes reload at the log's R entry, and the server answers from the old
vectors until the commit. A kill before the commit changes nothing; after it,
the next writer's repair() seals the tail into the very shards an uninterrupted
run would have written (sealing depends only on the committed faces).
"""

from __future__ import annotations

import json

import numpy as np

from mien.engine.store import changelog
from mien.engine.store.db import StoreEnv, put_meta_int
from mien.engine.store.records import EXPR_DIM, VEC_DTYPE, as_vector, id_key
from mien.errors import BadInputError, NotFoundError


def rewrite_vectors(env: StoreEnv, face_ids, expressions: np.ndarray, pooled: np.ndarray,
                    encoders: dict) -> None:
    """Set the expression and pooled vectors of exactly the store's live faces, and its encoders."""
    d, m = env.db, env.db["meta"]
    ids = np.asarray(face_ids, np.int64)
    expressions = np.asarray(expressions, np.float32).reshape(len(ids), EXPR_DIM)
    pooled = np.asarray(pooled, np.float32).reshape(len(ids), EXPR_DIM)
    for what, arr in (("expression", expressions), ("pooled", pooled)):
        if not np.all(np.isfinite(arr)):
            raise BadInputError(f"new {what} vectors contain NaN or infinity")
    with env.lock, env.begin(write=True) as txn:
        live = txn.stat(d["vec"])["entries"]
        if live != len(ids):
            raise BadInputError(f"the store has {live} faces, {len(ids)} new vectors were given")
        for fid, e, p in zip(ids, expressions, pooled):
            k = id_key(fid)
            row = txn.get(k, db=d["vec"])
            if row is None:
                raise NotFoundError(f"face {int(fid)} does not exist")
            r = np.frombuffer(bytes(row), dtype=VEC_DTYPE).copy()
            r["e"] = as_vector(e, EXPR_DIM, "expression vector")
            txn.put(k, r.tobytes(), db=d["vec"])
            value = bytes(txn.get(k, db=d["faces"]))
            txn.put(k, value[:-EXPR_DIM * 4] + p.astype("<f4").tobytes(), db=d["faces"])
        txn.put(b"encoders", json.dumps(encoders, sort_keys=True).encode(), db=m)
        # the shards hold the old vectors: unregister them (repair() deletes the files and
        # seals the faces again), and tombstones of sealed faces mean nothing any more
        txn.put(b"shards", b"[]", db=m)
        txn.delete(b"template", db=m)
        put_meta_int(txn, m, b"sealed_upto", 0)
        put_meta_int(txn, m, b"tail", len(ids))
        txn.drop(d["dead"], delete=False)
        changelog.restart(txn, d)
