"""Enrolling named persons, and the person list operations of the CLI."""

from __future__ import annotations

import os

import numpy as np

from mien.errors import BadInputError
from mien.indexer.persons import default_threshold, normalise


def _reference_vectors(analyzer, images) -> list[np.ndarray]:
    """The identity of the largest face in each image (FaceQA not required)."""
    from mien.engine.faces import load_image

    vectors = []
    for item in images:
        image = item if isinstance(item, np.ndarray) else load_image(item)
        faces = analyzer.analyze(image, identity=True, keep_rejected=True)
        faces = [f for f in faces if f.identity is not None]
        if not faces:
            name = "<array>" if isinstance(item, np.ndarray) else os.fspath(item)
            raise BadInputError(f"no face with an identity found in {name}")
        largest = max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        vectors.append(normalise(largest.identity))
    return vectors


def enroll_person(store_dir, name: str, images, engine_config=None, *, threshold: float | None = None,
                  analyzer=None) -> dict:
    """Add (or extend) the named person `name` from reference images.

    The reference identity is the mean of the largest face of each image.
    Anonymous persons already in the store whose centroid is within the
    identity threshold are merged into the named person, so faces indexed
    before the enrollment get the name too. Returns
    {"person_id", "name", "merged": [anonymous ids], "faces": count}.
    """
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.store import Store

    name = (name or "").strip()
    if not name:
        raise BadInputError("a person needs a non-empty name")
    if not images:
        raise BadInputError("enrolling a person needs at least one image")
    analyzer = analyzer or FaceAnalyzer(engine_config or EngineConfig())
    reference = normalise(np.mean(_reference_vectors(analyzer, images), axis=0))
    with Store(os.fspath(store_dir), mode="w", encoders=analyzer.encoders) as store:
        threshold = threshold or default_threshold(store.encoders or analyzer.encoders)
        person = store.find_person(name)
        if person is None:
            pid = store.add_person(name, reference)
        else:
            pid = person.person_id
            store.update_person(pid, centroid=normalise(normalise(person.centroid) + reference))
        merged = []
        for other in store.list_persons():
            if other.person_id == pid or other.name:
                continue
            if float(np.linalg.norm(normalise(other.centroid) - reference)) <= threshold:
                store.merge_persons(other.person_id, pid)
                merged.append(other.person_id)
        faces = len(store.person_face_ids(pid))
        return {"person_id": pid, "name": name, "merged": merged, "faces": faces}


def resolve_person(store, ref: str):
    """A person by id ("12") or by name."""
    from mien.errors import NotFoundError

    if ref.lstrip("-").isdigit():
        return store.get_person(int(ref))
    person = store.find_person(ref)
    if person is None:
        raise NotFoundError(f"no person named {ref!r}")
    return person
