"""Browser messages -> the runtime's typed calls (the same ones the gRPC servicer makes).

Everything a browser sends is untrusted: sizes and types are checked here, geometry by
Prompt.validate against the stream's frame size, before anything reaches the runtime.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Optional, overload

import numpy as np

from ..api.errors import status_for
from ..engine.errors import InvalidPromptError
from ..engine.types import Prompt
from ..runtime.manager import StreamManager
from ..runtime.types import FrameOutput, PromptControl, PromptSpec, RemoveControl


class BadMessage(ValueError):
    """A browser message that is not what PROTOCOL.md describes."""


@overload
def _int(msg: dict, key: str) -> int: ...
@overload
def _int(msg: dict, key: str, optional: bool) -> Optional[int]: ...
def _int(msg: dict, key: str, optional: bool = False) -> Optional[int]:
    v = msg.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not -(2 ** 62) < v < 2 ** 62:
        raise BadMessage(f"{key} must be an integer")
    return v


def _number(v: Any) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise InvalidPromptError("coordinates must be finite numbers")
    return float(v)


def prompt_from_json(msg: dict, height: int, width: int, max_points: int) -> Prompt:
    """points [[x, y, label], ...] and/or box [x0, y0, x1, y1], in source pixels."""
    points = msg.get("points") or []
    box = msg.get("box")
    if not isinstance(points, list) or len(points) > max_points:
        raise InvalidPromptError(f"points must be a list of at most max_points={max_points} [x, y, label]")
    rows = []
    for p in points:
        if not isinstance(p, list) or len(p) != 3 or p[2] not in (0, 1) or isinstance(p[2], bool):
            raise InvalidPromptError("each point must be [x, y, label] with label 1 (positive) or 0 (negative)")
        rows.append((_number(p[0]), _number(p[1]), int(p[2])))
    rgn = None
    if box is not None:
        if not isinstance(box, list) or len(box) != 4:
            raise InvalidPromptError("box must be [x0, y0, x1, y1]")
        x0, y0, x1, y1 = (_number(v) for v in box)
        rgn = (x0, y0, x1, y1)
    if rows:
        arr = np.array(rows, np.float64)
        prompt = Prompt(points=arr[:, :2].astype(np.float32), labels=arr[:, 2].astype(np.int32), box=rgn)
    else:
        prompt = Prompt(box=rgn)
    prompt.validate(height, width)
    return prompt


async def apply_prompt(manager: StreamManager, msg: dict, max_points: int) -> dict:
    """A `prompt` message -> the `prompt_result` reply (ok, or the status code and why)."""
    base = {"type": "prompt_result", "request_id": msg.get("request_id"), "stream_id": msg.get("stream_id"),
            "obj_id": msg.get("obj_id")}
    try:
        session = manager.get(str(msg.get("stream_id")))
        obj_id = _int(msg, "obj_id")
        frame_index = _int(msg, "frame_index", optional=True)
        prompt = prompt_from_json(msg, session.spec.height, session.spec.width, max_points)
        clear = msg.get("clear_previous", True) is not False
        outputs: list[FrameOutput] = await asyncio.wrap_future(
            session.control(PromptControl(PromptSpec(obj_id, prompt, frame_index, clear))))
    except Exception as e:  # noqa: BLE001 - every failure is the operator's to read
        return {**base, **failure(e)}
    return {**base, "ok": True, "frame_index": outputs[0].frame_index,
            "revised_frames": [o.frame_index for o in outputs], "revision": outputs[0].revision}


async def apply_remove(manager: StreamManager, msg: dict) -> dict:
    base = {"type": "removed", "request_id": msg.get("request_id"), "stream_id": msg.get("stream_id"),
            "obj_id": msg.get("obj_id")}
    try:
        session = manager.get(str(msg.get("stream_id")))
        await asyncio.wrap_future(session.control(RemoveControl(_int(msg, "obj_id"))))
    except Exception as e:  # noqa: BLE001
        return {**base, **failure(e)}
    return {**base, "ok": True}


def failure(e: BaseException) -> dict:
    if isinstance(e, BadMessage):
        return {"ok": False, "code": "INVALID_ARGUMENT", "error": str(e)}
    code, text = status_for(e)
    if code.name == "FAILED_PRECONDITION":
        text += " — too old to correct: pick a newer frame"
    return {"ok": False, "code": code.name, "error": text}
