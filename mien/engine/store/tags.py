"""Tags: named sets of reference expression vectors with a distance threshold.

They live beside the faces in the `tags` db and never touch faces or the
indexes, so each call is one small transaction of its own.
"""

from __future__ import annotations

import time

import numpy as np

from mien.engine.store.db import StoreEnv
from mien.engine.store.records import EXPR_DIM, Tag, decode_tag, encode_tag
from mien.errors import BadInputError, NotFoundError


def _no_tag(name: str) -> NotFoundError:
    return NotFoundError(f"tag {name!r} does not exist", reason="TAG_NOT_FOUND", resource=("mien.v1.Tag", str(name)))


class Tags:
    def __init__(self, env: StoreEnv):
        self._env, self._db = env, env.db

    def put_tag(self, tag: Tag) -> None:
        if not tag.name:
            raise BadInputError("tag name is empty")
        v = np.asarray(tag.vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != EXPR_DIM or len(v) == 0 or not np.isfinite(v).all():
            raise BadInputError(f"tag vectors must be (R>=1, {EXPR_DIM}) finite, got {v.shape}")
        if not tag.created_ms:
            tag.created_ms = int(time.time() * 1000)
        with self._env.lock, self._env.begin(write=True) as txn:
            txn.put(tag.name.encode(), encode_tag(tag), db=self._db["tags"])

    def delete_tag(self, name: str) -> None:
        with self._env.lock, self._env.begin(write=True) as txn:
            if not txn.delete(name.encode(), db=self._db["tags"]):
                raise _no_tag(name)

    def get_tag(self, name: str) -> Tag:
        with self._env.begin() as txn:
            v = txn.get(name.encode(), db=self._db["tags"])
            if v is None:
                raise _no_tag(name)
            return decode_tag(v)

    def list_tags(self) -> list[Tag]:
        with self._env.begin() as txn:
            return [decode_tag(v) for _, v in txn.cursor(db=self._db["tags"])]
