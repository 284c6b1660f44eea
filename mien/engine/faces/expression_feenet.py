"""The FEENet checkpoint (mien/engine/faces/feenet.py) as the analyzer's expression encoder.

feenet.py (torch) is imported only when the encoder is built
(EngineConfig.expression == "feenet"), so torch stays out of the default path.
"""

from __future__ import annotations

import numpy as np

from mien.engine.faces.config import EngineConfig
from mien.engine.faces.modelfiles import require_file

HOW_TO_OBTAIN = ("a FEENet checkpoint: train one with `mien train` (see mien/training) "
                 "or copy an existing .pt file and give its path")


class FEENetExpression:
    """Encodes the faces' 224x224 aligned crops in batches of cfg.batch_size."""

    batches_faces = True
    reads_crop = True

    def __init__(self, cfg: EngineConfig):
        path = require_file(cfg.expression_model, "feenet", HOW_TO_OBTAIN)
        from mien.engine.faces.feenet import FEENetEncoder

        self.encoder = FEENetEncoder(str(path), device=cfg.device, batch_size=cfg.batch_size)
        # "feenet:<checkpoint sha256[:12]>": the store refuses to mix different weights
        self.name = self.encoder.name
        self.dim = self.encoder.dim

    def encode_faces(self, faces) -> None:
        vectors = np.asarray(self.encoder.encode([f.crop for f in faces]), np.float32)
        for face, vec in zip(faces, vectors):
            face.expression = vec
            face.expression_components = {}
