"""Model files the tests build themselves (random weights, real signatures).

No model hub is reachable, so the tests cannot use buffalo_l's files. These
ONNX graphs have the inputs and outputs insightface.model_zoo routes on
(model_zoo.ModelRouter.get_model, scrfd.SCRFD._init_vars,
arcface_onnx.ArcFaceONNX.__init__) and the FEENet checkpoint is the real
architecture saved by the real save_checkpoint, all with seeded random
weights: the vectors mean nothing, but every loading, hashing and serving
path is the real one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _tensor(name: str, array: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def _save(graph, path: Path) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime this project installs
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def arcface_onnx(path: Path, seed: int = 0, dim: int = 512) -> Path:
    """Like w600k_r50.onnx: input 'input.1' Nx3x112x112, one output Nx512."""
    from onnx import TensorProto, helper

    rng = np.random.RandomState(seed)
    inits = [_tensor("conv_w", rng.normal(0, 0.05, (8, 3, 8, 8))), _tensor("conv_b", np.zeros(8)),
             _tensor("fc_w", rng.normal(0, 0.05, (8 * 14 * 14, dim))), _tensor("fc_b", np.zeros(dim))]
    nodes = [helper.make_node("Conv", ["input.1", "conv_w", "conv_b"], ["c"], name="Conv_0",
                              kernel_shape=[8, 8], strides=[8, 8]),
             helper.make_node("Relu", ["c"], ["r"], name="Relu_1"),
             helper.make_node("Flatten", ["r"], ["f"], name="Flatten_2", axis=1),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["683"], name="Gemm_3")]
    graph = helper.make_graph(
        nodes, "arcface_random",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", dim])], inits)
    return _save(graph, path)


# five keypoints (x, y) in strides from the anchor: eyes, nose tip, mouth corners
FACE_KPS = np.array([-0.7, -0.5, 0.7, -0.5, 0.0, 0.1, -0.5, 0.7, 0.5, 0.7])


def scrfd_onnx(path: Path, seed: int = 0) -> Path:
    """Like SCRFD's det_10g.onnx: input 'input.1' 1x3xHxW (dynamic), nine outputs:
    scores (K,1), box distances (K,4), 5 keypoints (K,10) for strides 8, 16, 32
    with two anchors per place."""
    from onnx import TensorProto, helper

    rng = np.random.RandomState(seed)
    nodes, inits, outputs = [], [], {"score": [], "bbox": [], "kps": []}
    for stride in (8, 16, 32):
        for kind, channels, width in (("score", 2, 1), ("bbox", 8, 4), ("kps", 20, 10)):
            w, b, o = f"{kind}{stride}_w", f"{kind}{stride}_b", f"{kind}_{stride}"
            # scores mostly under 0.5 (a few anchors pass the threshold), boxes a few strides wide,
            # keypoints laid out like eyes, nose and mouth corners around the anchor
            bias = {"score": np.full(channels, -1.0), "bbox": np.full(channels, 2.0),
                    "kps": np.tile(FACE_KPS, 2)}[kind]
            inits += [_tensor(w, rng.normal(0, 0.02, (channels, 3, stride, stride))), _tensor(b, bias)]
            nodes += [
                helper.make_node("Conv", ["input.1", w, b], [o + "_c"], kernel_shape=[stride, stride],
                                 strides=[stride, stride]),
                helper.make_node("Transpose", [o + "_c"], [o + "_t"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", [o + "_t", f"shape{width}"], [o + "_r"]),
                helper.make_node({"score": "Sigmoid", "bbox": "Relu", "kps": "Identity"}[kind],
                                 [o + "_r"], [o]),
            ]
            outputs[kind].append(helper.make_tensor_value_info(o, TensorProto.FLOAT, ["K", width]))
    for width in (1, 4, 10):
        inits.append(__import__("onnx").numpy_helper.from_array(np.array([-1, width], np.int64),
                                                                f"shape{width}"))
    graph = helper.make_graph(
        nodes, "scrfd_random",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "H", "W"])],
        outputs["score"] + outputs["bbox"] + outputs["kps"], inits)
    return _save(graph, path)


def feenet_checkpoint(path: Path, seed: int = 0) -> Path:
    """A FEENet (EfficientNet-B0 + 1280-512-16 head) with seeded random weights."""
    import torch

    from mien.engine.faces.feenet import build_feenet, save_checkpoint

    torch.manual_seed(seed)
    model = build_feenet()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, path)
    return path
