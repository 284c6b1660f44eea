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

from mien.engine.faces.config import BUILT_IN_EXPRESSIONS, EngineConfig, detector_family
from mien.errors import EncoderMismatchError, ModelNotFoundError

RECORD_KEY = "engine"
RECORD_VERSION = 1
# Settings that change which faces a store holds or their vectors: a store keeps them.
FIXED = ("detector", "identity", "expression", "min_face", "max_side", "upsample", "det_threshold",
         "sharpness_min", "yaw_max", "pitch_max", "reject_occluded")
# model path field -> (the stage whose choice needs it, the choice, the model kind, CLI flag)
MODELS = {
    "detector_model": ("detector", "insightface", "insightface", "--detector-model"),
    "identity_model": ("identity", "arcface", "arcface", "--identity-model"),
    "expression_model": ("expression", "feenet", "feenet", "--expression-model"),
    "expression_head": ("expression", "fer-au-head", "head", "--expression-head"),
}
FLAGS = {key: "--" + key.replace("_", "-") for key in FIXED}


def model_file(field: str, path) -> Path:
    """The file a model path names (an insightface pack directory names its det_*.onnx)."""
    from mien.engine.faces.modelfiles import require_file

    p = require_file(path, MODELS[field][2]).resolve()
    if field == "detector_model":
        from mien.engine.faces.detect import find_detector_onnx

        p = find_detector_onnx(p).resolve()
    return p


def sha256(path: Path) -> str:
    from mien.engine.faces.modelfiles import file_sha256

    return file_sha256(str(path))


def used_models(config: EngineConfig) -> list[str]:
    return [field for field, (stage, choice, _, _) in MODELS.items() if getattr(config, stage) == choice]


def record_of(config: EngineConfig) -> dict:
    """The record a new store keeps of the engine that builds it."""
    record = {key: getattr(config, key) for key in FIXED}
    record["version"] = RECORD_VERSION
    record["models"] = {}
    for field in used_models(config):
        path = model_file(field, getattr(config, field))
        record["models"][field] = {"path": str(path), "sha256": sha256(path), "size": path.stat().st_size}
    return record


def encoded(config: EngineConfig) -> str:
    return json.dumps(record_of(config), sort_keys=True)


def stored_record(encoders: dict | None) -> dict | None:
    """The engine record of a store's encoders, or None for a store older than records."""
    raw = (encoders or {}).get(RECORD_KEY)
    if not raw:
        return None
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def _locate(field: str, entry: dict, given) -> Path:
    """The model file for `field`: `given` (a moved file) or the recorded path, either
    only when its content is the one the store was built with."""
    flag = MODELS[field][3]
    want = entry["sha256"]
    if given:
        path = model_file(field, given)
        if sha256(path) != want:
            raise EncoderMismatchError(
                f"{flag} {given}: this file (sha256 {sha256(path)[:12]}) is not the model the store was "
                f"built with ({Path(entry['path']).name}, sha256 {want[:12]})")
        return path
    recorded = Path(entry["path"])
    if not recorded.exists():
        raise ModelNotFoundError(
            f"the store was built with the model {recorded} (sha256 {want[:12]}), which is no longer "
            f"there; point at its new place with {flag} PATH")
    if sha256(recorded.resolve()) != want:
        raise EncoderMismatchError(
            f"the model file {recorded} changed since the store was built (sha256 {want[:12]} then, "
            f"{sha256(recorded.resolve())[:12]} now); give the original with {flag} PATH")
    return recorded


def config_from_record(record: dict, base: EngineConfig | None = None) -> EngineConfig:
    """The store's engine: its recorded settings and model files; `base` supplies the
    run-time knobs (device, batch size, thumbnail size) and paths to moved model files."""
    base = base or EngineConfig()
    values = {key: record[key] for key in FIXED if key in record}
    for field, entry in (record.get("models") or {}).items():
        values[field] = str(_locate(field, entry, getattr(base, field, None)))
    for field in MODELS:
        values.setdefault(field, None)
    return replace(base, **values)


def _legacy_value(encoders: dict, key: str):
    """What a store older than engine records says about one setting (None: unknown)."""
    if key == "detector":
        return detector_family(encoders.get("detector"))
    if key == "identity":
        name = str(encoders.get("identity") or "")
        if name.startswith(("arcface", "facenet")):
            return name.split("-")[0].split(":")[0]
        return "dlib" if name else None
    if key == "expression":
        name = str(encoders.get("expression") or "")
        return BUILT_IN_EXPRESSIONS.get(name) or ("feenet" if name.startswith("feenet") else None)
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
            out.append(f"{FLAGS[key]} {want} (the store's: {have})")
    if record is not None:
        models = record.get("models") or {}
        for field in MODELS:
            given = getattr(asked, field, None)
            if not given or field not in models or (explicit is not None and field not in explicit):
                continue
            path = model_file(field, given)
            if sha256(path) != models[field]["sha256"]:
                out.append(f"{MODELS[field][3]} {given} (sha256 {sha256(path)[:12]}; the store's: "
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
