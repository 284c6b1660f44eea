"""`mien train head`: a 16-d expression head learned from rated triplets, on CPU, reproducibly.

FEENet's recipe at the size of a store's features: the symmetric triplet loss
    max(0, d(a,p) - d(a,n) + m) + max(0, d(a,p) - d(p,n) + m),  d = squared L2, m = 0.2
over the majority answers (each triplet weighted by the share of raters who gave it),
full-batch Adam with weight decay, one thread and fixed seeds: the same data and seed
give the same head, byte for byte (ExpressionHead's file).

Evaluation is face-disjoint k-fold cross-validation: faces are grouped (a person where
known, else a picture) and whole groups go to a fold; a triplet is tested in the fold
that holds all three of its faces, trained on only where none of its faces is in the
held-out fold. accuracy_report splits every figure by FEC's triplet types, against the
majority and on unanimous triplets.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field

import numpy as np

from mien.engine.faces import expression_features as xf
from mien.engine.faces import expression_fer_au as fer_au
from mien.engine.faces.expression_head import FORMAT, ExpressionHead
from mien.training.fec import TRIPLET_TYPES
from mien.training.rated import FeatureTable, RatedTriplet


@dataclass(frozen=True)
class HeadConfig:
    """What the default head is trained with. On the project's 1,590 rated triplets (face-disjoint
    5-fold CV, benchmarks/quality.py) richer heads generalise worse: every input beyond fer's
    distribution and the AUs (the mesh code, the pooled block), more epochs or a larger step
    lowered held-out accuracy below the fixed fer-au-v2 vector; so the default is a small
    correction of fer-au-v2 from those two parts, stopped early. These settings were chosen on
    the same folds (their held-out figure is optimistic by that choice)."""

    kind: str = "residual"
    inputs: tuple[str, ...] = ("log_probs", "aus")
    hidden: int = 32
    epochs: int = 20
    lr: float = 0.0003
    weight_decay: float = 0.01
    margin: float = 0.2
    seed: int = 0


def triplet_rows(triplets: list[RatedTriplet], table: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
    """(m, 3) table rows [a, p, n] (the two alike faces, then the odd one) and (m,) weights."""
    rows, weights = [], []
    for t in triplets:
        odd = t.majority
        alike = [t.faces[i] for i in range(3) if i != odd]
        rows.append([table.row[alike[0].key], table.row[alike[1].key], table.row[t.faces[odd].key]])
        weights.append(t.agreement)
    return np.array(rows, np.int64).reshape(-1, 3), np.array(weights, np.float32)


@contextlib.contextmanager
def _deterministic_torch():
    import torch

    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield torch
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)


def fit_head(table: FeatureTable, triplets: list[RatedTriplet], config: HeadConfig = HeadConfig(),
             name: str = "fer-au-head", provenance: dict | None = None) -> ExpressionHead:
    """A head trained on `triplets` (all with a majority, faces in `table`)."""
    rows, weights = triplet_rows(triplets, table)
    if len(rows) == 0:
        raise ValueError("no rated triplet with a majority to train on")
    used = np.unique(rows)
    x = np.concatenate([xf.part(table.features, p) for p in config.inputs], axis=1).astype(np.float64)
    mu = x[used].mean(0)
    sd = x[used].std(0)
    sd = np.where(sd > 1e-6, sd, 1.0)
    base = fer_au.v2_vectors(table.features)
    with _deterministic_torch() as torch:
        torch.manual_seed(config.seed)
        xs = torch.as_tensor((x - mu) / sd, dtype=torch.float32)
        layers = _layers(torch, xs.shape[1], config)
        params = [p for layer in layers for p in layer.parameters()]
        opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        a, p, n = (torch.as_tensor(rows[:, i]) for i in range(3))
        w = torch.as_tensor(weights)
        base_t = torch.as_tensor(base, dtype=torch.float32)
        for _ in range(config.epochs):
            opt.zero_grad()
            z = _forward(torch, layers, xs, base_t, config.kind)
            d_ap = ((z[a] - z[p]) ** 2).sum(1)
            d_an = ((z[a] - z[n]) ** 2).sum(1)
            d_pn = ((z[p] - z[n]) ** 2).sum(1)
            loss = (w * (torch.relu(d_ap - d_an + config.margin) + torch.relu(d_ap - d_pn + config.margin))).sum() / w.sum()
            loss.backward()
            opt.step()
        weights_out = [(layer.weight.detach().double().numpy().copy(), layer.bias.detach().double().numpy().copy())
                       for layer in layers]
    meta = {"format": FORMAT, "name": name, "kind": config.kind, "inputs": list(config.inputs),
            "features": table.version, "config": asdict(config), "trained_on": provenance or {},
            "triplets": int(len(rows)), "faces": int(len(used))}
    return ExpressionHead(meta, mu, sd, weights_out)


def _layers(torch, width: int, config: HeadConfig) -> list:
    if config.kind in ("linear", "residual"):
        layers = [torch.nn.Linear(width, 16)]
    else:
        layers = [torch.nn.Linear(width, config.hidden), torch.nn.Linear(config.hidden, 16)]
    if config.kind.startswith("residual"):
        # start from the fixed space of the features (fer-au-v2's or fer-au-478's): the head learns a correction of it
        torch.nn.init.zeros_(layers[-1].weight)
        torch.nn.init.zeros_(layers[-1].bias)
    return layers


def _forward(torch, layers, xs, base, kind: str):
    h = xs
    for i, layer in enumerate(layers):
        h = layer(h)
        if i < len(layers) - 1:
            h = torch.relu(h)
    if kind.startswith("residual"):
        h = h + base
    return torch.nn.functional.normalize(h, dim=1)


# -- evaluation ----------------------------------------------------------------------------
def odd_one_out(v: np.ndarray) -> int:
    """0, 1 or 2: the vector outside the closest pair (squared L2), as fec.predict_odd."""
    d = {2: ((v[0] - v[1]) ** 2).sum(), 1: ((v[0] - v[2]) ** 2).sum(), 0: ((v[1] - v[2]) ** 2).sum()}
    return min(d, key=lambda k: (d[k], k))


@dataclass
class Folds:
    k: int
    of_face: np.ndarray                  # fold of each table row
    test: list[list[int]] = field(default_factory=list)    # per fold: indices of the triplets tested there
    train: list[list[int]] = field(default_factory=list)   # per fold: indices of the triplets trained on


def make_folds(table: FeatureTable, triplets: list[RatedTriplet], k: int = 5) -> Folds:
    fold_of_group = table.fold_of_group(k)
    of_face = np.array([fold_of_group[g] for g in table.groups], np.int64)
    folds = Folds(k, of_face)
    face_folds = [{int(of_face[table.row[f.key]]) for f in t.faces} for t in triplets]
    for j in range(k):
        folds.test.append([i for i, fs in enumerate(face_folds) if fs == {j}])
        folds.train.append([i for i, fs in enumerate(face_folds) if j not in fs])
    return folds


def held_out_answers(table: FeatureTable, triplets: list[RatedTriplet], config: HeadConfig, folds: Folds,
                     max_train: int | None = None, subsample_seed: int = 0) -> dict[int, int]:
    """{triplet index: the head's odd one out} for every triplet tested in some fold, each by a head
    that never saw its faces. max_train: train on at most this many triplets (the learning curve)."""
    answers = {}
    for j in range(folds.k):
        train = folds.train[j]
        if not folds.test[j] or not train:   # nothing to test, or every triplet touches this fold's faces
            continue
        if max_train is not None and len(train) > max_train:
            pick = np.random.default_rng(subsample_seed + j).choice(len(train), max_train, replace=False)
            train = [train[i] for i in sorted(pick)]
        head = fit_head(table, [triplets[i] for i in train], config)
        vectors = head.embed(table.features)
        for i in folds.test[j]:
            answers[i] = odd_one_out(vectors[[table.row[f.key] for f in triplets[i].faces]])
    return answers


def fixed_answers(table: FeatureTable, triplets: list[RatedTriplet], vectors: np.ndarray) -> dict[int, int]:
    return {i: odd_one_out(vectors[[table.row[f.key] for f in t.faces]]) for i, t in enumerate(triplets)}


def accuracy_report(triplets: list[RatedTriplet], answers: dict[int, int]) -> dict:
    """Accuracy by triplet type (and all), against the majority and on unanimous triplets, over the
    triplets `answers` covers; each with its count and 95 % Wilson interval."""
    out = {}
    for kind in (*TRIPLET_TYPES, "all"):
        for truth in ("majority", "unanimous"):
            ids = [i for i in answers if kind in ("all", triplets[i].type)
                   and (truth == "majority" or triplets[i].unanimous)]
            hits = sum(answers[i] == triplets[i].majority for i in ids)
            out[f"{kind}/{truth}"] = {"accuracy": hits / len(ids) if ids else float("nan"), "hits": hits,
                                      "n": len(ids), "ci95": wilson(hits, len(ids))}
    return out


def wilson(hits: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [float("nan"), float("nan")]
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(centre - half), float(centre + half)]


def sign_test(answers_a: dict[int, int], answers_b: dict[int, int], triplets: list[RatedTriplet],
              ids) -> dict:
    """Exact two-sided sign test on the triplets exactly one of two encoders gets right."""
    from math import comb

    only_a = sum(answers_a[i] == triplets[i].majority != answers_b[i] for i in ids)
    only_b = sum(answers_b[i] == triplets[i].majority != answers_a[i] for i in ids)
    n = only_a + only_b
    p = 1.0 if n == 0 else min(1.0, 2 * sum(comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2.0 ** n)
    return {"only_a": only_a, "only_b": only_b, "p": p}


def fixed_name(table: FeatureTable) -> str:
    """The fixed vector the table's features give: fer-au-v2, or fer-au-478 for its features."""
    return fer_au.FIXED_OF_FEATURES[table.version][0]


def fixed_spaces(table: FeatureTable) -> dict[str, np.ndarray]:
    """The fixed vectors the features give, to compare a head with: the fixed vector (fixed_name)
    and its two parts."""
    probs = xf.softmax(xf.part(table.features, "log_probs"))
    aus = np.clip(xf.part(table.features, "aus")[:, [fer_au.au.NAMES.index(n) for n in fer_au.VECTOR_AUS]],
                  -fer_au.AU_CLIP, fer_au.AU_CLIP)
    au_only = np.concatenate([aus, np.ones((len(aus), 1))], axis=1)
    return {fixed_name(table): fer_au.v2_vectors(table.features), "fer-only": np.sqrt(probs),
            "au-only": au_only / np.linalg.norm(au_only, axis=1, keepdims=True)}


def cross_validated_report(table: FeatureTable, triplets: list[RatedTriplet], config: HeadConfig,
                           k: int = 5) -> dict:
    """The head's held-out accuracy beside the fixed vectors', on the triplets the folds test."""
    folds = make_folds(table, triplets, k)
    answers = {"head (held out)": held_out_answers(table, triplets, config, folds)}
    tested = sorted(answers["head (held out)"])
    for name, vectors in fixed_spaces(table).items():
        everything = fixed_answers(table, triplets, vectors)
        answers[name] = {i: everything[i] for i in tested}
    return {"folds": k, "tested": len(tested), "trained_per_fold": [len(t) for t in folds.train],
            "accuracy": {name: accuracy_report(triplets, a) for name, a in answers.items()},
            f"sign_test_vs_{fixed_name(table)}": {
                kind: sign_test(answers["head (held out)"], answers[fixed_name(table)], triplets,
                                [i for i in tested if triplets[i].unanimous and kind in ("all", triplets[i].type)])
                for kind in (*TRIPLET_TYPES, "all")}}
