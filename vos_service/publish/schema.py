"""Redis Streams key scheme and message schema.

Keys
----

``vos:{stream_id}:masklets``
    One entry per processed frame of one video stream (and one more entry
    each time a correction re-publishes an already processed frame).
``vos:events``
    One entry per lifecycle event, for all streams of all servers.

Both are trimmed with ``XADD ... MAXLEN ~ N`` (approximately N entries kept;
Redis trims whole macro nodes, so a stream may briefly hold a few more).
Entry ids are Redis-generated (``<ms>-<seq>``); order within a key is the
order the server produced the messages.

Masklet entry fields (all values are UTF-8 strings)
---------------------------------------------------

- ``stream_id``: the video stream's id.
- ``frame_index``: int, the frame's index in the stream (0-based).
- ``capture_ts``: float seconds as the camera client sent it, or ``""`` if unknown.
- ``revision``: int, the max ``revision`` among ``objects`` (0 = first result;
  a correction re-publishes the frame with ``revision + 1``).
- ``objects``: JSON list, one item per tracked object::

    [{"obj_id": 1, "score": 9.1, "visible": true, "iou": 0.93,
      "box": [x0, y0, x1, y1], "revision": 0,
      "rle": {"size": [h, w], "counts": "<COCO compressed>"}}]

  ``score`` is the object-score logit and ``iou`` the predicted IoU (either
  may be ``null``); ``box`` is inclusive-exclusive source pixels, or ``null``
  for an empty mask; ``rle`` is COCO's compressed RLE at the source
  resolution (decode with ``vos_service.io.rle.decode_mask``).

A reader that sees the same ``(stream_id, frame_index)`` twice keeps the entry
with the higher ``revision``. Equal revisions are the same result delivered
twice: possible only when a connection broke after Redis applied a batch but
before its reply arrived, and the publisher re-sent it (at-least-once).

Event entry fields
------------------

- ``type``: ``stream_opened`` | ``stream_closed`` | ``object_added`` |
  ``object_removed`` | ``correction_applied``.
- ``stream_id``: the video stream's id.
- ``obj_id``: int, or ``""`` when the event is not about one object.
- ``frame_index``: int, or ``""`` when the event is not about one frame.
- ``ts``: float, Unix time in seconds when the server produced the event.
- ``detail``: JSON object with event-specific extras (``{}`` if none).

This module is plain Python (json, dataclasses): readers such as the
``watch`` CLI import it without torch, grpc or a running service.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, cast

__all__ = [
    "EVENTS_KEY", "EventMessage", "EventType", "MaskletMessage", "ObjectMasklet",
    "Publishable", "lease_key", "masklets_key",
]

EVENTS_KEY = "vos:events"
_MASKLETS_KEY = "vos:{stream_id}:masklets"

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) source pixels, inclusive-exclusive


def lease_key(stream_id: str) -> str:
    """The key holding the replica that owns the stream in a fleet (fleet.lease)."""
    return f"vos:lease:{stream_id}"


def masklets_key(stream_id: str) -> str:
    """The Redis Stream key holding one stream's masklets."""
    if not stream_id:
        raise ValueError("stream_id must be a non-empty string")
    return _MASKLETS_KEY.format(stream_id=stream_id)


class EventType(str, enum.Enum):
    """Lifecycle events published on ``vos:events``."""

    STREAM_OPENED = "stream_opened"
    STREAM_CLOSED = "stream_closed"
    OBJECT_ADDED = "object_added"
    OBJECT_REMOVED = "object_removed"
    CORRECTION_APPLIED = "correction_applied"


class Publishable(Protocol):
    """What RedisPublisher.publish accepts: a target key and flat string fields."""

    @property
    def key(self) -> str: ...

    def to_fields(self) -> dict[str, str]: ...


def _text(value: Any) -> str:
    # redis-py returns bytes unless the client was made with decode_responses=True.
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)


def _decoded(fields: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in fields.items()}


def _require(fields: Mapping[str, str], name: str) -> str:
    try:
        return fields[name]
    except KeyError:
        raise ValueError(f"message has no {name!r} field; fields: {sorted(fields)}") from None


def _opt_int(text: str) -> Optional[int]:
    return None if text == "" else int(text)


def _opt_float(value: Any) -> Optional[float]:
    if value is None:
        return None
    value = float(value)  # also turns numpy scalars into plain floats that json accepts
    if not math.isfinite(value):
        # Strict JSON has no NaN/inf; readers in other languages would reject the entry.
        raise ValueError(f"masklet numbers must be finite, got {value}")
    return value


@dataclass(frozen=True)
class ObjectMasklet:
    """One object's mask on one frame, already RLE-encoded (no numpy, no torch)."""

    obj_id: int
    rle: Mapping[str, Any]  # {"size": [h, w], "counts": str}, COCO compressed, source resolution
    score: Optional[float] = None  # object-score logit; None if not reported
    visible: bool = True  # False when the model says the object is absent/occluded
    iou: Optional[float] = None  # predicted IoU of the chosen mask, 0..1
    box: Optional[Box] = None  # inclusive-exclusive source pixels; None for an empty mask
    revision: int = 0  # bumped each time a correction re-publishes this frame

    def to_json(self) -> dict[str, Any]:
        counts = self.rle["counts"]
        if isinstance(counts, bytes):
            counts = counts.decode("ascii")  # pycocotools hands out bytes
        h, w = (int(v) for v in self.rle["size"])
        return {
            "obj_id": int(self.obj_id),
            "score": _opt_float(self.score),
            "visible": bool(self.visible),
            "iou": _opt_float(self.iou),
            "box": None if self.box is None else [int(v) for v in self.box],
            "revision": int(self.revision),
            "rle": {"size": [h, w], "counts": str(counts)},
        }

    @staticmethod
    def from_json(obj: Mapping[str, Any]) -> "ObjectMasklet":
        box = obj.get("box")
        return ObjectMasklet(
            obj_id=int(obj["obj_id"]),
            rle={"size": [int(v) for v in obj["rle"]["size"]], "counts": str(obj["rle"]["counts"])},
            score=obj.get("score"),
            visible=bool(obj.get("visible", True)),
            iou=obj.get("iou"),
            box=None if box is None else cast(tuple[int, int, int, int], tuple(int(v) for v in box)),
            revision=int(obj.get("revision", 0)),
        )


@dataclass(frozen=True)
class MaskletMessage:
    """All masklets of one frame of one stream: one entry on ``vos:{stream_id}:masklets``."""

    stream_id: str
    frame_index: int
    objects: tuple[ObjectMasklet, ...] = ()
    capture_ts: Optional[float] = None  # seconds, as the camera client sent it
    # None = derive: the max revision among objects (0 when there are none).
    revision: Optional[int] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))
        if self.revision is None:
            rev = max((o.revision for o in self.objects), default=0)
            object.__setattr__(self, "revision", rev)

    @property
    def key(self) -> str:
        return masklets_key(self.stream_id)

    def to_fields(self) -> dict[str, str]:
        """Flat string fields for XADD; raises ValueError on non-finite numbers."""
        return {
            "stream_id": self.stream_id,
            "frame_index": str(int(self.frame_index)),
            "capture_ts": "" if self.capture_ts is None else repr(_opt_float(self.capture_ts)),
            "revision": str(int(cast(int, self.revision))),  # set by __post_init__
            "objects": json.dumps([o.to_json() for o in self.objects], separators=(",", ":"),
                                  allow_nan=False),
        }

    @staticmethod
    def from_fields(fields: Mapping[Any, Any]) -> "MaskletMessage":
        """Decode an entry as read by XRANGE/XREAD (str or bytes keys and values)."""
        f = _decoded(fields)
        ts = _require(f, "capture_ts")
        return MaskletMessage(
            stream_id=_require(f, "stream_id"),
            frame_index=int(_require(f, "frame_index")),
            objects=tuple(ObjectMasklet.from_json(o) for o in json.loads(_require(f, "objects"))),
            capture_ts=None if ts == "" else float(ts),
            revision=int(_require(f, "revision")),
        )


@dataclass(frozen=True)
class EventMessage:
    """One lifecycle event: one entry on ``vos:events``."""

    type: EventType
    stream_id: str
    ts: float  # Unix time in seconds when the event happened (time.time())
    obj_id: Optional[int] = None
    frame_index: Optional[int] = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # JSON-serialisable extras

    def __post_init__(self) -> None:
        # Accept the plain string too ("object_added"); an unknown type fails here, not on read.
        object.__setattr__(self, "type", EventType(self.type))

    @property
    def key(self) -> str:
        return EVENTS_KEY

    def to_fields(self) -> dict[str, str]:
        return {
            "type": self.type.value,
            "stream_id": self.stream_id,
            "obj_id": "" if self.obj_id is None else str(int(self.obj_id)),
            "frame_index": "" if self.frame_index is None else str(int(self.frame_index)),
            "ts": repr(float(self.ts)),
            "detail": json.dumps(dict(self.detail), separators=(",", ":"), allow_nan=False),
        }

    @staticmethod
    def from_fields(fields: Mapping[Any, Any]) -> "EventMessage":
        """Decode an entry as read by XRANGE/XREAD (str or bytes keys and values)."""
        f = _decoded(fields)
        return EventMessage(
            type=EventType(_require(f, "type")),
            stream_id=_require(f, "stream_id"),
            ts=float(_require(f, "ts")),
            obj_id=_opt_int(f.get("obj_id", "")),
            frame_index=_opt_int(f.get("frame_index", "")),
            detail=json.loads(f.get("detail") or "{}"),
        )
