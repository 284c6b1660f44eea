from mien.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SummaryMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUMMARY_METHOD_UNSPECIFIED: _ClassVar[SummaryMethod]
    SUMMARY_METHOD_KMEANS: _ClassVar[SummaryMethod]
    SUMMARY_METHOD_WARD: _ClassVar[SummaryMethod]
SUMMARY_METHOD_UNSPECIFIED: SummaryMethod
SUMMARY_METHOD_KMEANS: SummaryMethod
SUMMARY_METHOD_WARD: SummaryMethod

class CreateTagRequest(_message.Message):
    __slots__ = ("name", "references", "threshold", "replace")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    references: _containers.RepeatedCompositeFieldContainer[_common_pb2.FaceQuery]
    threshold: float
    replace: bool
    def __init__(self, name: _Optional[str] = ..., references: _Optional[_Iterable[_Union[_common_pb2.FaceQuery, _Mapping]]] = ..., threshold: _Optional[float] = ..., replace: _Optional[bool] = ...) -> None: ...

class TagInfo(_message.Message):
    __slots__ = ("name", "threshold", "vectors", "reference_face_ids", "created_ms", "reference_pictures")
    NAME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PICTURES_FIELD_NUMBER: _ClassVar[int]
    name: str
    threshold: float
    vectors: _containers.RepeatedCompositeFieldContainer[_common_pb2.Vector]
    reference_face_ids: _containers.RepeatedScalarFieldContainer[int]
    created_ms: int
    reference_pictures: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, name: _Optional[str] = ..., threshold: _Optional[float] = ..., vectors: _Optional[_Iterable[_Union[_common_pb2.Vector, _Mapping]]] = ..., reference_face_ids: _Optional[_Iterable[int]] = ..., created_ms: _Optional[int] = ..., reference_pictures: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ListTagsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTagsResponse(_message.Message):
    __slots__ = ("tags", "next_page_token", "total_size")
    TAGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.RepeatedCompositeFieldContainer[TagInfo]
    next_page_token: str
    total_size: int
    def __init__(self, tags: _Optional[_Iterable[_Union[TagInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class DeleteTagRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteTagResponse(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TagSegment(_message.Message):
    __slots__ = ("start_ms", "end_ms", "best_distance", "best_face_id", "face_count")
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    BEST_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    BEST_FACE_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    start_ms: int
    end_ms: int
    best_distance: float
    best_face_id: int
    face_count: int
    def __init__(self, start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ..., best_distance: _Optional[float] = ..., best_face_id: _Optional[int] = ..., face_count: _Optional[int] = ...) -> None: ...

class PersonTagResult(_message.Message):
    __slots__ = ("tag", "person_id", "person_name", "track_id", "face_count", "tagged_count", "rate", "segments")
    TAG_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_NAME_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TAGGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    tag: str
    person_id: int
    person_name: str
    track_id: int
    face_count: int
    tagged_count: int
    rate: float
    segments: _containers.RepeatedCompositeFieldContainer[TagSegment]
    def __init__(self, tag: _Optional[str] = ..., person_id: _Optional[int] = ..., person_name: _Optional[str] = ..., track_id: _Optional[int] = ..., face_count: _Optional[int] = ..., tagged_count: _Optional[int] = ..., rate: _Optional[float] = ..., segments: _Optional[_Iterable[_Union[TagSegment, _Mapping]]] = ...) -> None: ...

class TagSourceRequest(_message.Message):
    __slots__ = ("source_uri", "tags", "max_gap_ms", "include_occluded")
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MAX_GAP_MS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_OCCLUDED_FIELD_NUMBER: _ClassVar[int]
    source_uri: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    max_gap_ms: int
    include_occluded: bool
    def __init__(self, source_uri: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., max_gap_ms: _Optional[int] = ..., include_occluded: _Optional[bool] = ...) -> None: ...

class TagSourceResponse(_message.Message):
    __slots__ = ("source_uri", "duration_ms", "face_count", "sample_period_ms", "tags", "results", "occluded_left_out")
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    OCCLUDED_LEFT_OUT_FIELD_NUMBER: _ClassVar[int]
    source_uri: str
    duration_ms: int
    face_count: int
    sample_period_ms: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    results: _containers.RepeatedCompositeFieldContainer[PersonTagResult]
    occluded_left_out: int
    def __init__(self, source_uri: _Optional[str] = ..., duration_ms: _Optional[int] = ..., face_count: _Optional[int] = ..., sample_period_ms: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., results: _Optional[_Iterable[_Union[PersonTagResult, _Mapping]]] = ..., occluded_left_out: _Optional[int] = ...) -> None: ...

class TagStoreRequest(_message.Message):
    __slots__ = ("tags", "page_size", "page_token", "include_occluded")
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_OCCLUDED_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    include_occluded: bool
    def __init__(self, tags: _Optional[_Iterable[str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_occluded: _Optional[bool] = ...) -> None: ...

class PersonTagCount(_message.Message):
    __slots__ = ("tag", "person_id", "person_name", "face_count", "tagged_count", "rate", "best_face_id", "best_distance")
    TAG_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_NAME_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TAGGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    BEST_FACE_ID_FIELD_NUMBER: _ClassVar[int]
    BEST_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    tag: str
    person_id: int
    person_name: str
    face_count: int
    tagged_count: int
    rate: float
    best_face_id: int
    best_distance: float
    def __init__(self, tag: _Optional[str] = ..., person_id: _Optional[int] = ..., person_name: _Optional[str] = ..., face_count: _Optional[int] = ..., tagged_count: _Optional[int] = ..., rate: _Optional[float] = ..., best_face_id: _Optional[int] = ..., best_distance: _Optional[float] = ...) -> None: ...

class TagTotal(_message.Message):
    __slots__ = ("tag", "tagged_count")
    TAG_FIELD_NUMBER: _ClassVar[int]
    TAGGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    tag: str
    tagged_count: int
    def __init__(self, tag: _Optional[str] = ..., tagged_count: _Optional[int] = ...) -> None: ...

class TagStoreResponse(_message.Message):
    __slots__ = ("face_count", "totals", "persons", "next_page_token", "total_size", "occluded_left_out")
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    OCCLUDED_LEFT_OUT_FIELD_NUMBER: _ClassVar[int]
    face_count: int
    totals: _containers.RepeatedCompositeFieldContainer[TagTotal]
    persons: _containers.RepeatedCompositeFieldContainer[PersonTagCount]
    next_page_token: str
    total_size: int
    occluded_left_out: int
    def __init__(self, face_count: _Optional[int] = ..., totals: _Optional[_Iterable[_Union[TagTotal, _Mapping]]] = ..., persons: _Optional[_Iterable[_Union[PersonTagCount, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ..., occluded_left_out: _Optional[int] = ...) -> None: ...

class ExpressionCluster(_message.Message):
    __slots__ = ("index", "size", "share", "centre", "representative", "closest", "components")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    CENTRE_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_FIELD_NUMBER: _ClassVar[int]
    CLOSEST_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    index: int
    size: int
    share: float
    centre: _common_pb2.Vector
    representative: _common_pb2.FaceHit
    closest: _containers.RepeatedCompositeFieldContainer[_common_pb2.FaceHit]
    components: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExpressionComponent]
    def __init__(self, index: _Optional[int] = ..., size: _Optional[int] = ..., share: _Optional[float] = ..., centre: _Optional[_Union[_common_pb2.Vector, _Mapping]] = ..., representative: _Optional[_Union[_common_pb2.FaceHit, _Mapping]] = ..., closest: _Optional[_Iterable[_Union[_common_pb2.FaceHit, _Mapping]]] = ..., components: _Optional[_Iterable[_Union[_common_pb2.ExpressionComponent, _Mapping]]] = ...) -> None: ...

class SummarizeRequest(_message.Message):
    __slots__ = ("person", "method", "k", "seed", "closest", "thumbnails", "include_occluded")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CLOSEST_FIELD_NUMBER: _ClassVar[int]
    THUMBNAILS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_OCCLUDED_FIELD_NUMBER: _ClassVar[int]
    person: _common_pb2.PersonRef
    method: SummaryMethod
    k: int
    seed: int
    closest: int
    thumbnails: bool
    include_occluded: bool
    def __init__(self, person: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ..., method: _Optional[_Union[SummaryMethod, str]] = ..., k: _Optional[int] = ..., seed: _Optional[int] = ..., closest: _Optional[int] = ..., thumbnails: _Optional[bool] = ..., include_occluded: _Optional[bool] = ...) -> None: ...

class SummarizeResponse(_message.Message):
    __slots__ = ("person", "method", "k_requested", "k", "face_count", "seed", "clusters", "occluded_left_out")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    K_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    OCCLUDED_LEFT_OUT_FIELD_NUMBER: _ClassVar[int]
    person: _common_pb2.Person
    method: SummaryMethod
    k_requested: int
    k: int
    face_count: int
    seed: int
    clusters: _containers.RepeatedCompositeFieldContainer[ExpressionCluster]
    occluded_left_out: int
    def __init__(self, person: _Optional[_Union[_common_pb2.Person, _Mapping]] = ..., method: _Optional[_Union[SummaryMethod, str]] = ..., k_requested: _Optional[int] = ..., k: _Optional[int] = ..., face_count: _Optional[int] = ..., seed: _Optional[int] = ..., clusters: _Optional[_Iterable[_Union[ExpressionCluster, _Mapping]]] = ..., occluded_left_out: _Optional[int] = ...) -> None: ...

class ClusterStoreRequest(_message.Message):
    __slots__ = ("k", "sample", "seed", "closest", "thumbnails", "page_size", "page_token", "include_occluded")
    K_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CLOSEST_FIELD_NUMBER: _ClassVar[int]
    THUMBNAILS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_OCCLUDED_FIELD_NUMBER: _ClassVar[int]
    k: int
    sample: int
    seed: int
    closest: int
    thumbnails: bool
    page_size: int
    page_token: str
    include_occluded: bool
    def __init__(self, k: _Optional[int] = ..., sample: _Optional[int] = ..., seed: _Optional[int] = ..., closest: _Optional[int] = ..., thumbnails: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_occluded: _Optional[bool] = ...) -> None: ...

class ClusterStoreResponse(_message.Message):
    __slots__ = ("face_count", "sampled_count", "k_requested", "k", "seed", "clusters", "next_page_token", "total_size", "occluded_left_out")
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLED_COUNT_FIELD_NUMBER: _ClassVar[int]
    K_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    OCCLUDED_LEFT_OUT_FIELD_NUMBER: _ClassVar[int]
    face_count: int
    sampled_count: int
    k_requested: int
    k: int
    seed: int
    clusters: _containers.RepeatedCompositeFieldContainer[ExpressionCluster]
    next_page_token: str
    total_size: int
    occluded_left_out: int
    def __init__(self, face_count: _Optional[int] = ..., sampled_count: _Optional[int] = ..., k_requested: _Optional[int] = ..., k: _Optional[int] = ..., seed: _Optional[int] = ..., clusters: _Optional[_Iterable[_Union[ExpressionCluster, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ..., occluded_left_out: _Optional[int] = ...) -> None: ...

class UpdateTagRequest(_message.Message):
    __slots__ = ("name", "threshold")
    NAME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    name: str
    threshold: float
    def __init__(self, name: _Optional[str] = ..., threshold: _Optional[float] = ...) -> None: ...

class ProposeTripletRequest(_message.Message):
    __slots__ = ("mode", "rater")
    MODE_FIELD_NUMBER: _ClassVar[int]
    RATER_FIELD_NUMBER: _ClassVar[int]
    mode: str
    rater: str
    def __init__(self, mode: _Optional[str] = ..., rater: _Optional[str] = ...) -> None: ...

class TripletProposal(_message.Message):
    __slots__ = ("face_ids", "type", "mode", "question")
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    face_ids: _containers.RepeatedScalarFieldContainer[int]
    type: str
    mode: str
    question: str
    def __init__(self, face_ids: _Optional[_Iterable[int]] = ..., type: _Optional[str] = ..., mode: _Optional[str] = ..., question: _Optional[str] = ...) -> None: ...

class RateTripletRequest(_message.Message):
    __slots__ = ("face_ids", "type", "rater", "answer")
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RATER_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    face_ids: _containers.RepeatedScalarFieldContainer[int]
    type: str
    rater: str
    answer: int
    def __init__(self, face_ids: _Optional[_Iterable[int]] = ..., type: _Optional[str] = ..., rater: _Optional[str] = ..., answer: _Optional[int] = ...) -> None: ...

class RateTripletResponse(_message.Message):
    __slots__ = ("recorded", "rater_answers")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    RATER_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    rater_answers: int
    def __init__(self, recorded: _Optional[bool] = ..., rater_answers: _Optional[int] = ...) -> None: ...
