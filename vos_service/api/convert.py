"""Proto messages <-> domain dataclasses (runtime.types, engine.types); masks via io.rle.

The one boundary where untrusted fields are checked: ids, sizes and enum
values, the stream size against the limits, the number of prompts and of
points, a mask's declared size against the frame and its RLE's length — all
before any native decoder sees the bytes (pycocotools once segfaulted on a
40-byte RLE declaring 2^31 x 2^31 pixels). Prompt geometry is checked by
`Prompt.validate` against the frame size. Malformed requests raise
InvalidRequestError or InvalidPromptError, over-limit ones LimitExceededError.

Converting a prompt can decode a mask (work proportional to the frame): the
api calls these functions on its thread pool, never on the event loop.
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np

from ..engine.errors import InvalidPromptError
from ..engine.types import ObjectResult, Prompt
from ..config import StreamSettings
from ..io.decode import FrameFormat
from ..io.rle import Rle, RleError, decode_untrusted, encode_mask
from ..runtime.types import (CloseReason, DropReason, FrameOutput, LimitExceededError, PromptSpec, StreamInfo,
                             StreamMode, StreamSpec)
from .errors import InvalidRequestError
from .gen.vos.v1 import vos_pb2 as pb

# Stream ids become Redis keys and log fields: keep them short and plain.
_STREAM_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

FORMATS = {
    pb.FRAME_FORMAT_UNSPECIFIED: FrameFormat.JPEG,
    pb.FRAME_FORMAT_JPEG: FrameFormat.JPEG,
    pb.FRAME_FORMAT_PNG: FrameFormat.PNG,
    pb.FRAME_FORMAT_RGB: FrameFormat.RGB,
    pb.FRAME_FORMAT_BGR: FrameFormat.BGR,
    pb.FRAME_FORMAT_H264: FrameFormat.H264,
}
FORMAT_TO_PROTO = {v: k for k, v in FORMATS.items() if k != pb.FRAME_FORMAT_UNSPECIFIED}
MODES = {pb.STREAM_MODE_UNSPECIFIED: StreamMode.LIVE, pb.STREAM_MODE_LIVE: StreamMode.LIVE,
         pb.STREAM_MODE_LOSSLESS: StreamMode.LOSSLESS}
MODE_TO_PROTO = {StreamMode.LIVE: pb.STREAM_MODE_LIVE, StreamMode.LOSSLESS: pb.STREAM_MODE_LOSSLESS}


def check_stream_id(stream_id: str) -> str:
    if not _STREAM_ID.fullmatch(stream_id):
        raise InvalidRequestError(
            f"stream_id must be 1-128 characters of [A-Za-z0-9._:-], got {stream_id[:140]!r}")
    return stream_id


# ---- requests -> domain --------------------------------------------------------------


def open_from_proto(msg: pb.StreamOpen, limits: StreamSettings) -> tuple[StreamSpec, FrameFormat]:
    """StreamOpen -> (StreamSpec, frame format). Prompts are checked against the announced size."""
    check_stream_id(msg.stream_id)
    if msg.width == 0 or msg.height == 0:
        raise InvalidRequestError(f"width and height must be positive, got {msg.width}x{msg.height}")
    if msg.width > limits.max_width or msg.height > limits.max_height:  # before any prompt mask is sized by it
        raise LimitExceededError(
            f"{msg.width}x{msg.height} exceeds the limit {limits.max_width}x{limits.max_height}")
    if msg.format not in FORMATS:
        raise InvalidRequestError(f"unknown frame format {msg.format}")
    if msg.mode not in MODES:
        raise InvalidRequestError(f"unknown stream mode {msg.mode}")
    prompts = prompts_from_proto(msg.initial_prompts, msg.height, msg.width, limits)
    spec = StreamSpec(msg.stream_id, msg.width, msg.height, MODES[msg.mode], prompts)
    return spec, FORMATS[msg.format]


def check_prompt_count(n: int, limits: StreamSettings) -> None:
    """At most one prompt per object, so never more than max_objects on one frame (O(1), any thread)."""
    if n > limits.max_objects:
        raise LimitExceededError(f"{n} prompts on one frame, over max_objects={limits.max_objects}")


def prompts_from_proto(msgs, height: int, width: int, limits: StreamSettings) -> tuple[PromptSpec, ...]:
    """Inline or initial prompts (they land on the frame they come with: frame_index None); all or none."""
    check_prompt_count(len(msgs), limits)
    if len({m.obj_id for m in msgs}) != len(msgs):
        raise InvalidPromptError("at most one prompt per object on a frame")
    out = []
    for m in msgs:
        prompt = prompt_from_fields(m.points, m.box if m.HasField("box") else None,
                                    m.mask if m.HasField("mask") else None, height, width, limits)
        clear = m.clear_previous if m.HasField("clear_previous") else True
        out.append(PromptSpec(m.obj_id, prompt, None, clear))
    return tuple(out)


def add_prompt_from_proto(req: pb.AddPromptRequest, height: int, width: int, limits: StreamSettings) -> PromptSpec:
    prompt = prompt_from_fields(req.points, req.box if req.HasField("box") else None,
                                req.mask if req.HasField("mask") else None, height, width, limits)
    frame_index = req.frame_index if req.HasField("frame_index") else None
    clear = req.clear_previous if req.HasField("clear_previous") else True
    return PromptSpec(req.obj_id, prompt, frame_index, clear)


def prompt_from_fields(points, box: Optional[pb.Box], mask: Optional[pb.Rle], height: int, width: int,
                       limits: StreamSettings) -> Prompt:
    """One prompt, validated against a height x width frame and the limits (InvalidPromptError)."""
    if len(points) > limits.max_points:
        raise InvalidPromptError(f"{len(points)} points in one prompt, over max_points={limits.max_points}")
    rgn = None if box is None else (box.x0, box.y0, box.x1, box.y1)
    m = None if mask is None else _mask_from_proto(mask, height, width, limits)
    if len(points):
        prompt = Prompt(points=np.array([[p.x, p.y] for p in points], np.float32),
                        labels=np.array([p.label for p in points], np.int32), box=rgn, mask=m)
    else:
        prompt = Prompt(box=rgn, mask=m)
    prompt.validate(height, width)
    return prompt


def _mask_from_proto(mask: pb.Rle, height: int, width: int, limits: StreamSettings) -> np.ndarray:
    if list(mask.size) != [height, width]:
        raise InvalidPromptError(f"mask must be a COCO RLE of the frame size [{height}, {width}], "
                                 f"got size {list(mask.size)[:4]}")
    try:
        return decode_untrusted(list(mask.size), mask.counts, height, width, limits.max_mask_rle_bytes)
    except RleError as e:
        raise InvalidPromptError(f"mask RLE refused: {e}") from e


# ---- domain -> responses ---------------------------------------------------------------


def masklet_to_proto(o: ObjectResult, rle: Optional[Rle] = None) -> pb.Masklet:
    rle = rle or encode_mask(o.mask)
    msg = pb.Masklet(obj_id=o.obj_id, mask=pb.Rle(size=rle["size"], counts=rle["counts"]), score=o.score,
                     visible=o.visible, iou=o.iou, revision=o.revision, prompted=o.prompted)
    if o.box is not None:
        msg.box.CopyFrom(pb.Box(x0=o.box[0], y0=o.box[1], x1=o.box[2], y1=o.box[3]))
    return msg


def output_to_proto(out: FrameOutput) -> pb.FrameResult:
    """The masks' RLEs are the ones the worker encoded (FrameOutput.rles), not encoded again here."""
    msg = pb.FrameResult(stream_id=out.stream_id, frame_index=out.frame_index, revised=out.revised,
                         revision=out.revision,
                         masklets=[masklet_to_proto(o, rle) for o, rle in zip(out.result.objects, out.rles)])
    if out.capture_ts is not None:
        msg.capture_ts = out.capture_ts
    return msg


DROP_CODES = {r: pb.DropReason.Value(f"DROP_REASON_{r.name}") for r in DropReason}
CLOSE_CODES = {r: pb.CloseReason.Value(f"CLOSE_REASON_{r.name}") for r in CloseReason}


def drop_to_proto(frame_index: int, reason: DropReason, text: str) -> pb.StreamResponse:
    return pb.StreamResponse(drop=pb.DropNotice(frame_index=frame_index, reason=text, code=DROP_CODES[reason]))


def closed_to_proto(reason: CloseReason, text: str) -> pb.StreamResponse:
    return pb.StreamResponse(closed=pb.StreamClosed(reason=text, code=CLOSE_CODES[reason]))


def stream_info_to_proto(info: StreamInfo, replica: str = "") -> pb.StreamInfo:
    msg = pb.StreamInfo(stream_id=info.stream_id, replica=replica, mode=MODE_TO_PROTO[info.mode], width=info.width,
                        height=info.height, objects=list(info.objects), fps=info.fps,
                        queue_depth=info.queue_depth, received=info.received, processed=info.processed,
                        dropped=info.dropped)
    if info.last_frame_index is not None:
        msg.last_frame_index = info.last_frame_index
    return msg


# ---- domain -> requests (the client's side) ----------------------------------------------


def prompt_to_proto(obj_id: int, prompt: Prompt, clear_previous: bool = True) -> pb.Prompt:
    msg = pb.Prompt(obj_id=obj_id, clear_previous=clear_previous)
    _fill_prompt(msg, prompt)
    return msg


def _fill_prompt(msg, prompt: Prompt) -> None:
    """Copy a Prompt's points/box/mask into a pb.Prompt or pb.AddPromptRequest."""
    if prompt.points is not None:
        labels = prompt.labels if prompt.labels is not None else np.ones(len(prompt.points), np.int32)
        msg.points.extend(pb.Point(x=float(x), y=float(y), label=int(lab))
                          for (x, y), lab in zip(np.asarray(prompt.points).reshape(-1, 2), labels))
    if prompt.box is not None:
        x0, y0, x1, y1 = (float(v) for v in prompt.box)
        msg.box.CopyFrom(pb.Box(x0=x0, y0=y0, x1=x1, y1=y1))
    if prompt.mask is not None:
        rle = encode_mask(prompt.mask)
        msg.mask.CopyFrom(pb.Rle(size=rle["size"], counts=rle["counts"]))


def add_prompt_request(stream_id: str, obj_id: int, prompt: Prompt, frame_index: Optional[int] = None,
                       clear_previous: bool = True) -> pb.AddPromptRequest:
    req = pb.AddPromptRequest(stream_id=stream_id, obj_id=obj_id, clear_previous=clear_previous)
    if frame_index is not None:
        req.frame_index = frame_index
    _fill_prompt(req, prompt)
    return req
