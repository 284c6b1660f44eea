"""Per-person summaries and corpus clusters on a real Store with designed clusters."""

from __future__ import annotations

import numpy as np
import pytest

from analytics_support import add_source, basis, clustered_vectors, face, open_store
from mien.engine import analytics
from mien.engine.analytics import summaries
from mien.errors import BadInputError, NotFoundError

SIZES = (50, 30, 20)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Ann: 100 faces in 3 tight groups (50/30/20); Ben: 1 face; Cy: 2 identical faces;
    Dee: no faces; one unknown face."""
    path = tmp_path_factory.mktemp("summ") / "store"
    s = open_store(path)
    ann = s.add_person("Ann", basis(0))
    ben = s.add_person("Ben", basis(1))
    cy = s.add_person("Cy", basis(2))
    dee = s.add_person("Dee", basis(3))
    vecs, labels = clustered_vectors(SIZES, seed=3)
    faces = [face("/a/ann.mp4", 500 * i, v, person=ann, track=1) for i, v in enumerate(vecs)]
    ids = add_source(s, "/a/ann.mp4", faces, duration_ms=50_000)
    add_source(s, "/a/ben.jpg", [face("/a/ben.jpg", 0, basis(5), person=ben)], kind="image")
    add_source(s, "/a/cy.mp4", [face("/a/cy.mp4", t, basis(6), person=cy, track=1) for t in (0, 500)])
    add_source(s, "/a/nobody.jpg", [face("/a/nobody.jpg", 0, basis(7))], kind="image")
    s.close()
    return {"path": path, "ann": ann, "ben": ben, "cy": cy, "dee": dee,
            "ann_ids": np.asarray(ids), "ann_vecs": vecs, "ann_labels": labels}


@pytest.fixture()
def store(built):
    s = open_store(built["path"], mode="r")
    yield s
    s.close()


def _expected_representative(built, members_label):
    """Independently: the member of a designed group closest to the group's mean."""
    mask = built["ann_labels"] == members_label
    x, ids = built["ann_vecs"][mask], built["ann_ids"][mask]
    d = ((x - x.mean(0)) ** 2).sum(1)
    return int(ids[np.argmin(d)])


@pytest.mark.parametrize("method", ["kmeans", "ward"])
def test_designed_groups_are_found_with_their_representatives(built, store, method):
    summary = analytics.summarize_person(store, "Ann", method=method, k=3, seed=0)
    assert (summary.person_id, summary.faces, summary.k, summary.method) == (built["ann"], 100, 3, method)
    assert [c.size for c in summary.clusters] == list(SIZES)
    assert [c.index for c in summary.clusters] == [0, 1, 2]
    assert sum(c.share for c in summary.clusters) == pytest.approx(1.0)
    for label, cluster in enumerate(summary.clusters):  # largest first = designed order
        assert cluster.representative_face_id == _expected_representative(built, label)
        assert int(np.argmax(cluster.centre)) == label


def test_defaults_k8_kmeans_and_n10_ward(store):
    km = analytics.summarize_person(store, "Ann")
    assert (km.method, km.k_requested, km.k) == ("kmeans", 8, 8)
    ward = analytics.summarize_person(store, "Ann", method="ward")
    assert (ward.method, ward.k_requested, ward.k) == ("ward", 10, 10)
    for s in (km, ward):
        assert sum(c.size for c in s.clusters) == 100
        reps = [c.representative_face_id for c in s.clusters]
        assert len(set(reps)) == len(reps)  # one distinct representative per cluster
        sizes = [c.size for c in s.clusters]
        assert sizes == sorted(sizes, reverse=True)


def test_stable_under_a_fixed_seed(store):
    a = analytics.summarize_person(store, "Ann", k=8, seed=7)
    b = analytics.summarize_person(store, "Ann", k=8, seed=7)
    assert [(c.size, c.representative_face_id) for c in a.clusters] == \
        [(c.size, c.representative_face_id) for c in b.clusters]
    for x, y in zip(a.clusters, b.clusters):
        np.testing.assert_array_equal(x.centre, y.centre)


def test_tiny_persons(built, store):
    one = analytics.summarize_person(store, built["ben"], k=8)
    assert (one.faces, one.k, len(one.clusters)) == (1, 1, 1)
    assert one.clusters[0].share == 1.0 and one.clusters[0].representative_distance == pytest.approx(0.0)
    twins = analytics.summarize_person(store, "Cy", method="ward", k=10)
    assert (twins.faces, twins.k) == (2, 1)  # two identical faces: one expression
    assert twins.clusters[0].size == 2
    empty = analytics.summarize_person(store, "Dee")
    assert (empty.faces, empty.k, empty.clusters) == (0, 0, [])
    # two distinct vectors and k > count: one cluster each
    method, k, clusters = analytics.cluster_vectors([basis(0), basis(1)], [10, 11], k=8)
    assert k == 2 and sorted(c.representative_face_id for c in clusters) == [10, 11]


def test_bad_requests(store):
    with pytest.raises(NotFoundError):
        analytics.summarize_person(store, "Nobody")
    with pytest.raises(NotFoundError):
        analytics.summarize_person(store, 10 ** 6)
    with pytest.raises(BadInputError, match="method"):
        analytics.summarize_person(store, "Ann", method="dbscan")
    for k in (-1, 5000):
        with pytest.raises(BadInputError):
            analytics.summarize_person(store, "Ann", k=k)


def test_ward_beyond_its_sample_assigns_every_face(store, monkeypatch):
    monkeypatch.setattr(summaries, "WARD_MAX", 40)  # fit Ward on 40 of Ann's 100 faces
    summary = analytics.summarize_person(store, "Ann", method="ward", k=3)
    assert [c.size for c in summary.clusters] == list(SIZES)


def test_cluster_store(built, store):
    result = analytics.cluster_store(store, k=100, closest=5)
    assert (result.faces, result.sampled) == (104, 104)
    assert result.k_requested == 100 and 3 < result.k <= 100
    assert sum(c.size for c in result.clusters) == 104
    for c in result.clusters:
        assert 1 <= len(c.closest_face_ids) <= 5 and c.closest_face_ids[0] == c.representative_face_id
        vecs = store.vectors(c.closest_face_ids, kind="expression")
        d = ((vecs - c.centre) ** 2).sum(1)
        assert np.all(np.diff(d) >= -1e-6)  # closest first
    few = analytics.cluster_store(store, k=4, sample=60, seed=1)
    again = analytics.cluster_store(store, k=4, sample=60, seed=1)
    assert (few.faces, few.sampled, few.k) == (104, 60, 4)
    assert [c.closest_face_ids for c in few.clusters] == [c.closest_face_ids for c in again.clusters]
    with pytest.raises(BadInputError):
        analytics.cluster_store(store, k=4, sample=0)
