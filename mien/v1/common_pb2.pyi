from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Distinct(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISTINCT_UNSPECIFIED: _ClassVar[Distinct]
    DISTINCT_NONE: _ClassVar[Distinct]
    DISTINCT_TRACK: _ClassVar[Distinct]
    DISTINCT_SOURCE: _ClassVar[Distinct]
DISTINCT_UNSPECIFIED: Distinct
DISTINCT_NONE: Distinct
DISTINCT_TRACK: Distinct
DISTINCT_SOURCE: Distinct

class BBox(_message.Message):
    __slots__ = ("x1", "y1", "x2", "y2")
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    x1: float
    y1: float
    x2: float
    y2: float
    def __init__(self, x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class ImageInput(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class FaceQuery(_message.Message):
    __slots__ = ("image", "face_id", "vector", "upload_id", "face_index", "exclude_own_person")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_INDEX_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_OWN_PERSON_FIELD_NUMBER: _ClassVar[int]
    image: ImageInput
    face_id: int
    vector: Vector
    upload_id: str
    face_index: int
    exclude_own_person: bool
    def __init__(self, image: _Optional[_Union[ImageInput, _Mapping]] = ..., face_id: _Optional[int] = ..., vector: _Optional[_Union[Vector, _Mapping]] = ..., upload_id: _Optional[str] = ..., face_index: _Optional[int] = ..., exclude_own_person: _Optional[bool] = ...) -> None: ...

class PersonRef(_message.Message):
    __slots__ = ("person_id", "name")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    person_id: int
    name: str
    def __init__(self, person_id: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class TimeRange(_message.Message):
    __slots__ = ("start_ms", "end_ms")
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    start_ms: int
    end_ms: int
    def __init__(self, start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ...) -> None: ...

class Filters(_message.Message):
    __slots__ = ("persons", "exclude_persons", "sources", "time_range", "exclude_occluded")
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_PERSONS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_OCCLUDED_FIELD_NUMBER: _ClassVar[int]
    persons: _containers.RepeatedCompositeFieldContainer[PersonRef]
    exclude_persons: _containers.RepeatedCompositeFieldContainer[PersonRef]
    sources: _containers.RepeatedScalarFieldContainer[str]
    time_range: TimeRange
    exclude_occluded: bool
    def __init__(self, persons: _Optional[_Iterable[_Union[PersonRef, _Mapping]]] = ..., exclude_persons: _Optional[_Iterable[_Union[PersonRef, _Mapping]]] = ..., sources: _Optional[_Iterable[str]] = ..., time_range: _Optional[_Union[TimeRange, _Mapping]] = ..., exclude_occluded: _Optional[bool] = ...) -> None: ...

class FaceHit(_message.Message):
    __slots__ = ("face_id", "source_uri", "timestamp_ms", "frame_index", "bbox", "person_id", "person_name", "distance", "thumbnail", "track_id", "components", "agreeing", "differing", "occluded", "occlusion")
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_NAME_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    AGREEING_FIELD_NUMBER: _ClassVar[int]
    DIFFERING_FIELD_NUMBER: _ClassVar[int]
    OCCLUDED_FIELD_NUMBER: _ClassVar[int]
    OCCLUSION_FIELD_NUMBER: _ClassVar[int]
    face_id: int
    source_uri: str
    timestamp_ms: int
    frame_index: int
    bbox: BBox
    person_id: int
    person_name: str
    distance: float
    thumbnail: bytes
    track_id: int
    components: _containers.RepeatedCompositeFieldContainer[ExpressionComponent]
    agreeing: _containers.RepeatedCompositeFieldContainer[ComponentMatch]
    differing: _containers.RepeatedCompositeFieldContainer[ComponentMatch]
    occluded: bool
    occlusion: float
    def __init__(self, face_id: _Optional[int] = ..., source_uri: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., frame_index: _Optional[int] = ..., bbox: _Optional[_Union[BBox, _Mapping]] = ..., person_id: _Optional[int] = ..., person_name: _Optional[str] = ..., distance: _Optional[float] = ..., thumbnail: _Optional[bytes] = ..., track_id: _Optional[int] = ..., components: _Optional[_Iterable[_Union[ExpressionComponent, _Mapping]]] = ..., agreeing: _Optional[_Iterable[_Union[ComponentMatch, _Mapping]]] = ..., differing: _Optional[_Iterable[_Union[ComponentMatch, _Mapping]]] = ..., occluded: _Optional[bool] = ..., occlusion: _Optional[float] = ...) -> None: ...

class ExpressionComponent(_message.Message):
    __slots__ = ("name", "kind", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    value: float
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class ComponentMatch(_message.Message):
    __slots__ = ("name", "kind", "query_value", "hit_value", "contribution", "share")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    QUERY_VALUE_FIELD_NUMBER: _ClassVar[int]
    HIT_VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    query_value: float
    hit_value: float
    contribution: float
    share: float
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., query_value: _Optional[float] = ..., hit_value: _Optional[float] = ..., contribution: _Optional[float] = ..., share: _Optional[float] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("person_id", "name", "face_count", "cover_face_id")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    COVER_FACE_ID_FIELD_NUMBER: _ClassVar[int]
    person_id: int
    name: str
    face_count: int
    cover_face_id: int
    def __init__(self, person_id: _Optional[int] = ..., name: _Optional[str] = ..., face_count: _Optional[int] = ..., cover_face_id: _Optional[int] = ...) -> None: ...

class DetectedFace(_message.Message):
    __slots__ = ("index", "bbox", "det_score", "quality_passed", "quality_reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    DET_SCORE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_PASSED_FIELD_NUMBER: _ClassVar[int]
    QUALITY_REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    bbox: BBox
    det_score: float
    quality_passed: bool
    quality_reason: str
    def __init__(self, index: _Optional[int] = ..., bbox: _Optional[_Union[BBox, _Mapping]] = ..., det_score: _Optional[float] = ..., quality_passed: _Optional[bool] = ..., quality_reason: _Optional[str] = ...) -> None: ...

class QueryFace(_message.Message):
    __slots__ = ("vector", "face_id", "person_id", "faces", "face_index", "bbox", "components", "quality")
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    FACE_INDEX_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    vector: Vector
    face_id: int
    person_id: int
    faces: _containers.RepeatedCompositeFieldContainer[DetectedFace]
    face_index: int
    bbox: BBox
    components: _containers.RepeatedCompositeFieldContainer[ExpressionComponent]
    quality: QueryQuality
    def __init__(self, vector: _Optional[_Union[Vector, _Mapping]] = ..., face_id: _Optional[int] = ..., person_id: _Optional[int] = ..., faces: _Optional[_Iterable[_Union[DetectedFace, _Mapping]]] = ..., face_index: _Optional[int] = ..., bbox: _Optional[_Union[BBox, _Mapping]] = ..., components: _Optional[_Iterable[_Union[ExpressionComponent, _Mapping]]] = ..., quality: _Optional[_Union[QueryQuality, _Mapping]] = ...) -> None: ...

class QueryQuality(_message.Message):
    __slots__ = ("passed", "reason", "explanation", "sharpness", "yaw", "pitch", "roll", "occluded", "occlusion")
    PASSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    YAW_FIELD_NUMBER: _ClassVar[int]
    PITCH_FIELD_NUMBER: _ClassVar[int]
    ROLL_FIELD_NUMBER: _ClassVar[int]
    OCCLUDED_FIELD_NUMBER: _ClassVar[int]
    OCCLUSION_FIELD_NUMBER: _ClassVar[int]
    passed: bool
    reason: str
    explanation: str
    sharpness: float
    yaw: float
    pitch: float
    roll: float
    occluded: bool
    occlusion: float
    def __init__(self, passed: _Optional[bool] = ..., reason: _Optional[str] = ..., explanation: _Optional[str] = ..., sharpness: _Optional[float] = ..., yaw: _Optional[float] = ..., pitch: _Optional[float] = ..., roll: _Optional[float] = ..., occluded: _Optional[bool] = ..., occlusion: _Optional[float] = ...) -> None: ...
