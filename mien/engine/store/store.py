"""The face store: LMDB is the truth, FAISS shards and the in-memory index derive from it.

`Store` is the one public façade (docs/interfaces.md, "Store"); it opens the
directory, checks the schema and encoders, and hands each call to the part
that does that one job. The parts share one `StoreEnv` (db.py: the LMDB
environment, the writer lock, the thread lock) and meet at these seams:

    sources.py    writes: a source and its faces in ONE transaction (kill -9 safe)
    persons.py    person records; counts and identity sums follow every face move
    tags.py       tags (named reference expressions)
    changelog.py  the log every write appends to in its transaction ...
    live.py       ... which the in-memory indexes replay to follow other writers
    sealing.py    the LMDB tail sealed into immutable shard files (shards.py), repair, rebuild
    search.py     expression / one-person / identity searches over the live indexes
    reads.py      face records, hit records, vectors, the face table
    snapshot.py   a consistent copy of a store (read replicas; `mien snapshot`)

Dependencies run one way: sources -> persons, sealing; search -> live, reads;
reads -> live; every part -> db and records, the writing ones -> changelog
(live.py reads it). Only the façade knows every part, and it holds no logic
beyond opening the store and its stats.

The in-memory structures are expression_index.py (expression: IVF candidates, bfloat16
re-rank) and identity_index.py, stored compactly per rows.py and sized per ivf.py;
records.py holds the on-disk encodings.
"""

from __future__ import annotations

import json
import os

import numpy as np

from mien.engine.store.db import StoreEnv, meta_int, put_meta_int
from mien.engine.store.expression_index import FaceIndex
from mien.engine.store.live import LiveIndex
from mien.engine.store.persons import Persons
from mien.engine.store.reads import FaceReads
from mien.engine.store.records import EXPR_DIM, FaceRecord, Hit, HitRecord, Person, SourceRecord, Tag
from mien.engine.store.sealing import Sealer
from mien.engine.store.search import Searcher
from mien.engine.store.sources import Sources
from mien.engine.store.tags import Tags
from mien.errors import BadInputError, EncoderMismatchError, NotFoundError

SCHEMA_VERSION = 1
# Keys of `encoders` that define the vector spaces; other keys are informational.
EMBEDDING_KEYS = ("identity", "identity_dim", "expression", "expression_dim")


def _open_meta(env: StoreEnv, encoders: dict | None) -> dict:
    """The store's encoders; a new store (mode 'w') is initialised with these."""
    m = env.db["meta"]
    with env.begin(write=env.mode == "w") as txn:
        stored = txn.get(b"encoders", db=m)
        if stored is None:
            if env.mode == "r":
                raise NotFoundError(f"{env.path} is not an initialised mien store")
            if not encoders:
                raise BadInputError("creating a store needs encoders (analyzer.encoders)")
            if int(encoders.get("expression_dim", EXPR_DIM)) != EXPR_DIM:
                raise BadInputError(f"expression_dim must be {EXPR_DIM}")
            txn.put(b"schema", str(SCHEMA_VERSION).encode(), db=m)
            txn.put(b"encoders", json.dumps(encoders, sort_keys=True).encode(), db=m)
            for key, v in ((b"next_face", 1), (b"next_person", 1), (b"next_src", 1),
                           (b"gen", 0), (b"log_start", 1), (b"sealed_upto", 0),
                           (b"tail", 0), (b"epoch", 0), (b"person_stats", 1)):
                put_meta_int(txn, m, key, v)
            txn.put(b"shards", b"[]", db=m)
            return dict(encoders)
        schema = meta_int(txn, m, b"schema")
        if schema != SCHEMA_VERSION:
            raise BadInputError(f"store {env.path} has schema {schema}; this mien reads {SCHEMA_VERSION}")
        known = json.loads(bytes(stored))
    if encoders:
        differs = [k for k in EMBEDDING_KEYS if k in encoders and encoders.get(k) != known.get(k)]
        if differs:
            raise EncoderMismatchError(
                f"store {env.path} was built with encoders {known}, but these are "
                f"{dict(encoders)} (different {', '.join(differs)}); vectors from different "
                "encoders cannot be mixed — use another store directory or re-index"
            )
    return known


class Store:
    """See docs/interfaces.md ("Store"). Thread-safe; not shareable across fork()."""

    def __init__(self, path: str, mode: str = "r", encoders: dict | None = None, *,
                 shard_size: int = 100_000, nprobe: int = 16, k_factor: int = 4,
                 exact_limit: int = 65536, probe_min: int = 4096, index_device: str = "cpu"):
        if mode not in ("r", "w"):
            raise BadInputError(f"mode must be 'r' or 'w', got {mode!r}")
        if index_device not in ("cpu", "gpu"):
            raise BadInputError(f"index_device must be 'cpu' or 'gpu', got {index_device!r}")
        self.path, self.mode = os.fspath(path), mode
        self.shard_size, self.index_device = int(shard_size), index_device
        self._env: StoreEnv | None = None
        self._live: LiveIndex | None = None
        self._env = env = StoreEnv(self.path, mode)
        try:
            self.encoders = _open_meta(env, encoders)
            self._live = LiveIndex(env, dict(nprobe=nprobe, k_factor=k_factor, exact_limit=exact_limit,
                                             probe_min=probe_min), index_device, self.encoders)
            self._persons = Persons(env, self.encoders)
            self._sealer = Sealer(env, self.shard_size)
            self._sources = Sources(env, self.encoders, self._persons, self._sealer)
            self._tags = Tags(env)
            self._reads = FaceReads(env, self._live, self.encoders)
            self._search = Searcher(env, self._live, self._reads, self.encoders)
            if mode == "w":
                self._sealer.repair()
                self._persons.migrate()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        if self._env is None:
            return
        with self._env.lock:
            self._env.close()
            if self._live is not None:
                self._live.drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # what tests, benchmarks and snapshot.py reach past the façade for
    @property
    def _db(self) -> dict:
        return self._env.db

    def _begin(self, write: bool = False):
        return self._env.begin(write)

    @property
    def _idx(self) -> FaceIndex | None:
        return self._live.idx

    # ------------------------------------------------------------ sources and tags (sources.py, tags.py)

    def replace_source(self, source: SourceRecord, faces: list[FaceRecord], *, new_persons=(),
                       person_updates=()) -> list[int]:
        """One transaction: drop the uri's previous faces, add these, write the source.

        new_persons: Persons created in the same transaction (ids in list order,
        set on the objects on return); faces refer to new_persons[i] by the
        placeholder person_id -2 - i. Their count is the store's; the centroid
        is the enrolled reference for a named one, a seed for an anonymous one.
        person_updates: Persons (id >= 0) whose name (unless None) and centroid
        are set as by update_person, in the same transaction.
        Person counts and identity sums follow the faces in this transaction; an
        anonymous person left without faces is deleted.
        """
        return self._sources.replace_source(source, faces, new_persons, person_updates)

    def remove_source(self, uri: str) -> None:
        """Drop the source and its faces; persons' counts follow (empty anonymous ones go)."""
        self._sources.remove_source(uri)

    def get_source(self, uri: str) -> SourceRecord | None:
        return self._sources.get_source(uri)

    def list_sources(self) -> list[SourceRecord]:
        return self._sources.list_sources()

    def put_tag(self, tag: Tag) -> None:
        self._tags.put_tag(tag)

    def delete_tag(self, name: str) -> None:
        self._tags.delete_tag(name)

    def get_tag(self, name: str) -> Tag:
        return self._tags.get_tag(name)

    def list_tags(self) -> list[Tag]:
        return self._tags.list_tags()

    # ------------------------------------------------------------ shards (sealing.py)

    def rebuild_shards(self) -> None:
        """Compact: retrain the IVF on all live faces, rewrite every shard, drop tombstones."""
        self._sealer.rebuild()

    def replace_vectors(self, face_ids, expressions, pooled, encoders: dict) -> None:
        """A new expression metric: set every live face's expression and pooled vector and the
        store's encoders in one transaction, then seal the faces again (revectors.py).
        face_ids must be exactly the live faces."""
        from mien.engine.store.revectors import rewrite_vectors

        if self.mode != "w":
            raise BadInputError("replacing vectors needs a store opened for writing")
        rewrite_vectors(self._env, face_ids, expressions, pooled, encoders)
        self.encoders.clear()             # the parts share this dict: update it in place
        self.encoders.update(encoders)
        self._sealer.repair()

    def stored_encoders(self) -> dict:
        """The encoders as committed now (another process may have re-embedded the store since
        this one opened it; `encoders` is what it had then)."""
        with self._env.begin() as txn:
            return json.loads(bytes(txn.get(b"encoders", db=self._env.db["meta"])))

    # ------------------------------------------------------------ searches (search.py)

    def search(self, vector, k: int = 10, *, persons=None, exclude_persons=None, sources=None,
               time_range=None, exclude_face=None, exclude_occluded: bool = False, records: bool = False,
               thumbnails: bool = False) -> list[Hit]:
        """Top-k faces by squared L2 to the expression vector, with filters.

        persons / exclude_persons: iterables of person ids (-1 = unknown person);
        sources: iterable of uris; time_range: (start_ms, end_ms), inclusive,
        either may be None; exclude_face: a face id to leave out;
        exclude_occluded: leave out faces FaceQA flagged as occluded.
        records=True fills each Hit's `record` (a HitRecord, with the JPEG when
        thumbnails=True) from the same read transaction as the search, so a
        writer removing a hit meanwhile can't make the read fail.
        """
        return self._search.search(vector, k, persons=persons, exclude_persons=exclude_persons,
                                   sources=sources, time_range=time_range, exclude_face=exclude_face,
                                   exclude_occluded=exclude_occluded, records=records, thumbnails=thumbnails)

    def search_person(self, vector, person_id: int, k: int = 10, *, exclude_face=None,
                      exclude_occluded: bool = False, records: bool = False,
                      thumbnails: bool = False) -> list[Hit]:
        """Top-k among one person's faces: exact up to probe_min faces, else over the
        query's nprobe nearest IVF lists (as search does) plus faces not yet in the IVF.
        exclude_occluded / records / thumbnails: as search."""
        return self._search.search_person(vector, person_id, k, exclude_face=exclude_face,
                                          exclude_occluded=exclude_occluded, records=records,
                                          thumbnails=thumbnails)

    def search_identity(self, vector, k: int = 10, *, exclude_face=None, exclude_occluded: bool = False,
                        records: bool = False, thumbnails: bool = False) -> list[Hit]:
        """Exact top-k by squared L2 over identity vectors (loaded on first use).
        exclude_occluded / records / thumbnails: as search."""
        return self._search.search_identity(vector, k, exclude_face=exclude_face,
                                            exclude_occluded=exclude_occluded, records=records,
                                            thumbnails=thumbnails)

    def occluded_face_ids(self) -> np.ndarray:
        """Sorted ids of the live faces FaceQA flagged as occluded (a hand or a mask over the mouth)."""
        return self._live.occluded_face_ids()

    # ------------------------------------------------------------ face reads (reads.py)

    def get_face(self, face_id: int, *, thumbnail: bool = True) -> FaceRecord:
        return self._reads.get_face(face_id, thumbnail)

    def get_faces(self, face_ids, *, thumbnail: bool = False, identity: bool = True) -> list[FaceRecord]:
        """Records of many faces, in the order given, from ONE read transaction.

        No thumbnails unless asked (the JPEG is most of a record's bytes);
        identity=False skips the identity vectors (search hits don't show them).
        NotFoundError names the first missing face.
        """
        return self._reads.get_faces(face_ids, thumbnail, identity)

    def hit_records(self, face_ids, *, thumbnail: bool = False) -> list[HitRecord]:
        """What search hits show of these faces (uri, frame, time, bbox, track,
        person), in the order given, from ONE read transaction.

        Two LMDB gets and a struct unpack per face, where get_faces decodes whole
        records. NotFoundError names the first missing face.
        """
        return self._reads.hit_records(face_ids, thumbnail)

    def face_table(self, *, occlusion: bool = False) -> dict:
        """Every live face as columns, from the in-memory index (no record reads).

        {"face_id": int64, "person_id": int32, "source": int32 source number,
         "timestamp_ms": int64, "uris": {source number: uri}}, sorted by face_id;
        occlusion=True adds "occluded": bool (FaceQA's mouth-occlusion flag; the
        first call reads every face value once, later ones are kept up to date).
        """
        return self._reads.face_table(occlusion)

    def get_thumbnail(self, face_id: int) -> bytes:
        return self._reads.get_thumbnail(face_id)

    def faces_of_source(self, uri: str, *, thumbnail: bool = True) -> list[FaceRecord]:
        """The source's faces sorted by (timestamp_ms, face_id); [] for an unknown uri."""
        return self._reads.faces_of_source(uri, thumbnail)

    def vectors(self, face_ids, kind: str = "expression") -> np.ndarray:
        """(n, dim) float32 in the order given, from one read transaction.

        identity rows are NaN for faces without one; NotFoundError for a missing face.
        """
        return self._reads.vectors(face_ids, kind)

    def features(self, face_ids) -> tuple[np.ndarray, np.ndarray]:
        """(float32 (n, dim) expression features in the order given, bool (n,) mask of the faces that
        have them), from one read transaction; NaN rows for faces stored without features."""
        return self._reads.features(face_ids)

    # ------------------------------------------------------------ persons (persons.py)

    def add_person(self, name: str | None, centroid) -> int:
        """A new person without faces; the store counts faces itself."""
        return self._persons.add_person(name, centroid)

    def update_person(self, person_id: int, *, name=None, centroid=None) -> None:
        """Rename, or set the centroid (a named person's reference; an anonymous one's seed)."""
        self._persons.update_person(person_id, name=name, centroid=centroid)

    def delete_person(self, person_id: int, *, release_faces: bool = False) -> None:
        """Remove a person. With faces: BadInputError unless release_faces, which makes
        them unknown (person -1) in the same transaction."""
        self._persons.delete_person(person_id, release_faces=release_faces)

    def set_faces_person(self, face_ids, person_id: int) -> None:
        """Assign faces to a person (-1 = unknown); counts follow, an emptied anonymous person goes."""
        self._persons.set_faces_person(face_ids, person_id)

    def merge_persons(self, src_id: int, dst_id: int, *, allow_same_frame: bool = False) -> None:
        """src's faces move to dst and src is removed; dst takes src's name and reference if it has none.

        Refused (BadInputError, nothing written) when the two persons have faces
        in one image or video frame, unless allow_same_frame: a frame shows two
        people there, and un-merging is what users can't do.
        """
        self._persons.merge_persons(src_id, dst_id, allow_same_frame=allow_same_frame)

    def split_person(self, face_ids) -> int:
        """Move these faces (all of one person) to a new anonymous person, in one transaction; its id."""
        return self._persons.split_person(face_ids)

    def move_faces(self, face_ids, person_id: int, *, allow_same_frame: bool = False) -> None:
        """Move faces (of any persons, or none) to an existing person in one transaction; refused
        when one would share a frame with another face of that person, unless allow_same_frame."""
        self._persons.move_faces(face_ids, person_id, allow_same_frame=allow_same_frame)

    def unassigned_face_ids(self, after: int | None = None, limit: int = 50) -> tuple[np.ndarray, int]:
        """(ids of faces no person holds, after `after`, at most `limit`; how many there are). Scans the faces."""
        return self._persons.unassigned_face_ids(after, limit)

    def cover_face(self, person_id: int) -> int:
        """A face to show for the person (nearest its identity centroid among its first faces); 0 if none."""
        return self._persons.cover_face(person_id)

    def cannot_links(self) -> set[tuple[int, int]]:
        """Pairs (a < b) of persons a user said are not one person (a rejected merge suggestion)."""
        return self._persons.cannot_links()

    def add_cannot_link(self, a: int, b: int) -> None:
        """Record that persons a and b are not one person; a merge of the two removes it."""
        self._persons.add_cannot_link(a, b)

    def check_persons(self, *, repair: bool = False) -> list[int]:
        """Ids of persons whose count/identity sum disagree with their faces (recomputed if repair).

        Cost ~ faces with a person. Nothing but a store written by an older
        mien (or a bug) can disagree: every face move updates them in its txn.
        """
        return self._persons.check_persons(repair=repair)

    def get_person(self, person_id: int) -> Person:
        return self._persons.get_person(person_id)

    def find_person(self, name: str) -> Person | None:
        return self._persons.find_person(name)

    def list_persons(self) -> list[Person]:
        return self._persons.list_persons()

    def person_face_ids(self, person_id: int) -> np.ndarray:
        return self._persons.person_face_ids(person_id)

    def person_identities(self, person_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(face ids, float32 identity rows) of the person's faces that carry an identity."""
        return self._persons.person_identities(person_id)

    def frame_conflicts(self, faces_a, faces_b, limit: int = 5) -> list[tuple[str, int]]:
        """(uri, timestamp_ms) of up to `limit` frames where a face of faces_a and a
        different face of faces_b both appear: such faces are two people."""
        return self._persons.frame_conflicts(faces_a, faces_b, limit)

    def person_rules(self) -> dict | None:
        """The linking rules the indexer recorded last ({"identity", "threshold", "margin", ...}), or None."""
        return self._persons.person_rules()

    def record_person_rules(self, rules: dict) -> dict | None:
        """Record the rules of this run; returns the differing rules recorded before (None if same or new).

        Earlier differing rules are kept under "previous" (the last ten), so the
        store tells which persons may have been linked under other rules.
        """
        return self._persons.record_person_rules(rules)

    # ------------------------------------------------------------ the whole store

    def stats(self) -> dict:
        env, d, m = self._env, self._env.db, self._env.db["meta"]
        with env.lock, env.begin() as txn:
            reg = json.loads(bytes(txn.get(b"shards", db=m)))
            out = {
                "faces": txn.stat(d["vec"])["entries"],
                "sources": txn.stat(d["sources"])["entries"],
                "persons": txn.stat(d["persons"])["entries"],
                "tags": txn.stat(d["tags"])["entries"],
                "shards": len(reg),
                "sealed_faces": sum(s["count"] for s in reg),
                "tombstones": txn.stat(d["dead"])["entries"],
                "encoders": dict(self.encoders),
                "schema": meta_int(txn, m, b"schema"),
                "generation": meta_int(txn, m, b"gen"),
            }
        size = 0
        for root, _, files in os.walk(self.path):
            for f in files:
                st = os.stat(os.path.join(root, f))
                size += st.st_blocks * 512  # real disk use: the LMDB map is sparse
        out["bytes"] = size
        idx = self._live.idx
        if idx is not None:
            out["index"] = {
                "kind": "ivf-sq8" if idx.ivf else "flat", "nprobe": idx.nprobe,
                "ram_bytes": idx.ram_bytes(), "rows": idx.ids.n,
            }
        return out
