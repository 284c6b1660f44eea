"""The engine configuration a store was built with, and the engine rebuilt from it.

A store records every setting that decides which faces it holds and where
their vectors land (detector, identity and expression models with their
files' SHA-256, detection scale, FaceQA thresholds) under encoders["engine"]
(a JSON string, so GetStats shows it as it is). Every path that analyses
images for a store (index runs, the server, tag and person commands) builds
its engine from that record; model files that moved are found again through
an explicit path whose content hash must match.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from mien.engine.faces import registry
from mien.engine.faces.config import EngineConfig
from mien.engine.faces.modelfiles import file_sha256, require_file
from mien.errors import EncoderMismatchError, ModelNotFoundError

RECORD_KEY = "engine"
RECORD_VERSION = 1
# Settings that change which faces a store holds or their vectors: a store keeps them.
FIXED = ("detector", "identity", "expression", "min_face", "max_side", "upsample", "det_threshold",
         "sharpness_min", "yaw_max", "pitch_max", "reject_occluded")


def flag(field: str) -> str:
    """The command-line flag of an EngineConfig field."""
    return "--" + field.replace("_", "-")


def model_file(model: registry.Model, path) -> Path:
    """The file a model path names (an insightface pack directory names its det_*.onnx); the
    model's default file when `path` is empty."""
    p = require_file(path or model.default_file, model.file_kind, model.obtain).resolve()
    return model.locate(p).resolve() if model.locate else p


def sha256(path: Path) -> str:
    return file_sha256(str(path))


def given_file(config: EngineConfig, field: str):
    """The model path `config` gives in `field`, or the default file of the model it selects there."""
    own = registry.reading(field, vars(config))
    return getattr(config, field, None) or (own.default_file if own else None)


def record_of(config: EngineConfig) -> dict:
    """The record a new store keeps of the engine that builds it."""
    record = {key: getattr(config, key) for key in FIXED}
    record["version"] = RECORD_VERSION
    record["models"] = {}
    for model in registry.file_models(vars(config)):
        field = model.file_field
        path = model_file(model, getattr(config, field))
        record["models"][field] = {"path": str(path), "sha256": sha256(path), "size": path.stat().st_size}
    features = features_of(config)
    if features:
        record["features"] = features
    return record


def features_of(config: EngineConfig) -> str | None:
    """The expression features (expression_features.VERSIONS) the engine's encoder keeps per face;
    None when it keeps none."""
    from mien.engine.faces.expression_fer_au import FIXED_OF_FEATURES

    for version, (_, expression) in FIXED_OF_FEATURES.items():   # the fixed encoders keep their own
        if config.expression == expression:
            return version
    if config.expression == "fer-au-head":
        from mien.engine.faces.expression_head import load_head

        return load_head(model_file(registry.model("expression", "fer-au-head"),
                                    config.expression_head)).features_version
    return None


def stored_features(encoders: dict | None) -> str | None:
    """The expression features a store keeps (expression_features.VERSIONS), None when it keeps
    none. Its engine record says so; stores recorded before fer-au-478 was the default kept
    fer-au-v2's features if any (fer-au and fer-au-head), and fer-au-478's kept none."""
    from mien.engine.faces import expression_features as xf

    record = stored_record(encoders)
    if record is not None and record.get("features"):
        return str(record["features"])
    name = str((encoders or {}).get("expression", ""))
    expression = record.get("expression") if record is not None else (
        "fer-au-head" if "@" in name else registry.weightless("expression", name))
    return xf.FEATURES_VERSION if expression in ("fer-au", "fer-au-head") else None


def encoded(config: EngineConfig) -> str:
    return json.dumps(record_of(config), sort_keys=True)


def stored_record(encoders: dict | None) -> dict | None:
    """The engine record of a store's encoders, or None for a store older than records."""
    raw = (encoders or {}).get(RECORD_KEY)
    if not raw:
        return None
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def _locate(model: registry.Model, entry: dict, given) -> Path:
    """The model's file: `given` (a moved file) or the recorded path, either only when its
    content is the one the store was built with."""
    option = flag(model.file_field)
    want = entry["sha256"]
    if given:
        path = model_file(model, given)
        if sha256(path) != want:
            raise EncoderMismatchError(
                f"{option} {given}: this file (sha256 {sha256(path)[:12]}) is not the model the store was "
                f"built with ({Path(entry['path']).name}, sha256 {want[:12]})")
        return path
    recorded = Path(entry["path"])
    if not recorded.exists():
        raise ModelNotFoundError(
            f"the store was built with the model {recorded} (sha256 {want[:12]}), which is no longer "
            f"there; point at its new place with {option} PATH")
    if sha256(recorded.resolve()) != want:
        raise EncoderMismatchError(
            f"the model file {recorded} changed since the store was built (sha256 {want[:12]} then, "
            f"{sha256(recorded.resolve())[:12]} now); give the original with {option} PATH")
    return recorded


def config_from_record(record: dict, base: EngineConfig | None = None) -> EngineConfig:
    """The store's engine: its recorded settings and model files; `base` supplies the
    run-time knobs (device, batch size, thumbnail size) and paths to moved model files."""
    base = base or EngineConfig()
    values = {key: record[key] for key in FIXED if key in record}
    chosen = {kind: values.get(kind, getattr(base, kind)) for kind in registry.KINDS}
    for field, entry in (record.get("models") or {}).items():
        values[field] = str(_locate(registry.reading(field, chosen), entry, getattr(base, field, None)))
    for field in registry.file_fields():
        values.setdefault(field, None)
    return replace(base, **values)


def _legacy_value(encoders: dict, key: str):
    """What a store older than engine records says about one setting (None: unknown)."""
    if key in registry.KINDS:
        return registry.from_stored_name(key, str(encoders.get(key) or ""))
    if key == "min_face":
        value = encoders.get("detector_min_face")
        return int(value) if value else None
    return None


def conflicts(encoders: dict | None, asked: EngineConfig, explicit=None) -> list[str]:
    """The settings of `asked` that differ from the store's; only those named in
    `explicit` (field names) when given, else every recorded one."""
    record = stored_record(encoders)
    keys = [k for k in FIXED if explicit is None or k in explicit]
    out = []
    for key in keys:
        if record is not None:
            if key not in record:
                continue
            have = record[key]
        else:
            have = _legacy_value(encoders or {}, key)
            if have is None:
                continue
        want = getattr(asked, key)
        if want != have:
            out.append(f"{flag(key)} {want} (the store's: {have})")
    if record is not None:
        models = record.get("models") or {}
        for field in registry.file_fields():
            given = given_file(asked, field)
            if not given or field not in models or (explicit is not None and field not in explicit):
                continue
            path = model_file(registry.reading(field, record), given)
            if sha256(path) != models[field]["sha256"]:
                out.append(f"{flag(field)} {given} (sha256 {sha256(path)[:12]}; the store's: "
                           f"{Path(models[field]['path']).name}, sha256 {models[field]['sha256'][:12]})")
    return out


def refuse_conflicts(store_dir, encoders: dict | None, asked: EngineConfig, explicit=None) -> None:
    """EncoderMismatchError naming every setting that would change the store's faces or vectors."""
    problems = conflicts(encoders, asked, explicit)
    if problems:
        raise EncoderMismatchError(
            f"the store {store_dir} keeps the engine it was built with; these settings would change "
            f"its faces or vectors: {'; '.join(problems)}. Leave them out to use the store's, or index "
            f"into a new store (--store NEW_DIR)")


def matching_store(config: EngineConfig, encoders: dict | None) -> EngineConfig:
    """The engine a store was built with when it records one; for older stores, `config`
    detecting at the scale the store's faces were detected at, with the store's detector and its
    expression encoder when that needs no model file.

    dlib's 68 landmarks (and so the landmark expression vector) shift with
    the detection scale, so a query must be detected with the store's
    min_face to land where the same face in the store did.
    """
    record = stored_record(encoders)
    if record is not None:
        # a store that records its whole engine is served and extended by that engine
        # (model files found by content hash; this config's paths point at moved ones)
        return config_from_record(record, config)
    encoders = encoders or {}
    min_face = encoders.get("detector_min_face")
    if min_face:
        config = replace(config, min_face=int(min_face))
    # A store keeps its front end: one built by dlib HOG (the 0.1 default) is
    # queried and extended with dlib HOG, whatever the default now is.
    detector = registry.from_stored_name("detector", encoders.get("detector"))
    if detector and detector != config.detector:
        config = replace(config, detector=detector)
    # A store keeps the weightless expression encoder it was built with: a store
    # built with landmarks-v1 (the 0.1 default) goes on with it, not with fer-au-v2.
    # The same for its identity model: dlib's 68-point alignment (every store before dlib5), not the 5.
    for kind in ("expression", "identity"):
        stored = registry.weightless(kind, str(encoders.get(kind, "")))
        if stored and not registry.model(kind, getattr(config, kind)).file_field:
            config = replace(config, **{kind: stored})
    return config
