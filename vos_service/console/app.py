"""The console's HTTP side (aiohttp, on the service's own event loop): the page, its files, /ws.

    GET /            the page (static/index.html)
    GET /static/...  its script and style
    GET /ws          one WebSocket per browser tab (PROTOCOL.md)
    GET /mjpeg?stream=ID   view-only MJPEG with the masks drawn in, for embedding (mjpeg.py)

Auth: the same identities as gRPC (api/auth.py); a browser cannot set headers on a
WebSocket, so the token comes as `?token=`. Viewing needs the viewer role (or operator or
admin), clicking the operator role; with auth off (loopback) everyone may do both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any, Optional

from aiohttp import WSMsgType, web

from ..api.auth import Authenticator, Identity, Permission, PermissionDeniedError, UnauthenticatedError
from ..config import Settings
from ..metrics import Metrics
from ..runtime.manager import StreamManager
from . import mjpeg
from .commands import apply_prompt, apply_remove
from .hub import Viewer, ViewerHub

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
_STATS_EVERY_S = 1.0


class _Tab:
    """One connected browser tab: its identity, its frame slots, and small JSON messages to send."""

    def __init__(self, ws: web.WebSocketResponse, identity: Identity, viewer: Viewer) -> None:
        self.ws, self.identity, self.viewer = ws, identity, viewer
        self.outbox: deque[str] = deque(maxlen=200)  # a stalled tab loses the oldest log lines, nothing else

    def send_json(self, msg: dict) -> None:
        self.outbox.append(json.dumps(msg, separators=(",", ":")))
        self.viewer.ready.set()

    async def pump(self) -> None:
        """The tab's only writer: JSON first, then whatever frames are newest."""
        while not self.ws.closed:
            await self.viewer.ready.wait()
            frames = self.viewer.take()
            while self.outbox:
                await self.ws.send_str(self.outbox.popleft())
            for data in frames:
                await self.ws.send_bytes(data)


class ConsoleServer:
    def __init__(self, manager: StreamManager, settings: Settings, metrics: Metrics,
                 auth: Optional[Authenticator] = None) -> None:
        self.manager, self.settings, self.metrics = manager, settings, metrics
        # The service passes the gRPC servicer's: one reading of the token file admits the same callers at both doors.
        self.auth = auth or Authenticator.from_settings(settings.auth)
        self.hub = ViewerHub(settings.console, settings.streams.feature_ring, metrics)
        manager.add_tap(self.hub.tap)
        self.tabs: set[_Tab] = set()
        self._embedded = 0  # open /mjpeg responses
        self._runner: Optional[web.AppRunner] = None
        self._stats: Optional[asyncio.Task] = None
        self._received: dict[str, tuple[float, int, Optional[float]]] = {}  # stream -> (when, received, fps_in)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/mjpeg", self._mjpeg)
        app.router.add_static("/static/", STATIC, show_index=False)
        return app

    async def start(self) -> int:
        """Serve on console.host:console.port; returns the bound port."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.console.host, self.settings.console.port)
        await site.start()
        self._stats = asyncio.create_task(self._broadcast_stats(), name="vos-console-stats")
        return self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._stats is not None:
            self._stats.cancel()
        for tab in list(self.tabs):
            await tab.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.hub.close()

    # ---- HTTP --------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=64 * 1024)  # browsers send small JSON only
        await ws.prepare(request)
        try:
            identity = self._identify(request)
            self.auth.authorize(identity, Permission.READ)
        except (UnauthenticatedError, PermissionDeniedError) as e:
            await ws.send_json({"type": "error", "text": str(e)})
            await ws.close(code=4401 if isinstance(e, UnauthenticatedError) else 4403, message=str(e)[:120].encode())
            return ws
        if len(self.tabs) >= self.settings.console.max_viewers:
            await ws.close(code=1013, message=b"too many console viewers")
            return ws
        tab = _Tab(ws, identity, Viewer(asyncio.get_running_loop(), self.metrics))
        self.tabs.add(tab)
        self.hub.add(tab.viewer)
        tab.send_json({"type": "hello", "identity": identity.name, "roles": sorted(r.value for r in identity.roles),
                       "may_prompt": identity.may(Permission.PROMPT), "auth": self.auth.enabled,
                       "ring": self.settings.streams.feature_ring, "max_points": self.settings.streams.max_points})
        tab.send_json(self._streams_message())
        pump = asyncio.create_task(tab.pump(), name="vos-console-pump")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_message(tab, msg.data)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            pump.cancel()
            self.tabs.discard(tab)
            self.hub.remove(tab.viewer)
        return ws

    async def _mjpeg(self, request: web.Request) -> web.StreamResponse:
        try:
            self.auth.authorize(self._identify(request), Permission.READ)
        except UnauthenticatedError as e:
            raise web.HTTPUnauthorized(text=str(e)) from e
        except PermissionDeniedError as e:
            raise web.HTTPForbidden(text=str(e)) from e
        sid = request.query.get("stream", "")
        if sid not in self._live_ids():
            raise web.HTTPNotFound(text=f"no open stream {sid!r}")
        if len(self.tabs) + self._embedded >= self.settings.console.max_viewers:
            raise web.HTTPServiceUnavailable(text="too many console viewers")
        resp = web.StreamResponse(headers={"Content-Type": f"multipart/x-mixed-replace; boundary={mjpeg.BOUNDARY}",
                                           "Cache-Control": "no-store"})
        await resp.prepare(request)
        viewer = Viewer(asyncio.get_running_loop(), self.metrics)
        self.hub.add(viewer)
        self.hub.watch(viewer, sid)
        self._embedded += 1
        quality = self.settings.console.jpeg_quality
        try:
            async for msg in mjpeg.newest_views(viewer, lambda: sid in self._live_ids()):
                jpeg = await asyncio.to_thread(mjpeg.draw_overlay, msg, quality)  # off the event loop
                # waits for a slow client; meanwhile the viewer's slot keeps only the newest frame
                await resp.write(mjpeg.part(jpeg, msg.frame_index))
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the client went away
        finally:
            self._embedded -= 1
            self.hub.remove(viewer)
        return resp

    def _live_ids(self) -> set[str]:
        return {s.stream_id for s in self.manager.snapshot()}

    def _identify(self, request: web.Request) -> Identity:
        token = request.query.get("token")
        return self.auth.identify([("authorization", f"Bearer {token}")] if token else [])

    # ---- messages from a tab --------------------------------------------------------------

    async def _on_message(self, tab: _Tab, text: str) -> None:
        try:
            msg = json.loads(text)
            kind = msg.get("type") if isinstance(msg, dict) else None
        except ValueError:
            kind = None
        if kind == "watch":
            sid = msg.get("stream_id")
            self.hub.watch(tab.viewer, sid if isinstance(sid, str) else None)
        elif kind in ("prompt", "remove"):
            # Not awaited here: a correction takes an engine step or more, and the tab's other
            # messages (watch, rtt) must not wait behind it.
            asyncio.create_task(self._control(tab, msg))
        elif kind == "rtt" and isinstance(msg.get("ms"), (int, float)) and 0 <= msg["ms"] < 600_000:
            self.metrics.console_prompt_rtt.observe(msg["ms"] / 1000)
        else:
            tab.send_json({"type": "error", "text": f"unknown message {text[:80]!r}"})

    async def _control(self, tab: _Tab, msg: dict) -> None:
        reply: dict[str, Any]
        if not tab.identity.may(Permission.PROMPT):
            reply = {"type": "prompt_result" if msg["type"] == "prompt" else "removed",
                     "request_id": msg.get("request_id"), "stream_id": msg.get("stream_id"), "ok": False,
                     "code": "PERMISSION_DENIED", "error": f"{tab.identity.name!r} has no operator role: view only"}
        elif msg["type"] == "prompt":
            reply = await apply_prompt(self.manager, msg, self.settings.streams.max_points)
        else:
            reply = await apply_remove(self.manager, msg)
        tab.send_json(reply)
        if reply["ok"]:
            what = (f"object {reply['obj_id']}: prompt on frame {reply['frame_index']} by {tab.identity.name}, "
                    f"{len(reply['revised_frames'])} frame(s) revised" if reply["type"] == "prompt_result"
                    else f"object {reply['obj_id']} removed by {tab.identity.name}")
            self._event(reply["stream_id"], what)

    def _event(self, stream_id: str, text: str) -> None:
        for t in list(self.tabs):
            t.send_json({"type": "event", "stream_id": stream_id, "text": text})

    # ---- overview -------------------------------------------------------------------------

    def _streams_message(self) -> dict:
        now = time.monotonic()
        rows: list[dict[str, Any]] = []
        for s in self.manager.snapshot():
            info = s.info()
            t0, n0, fps_in = self._received.get(s.stream_id, (now, info.received, None))
            if now - t0 >= 0.5:  # frames taken per second since the last sample
                fps_in = (info.received - n0) / (now - t0)
                self._received[s.stream_id] = (now, info.received, fps_in)
            elif s.stream_id not in self._received:
                self._received[s.stream_id] = (now, info.received, None)
            rows.append({"stream_id": s.stream_id, "mode": info.mode.value, "width": info.width,
                         "height": info.height, "objects": list(info.objects),
                         "fps_in": None if fps_in is None else round(fps_in, 1), "fps_out": info.fps,
                         "latency_p50_ms": self.hub.latency_p50_ms(s.stream_id), "dropped": info.dropped,
                         "queue_depth": info.queue_depth, "last_frame_index": info.last_frame_index,
                         "last_error": s.last_drop})
        live = {r["stream_id"] for r in rows}
        for sid in set(self._received) - live:
            del self._received[sid]
        self.hub.forget(live)
        return {"type": "streams", "server_ts": time.time(), "streams": rows}

    async def _broadcast_stats(self) -> None:
        while True:
            await asyncio.sleep(_STATS_EVERY_S)
            if self.tabs:
                msg = self._streams_message()
                for t in list(self.tabs):
                    t.send_json(msg)
