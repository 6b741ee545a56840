"""Proto messages <-> domain dataclasses (runtime.types, engine.types); masks via io.rle.

Validation of the *shape* of requests lives here (ids, sizes, enum values);
prompt geometry is checked by `Prompt.validate` against the frame size.
Malformed requests raise InvalidRequestError or InvalidPromptError.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

import numpy as np

from ..engine.errors import InvalidPromptError
from ..engine.types import FrameResult, ObjectResult, Prompt
from ..io.decode import FrameFormat
from ..io.rle import decode_mask, encode_mask
from ..runtime.types import FrameOutput, PromptSpec, StreamInfo, StreamMode, StreamSpec
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


def open_from_proto(msg: pb.StreamOpen) -> tuple[StreamSpec, FrameFormat]:
    """StreamOpen -> (StreamSpec, frame format). Prompts are checked against the announced size."""
    check_stream_id(msg.stream_id)
    if msg.width == 0 or msg.height == 0:
        raise InvalidRequestError(f"width and height must be positive, got {msg.width}x{msg.height}")
    if msg.format not in FORMATS:
        raise InvalidRequestError(f"unknown frame format {msg.format}")
    if msg.mode not in MODES:
        raise InvalidRequestError(f"unknown stream mode {msg.mode}")
    prompts = prompts_from_proto(msg.initial_prompts, msg.height, msg.width)
    spec = StreamSpec(msg.stream_id, msg.width, msg.height, MODES[msg.mode], prompts)
    return spec, FORMATS[msg.format]


def prompts_from_proto(msgs: Iterable[pb.Prompt], height: int, width: int) -> tuple[PromptSpec, ...]:
    """Inline or initial prompts (they land on the frame they come with: frame_index None)."""
    out = []
    for m in msgs:
        prompt = prompt_from_fields(m.points, m.box if m.HasField("box") else None,
                                    m.mask if m.HasField("mask") else None)
        prompt.validate(height, width)
        clear = m.clear_previous if m.HasField("clear_previous") else True
        out.append(PromptSpec(m.obj_id, prompt, None, clear))
    if len({p.obj_id for p in out}) != len(out):
        raise InvalidPromptError("at most one prompt per object on a frame")
    return tuple(out)


def add_prompt_from_proto(req: pb.AddPromptRequest) -> PromptSpec:
    prompt = prompt_from_fields(req.points, req.box if req.HasField("box") else None,
                                req.mask if req.HasField("mask") else None)
    frame_index = req.frame_index if req.HasField("frame_index") else None
    clear = req.clear_previous if req.HasField("clear_previous") else True
    return PromptSpec(req.obj_id, prompt, frame_index, clear)


def prompt_from_fields(points: Iterable[pb.Point], box: Optional[pb.Box], mask: Optional[pb.Rle]) -> Prompt:
    pts = list(points)
    rgn = None if box is None else (box.x0, box.y0, box.x1, box.y1)
    m = None
    if mask is not None:
        if len(mask.size) != 2 or mask.size[0] <= 0 or mask.size[1] <= 0 or not mask.counts:
            raise InvalidPromptError("mask must be a COCO RLE with size [height, width] and counts")
        try:
            m = decode_mask({"size": list(mask.size), "counts": mask.counts})
        except (ValueError, UnicodeError) as e:  # pycocotools rejects malformed counts with ValueError
            raise InvalidPromptError(f"mask RLE does not decode: {e}") from e
    if pts:
        return Prompt(points=np.array([[p.x, p.y] for p in pts], np.float32),
                      labels=np.array([p.label for p in pts], np.int32), box=rgn, mask=m)
    return Prompt(box=rgn, mask=m)


# ---- domain -> responses ---------------------------------------------------------------


def masklet_to_proto(o: ObjectResult) -> pb.Masklet:
    rle = encode_mask(o.mask)
    msg = pb.Masklet(obj_id=o.obj_id, mask=pb.Rle(size=rle["size"], counts=rle["counts"]), score=o.score,
                     visible=o.visible, iou=o.iou, revision=o.revision, prompted=o.prompted)
    if o.box is not None:
        msg.box.CopyFrom(pb.Box(x0=o.box[0], y0=o.box[1], x1=o.box[2], y1=o.box[3]))
    return msg


def frame_result_to_proto(stream_id: str, frame_index: int, capture_ts: Optional[float], result: FrameResult,
                          revised: bool) -> pb.FrameResult:
    msg = pb.FrameResult(stream_id=stream_id, frame_index=frame_index, revised=revised,
                         masklets=[masklet_to_proto(o) for o in result.objects])
    if capture_ts is not None:
        msg.capture_ts = capture_ts
    return msg


def output_to_proto(out: FrameOutput) -> pb.FrameResult:
    return frame_result_to_proto(out.stream_id, out.frame_index, out.capture_ts, out.result, out.revised)


def stream_info_to_proto(info: StreamInfo) -> pb.StreamInfo:
    msg = pb.StreamInfo(stream_id=info.stream_id, mode=MODE_TO_PROTO[info.mode], width=info.width,
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
