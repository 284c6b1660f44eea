"""The Client's calls on what a store holds: faces, persons (and their admin), sources, stats."""

from __future__ import annotations

from typing import Sequence

from mien.clients import from_proto
from mien.clients.request_fields import person_ref
from mien.results.catalog import DeletedPerson, Face, Page, Person, Stats
from mien.v1 import search_pb2


class CatalogCalls:
    """Mixed into Client, which provides _call."""

    def get_face(self, face_id: int | str, *, timeout: float | None = None) -> Face:
        return from_proto.face(self._call("GetFace", search_pb2.GetFaceRequest(face_id=int(face_id)), timeout))

    def persons(self, *, timeout: float | None = None) -> list[Person]:
        """Every person (page after page)."""
        out, token = [], ""
        while True:
            page = self.persons_page(page_size=1000, page_token=token, timeout=timeout)
            out += page.items
            token = page.next_page_token
            if not token:
                return out

    def persons_page(self, *, page_size: int = 100, page_token: str = "",
                     timeout: float | None = None) -> Page:
        """One page of persons by ascending id (Person items)."""
        resp = self._call("ListPersons", search_pb2.ListPersonsRequest(page_size=page_size, page_token=page_token),
                          timeout)
        return Page([from_proto.person(p) for p in resp.persons], resp.next_page_token, resp.total_size)

    def person(self, person: int | str, *, timeout: float | None = None) -> Person:
        return from_proto.person(self._call("GetPerson", search_pb2.GetPersonRequest(person=person_ref(person)),
                                         timeout))

    def rename_person(self, person: int | str, name: str, *, timeout: float | None = None) -> Person:
        """Name (or rename) a person, by id or current name."""
        req = search_pb2.RenamePersonRequest(person=person_ref(person), name=name)
        return from_proto.person(self._call("RenamePerson", req, timeout))

    def merge_persons(self, source: int | str, target: int | str, *, allow_same_frame: bool = False,
                      timeout: float | None = None) -> Person:
        """Move every face of `source` to `target` and remove `source`; returns the target."""
        req = search_pb2.MergePersonsRequest(source=person_ref(source), target=person_ref(target),
                                             allow_same_frame=allow_same_frame)
        return from_proto.person(self._call("MergePersons", req, timeout))

    def split_person(self, face_ids: Sequence[int | str], *, timeout: float | None = None) -> Person:
        """Move these faces (all of one person) to a new anonymous person; returns it."""
        req = search_pb2.SplitPersonRequest(face_ids=[int(f) for f in face_ids])
        return from_proto.person(self._call("SplitPerson", req, timeout))

    def delete_person(self, person: int | str, *, release_faces: bool = False,
                      timeout: float | None = None) -> DeletedPerson:
        req = search_pb2.DeletePersonRequest(person=person_ref(person), release_faces=release_faces)
        r = self._call("DeletePerson", req, timeout)
        return DeletedPerson(r.person_id, r.released_faces)

    def person_faces(self, person: int | str, *, page_size: int = 0, page_token: str = "",
                     thumbnails: bool = False, timeout: float | None = None) -> Page:
        """One page of a person's faces (FaceHit, distance 0); Page.next_page_token for the next."""
        req = search_pb2.ListPersonFacesRequest(person=person_ref(person), page_size=page_size,
                                                page_token=page_token, include_thumbnails=thumbnails)
        r = self._call("ListPersonFaces", req, timeout)
        return Page([from_proto.hit(h) for h in r.faces], r.next_page_token, r.total_size)

    def sources(self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None) -> Page:
        """One page of the indexed sources (Source); Page.next_page_token for the next."""
        r = self._call("ListSources", search_pb2.ListSourcesRequest(page_size=page_size, page_token=page_token),
                       timeout)
        return Page([from_proto.source(x) for x in r.sources], r.next_page_token, r.total_size)

    def stats(self, *, timeout: float | None = None) -> Stats:
        return from_proto.stats(self._call("Stats", search_pb2.StatsRequest(), timeout))
