"""The IVF's shape follows the face count: how many lists, how many probes, when to retrain.

Pure sizing rules (benchmarks/search.py measures them at 1M and 10M faces):
sealing.py trains the template every shard shares from them (ann_template) and
retrains when the store outgrows it (ivf_outgrown); the in-memory index
(expression_index.py) takes its probes from the template's lists (ivf_probes).
"""

from __future__ import annotations

import numpy as np

from mien.engine.store.records import EXPR_DIM

MAX_LISTS = 16384   # index.FaceIndex.lists holds a list number in a uint16 (NO_LIST reserved)
BASE_PROBES = 16    # probes up to BASE_LISTS lists; more lists get more probes
BASE_LISTS = 8192
# Retrain once the face count calls for REGROW x the template's lists: the lists
# then hold at most ~2x their ideal length, and a store that grows one face at a
# time rewrites its shards about twice over in all (geometric growth).
REGROW = 2


def ivf_lists(n: int) -> int:
    """IVF lists for n faces: ~4 sqrt(n) (the low end of faiss's 4-16 sqrt(n): fewer, longer
    lists keep the quantizer cheap on 16-d vectors), at least 39 training points per list,
    a power of two, at most MAX_LISTS. 100k -> 1024, 1M -> 2048, 10M -> 8192."""
    nlist = int(max(1, min(MAX_LISTS, 4 * np.sqrt(max(n, 1)), n // 39)))
    return 1 << int(np.log2(nlist))


def ivf_probes(nlist: int, base: int = BASE_PROBES) -> int:
    """Lists a query probes: `base` up to BASE_LISTS lists; beyond, base x sqrt(nlist /
    BASE_LISTS), so the share of the store a query sees shrinks slower than the lists do."""
    return int(round(base * max(1.0, np.sqrt(nlist / BASE_LISTS))))


def ivf_outgrown(nlist: int, n: int) -> bool:
    """A template with nlist lists is too coarse for n faces (lists REGROW x too long)."""
    return ivf_lists(n) >= REGROW * nlist


def template_lists(template_bytes: bytes) -> int:
    import faiss

    index = faiss.deserialize_index(np.frombuffer(template_bytes, dtype=np.uint8))
    return int(faiss.extract_index_ivf(index).nlist)


def ann_template(n_train: int):
    """An untrained IVF-SQ8 sized for n_train faces (ivf_lists)."""
    import faiss

    return faiss.index_factory(EXPR_DIM, f"IVF{ivf_lists(n_train)},SQ8", faiss.METRIC_L2)
