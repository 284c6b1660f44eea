"""Expression heads for tests: real head files with seeded weights (the plumbing does not care
whether a head was trained; training itself is tested in test_training_head.py)."""

from __future__ import annotations

import numpy as np


def seeded_head(path, seed: int = 0, kind: str = "linear", inputs=("log_probs", "aus"), features=None):
    """features: the expression features it reads (default: those of the default encoder's stores)."""
    from mien.engine.faces import expression_features as xf
    from mien.engine.faces.expression_head import FORMAT, ExpressionHead

    rng = np.random.default_rng(seed)
    width = sum(xf.SLICES[p].stop - xf.SLICES[p].start for p in inputs)
    scale = 0.05 if kind.startswith("residual") else 1.0
    meta = {"format": FORMAT, "name": f"test-head-{seed}", "kind": kind, "inputs": list(inputs),
            "features": features or xf.FEATURES_478}
    head = ExpressionHead(meta, rng.normal(size=width), rng.uniform(0.5, 2.0, size=width),
                          [(rng.normal(size=(16, width)) * scale, rng.normal(size=16) * scale)])
    head.save(path)
    return head
