"""Named components of stored expression vectors, and "why it matched".

Everything here works on the vectors the store holds, so no store change is
needed: both built-in encoders are invertible (see expression_fer_au.components_of
and expression_landmarks' bias dimension). Each named component owns exactly
one dimension of the vector, so for a query q and a hit h

    |q - h|^2 = sum_i (q_i - h_i)^2      (what each component adds to the distance)
    q . h     = sum_i q_i h_i            (what each component adds to the similarity)

and both sums split exactly over the named components (plus, for
landmarks-v1, its unnamed bias dimension). "Differing" components are those
with the largest (q_i - h_i)^2; "agreeing" ones those with the largest
positive q_i h_i among the components both faces show in the same direction
and to within a factor of about two in vector units (|q_i - h_i| <=
AGREE_TOLERANCE x the larger; for emotions these are square roots of
probabilities): a big smile does not "agree" with a faint one on happiness,
so two faces that share nothing get no agreeing components. Differing
components are listed only from DIFFER_MIN_SHARE of the distance up, so a
near-identical pair gets none rather than noise. FEENet's dimensions have
no names: its vectors have no components. A learned head's dimensions have no names
either, but its faces keep their features: hits in such a space are explained by the
fer-au-v2 vectors of both faces (component_vectors), which the server builds from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMOTION, ACTION_UNIT, GEOMETRY = "emotion", "action_unit", "geometry"
AGREE_TOLERANCE = 0.5
DIFFER_MIN_SHARE = 0.05


@dataclass(frozen=True)
class Component:
    """One named part of an expression: an emotion probability, an AU or geometry intensity."""

    name: str
    kind: str     # EMOTION (probability 0..1) | ACTION_UNIT | GEOMETRY (~0 relaxed, ~±1 strong)
    value: float


@dataclass(frozen=True)
class ComponentMatch:
    """How a query and a hit compare on one component."""

    name: str
    kind: str
    query_value: float
    hit_value: float
    contribution: float   # agreeing: q_i*h_i; differing: (q_i - h_i)^2 (vector units)
    share: float          # contribution / q.h (agreeing) or / |q - h|^2 (differing)


@dataclass(frozen=True)
class Explanation:
    agreeing: list[ComponentMatch]
    differing: list[ComponentMatch]


def _layout(encoder: str):
    """(names, kinds, decode) of an encoder's vectors; decode: vector -> values per name. None if unnamed."""
    if encoder in ("fer-au-v2", "fer-au-478"):   # one layout: fer-au-478 reads its AUs off another mesh
        from mien.engine.faces import expression_fer_au as fer_au

        kinds = [EMOTION] * len(fer_au.EMOTIONS) + [ACTION_UNIT] * len(fer_au.VECTOR_AUS)
        return list(fer_au.COMPONENT_NAMES), kinds, lambda v: list(fer_au.components_of(v).values())
    if encoder == "landmarks-v1":
        from mien.engine.faces import expression_landmarks as el

        def decode(v):
            v = np.asarray(v, np.float64)
            bias = v[-1] if abs(v[-1]) > 1e-9 else 1e-9
            return list(v[:-1] / bias * el.BIAS)

        return list(el.NAMES), [GEOMETRY] * len(el.NAMES), decode
    return None


def is_learned_space(encoder: str) -> bool:
    """A learned head's space (expression_head.space_name: NAME@SHA): its dimensions have no
    names, but its faces keep the fixed encoder's components in their features (component_vectors)."""
    return "@" in str(encoder)


def component_vectors(features) -> np.ndarray:
    """The fixed vectors of faces from their stored features (fer-au-v2's or fer-au-478's, one
    layout): what explains hits in a learned space, with the encoder name "fer-au-v2"."""
    from mien.engine.faces import expression_features
    from mien.engine.faces import expression_fer_au as fer_au

    return fer_au.v2_vectors(np.asarray(features, np.float32).reshape(-1, expression_features.DIM))


def has_components(encoder: str) -> bool:
    return _layout(encoder) is not None


def components(vector, encoder: str) -> list[Component]:
    """The named components of one stored vector of `encoder` ([] when its dims have no names)."""
    layout = _layout(encoder)
    if layout is None:
        return []
    names, kinds, decode = layout
    return [Component(n, k, float(x)) for n, k, x in zip(names, kinds, decode(vector))]


def explain(query, hit, encoder: str, top: int = 3) -> Explanation:
    """The `top` components that agree most and differ most between a query and a hit vector."""
    layout = _layout(encoder)
    if layout is None:
        return Explanation([], [])
    names, kinds, decode = layout
    q = np.asarray(query, np.float64).reshape(-1)
    h = np.asarray(hit, np.float64).reshape(-1)
    if q.shape != h.shape:
        raise ValueError(f"query and hit vectors differ in size: {q.shape[0]} vs {h.shape[0]}")
    n = len(names)  # named dims come first (landmarks-v1's bias is last)
    qv, hv = decode(q), decode(h)
    prod, diff = q[:n] * h[:n], (q[:n] - h[:n]) ** 2
    dot, dist = float(q @ h), float(((q - h) ** 2).sum())

    def match(i, contribution, total):
        return ComponentMatch(names[i], kinds[i], float(qv[i]), float(hv[i]), float(contribution),
                              float(contribution / total) if total > 1e-12 else 0.0)

    close = np.abs(q[:n] - h[:n]) <= AGREE_TOLERANCE * np.maximum(np.abs(q[:n]), np.abs(h[:n]))
    shared = [i for i in np.argsort(-prod, kind="stable") if prod[i] > 1e-6 and close[i]]
    agree = [match(i, prod[i], dot) for i in shared[:top]]
    differ = [match(i, diff[i], dist) for i in np.argsort(-diff, kind="stable")[:top]
              if diff[i] > 1e-6 and diff[i] >= DIFFER_MIN_SHARE * dist]
    return Explanation(agree, differ)
