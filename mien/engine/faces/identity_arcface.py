"""ArcFace identity: any recognition ONNX insightface's model zoo runs (e.g. buffalo_l's
w600k_r50.onnx, 512-d), on the 112x112 template crop of the 5 points."""

from __future__ import annotations

import numpy as np

from mien.engine.faces.align import arcface_crop
from mien.engine.faces.config import EngineConfig
from mien.engine.faces.identity import l2n
from mien.engine.faces.modelfiles import require_file
from mien.errors import BadInputError

HOW_TO_OBTAIN = ("an ArcFace recognition ONNX, e.g. buffalo_l's w600k_r50.onnx "
                 "from https://github.com/deepinsight/insightface/tree/master/model_zoo; "
                 "copy it to this machine and give its path")


class ArcFaceIdentity:
    """Any recognition ONNX insightface.model_zoo routes to ArcFaceONNX."""

    def __init__(self, cfg: EngineConfig):
        path = require_file(cfg.identity_model, "arcface", HOW_TO_OBTAIN)
        import insightface

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cfg.device.startswith("cuda") \
            else ["CPUExecutionProvider"]
        model = insightface.model_zoo.get_model(str(path), providers=providers)
        if model is None or getattr(model, "taskname", "") != "recognition":
            raise BadInputError(f"{path} is not a recognition model insightface recognises "
                                "(expected input 1x3xSxS with S >= 112, S % 16 == 0, one output)")
        self.model = model
        self.size = int(model.input_size[0])
        self.batch_size = cfg.batch_size
        self.name = f"arcface:{path.name}"
        out = model.output_shape
        self.dim = int(out[-1]) if isinstance(out[-1], int) else 512

    def embed(self, image: np.ndarray, faces) -> np.ndarray:
        return self.embed_many([(image, f) for f in faces])

    def embed_many(self, pairs) -> np.ndarray:
        """Faces of one or several images [(image, face)], in batches of batch_size."""
        if not pairs:
            return np.zeros((0, self.dim), np.float32)
        crops = [arcface_crop(image, f.landmarks5, self.size) for image, f in pairs]
        rows = [self.model.get_feat(crops[i:i + self.batch_size])
                for i in range(0, len(crops), self.batch_size)]
        return l2n(np.concatenate(rows).reshape(len(crops), -1))
