from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrameFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_FORMAT_UNSPECIFIED: _ClassVar[FrameFormat]
    FRAME_FORMAT_JPEG: _ClassVar[FrameFormat]
    FRAME_FORMAT_PNG: _ClassVar[FrameFormat]
    FRAME_FORMAT_RGB: _ClassVar[FrameFormat]
    FRAME_FORMAT_BGR: _ClassVar[FrameFormat]
    FRAME_FORMAT_H264: _ClassVar[FrameFormat]

class StreamMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_MODE_UNSPECIFIED: _ClassVar[StreamMode]
    STREAM_MODE_LIVE: _ClassVar[StreamMode]
    STREAM_MODE_LOSSLESS: _ClassVar[StreamMode]

class DropReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DROP_REASON_UNSPECIFIED: _ClassVar[DropReason]
    DROP_REASON_QUEUE_FULL: _ClassVar[DropReason]
    DROP_REASON_INVALID: _ClassVar[DropReason]
    DROP_REASON_REFUSED: _ClassVar[DropReason]
    DROP_REASON_ERROR: _ClassVar[DropReason]
    DROP_REASON_SHUTDOWN: _ClassVar[DropReason]
    DROP_REASON_RATE_LIMITED: _ClassVar[DropReason]

class CloseReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLOSE_REASON_UNSPECIFIED: _ClassVar[CloseReason]
    CLOSE_REASON_CLIENT_CLOSED: _ClassVar[CloseReason]
    CLOSE_REASON_CLIENT_DISCONNECTED: _ClassVar[CloseReason]
    CLOSE_REASON_CLOSED_BY_REQUEST: _ClassVar[CloseReason]
    CLOSE_REASON_IDLE_TIMEOUT: _ClassVar[CloseReason]
    CLOSE_REASON_SHUTDOWN: _ClassVar[CloseReason]
    CLOSE_REASON_ERROR: _ClassVar[CloseReason]
    CLOSE_REASON_LEASE_LOST: _ClassVar[CloseReason]
FRAME_FORMAT_UNSPECIFIED: FrameFormat
FRAME_FORMAT_JPEG: FrameFormat
FRAME_FORMAT_PNG: FrameFormat
FRAME_FORMAT_RGB: FrameFormat
FRAME_FORMAT_BGR: FrameFormat
FRAME_FORMAT_H264: FrameFormat
STREAM_MODE_UNSPECIFIED: StreamMode
STREAM_MODE_LIVE: StreamMode
STREAM_MODE_LOSSLESS: StreamMode
DROP_REASON_UNSPECIFIED: DropReason
DROP_REASON_QUEUE_FULL: DropReason
DROP_REASON_INVALID: DropReason
DROP_REASON_REFUSED: DropReason
DROP_REASON_ERROR: DropReason
DROP_REASON_SHUTDOWN: DropReason
DROP_REASON_RATE_LIMITED: DropReason
CLOSE_REASON_UNSPECIFIED: CloseReason
CLOSE_REASON_CLIENT_CLOSED: CloseReason
CLOSE_REASON_CLIENT_DISCONNECTED: CloseReason
CLOSE_REASON_CLOSED_BY_REQUEST: CloseReason
CLOSE_REASON_IDLE_TIMEOUT: CloseReason
CLOSE_REASON_SHUTDOWN: CloseReason
CLOSE_REASON_ERROR: CloseReason
CLOSE_REASON_LEASE_LOST: CloseReason

class Point(_message.Message):
    __slots__ = ("x", "y", "label")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    label: int
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., label: _Optional[int] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("x0", "y0", "x1", "y1")
    X0_FIELD_NUMBER: _ClassVar[int]
    Y0_FIELD_NUMBER: _ClassVar[int]
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    x0: float
    y0: float
    x1: float
    y1: float
    def __init__(self, x0: _Optional[float] = ..., y0: _Optional[float] = ..., x1: _Optional[float] = ..., y1: _Optional[float] = ...) -> None: ...

class Rle(_message.Message):
    __slots__ = ("size", "counts")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    size: _containers.RepeatedScalarFieldContainer[int]
    counts: str
    def __init__(self, size: _Optional[_Iterable[int]] = ..., counts: _Optional[str] = ...) -> None: ...

class Prompt(_message.Message):
    __slots__ = ("obj_id", "points", "box", "mask", "clear_previous")
    OBJ_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    CLEAR_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    obj_id: int
    points: _containers.RepeatedCompositeFieldContainer[Point]
    box: Box
    mask: Rle
    clear_previous: bool
    def __init__(self, obj_id: _Optional[int] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., mask: _Optional[_Union[Rle, _Mapping]] = ..., clear_previous: _Optional[bool] = ...) -> None: ...

class StreamOpen(_message.Message):
    __slots__ = ("stream_id", "width", "height", "format", "mode", "initial_prompts")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    width: int
    height: int
    format: FrameFormat
    mode: StreamMode
    initial_prompts: _containers.RepeatedCompositeFieldContainer[Prompt]
    def __init__(self, stream_id: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., format: _Optional[_Union[FrameFormat, str]] = ..., mode: _Optional[_Union[StreamMode, str]] = ..., initial_prompts: _Optional[_Iterable[_Union[Prompt, _Mapping]]] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("index", "capture_ts", "data", "width", "height", "prompts")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    index: int
    capture_ts: float
    data: bytes
    width: int
    height: int
    prompts: _containers.RepeatedCompositeFieldContainer[Prompt]
    def __init__(self, index: _Optional[int] = ..., capture_ts: _Optional[float] = ..., data: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., prompts: _Optional[_Iterable[_Union[Prompt, _Mapping]]] = ...) -> None: ...

class StreamRequest(_message.Message):
    __slots__ = ("open", "frame")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    open: StreamOpen
    frame: Frame
    def __init__(self, open: _Optional[_Union[StreamOpen, _Mapping]] = ..., frame: _Optional[_Union[Frame, _Mapping]] = ...) -> None: ...

class Opened(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class Masklet(_message.Message):
    __slots__ = ("obj_id", "mask", "score", "visible", "iou", "box", "revision", "prompted")
    OBJ_ID_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_FIELD_NUMBER: _ClassVar[int]
    IOU_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PROMPTED_FIELD_NUMBER: _ClassVar[int]
    obj_id: int
    mask: Rle
    score: float
    visible: bool
    iou: float
    box: Box
    revision: int
    prompted: bool
    def __init__(self, obj_id: _Optional[int] = ..., mask: _Optional[_Union[Rle, _Mapping]] = ..., score: _Optional[float] = ..., visible: _Optional[bool] = ..., iou: _Optional[float] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., revision: _Optional[int] = ..., prompted: _Optional[bool] = ...) -> None: ...

class FrameResult(_message.Message):
    __slots__ = ("stream_id", "frame_index", "capture_ts", "revised", "masklets", "revision")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TS_FIELD_NUMBER: _ClassVar[int]
    REVISED_FIELD_NUMBER: _ClassVar[int]
    MASKLETS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    frame_index: int
    capture_ts: float
    revised: bool
    masklets: _containers.RepeatedCompositeFieldContainer[Masklet]
    revision: int
    def __init__(self, stream_id: _Optional[str] = ..., frame_index: _Optional[int] = ..., capture_ts: _Optional[float] = ..., revised: _Optional[bool] = ..., masklets: _Optional[_Iterable[_Union[Masklet, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class DropNotice(_message.Message):
    __slots__ = ("frame_index", "reason", "code")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    reason: str
    code: DropReason
    def __init__(self, frame_index: _Optional[int] = ..., reason: _Optional[str] = ..., code: _Optional[_Union[DropReason, str]] = ...) -> None: ...

class StreamClosed(_message.Message):
    __slots__ = ("reason", "code")
    REASON_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    code: CloseReason
    def __init__(self, reason: _Optional[str] = ..., code: _Optional[_Union[CloseReason, str]] = ...) -> None: ...

class StreamResponse(_message.Message):
    __slots__ = ("opened", "result", "drop", "closed")
    OPENED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DROP_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    opened: Opened
    result: FrameResult
    drop: DropNotice
    closed: StreamClosed
    def __init__(self, opened: _Optional[_Union[Opened, _Mapping]] = ..., result: _Optional[_Union[FrameResult, _Mapping]] = ..., drop: _Optional[_Union[DropNotice, _Mapping]] = ..., closed: _Optional[_Union[StreamClosed, _Mapping]] = ...) -> None: ...

class AddPromptRequest(_message.Message):
    __slots__ = ("stream_id", "obj_id", "frame_index", "points", "box", "mask", "clear_previous")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    OBJ_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    CLEAR_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    obj_id: int
    frame_index: int
    points: _containers.RepeatedCompositeFieldContainer[Point]
    box: Box
    mask: Rle
    clear_previous: bool
    def __init__(self, stream_id: _Optional[str] = ..., obj_id: _Optional[int] = ..., frame_index: _Optional[int] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., mask: _Optional[_Union[Rle, _Mapping]] = ..., clear_previous: _Optional[bool] = ...) -> None: ...

class AddPromptResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[FrameResult]
    def __init__(self, results: _Optional[_Iterable[_Union[FrameResult, _Mapping]]] = ...) -> None: ...

class RemoveObjectRequest(_message.Message):
    __slots__ = ("stream_id", "obj_id")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    OBJ_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    obj_id: int
    def __init__(self, stream_id: _Optional[str] = ..., obj_id: _Optional[int] = ...) -> None: ...

class RemoveObjectResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams",)
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[StreamInfo]
    def __init__(self, streams: _Optional[_Iterable[_Union[StreamInfo, _Mapping]]] = ...) -> None: ...

class GetStreamRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class StreamInfo(_message.Message):
    __slots__ = ("stream_id", "mode", "width", "height", "objects", "fps", "queue_depth", "received", "processed", "dropped", "last_frame_index", "replica")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    LAST_FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    mode: StreamMode
    width: int
    height: int
    objects: _containers.RepeatedScalarFieldContainer[int]
    fps: float
    queue_depth: int
    received: int
    processed: int
    dropped: int
    last_frame_index: int
    replica: str
    def __init__(self, stream_id: _Optional[str] = ..., mode: _Optional[_Union[StreamMode, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., objects: _Optional[_Iterable[int]] = ..., fps: _Optional[float] = ..., queue_depth: _Optional[int] = ..., received: _Optional[int] = ..., processed: _Optional[int] = ..., dropped: _Optional[int] = ..., last_frame_index: _Optional[int] = ..., replica: _Optional[str] = ...) -> None: ...

class CloseStreamRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class CloseStreamResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
