"""A view-only MJPEG stream of one camera with its masklets drawn in, for embedding
(an <img src> in a wall display or another tool's page; no JavaScript needed).

    GET /mjpeg?stream=ID[&token=...]   multipart/x-mixed-replace; boundary=frame

It is one more hub Viewer, so it gets what a browser tab gets: newest frame wins, skipped
frames counted, nothing ever waits for it. Overlays are drawn off the event loop, and only
while somebody watches: the JPEG the hub encoded for the tabs is decoded, each visible
object's mask (its RLE, scaled to the JPEG) tinted and outlined, and re-encoded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import cv2
import numpy as np

from ..io.rle import decode_mask
from .hub import FrameMessage, Viewer

BOUNDARY = "frame"
# The page's palette (static/draw.js PALETTE), RGB; obj_id 1 is PALETTE[0]. Same alpha.
PALETTE = ((255, 0, 0), (0, 200, 255), (255, 200, 0), (0, 255, 80), (255, 0, 255), (255, 128, 0), (128, 0, 255),
           (0, 128, 128))
FILL_ALPHA = 0.4


def colour(obj_id: int) -> tuple[int, int, int]:
    return PALETTE[(obj_id - 1) % len(PALETTE)]


def draw_overlay(msg: FrameMessage, quality: int) -> bytes:
    """The message's JPEG with every visible object tinted, outlined and labelled."""
    decoded = cv2.imdecode(np.frombuffer(msg.jpeg, np.uint8), cv2.IMREAD_COLOR)  # BGR
    if decoded is None:
        raise ValueError("the hub's JPEG does not decode")
    img: np.ndarray = decoded
    h, w = img.shape[:2]
    for obj in msg.header["objects"]:
        if not obj["visible"]:
            continue
        mask: np.ndarray = decode_mask(obj["rle"]).astype(np.uint8)
        if mask.shape != (h, w):
            mask = np.asarray(cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST))
        r, g, b = colour(obj["obj_id"])
        bgr = np.array([b, g, r], np.float32)
        inside = mask.astype(bool)
        img[inside] = (img[inside] * (1 - FILL_ALPHA) + bgr * FILL_ALPHA).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, (b, g, r), 2)
        if obj["box"]:
            x0, y0 = obj["box"][0] * w // msg.header["width"], obj["box"][1] * h // msg.header["height"]
            cv2.putText(img, f"{obj['obj_id']} {obj['score']:.1f}", (x0, max(12, y0 - 4)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.5, (b, g, r), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes()


def part(jpeg: bytes, frame_index: int) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
            f"X-Frame-Index: {frame_index}\r\n\r\n").encode()
    return head + jpeg + b"\r\n"


async def newest_views(viewer: Viewer, still_open: Callable[[], bool]) -> AsyncIterator[FrameMessage]:
    """The viewer's newest live frame each time there is one, until ``still_open()`` is false.
    Revisions are the filmstrip's business: an embedded view shows the stream as it goes."""
    while still_open():
        try:
            await asyncio.wait_for(viewer.ready.wait(), 1.0)
        except asyncio.TimeoutError:
            continue
        views = [m for m in viewer.take_messages() if m.kind == "view" and not m.header["revised"] and m.jpeg]
        if views:
            yield views[-1]
