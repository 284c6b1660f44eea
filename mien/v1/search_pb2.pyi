from mien.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PersonOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERSON_ORDER_UNSPECIFIED: _ClassVar[PersonOrder]
    PERSON_ORDER_ID: _ClassVar[PersonOrder]
    PERSON_ORDER_FACES: _ClassVar[PersonOrder]
    PERSON_ORDER_NAME: _ClassVar[PersonOrder]

class IndexJobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INDEX_JOB_STATE_UNSPECIFIED: _ClassVar[IndexJobState]
    INDEX_JOB_STATE_RUNNING: _ClassVar[IndexJobState]
    INDEX_JOB_STATE_SUCCEEDED: _ClassVar[IndexJobState]
    INDEX_JOB_STATE_FAILED: _ClassVar[IndexJobState]
    INDEX_JOB_STATE_CANCELLED: _ClassVar[IndexJobState]

class SourceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_KIND_UNSPECIFIED: _ClassVar[SourceKind]
    SOURCE_KIND_IMAGE: _ClassVar[SourceKind]
    SOURCE_KIND_VIDEO: _ClassVar[SourceKind]

class SourceStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_STATUS_UNSPECIFIED: _ClassVar[SourceStatus]
    SOURCE_STATUS_DONE: _ClassVar[SourceStatus]
    SOURCE_STATUS_FAILED: _ClassVar[SourceStatus]
PERSON_ORDER_UNSPECIFIED: PersonOrder
PERSON_ORDER_ID: PersonOrder
PERSON_ORDER_FACES: PersonOrder
PERSON_ORDER_NAME: PersonOrder
INDEX_JOB_STATE_UNSPECIFIED: IndexJobState
INDEX_JOB_STATE_RUNNING: IndexJobState
INDEX_JOB_STATE_SUCCEEDED: IndexJobState
INDEX_JOB_STATE_FAILED: IndexJobState
INDEX_JOB_STATE_CANCELLED: IndexJobState
SOURCE_KIND_UNSPECIFIED: SourceKind
SOURCE_KIND_IMAGE: SourceKind
SOURCE_KIND_VIDEO: SourceKind
SOURCE_STATUS_UNSPECIFIED: SourceStatus
SOURCE_STATUS_DONE: SourceStatus
SOURCE_STATUS_FAILED: SourceStatus

class SearchExpressionRequest(_message.Message):
    __slots__ = ("query", "top_k", "filters", "include_thumbnails", "explain", "max_distance", "distinct")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_THUMBNAILS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_FIELD_NUMBER: _ClassVar[int]
    query: _common_pb2.FaceQuery
    top_k: int
    filters: _common_pb2.Filters
    include_thumbnails: bool
    explain: bool
    max_distance: float
    distinct: _common_pb2.Distinct
    def __init__(self, query: _Optional[_Union[_common_pb2.FaceQuery, _Mapping]] = ..., top_k: _Optional[int] = ..., filters: _Optional[_Union[_common_pb2.Filters, _Mapping]] = ..., include_thumbnails: _Optional[bool] = ..., explain: _Optional[bool] = ..., max_distance: _Optional[float] = ..., distinct: _Optional[_Union[_common_pb2.Distinct, str]] = ...) -> None: ...

class CrossIdentityRequest(_message.Message):
    __slots__ = ("query", "target", "top_k", "include_thumbnails", "explain", "filters", "max_distance", "distinct")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_THUMBNAILS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_FIELD_NUMBER: _ClassVar[int]
    query: _common_pb2.FaceQuery
    target: _common_pb2.PersonRef
    top_k: int
    include_thumbnails: bool
    explain: bool
    filters: _common_pb2.Filters
    max_distance: float
    distinct: _common_pb2.Distinct
    def __init__(self, query: _Optional[_Union[_common_pb2.FaceQuery, _Mapping]] = ..., target: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ..., top_k: _Optional[int] = ..., include_thumbnails: _Optional[bool] = ..., explain: _Optional[bool] = ..., filters: _Optional[_Union[_common_pb2.Filters, _Mapping]] = ..., max_distance: _Optional[float] = ..., distinct: _Optional[_Union[_common_pb2.Distinct, str]] = ...) -> None: ...

class SearchIdentityRequest(_message.Message):
    __slots__ = ("query", "top_k", "include_thumbnails", "filters", "max_distance", "distinct")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_THUMBNAILS_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_FIELD_NUMBER: _ClassVar[int]
    query: _common_pb2.FaceQuery
    top_k: int
    include_thumbnails: bool
    filters: _common_pb2.Filters
    max_distance: float
    distinct: _common_pb2.Distinct
    def __init__(self, query: _Optional[_Union[_common_pb2.FaceQuery, _Mapping]] = ..., top_k: _Optional[int] = ..., include_thumbnails: _Optional[bool] = ..., filters: _Optional[_Union[_common_pb2.Filters, _Mapping]] = ..., max_distance: _Optional[float] = ..., distinct: _Optional[_Union[_common_pb2.Distinct, str]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "query", "elapsed_ms", "beyond_max_distance", "nearest_beyond_distance")
    HITS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    BEYOND_MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    NEAREST_BEYOND_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[_common_pb2.FaceHit]
    query: _common_pb2.QueryFace
    elapsed_ms: float
    beyond_max_distance: bool
    nearest_beyond_distance: float
    def __init__(self, hits: _Optional[_Iterable[_Union[_common_pb2.FaceHit, _Mapping]]] = ..., query: _Optional[_Union[_common_pb2.QueryFace, _Mapping]] = ..., elapsed_ms: _Optional[float] = ..., beyond_max_distance: _Optional[bool] = ..., nearest_beyond_distance: _Optional[float] = ...) -> None: ...

class GetFaceRequest(_message.Message):
    __slots__ = ("face_id",)
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    face_id: int
    def __init__(self, face_id: _Optional[int] = ...) -> None: ...

class FaceRecord(_message.Message):
    __slots__ = ("face_id", "source_uri", "frame_index", "timestamp_ms", "bbox", "landmarks5", "det_score", "sharpness", "yaw", "pitch", "roll", "expression", "pooled", "track_id", "person_id", "person_name", "thumbnail", "has_identity", "components", "occluded", "occlusion")
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS5_FIELD_NUMBER: _ClassVar[int]
    DET_SCORE_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    YAW_FIELD_NUMBER: _ClassVar[int]
    PITCH_FIELD_NUMBER: _ClassVar[int]
    ROLL_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    POOLED_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_NAME_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    HAS_IDENTITY_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    OCCLUDED_FIELD_NUMBER: _ClassVar[int]
    OCCLUSION_FIELD_NUMBER: _ClassVar[int]
    face_id: int
    source_uri: str
    frame_index: int
    timestamp_ms: int
    bbox: _common_pb2.BBox
    landmarks5: _containers.RepeatedScalarFieldContainer[float]
    det_score: float
    sharpness: float
    yaw: float
    pitch: float
    roll: float
    expression: _common_pb2.Vector
    pooled: _common_pb2.Vector
    track_id: int
    person_id: int
    person_name: str
    thumbnail: bytes
    has_identity: bool
    components: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExpressionComponent]
    occluded: bool
    occlusion: float
    def __init__(self, face_id: _Optional[int] = ..., source_uri: _Optional[str] = ..., frame_index: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., bbox: _Optional[_Union[_common_pb2.BBox, _Mapping]] = ..., landmarks5: _Optional[_Iterable[float]] = ..., det_score: _Optional[float] = ..., sharpness: _Optional[float] = ..., yaw: _Optional[float] = ..., pitch: _Optional[float] = ..., roll: _Optional[float] = ..., expression: _Optional[_Union[_common_pb2.Vector, _Mapping]] = ..., pooled: _Optional[_Union[_common_pb2.Vector, _Mapping]] = ..., track_id: _Optional[int] = ..., person_id: _Optional[int] = ..., person_name: _Optional[str] = ..., thumbnail: _Optional[bytes] = ..., has_identity: _Optional[bool] = ..., components: _Optional[_Iterable[_Union[_common_pb2.ExpressionComponent, _Mapping]]] = ..., occluded: _Optional[bool] = ..., occlusion: _Optional[float] = ...) -> None: ...

class ListPersonsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "query", "order", "max_faces", "include_covers")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    MAX_FACES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_COVERS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    query: str
    order: PersonOrder
    max_faces: int
    include_covers: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., query: _Optional[str] = ..., order: _Optional[_Union[PersonOrder, str]] = ..., max_faces: _Optional[int] = ..., include_covers: _Optional[bool] = ...) -> None: ...

class ListPersonsResponse(_message.Message):
    __slots__ = ("persons", "next_page_token", "total_size")
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    persons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Person]
    next_page_token: str
    total_size: int
    def __init__(self, persons: _Optional[_Iterable[_Union[_common_pb2.Person, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetPersonRequest(_message.Message):
    __slots__ = ("person",)
    PERSON_FIELD_NUMBER: _ClassVar[int]
    person: _common_pb2.PersonRef
    def __init__(self, person: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("faces", "sources", "persons", "tags", "shards", "bytes", "encoders")
    class EncodersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FACES_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    ENCODERS_FIELD_NUMBER: _ClassVar[int]
    faces: int
    sources: int
    persons: int
    tags: int
    shards: int
    bytes: int
    encoders: _containers.ScalarMap[str, str]
    def __init__(self, faces: _Optional[int] = ..., sources: _Optional[int] = ..., persons: _Optional[int] = ..., tags: _Optional[int] = ..., shards: _Optional[int] = ..., bytes: _Optional[int] = ..., encoders: _Optional[_Mapping[str, str]] = ...) -> None: ...

class IndexPathsRequest(_message.Message):
    __slots__ = ("paths", "fps")
    PATHS_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    fps: float
    def __init__(self, paths: _Optional[_Iterable[str]] = ..., fps: _Optional[float] = ...) -> None: ...

class IndexProgress(_message.Message):
    __slots__ = ("files_done", "files_total", "frames", "faces", "current", "done", "failures", "job_id", "refused_paths", "skipped")
    class SkippedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    FILES_DONE_FIELD_NUMBER: _ClassVar[int]
    FILES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REFUSED_PATHS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    files_done: int
    files_total: int
    frames: int
    faces: int
    current: str
    done: bool
    failures: _containers.RepeatedScalarFieldContainer[str]
    job_id: str
    refused_paths: _containers.RepeatedScalarFieldContainer[str]
    skipped: _containers.ScalarMap[str, int]
    def __init__(self, files_done: _Optional[int] = ..., files_total: _Optional[int] = ..., frames: _Optional[int] = ..., faces: _Optional[int] = ..., current: _Optional[str] = ..., done: _Optional[bool] = ..., failures: _Optional[_Iterable[str]] = ..., job_id: _Optional[str] = ..., refused_paths: _Optional[_Iterable[str]] = ..., skipped: _Optional[_Mapping[str, int]] = ...) -> None: ...

class StartIndexJobRequest(_message.Message):
    __slots__ = ("paths", "fps")
    PATHS_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    fps: float
    def __init__(self, paths: _Optional[_Iterable[str]] = ..., fps: _Optional[float] = ...) -> None: ...

class GetIndexJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchIndexJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelIndexJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class IndexJob(_message.Message):
    __slots__ = ("job_id", "state", "paths", "progress", "error_code", "error", "create_time_ms", "end_time_ms", "cancel_requested")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    END_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: IndexJobState
    paths: _containers.RepeatedScalarFieldContainer[str]
    progress: IndexProgress
    error_code: str
    error: str
    create_time_ms: int
    end_time_ms: int
    cancel_requested: bool
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[IndexJobState, str]] = ..., paths: _Optional[_Iterable[str]] = ..., progress: _Optional[_Union[IndexProgress, _Mapping]] = ..., error_code: _Optional[str] = ..., error: _Optional[str] = ..., create_time_ms: _Optional[int] = ..., end_time_ms: _Optional[int] = ..., cancel_requested: _Optional[bool] = ...) -> None: ...

class ImageChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class UploadImageResponse(_message.Message):
    __slots__ = ("upload_id", "size_bytes", "expires_in_ms")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_MS_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    size_bytes: int
    expires_in_ms: int
    def __init__(self, upload_id: _Optional[str] = ..., size_bytes: _Optional[int] = ..., expires_in_ms: _Optional[int] = ...) -> None: ...

class RenamePersonRequest(_message.Message):
    __slots__ = ("person", "name")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    person: _common_pb2.PersonRef
    name: str
    def __init__(self, person: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ..., name: _Optional[str] = ...) -> None: ...

class MergePersonsRequest(_message.Message):
    __slots__ = ("source", "target", "allow_same_frame")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ALLOW_SAME_FRAME_FIELD_NUMBER: _ClassVar[int]
    source: _common_pb2.PersonRef
    target: _common_pb2.PersonRef
    allow_same_frame: bool
    def __init__(self, source: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ..., target: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ..., allow_same_frame: _Optional[bool] = ...) -> None: ...

class SplitPersonRequest(_message.Message):
    __slots__ = ("face_ids",)
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    face_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, face_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class DeletePersonRequest(_message.Message):
    __slots__ = ("person", "release_faces")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FACES_FIELD_NUMBER: _ClassVar[int]
    person: _common_pb2.PersonRef
    release_faces: bool
    def __init__(self, person: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ..., release_faces: _Optional[bool] = ...) -> None: ...

class DeletePersonResponse(_message.Message):
    __slots__ = ("person_id", "released_faces")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FACES_FIELD_NUMBER: _ClassVar[int]
    person_id: int
    released_faces: int
    def __init__(self, person_id: _Optional[int] = ..., released_faces: _Optional[int] = ...) -> None: ...

class ListPersonFacesRequest(_message.Message):
    __slots__ = ("person", "page_size", "page_token", "include_thumbnails", "unassigned")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_THUMBNAILS_FIELD_NUMBER: _ClassVar[int]
    UNASSIGNED_FIELD_NUMBER: _ClassVar[int]
    person: _common_pb2.PersonRef
    page_size: int
    page_token: str
    include_thumbnails: bool
    unassigned: bool
    def __init__(self, person: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_thumbnails: _Optional[bool] = ..., unassigned: _Optional[bool] = ...) -> None: ...

class ListPersonFacesResponse(_message.Message):
    __slots__ = ("faces", "next_page_token", "total_size")
    FACES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    faces: _containers.RepeatedCompositeFieldContainer[_common_pb2.FaceHit]
    next_page_token: str
    total_size: int
    def __init__(self, faces: _Optional[_Iterable[_Union[_common_pb2.FaceHit, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class ListSourcesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ("uri", "kind", "status", "error", "face_count", "duration_ms", "frames")
    URI_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    uri: str
    kind: SourceKind
    status: SourceStatus
    error: str
    face_count: int
    duration_ms: int
    frames: int
    def __init__(self, uri: _Optional[str] = ..., kind: _Optional[_Union[SourceKind, str]] = ..., status: _Optional[_Union[SourceStatus, str]] = ..., error: _Optional[str] = ..., face_count: _Optional[int] = ..., duration_ms: _Optional[int] = ..., frames: _Optional[int] = ...) -> None: ...

class ListSourcesResponse(_message.Message):
    __slots__ = ("sources", "next_page_token", "total_size")
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    next_page_token: str
    total_size: int
    def __init__(self, sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class ListFoldersRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class Folder(_message.Message):
    __slots__ = ("path", "name", "folders", "files")
    PATH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FOLDERS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    path: str
    name: str
    folders: int
    files: int
    def __init__(self, path: _Optional[str] = ..., name: _Optional[str] = ..., folders: _Optional[int] = ..., files: _Optional[int] = ...) -> None: ...

class ListFoldersResponse(_message.Message):
    __slots__ = ("path", "parent", "folders", "files", "truncated")
    PATH_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    FOLDERS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    path: str
    parent: str
    folders: _containers.RepeatedCompositeFieldContainer[Folder]
    files: int
    truncated: bool
    def __init__(self, path: _Optional[str] = ..., parent: _Optional[str] = ..., folders: _Optional[_Iterable[_Union[Folder, _Mapping]]] = ..., files: _Optional[int] = ..., truncated: _Optional[bool] = ...) -> None: ...

class MoveFacesRequest(_message.Message):
    __slots__ = ("face_ids", "target", "allow_same_frame")
    FACE_IDS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ALLOW_SAME_FRAME_FIELD_NUMBER: _ClassVar[int]
    face_ids: _containers.RepeatedScalarFieldContainer[int]
    target: _common_pb2.PersonRef
    allow_same_frame: bool
    def __init__(self, face_ids: _Optional[_Iterable[int]] = ..., target: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ..., allow_same_frame: _Optional[bool] = ...) -> None: ...

class SuggestMergesRequest(_message.Message):
    __slots__ = ("page_size", "person")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PERSON_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    person: _common_pb2.PersonRef
    def __init__(self, page_size: _Optional[int] = ..., person: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ...) -> None: ...

class MergeSuggestion(_message.Message):
    __slots__ = ("person_a", "person_b", "distance")
    PERSON_A_FIELD_NUMBER: _ClassVar[int]
    PERSON_B_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    person_a: _common_pb2.Person
    person_b: _common_pb2.Person
    distance: float
    def __init__(self, person_a: _Optional[_Union[_common_pb2.Person, _Mapping]] = ..., person_b: _Optional[_Union[_common_pb2.Person, _Mapping]] = ..., distance: _Optional[float] = ...) -> None: ...

class SuggestMergesResponse(_message.Message):
    __slots__ = ("suggestions", "max_distance")
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    suggestions: _containers.RepeatedCompositeFieldContainer[MergeSuggestion]
    max_distance: float
    def __init__(self, suggestions: _Optional[_Iterable[_Union[MergeSuggestion, _Mapping]]] = ..., max_distance: _Optional[float] = ...) -> None: ...

class RejectMergeRequest(_message.Message):
    __slots__ = ("person_a", "person_b")
    PERSON_A_FIELD_NUMBER: _ClassVar[int]
    PERSON_B_FIELD_NUMBER: _ClassVar[int]
    person_a: _common_pb2.PersonRef
    person_b: _common_pb2.PersonRef
    def __init__(self, person_a: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ..., person_b: _Optional[_Union[_common_pb2.PersonRef, _Mapping]] = ...) -> None: ...

class RejectMergeResponse(_message.Message):
    __slots__ = ("person_a_id", "person_b_id")
    PERSON_A_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_B_ID_FIELD_NUMBER: _ClassVar[int]
    person_a_id: int
    person_b_id: int
    def __init__(self, person_a_id: _Optional[int] = ..., person_b_id: _Optional[int] = ...) -> None: ...
