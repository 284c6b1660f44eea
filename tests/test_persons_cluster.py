"""Complete-linkage clustering of tracks with cannot-link: the properties the persons rely on."""

from __future__ import annotations

import numpy as np
import pytest

from mien.indexer.persons import cluster, distances


def unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(6))
def test_clusters_are_tight_respect_cannot_link_and_are_maximal(seed):
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(5, 32)))
    rows = unit(centres[rng.integers(0, 5, 60)] + rng.normal(size=(60, 32)) * 0.06)
    apart = {tuple(sorted(p)) for p in rng.integers(0, 60, (25, 2)) if p[0] != p[1]}
    t = 0.45
    labels = cluster(rows, t, apart)
    d = distances(rows, rows)
    groups = [np.flatnonzero(labels == k) for k in range(labels.max() + 1)]
    assert sorted(np.concatenate(groups)) == list(range(60))
    assert [int(labels[g].min()) for g in groups] == list(range(len(groups)))
    assert list(dict.fromkeys(labels)) == list(range(len(groups)))  # numbered by first appearance
    for g in groups:  # every pair of a cluster within the threshold: no chaining
        assert d[np.ix_(g, g)].max() <= t + 1e-6
    for i, j in apart:
        assert labels[i] != labels[j]
    for a in range(len(groups)):  # maximal: no two clusters could still be merged
        for b in range(a + 1, len(groups)):
            ga, gb = groups[a], groups[b]
            blocked = any((min(i, j), max(i, j)) in apart for i in ga for j in gb)
            assert blocked or d[np.ix_(ga, gb)].max() > t


def test_a_chain_of_near_neighbours_is_cut():
    # points along an arc, each 0.3 from the next: single linkage makes one chain of 8
    angles = np.arange(8) * 0.3
    rows = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = cluster(rows, 0.35)
    assert len(set(labels)) >= 4
    for k in set(labels):
        g = np.flatnonzero(labels == k)
        assert distances(rows[g], rows[g]).max() <= 0.35 + 1e-6


def test_empty_and_single():
    assert len(cluster(np.zeros((0, 4), np.float32), 0.4)) == 0
    assert list(cluster(np.eye(4)[:1], 0.4)) == [0]
