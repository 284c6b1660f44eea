"""Check a request before any handler touches the store or the engine.

Rules every request field follows, so a client's mistake is INVALID_ARGUMENT
with a message naming the field, never an LMDB or numpy error surfacing as
INTERNAL:
- strings hold no NUL byte and at most MAX_KEY_BYTES of UTF-8 (names, tags
  and upload ids are LMDB keys, whose limit is 511 bytes); file paths
  (IndexPaths paths, source uris: the store keys a long one by its digest)
  may hold MAX_TEXT_PATH_BYTES, a PATH_MAX path's escaped text
  (mien/filenames.py: a byte that is not UTF-8 is written \\xNN);
- a string that is present (a oneof member, an entry of a list) is not empty,
  nor are the names a method cannot do without (REQUIRED);
- floats are finite; seeds lie in 0..2**32-1 (what the clustering libraries
  take); counts are not negative.
Client strings quoted in any message are clipped to CLIP characters.
"""

from __future__ import annotations

import math

from google.protobuf.descriptor import FieldDescriptor

from mien.errors import BadInputError

MAX_KEY_BYTES = 480
MAX_PATH_BYTES = 4096
MAX_TEXT_PATH_BYTES = 4 * MAX_PATH_BYTES
CLIP = 200
MAX_SEED = 2**32 - 1

# (message full name, field) -> the largest string it may hold, where it is not a key
_LONG_STRINGS = {("mien.v1.IndexPathsRequest", "paths"): MAX_TEXT_PATH_BYTES,
                 ("mien.v1.StartIndexJobRequest", "paths"): MAX_TEXT_PATH_BYTES,
                 ("mien.v1.Filters", "sources"): MAX_TEXT_PATH_BYTES,
                 ("mien.v1.TagSourceRequest", "source_uri"): MAX_TEXT_PATH_BYTES,
                 ("mien.v1.ListFoldersRequest", "path"): MAX_TEXT_PATH_BYTES}
# string fields a method needs: absent is the empty string in proto3
_REQUIRED = {
    "mien.v1.CreateTagRequest": ("name",),
    "mien.v1.DeleteTagRequest": ("name",),
    "mien.v1.UpdateTagRequest": ("name",),
    "mien.v1.TagSourceRequest": ("source_uri",),
}
# integer fields that count something: a negative value is a mistake
_COUNTS = {
    "mien.v1.SummarizeRequest": ("k", "closest"),
    "mien.v1.ClusterStoreRequest": ("k", "sample", "closest"),
    "mien.v1.IndexPathsRequest": (),
}
_SEEDS = {"mien.v1.SummarizeRequest": "seed", "mien.v1.ClusterStoreRequest": "seed"}

_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_FLOATS = (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE)


def clip(text, limit: int = CLIP) -> str:
    """repr() of a client string, cut to `limit` characters: safe to put in a message."""
    text = str(text)
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"... ({len(text)} characters)"


def clip_message(message: str, limit: int = 4 * CLIP) -> str:
    """A whole status message cut short: gRPC metadata must stay small."""
    return message if len(message) <= limit else message[:limit] + " ..."


def check_request(message) -> None:
    """Raise BadInputError for the first field that breaks a rule above."""
    _walk(message, "")


# How _walk checks a field, decided once per field descriptor: a vector query is checked on
# every call, and most fields (ints, bools, enums) need nothing
_SKIP, _FLOAT, _STR, _MSG = range(4)
_KINDS: dict = {}   # field descriptor -> (kind, string limit)
_RULES: dict = {}   # message full name -> (required, counts, seed field)


def _kind(full: str, field) -> tuple[int, int]:
    if field.type in _FLOATS:
        return _FLOAT, 0
    if field.type == _STRING:
        return _STR, _LONG_STRINGS.get((full, field.name), MAX_KEY_BYTES)
    if field.type == _MESSAGE and not field.message_type.GetOptions().map_entry:  # no request carries a map
        return _MSG, 0
    return _SKIP, 0


def _walk(message, prefix: str) -> None:
    full = message.DESCRIPTOR.full_name
    rules = _RULES.get(full)
    if rules is None:
        rules = _RULES[full] = (_REQUIRED.get(full, ()), _COUNTS.get(full, ()), _SEEDS.get(full))
    required, counts, seed = rules
    for name in required:
        if not getattr(message, name):
            raise BadInputError(f"{prefix}{name} is required and must not be empty")
    for name in counts:
        value = getattr(message, name)
        if value < 0:
            raise BadInputError(f"{prefix}{name} must not be negative, got {value}")
    if seed is not None:
        value = getattr(message, seed)
        if not 0 <= value <= MAX_SEED:
            raise BadInputError(f"{prefix}{seed} must be in 0..{MAX_SEED}, got {value}")
    for field, value in message.ListFields():
        kind = _KINDS.get(field)
        if kind is None:
            kind = _KINDS[field] = _kind(full, field)
        kind, limit = kind
        if kind == _SKIP:
            continue
        path = prefix + field.name
        repeated = field.is_repeated
        if kind == _FLOAT:
            # a sum of finite numbers that is finite needs no look at each (vectors: 16 to 512)
            if not math.isfinite(sum(value) if repeated else value) and not all(
                    math.isfinite(v) for v in (value if repeated else (value,))):
                raise BadInputError(f"{path} must hold finite numbers (no NaN or infinity)")
        elif kind == _STR:
            if repeated:
                for i, item in enumerate(value):
                    _check_string(f"{path}[{i}]", item, limit)
            else:
                _check_string(path, value, limit)
        elif repeated:
            for i, item in enumerate(value):
                _walk(item, f"{path}[{i}].")
        else:
            _walk(value, path + ".")


def _check_string(path: str, value: str, limit: int) -> None:
    if not value:
        raise BadInputError(f"{path} is empty")
    if "\x00" in value:
        raise BadInputError(f"{path} contains a NUL byte: {clip(value)}")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise BadInputError(f"{path} is {size} bytes long; the limit is {limit}: {clip(value)}")
