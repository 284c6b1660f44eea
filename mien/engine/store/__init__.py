"""mien.engine.store: LMDB is the source of truth; FAISS shards derive from it.

    from mien.engine.store import Store, FaceRecord, SourceRecord, Person, Tag, Hit
"""

from mien.engine.store.records import FaceRecord, Hit, HitRecord, Person, SourceRecord, Tag
from mien.engine.store.store import Store

__all__ = ["Store", "FaceRecord", "SourceRecord", "Person", "Tag", "Hit", "HitRecord"]
