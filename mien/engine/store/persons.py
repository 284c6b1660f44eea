"""Person bookkeeping of the store: who the persons are and which faces they hold.

`Persons` is the Store's part that owns the person records (`persons`,
`person_faces` dbs). A person's count and identity sum follow its faces in
every transaction that adds, removes or moves faces: here, and in the
source writes (sources.py), which call create/update/apply_deltas inside
their own transaction. So no caller writes them and no crash leaves them stale.

Cannot-link: two faces of the same image or video frame are two people.
The store knows a face's frame as (source number, timestamp) from its search
row, so `merge_persons` refuses to merge two persons that share a frame
unless told to (`allow_same_frame`).

The linking rules the indexer used (identity model, threshold, margin) are
recorded in the meta db (`person_rules`), so a later run with other rules
can say so.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from mien.engine.store import changelog
from mien.engine.store.db import StoreEnv, ids_bytes, meta_int, put_meta_int
from mien.engine.store.records import (
    VEC_DTYPE, Person, as_vector, decode_person, decode_person_stats, encode_person, id_key, uri_of,
    key_id, key_pair, pair_key,
)
from mien.errors import AlreadyExistsError, BadInputError, NotFoundError
from mien.filenames import escape, shown

log = logging.getLogger(__name__)


def unit64(ident) -> np.ndarray | None:
    """A face's contribution to its person's identity sum: its identity, L2-normalised, in float64.

    Computed from the stored float32 bytes both when a face is added and when it
    is removed, so the two cancel exactly (up to float64 rounding).
    """
    if ident is None:
        return None
    v = np.frombuffer(bytes(ident), dtype="<f4").astype(np.float64)
    n = np.linalg.norm(v)
    return v / n if n > 0 and np.isfinite(n) else None


class PersonDeltas:
    """Face-count and identity-sum changes per person within one write transaction."""

    def __init__(self):
        self.d: dict[int, list] = {}  # pid -> [d_count, d_n_ident, d_sum or None]

    def add(self, pid: int, unit: np.ndarray | None, sign: int) -> None:
        if pid < 0:
            return
        e = self.d.setdefault(pid, [0, 0, None])
        e[0] += sign
        if unit is not None:
            e[1] += sign
            e[2] = sign * unit if e[2] is None else e[2] + sign * unit


class Persons:
    """The person records of one store, and the person methods of `Store`."""

    def __init__(self, env: StoreEnv, encoders: dict):
        self._env, self._db = env, env.db
        self._encoders = encoders

    # A person's count and identity sum are derived from its faces and updated
    # in every transaction that adds, removes or moves faces (apply_deltas), so
    # no caller writes them and no crash leaves them stale. The centroid used
    # for linking is the enrolled reference when there is one (a named person's
    # centroid given to add_person/update_person/new_persons: the user chose those
    # photos, and letting faces pull it would let a chain of near-threshold faces
    # drag the name onto someone else); otherwise the normalised sum of its
    # faces' unit identity vectors; with no such face yet, the seed it was given.

    def _read_person(self, txn, pid: int):
        v = txn.get(id_key(pid), db=self._db["persons"])
        if v is None:
            raise NotFoundError(f"person {pid} does not exist",
                                reason="PERSON_NOT_FOUND", resource=("mien.v1.Person", str(pid)))
        return decode_person_stats(int(pid), v)

    def _write_person(self, txn, p: Person, n_ident: int, ident_sum) -> None:
        if p.reference is not None:
            p.centroid = p.reference
        elif n_ident > 0 and ident_sum is not None:
            norm = np.linalg.norm(ident_sum)
            if norm > 0:
                p.centroid = (ident_sum / norm).astype(np.float32)
        txn.put(id_key(p.person_id), encode_person(p, n_ident, ident_sum), db=self._db["persons"])

    def apply_deltas(self, txn, deltas: PersonDeltas) -> None:
        for pid in sorted(deltas.d):
            dc, dn, ds = deltas.d[pid]
            if dc == 0 and dn == 0 and ds is None:
                continue
            p, n_ident, s = self._read_person(txn, pid)
            before = p.count
            p.count += dc
            n_ident += dn
            if p.count < 0 or n_ident < 0:
                raise RuntimeError(f"person {pid}: count would go negative (store corrupt?)")
            if n_ident == 0:
                s = None  # exactly zero again, whatever the float64 rounding left
            elif ds is not None:
                s = ds.copy() if s is None or len(s) == 0 else s + ds
            if p.count == 0 and before > 0 and p.name is None:
                txn.delete(id_key(pid), db=self._db["persons"])  # anonymous persons live by their faces
                continue
            self._write_person(txn, p, n_ident, s)

    def _person_stats(self, txn, pid: int) -> tuple[int, int, np.ndarray | None]:
        """(count, n_ident, identity sum) recomputed from the person's faces."""
        ident = self._db["ident"]
        ids = self._person_ids(txn, pid)
        n_ident, s = 0, None
        for fid in ids:
            u = unit64(txn.get(id_key(fid), db=ident))
            if u is not None:
                n_ident += 1
                s = u.copy() if s is None else s + u
        return len(ids), n_ident, s

    def check_persons(self, *, repair: bool) -> list[int]:
        bad = []
        with self._env.lock, self._env.begin(write=repair) as txn:
            for k, v in list(txn.cursor(db=self._db["persons"])):
                p, n_ident, s = decode_person_stats(key_id(k), v)
                count, n2, s2 = self._person_stats(txn, p.person_id)
                same_sum = (s2 is None and n_ident == 0) or (
                    s is not None and s2 is not None and len(s) == len(s2) and np.allclose(s, s2, atol=1e-6))
                if count == p.count and n2 == n_ident and same_sum:
                    continue
                bad.append(p.person_id)
                if repair:
                    p.count = count
                    self._write_person(txn, p, n2, s2)
        return bad

    def migrate(self) -> None:
        """Stores written before the store kept person counts: recompute them once."""
        m = self._db["meta"]
        with self._env.begin() as txn:
            if txn.get(b"person_stats", db=m) is not None:
                return
        fixed = self.check_persons(repair=True)
        with self._env.lock, self._env.begin(write=True) as txn:
            put_meta_int(txn, m, b"person_stats", 1)
        log.info("person counts now kept by the store (%d persons recomputed)", len(fixed))

    def create(self, txn, name: str | None, centroid) -> int:
        c = as_vector(centroid, len(np.ravel(centroid)), "person centroid")
        if name is not None:
            name = str(name)
            if not name:
                raise BadInputError("a person name must not be empty (use None for anonymous)")
            if self._find_person(txn, name) is not None:
                raise AlreadyExistsError(f"a person named {name!r} already exists", reason="PERSON_NAME_EXISTS",
                                         resource=("mien.v1.Person", name))
        m = self._db["meta"]
        pid = meta_int(txn, m, b"next_person")
        put_meta_int(txn, m, b"next_person", pid + 1)
        self._write_person(txn, Person(pid, name, c, 0, c if name is not None else None), 0, None)
        return pid

    def add_person(self, name: str | None, centroid) -> int:
        with self._env.lock, self._env.begin(write=True) as txn:
            return self.create(txn, name, centroid)

    def update(self, txn, person_id: int, *, name=None, centroid=None) -> None:
        p, n_ident, s = self._read_person(txn, person_id)
        if name is not None and name != p.name:
            other = self._find_person(txn, name)
            if other is not None:
                raise AlreadyExistsError(f"a person named {name!r} already exists ({other.person_id})",
                                         reason="PERSON_NAME_EXISTS", resource=("mien.v1.Person", name))
            p.name = name
        if centroid is not None:
            c = as_vector(centroid, len(np.ravel(centroid)), "person centroid")
            if p.name is not None:
                p.reference = c  # an enrolled identity
            else:
                p.centroid = c   # a seed: the faces' identities take over when there are any
        self._write_person(txn, p, n_ident, s)

    def update_person(self, person_id: int, *, name, centroid) -> None:
        with self._env.lock, self._env.begin(write=True) as txn:
            self.update(txn, int(person_id), name=name, centroid=centroid)

    def delete_person(self, person_id: int, *, release_faces: bool) -> None:
        with self._env.lock, self._env.begin(write=True) as txn:
            self._read_person(txn, int(person_id))
            ids = self._person_ids(txn, int(person_id))
            if len(ids) and not release_faces:
                raise BadInputError(f"person {person_id} still has {len(ids)} faces; merge or reassign them first")
            if len(ids):
                deltas = PersonDeltas()
                self._set_person(txn, ids, -1, deltas)
                self.apply_deltas(txn, deltas)  # an anonymous person goes with its last face
            txn.delete(id_key(int(person_id)), db=self._db["persons"])

    def _set_person(self, txn, ids: np.ndarray, person_id: int, deltas: PersonDeltas) -> None:
        d = self._db
        for fid in ids:
            k = id_key(fid)
            raw = txn.get(k, db=d["vec"])
            if raw is None:
                raise NotFoundError(f"face {int(fid)} does not exist",
                                    reason="FACE_NOT_FOUND", resource=("mien.v1.Face", str(int(fid))))
            row = np.frombuffer(bytes(raw), dtype=VEC_DTYPE).copy()
            old = int(row["person"][0])
            if old == person_id:
                continue
            unit = unit64(txn.get(k, db=d["ident"]))
            if old >= 0:
                txn.delete(pair_key(old, fid), db=d["person_faces"])
                deltas.add(old, unit, -1)
            row["person"] = person_id
            txn.put(k, row.tobytes(), db=d["vec"])
            if person_id >= 0:
                txn.put(pair_key(person_id, fid), b"", db=d["person_faces"])
                deltas.add(person_id, unit, +1)
        changelog.append(txn, self._db, b"P", ids_bytes([person_id]) + ids_bytes(ids))

    def set_faces_person(self, face_ids, person_id: int) -> None:
        ids = np.asarray(face_ids, dtype=np.int64).reshape(-1)
        with self._env.lock, self._env.begin(write=True) as txn:
            if person_id >= 0:
                self._read_person(txn, person_id)
            deltas = PersonDeltas()
            self._set_person(txn, ids, int(person_id), deltas)
            self.apply_deltas(txn, deltas)

    def _person_ids(self, txn, person_id: int) -> np.ndarray:
        cur = txn.cursor(db=self._db["person_faces"])
        out = []
        if cur.set_range(pair_key(person_id, 0)):
            for k in cur.iternext(values=False):
                p, fid = key_pair(k)
                if p != person_id:
                    break
                out.append(fid)
        return np.asarray(out, dtype=np.int64)

    def person_face_ids(self, person_id: int) -> np.ndarray:
        with self._env.begin() as txn:
            return self._person_ids(txn, int(person_id))

    def _get_person(self, txn, person_id: int) -> Person:
        v = txn.get(id_key(person_id), db=self._db["persons"])
        if v is None:
            raise NotFoundError(f"person {person_id} does not exist",
                                reason="PERSON_NOT_FOUND", resource=("mien.v1.Person", str(person_id)))
        return decode_person(int(person_id), v)

    def _find_person(self, txn, name: str) -> Person | None:
        for k, v in txn.cursor(db=self._db["persons"]):
            p = decode_person(key_id(k), v)
            if p.name == name:
                return p
        return None

    def get_person(self, person_id: int) -> Person:
        with self._env.begin() as txn:
            return self._get_person(txn, person_id)

    def find_person(self, name: str) -> Person | None:
        with self._env.begin() as txn:
            return self._find_person(txn, name)

    def list_persons(self) -> list[Person]:
        with self._env.begin() as txn:
            return [decode_person(key_id(k), v) for k, v in txn.cursor(db=self._db["persons"])]

    # ------------------------------------------------------------ cannot-link, split, rules

    def _frame_rows(self, txn, ids):
        """(face id, (source number, timestamp_ms)) of each existing face: the face's frame."""
        vec = self._db["vec"]
        for fid in ids:
            raw = txn.get(id_key(int(fid)), db=vec)
            if raw is not None:
                row = np.frombuffer(bytes(raw), dtype=VEC_DTYPE)
                yield int(fid), (int(row["src"][0]), int(row["ts"][0]))

    def _frame_conflicts(self, txn, faces_a, faces_b, limit: int) -> list[tuple[str, int]]:
        frames: dict[tuple[int, int], set[int]] = {}
        for fid, frame in self._frame_rows(txn, faces_a):
            frames.setdefault(frame, set()).add(fid)
        shared = sorted({frame for fid, frame in self._frame_rows(txn, faces_b)
                         if frames.get(frame, set()) - {fid}})
        out = []
        for src_no, ts in shared[:limit]:
            uri = txn.get(id_key(src_no), db=self._db["src_no"])
            out.append((uri_of(uri) if uri is not None else f"source #{src_no}", ts))
        return out

    def frame_conflicts(self, faces_a, faces_b, limit: int) -> list[tuple[str, int]]:
        with self._env.begin() as txn:
            return self._frame_conflicts(txn, faces_a, faces_b, limit)

    def person_identities(self, person_id: int) -> tuple[np.ndarray, np.ndarray]:
        ident = self._db["ident"]
        with self._env.begin() as txn:
            ids, rows = [], []
            for fid in self._person_ids(txn, int(person_id)):
                v = txn.get(id_key(int(fid)), db=ident)
                if v is not None:
                    ids.append(int(fid))
                    rows.append(np.frombuffer(bytes(v), dtype="<f4"))
        dim = len(rows[0]) if rows else int(self._encoders.get("identity_dim", 0))
        return np.asarray(ids, np.int64), (np.stack(rows) if rows else np.zeros((0, dim), np.float32))

    def merge_persons(self, src_id: int, dst_id: int, *, allow_same_frame: bool) -> None:
        if src_id == dst_id:
            raise BadInputError("cannot merge a person into itself")
        with self._env.lock, self._env.begin(write=True) as txn:
            src, _, _ = self._read_person(txn, src_id)
            dst, n_ident, s = self._read_person(txn, dst_id)
            src_faces = self._person_ids(txn, src_id)
            if not allow_same_frame:
                shared = self._frame_conflicts(txn, src_faces, self._person_ids(txn, dst_id), 3)
                if shared:
                    raise _same_frame(f"persons {src_id} and {dst_id} both have a face", shared,
                                      "(allow_same_frame, `mien person merge --allow-same-frame`)")
            if dst.name is None and src.name is not None:
                dst.name, dst.reference = src.name, src.reference
                self._write_person(txn, dst, n_ident, s)
            deltas = PersonDeltas()
            self._set_person(txn, src_faces, dst_id, deltas)
            deltas.d.pop(src_id, None)
            self.apply_deltas(txn, deltas)
            txn.delete(id_key(src_id), db=self._db["persons"])
            # "not the same person" said of src now holds for dst; of src and dst, no longer
            for a, b in self._cannot_links(txn):
                if src_id in (a, b):
                    txn.delete(_nolink_key(a, b), db=self._db["meta"])
                    other = b if a == src_id else a
                    if other != dst_id:
                        txn.put(_nolink_key(other, dst_id), b"", db=self._db["meta"])

    def move_faces(self, face_ids, dst_id: int, *, allow_same_frame: bool) -> None:
        """Faces (of any persons, or none) to an existing person, in one transaction.

        Refused, nothing written, when a moved face shares an image or frame with
        another face the person would then hold, unless allow_same_frame.
        """
        ids = np.unique(np.asarray(face_ids, dtype=np.int64).reshape(-1))
        if len(ids) == 0:
            raise BadInputError("moving faces needs at least one face id")
        with self._env.lock, self._env.begin(write=True) as txn:
            self._read_person(txn, int(dst_id))
            for fid in ids:
                if txn.get(id_key(int(fid)), db=self._db["vec"]) is None:
                    raise NotFoundError(f"face {int(fid)} does not exist",
                                        reason="FACE_NOT_FOUND", resource=("mien.v1.Face", str(int(fid))))
            if not allow_same_frame:
                staying = np.setdiff1d(self._person_ids(txn, int(dst_id)), ids)
                shared = self._frame_conflicts(txn, ids, np.concatenate([staying, ids]), 3)
                if shared:
                    raise _same_frame(f"a moved face and another face person {dst_id} would hold are", shared,
                                      "(allow_same_frame)")
            deltas = PersonDeltas()
            self._set_person(txn, ids, int(dst_id), deltas)
            self.apply_deltas(txn, deltas)

    def unassigned_face_ids(self, after: int | None, limit: int) -> tuple[np.ndarray, int]:
        """(up to `limit` ids of faces no person holds, in id order after `after`; how many there are)."""
        out, total = [], 0
        with self._env.begin() as txn:
            for k, raw in txn.cursor(db=self._db["vec"]):
                if int(np.frombuffer(bytes(raw), dtype=VEC_DTYPE)["person"][0]) >= 0:
                    continue
                total += 1
                fid = key_id(k)
                if (after is None or fid > after) and len(out) < limit:
                    out.append(fid)
        return np.asarray(out, dtype=np.int64), total

    def cover_face(self, person_id: int, limit: int = 64) -> int:
        """A face to show for the person: of its first `limit` faces, the one nearest its identity centroid (0 if none)."""
        d = self._db
        with self._env.begin() as txn:
            ids = self._person_ids(txn, int(person_id))[:limit]
            if not len(ids):
                return 0
            person = self._get_person(txn, int(person_id))
            best, best_d = int(ids[0]), None
            centroid = np.asarray(person.centroid, dtype=np.float64)
            for fid in ids:
                v = txn.get(id_key(int(fid)), db=d["ident"])
                if v is None or len(centroid) == 0:
                    continue
                u = np.frombuffer(bytes(v), dtype="<f4").astype(np.float64)
                if u.shape != centroid.shape:
                    continue
                dist = float(np.sum((u / (np.linalg.norm(u) or 1.0) - centroid / (np.linalg.norm(centroid) or 1.0)) ** 2))
                if best_d is None or dist < best_d:
                    best, best_d = int(fid), dist
            return best

    def _cannot_links(self, txn) -> list[tuple[int, int]]:
        cur = txn.cursor(db=self._db["meta"])
        out = []
        if cur.set_range(_NOLINK):
            for k in cur.iternext(values=False):
                k = bytes(k)
                if not k.startswith(_NOLINK):
                    break
                out.append(key_pair(k[len(_NOLINK):]))
        return out

    def cannot_links(self) -> set[tuple[int, int]]:
        with self._env.begin() as txn:
            return set(self._cannot_links(txn))

    def add_cannot_link(self, a: int, b: int) -> None:
        if a == b:
            raise BadInputError("a person is the same person as itself")
        with self._env.lock, self._env.begin(write=True) as txn:
            self._read_person(txn, int(a))
            self._read_person(txn, int(b))
            txn.put(_nolink_key(a, b), b"", db=self._db["meta"])

    def split_person(self, face_ids) -> int:
        ids = np.unique(np.asarray(face_ids, dtype=np.int64).reshape(-1))
        if len(ids) == 0:
            raise BadInputError("splitting needs at least one face id")
        d = self._db
        with self._env.lock, self._env.begin(write=True) as txn:
            owners = set()
            seed = None
            for fid in ids:
                raw = txn.get(id_key(int(fid)), db=d["vec"])
                if raw is None:
                    raise NotFoundError(f"face {int(fid)} does not exist",
                                        reason="FACE_NOT_FOUND", resource=("mien.v1.Face", str(int(fid))))
                owners.add(int(np.frombuffer(bytes(raw), dtype=VEC_DTYPE)["person"][0]))
                ident = txn.get(id_key(int(fid)), db=d["ident"])
                if seed is None and ident is not None:
                    seed = np.frombuffer(bytes(ident), dtype="<f4").copy()
            if len(owners) != 1 or -1 in owners:
                raise BadInputError(f"the faces to split off must all belong to one person, not {sorted(owners)}")
            (owner,) = owners
            if seed is None:
                seed, _, _ = self._read_person(txn, owner)
                seed = seed.centroid
            pid = self.create(txn, None, seed)
            deltas = PersonDeltas()
            self._set_person(txn, ids, pid, deltas)
            self.apply_deltas(txn, deltas)
            return pid

    def person_rules(self) -> dict | None:
        with self._env.begin() as txn:
            v = txn.get(b"person_rules", db=self._db["meta"])
            return None if v is None else json.loads(bytes(v))

    def record_person_rules(self, rules: dict) -> dict | None:
        rules = {k: v for k, v in rules.items() if k != "previous"}
        with self._env.lock, self._env.begin(write=True) as txn:
            v = txn.get(b"person_rules", db=self._db["meta"])
            old = None if v is None else json.loads(bytes(v))
            previous = list((old or {}).get("previous", []))
            before = None if old is None else {k: x for k, x in old.items() if k != "previous"}
            changed = before is not None and before != rules
            if changed:
                previous = (previous + [before])[-10:]
            txn.put(b"person_rules", json.dumps(dict(rules, previous=previous), sort_keys=True).encode(),
                    db=self._db["meta"])
            return before if changed else None


# "these two persons are not one" (a rejected merge suggestion), in the meta table: no new table,
# so stores written before read the same
_NOLINK = b"nolink/"


def _nolink_key(a: int, b: int) -> bytes:
    return _NOLINK + pair_key(min(a, b), max(a, b))


def _same_frame(who: str, shared, how: str) -> BadInputError:
    """The refusal of a merge or move that would put two faces of one frame in one person."""
    where = ", ".join(f"{shown(uri)} at {ts} ms" for uri, ts in shared)
    uri, ts = shared[0]
    return BadInputError(
        f"{who} in the same frame ({where}): two faces of one frame are two people; "
        f"go ahead only if the detector found one face twice {how}",
        reason="SAME_FRAME", metadata={"source_uri": escape(uri), "timestamp_ms": ts, "frames": len(shared)})
