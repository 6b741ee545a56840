"""Frames and masklets from the runtime to console viewers, never slowing a stream.

The runtime calls `tap` on its worker thread for every result it emits. The tap only
records the newest result per stream and wakes one encoder thread; JPEG encoding (downscale
+ encode) happens there, and only for streams somebody watches (plus a thumbnail per stream
every thumb_interval_s). Encoded frames go to each viewer's newest-wins slots on the event
loop; a viewer's sender takes whatever is newest when its socket is ready, and counts what it
never got. So a stalled browser costs nothing but its own skipped count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from ..config import ConsoleSettings
from ..metrics import Metrics
from ..runtime.session import StreamSession
from ..runtime.types import FrameOutput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameMessage:
    """One binary WebSocket message: length-prefixed JSON header + JPEG (PROTOCOL.md)."""

    stream_id: str
    kind: str  # view | thumb
    frame_index: int
    header: dict
    jpeg: bytes

    def encode(self, skipped: int) -> bytes:
        head = json.dumps({**self.header, "kind": self.kind, "skipped": skipped}, separators=(",", ":")).encode()
        return struct.pack(">I", len(head)) + head + self.jpeg


@dataclass
class _StreamState:
    pending: Optional[tuple[FrameOutput, Optional[np.ndarray]]] = None  # newest new frame, not encoded yet
    # Revisions are all kept (newest per frame): a correction revises several frames at once and
    # the filmstrip must show each of them. At most one per ring frame.
    revised: "OrderedDict[int, FrameOutput]" = field(default_factory=OrderedDict)
    queued: bool = False
    jpegs: "OrderedDict[int, tuple[bytes, int, int]]" = field(default_factory=OrderedDict)  # frame -> view JPEG
    last_thumb: float = 0.0
    latencies: deque = field(default_factory=lambda: deque(maxlen=60))  # seconds, received -> emitted


class Viewer:
    """One browser tab: the stream it watches and its newest-wins slots."""

    def __init__(self, loop: asyncio.AbstractEventLoop, metrics: Metrics) -> None:
        self.loop = loop
        self.metrics = metrics
        self.watching: Optional[str] = None
        self.view: Optional[FrameMessage] = None  # the newest new frame not sent yet
        self.revisions: dict[int, FrameMessage] = {}  # frame index -> its newest revision not sent yet
        self.thumbs: dict[str, FrameMessage] = {}
        self.skipped = 0
        self.ready = asyncio.Event()

    def offer(self, msg: FrameMessage) -> None:
        """Event loop only."""
        if msg.kind == "thumb":
            self.thumbs[msg.stream_id] = msg
        elif msg.stream_id != self.watching:
            return
        elif msg.header["revised"]:
            self.revisions[msg.frame_index] = msg  # every revised frame reaches the filmstrip
        else:
            if self.view is not None:
                self.skipped += 1  # replaced before the browser took it
                self.metrics.console_frames_skipped.labels("view").inc()
            self.view = msg
        self.ready.set()

    def take(self) -> list[bytes]:
        """What to send now, encoded: thumbnails, revisions (oldest frame first), the newest frame."""
        return [m.encode(self.skipped) for m in self.take_messages()]

    def take_messages(self) -> list[FrameMessage]:
        msgs = list(self.thumbs.values()) + [self.revisions[k] for k in sorted(self.revisions)]
        if self.view is not None:
            msgs.append(self.view)
        self.thumbs.clear()
        self.revisions.clear()
        self.view = None
        self.ready.clear()
        for m in msgs:
            self.metrics.console_frames_sent.labels(m.kind).inc()
        return msgs


class ViewerHub:
    def __init__(self, settings: ConsoleSettings, ring: int, metrics: Metrics) -> None:
        self.settings = settings
        self.ring = ring  # frames a correction may land on: the JPEGs kept per stream
        self.metrics = metrics
        self.viewers: set[Viewer] = set()
        metrics.console_viewers.set_function(lambda: len(self.viewers))  # read at scrape time
        self._streams: dict[str, _StreamState] = {}
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._queue: deque[str] = deque()  # streams with a pending result, in arrival order
        self._watched: set[str] = set()
        self._stop = False
        self._thread = threading.Thread(target=self._encode_loop, name="vos-console-encode", daemon=True)
        self._thread.start()

    # ---- worker thread ---------------------------------------------------------------------

    def tap(self, session: StreamSession, output: FrameOutput, rgb: Optional[np.ndarray]) -> None:
        """StreamManager's FrameTap: O(1), never blocks on a viewer."""
        with self._lock:
            st = self._streams.setdefault(output.stream_id, _StreamState())
            if output.revised:
                st.revised.pop(output.frame_index, None)
                st.revised[output.frame_index] = output
            else:
                if output.received_at:
                    st.latencies.append(time.monotonic() - output.received_at)
                if st.pending is not None:
                    self.metrics.console_frames_skipped.labels("encode").inc()
                st.pending = (output, rgb)
            if not st.queued:
                st.queued = True
                self._queue.append(output.stream_id)
                self._work.notify()

    # ---- encoder thread ----------------------------------------------------------------

    def _encode_loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stop:
                    self._work.wait()
                if self._stop:
                    return
                sid = self._queue.popleft()
                st = self._streams.get(sid)
                if st is None:
                    continue
                st.queued = False
                work = [(o, None) for o in st.revised.values()] + ([st.pending] if st.pending else [])
                st.revised.clear()
                st.pending = None
                watched = sid in self._watched
            messages = []
            for output, rgb in work:
                try:
                    messages += self._encode(st, output, rgb, watched)
                except Exception:  # noqa: BLE001 - a bad frame never stops the console
                    log.exception("console: encoding a frame of %s failed", sid)
            with self._lock:
                viewers = list(self.viewers)
            for viewer in viewers:
                for m in messages:
                    viewer.loop.call_soon_threadsafe(viewer.offer, m)

    def _encode(self, st: _StreamState, out: FrameOutput, rgb: Optional[np.ndarray], watched: bool
                ) -> list[FrameMessage]:
        cfg = self.settings
        objects = [{"obj_id": o.obj_id, "rle": rle, "box": list(o.box) if o.box else None, "score": round(o.score, 3),
                    "visible": o.visible, "iou": round(o.iou, 3), "revision": o.revision, "prompted": o.prompted}
                   for o, rle in zip(out.result.objects, out.rles)]
        h, w = (rgb.shape[:2] if rgb is not None else
                (out.rles[0]["size"] if out.rles else (None, None)))
        header = {"type": "frame", "stream_id": out.stream_id, "frame_index": out.frame_index,
                  "capture_ts": out.capture_ts, "server_ts": time.time(), "revision": out.revision,
                  "revised": out.revised, "width": w, "height": h, "objects": objects}
        messages = []
        if watched or out.revised:
            if rgb is not None:
                jpeg, jw, jh = _jpeg(rgb, cfg.view_width, cfg.jpeg_quality)
                st.jpegs[out.frame_index] = (jpeg, jw, jh)
                while len(st.jpegs) > self.ring:
                    st.jpegs.popitem(last=False)
            jpeg, jw, jh = st.jpegs.get(out.frame_index, (b"", 0, 0))
            if h is None and jw:
                h, w = jh, jw
                header.update(width=w, height=h)
            messages.append(FrameMessage(out.stream_id, "view", out.frame_index,
                                         {**header, "jpeg_width": jw, "jpeg_height": jh}, jpeg))
        now = time.monotonic()
        if rgb is not None and now - st.last_thumb >= cfg.thumb_interval_s:
            st.last_thumb = now
            jpeg, jw, jh = _jpeg(rgb, cfg.thumb_width, cfg.jpeg_quality)
            messages.append(FrameMessage(out.stream_id, "thumb", out.frame_index,
                                         {**header, "jpeg_width": jw, "jpeg_height": jh}, jpeg))
        return messages

    # ---- event loop ----------------------------------------------------------------------

    def add(self, viewer: Viewer) -> None:
        with self._lock:
            self.viewers.add(viewer)

    def remove(self, viewer: Viewer) -> None:
        with self._lock:
            self.viewers.discard(viewer)
            self._watched = {v.watching for v in self.viewers if v.watching}

    def watch(self, viewer: Viewer, stream_id: Optional[str]) -> None:
        """Event loop: the viewer now watches stream_id; it first gets the frames still kept."""
        viewer.watching = stream_id
        viewer.view = None
        viewer.revisions.clear()
        with self._lock:
            self._watched = {v.watching for v in self.viewers if v.watching}

    def latency_p50_ms(self, stream_id: str) -> Optional[float]:
        with self._lock:
            st = self._streams.get(stream_id)
            lat = list(st.latencies) if st else []
        return round(float(np.median(lat)) * 1000, 1) if lat else None

    def forget(self, live_ids: set[str]) -> None:
        """Drop the state of streams that closed."""
        with self._lock:
            for sid in set(self._streams) - live_ids:
                del self._streams[sid]

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._work.notify_all()
        self._thread.join(timeout=5)


def _jpeg(rgb: np.ndarray, width: int, quality: int) -> tuple[bytes, int, int]:
    h, w = rgb.shape[:2]
    if w > width:
        h, w = max(1, round(h * width / w)), width
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes(), w, h
