"""The console's WebSocket over real HTTP with a real service: frames, prompts, roles, stalled viewers."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import numpy as np

from tests.api.harness import SMALL, SMALL_CLICK, read_until, run
from tests.console.harness import console_serving, parse_frame, send_text, stalled_websocket
from vos_service.api.auth import hash_token, new_token
from vos_service.client import Credentials, Result
from vos_service.io.rle import decode_mask

OP, VIEWER, CAM = new_token(), new_token(), new_token()
AUTH = {"auth.identities": [{"name": "op", "roles": ["operator"], "token_sha256": hash_token(OP)},
                            {"name": "viewer", "roles": ["viewer"], "token_sha256": hash_token(VIEWER)},
                            {"name": "cam", "roles": ["camera"], "token_sha256": hash_token(CAM)}]}


class Inbox:
    """Everything a console socket received, in order; wait for what a test needs, keep the rest."""

    def __init__(self, ws) -> None:
        self.ws, self.items, self._seen = ws, [], 0

    async def _more(self) -> None:
        msg = await asyncio.wait_for(self.ws.receive(), 60)
        assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
        self.items.append(json.loads(msg.data) if msg.type == aiohttp.WSMsgType.TEXT else parse_frame(msg.data))

    async def json(self, type_: str, where=lambda m: True) -> dict:
        """The next not yet taken JSON message of this type (and matching `where`)."""
        while True:
            for i in range(self._seen, len(self.items)):
                item = self.items[i]
                if isinstance(item, dict) and item["type"] == type_ and not item.get("_taken") and where(item):
                    item["_taken"] = True
                    return item
            await self._more()

    async def frame(self, kind: str = "view", **match) -> tuple[dict, bytes]:
        while True:
            for item in self.items:
                if isinstance(item, tuple) and item[0]["kind"] == kind and \
                        all(item[0].get(k) == v for k, v in match.items()):
                    return item
            await self._more()


def test_watch_prompt_on_the_shown_frame_and_roles():
    async def scenario():
        async with console_serving(credentials=Credentials(token=CAM), **AUTH) as (s, port):
            call = await s.client.open_stream("cam-1", 640, 360, mode="lossless")
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(f"http://127.0.0.1:{port}/ws?token={OP}") as op, \
                        http.ws_connect(f"http://127.0.0.1:{port}/ws?token={VIEWER}") as viewer:
                    op, viewer = Inbox(op), Inbox(viewer)
                    hello = await op.json("hello")
                    assert hello["may_prompt"] and hello["identity"] == "op" and hello["ring"] == 8
                    assert not (await viewer.json("hello"))["may_prompt"]
                    await op.ws.send_json({"type": "watch", "stream_id": "cam-1"})
                    await asyncio.sleep(0.1)
                    for i in range(6):
                        await call.send(i, SMALL[i])
                    await read_until(call, 6, Result)
                    head, jpeg = await op.frame(frame_index=5)
                    assert (head["width"], head["height"], head["jpeg_width"]) == (640, 360, 640)
                    assert jpeg[:3] == b"\xff\xd8\xff" and head["objects"] == []
                    rows = (await op.json("streams", where=lambda m: m["streams"]))["streams"]  # ~1/s
                    assert [r["stream_id"] for r in rows] == ["cam-1"] and rows[0]["width"] == 640

                    # a click on frame 3 (not the latest): the frame and the later ones are revised
                    click = {"type": "prompt", "request_id": 1, "stream_id": "cam-1", "obj_id": 1, "frame_index": 3,
                             "points": [[320, 180, 1]], "box": None, "clear_previous": True}
                    await op.ws.send_json(click)
                    res = await op.json("prompt_result")
                    assert res["ok"] and res["revised_frames"] == [3, 4, 5] and res["revision"] == 1
                    head, _ = await op.frame(frame_index=3, revised=True)
                    (obj,) = head["objects"]
                    assert obj["obj_id"] == 1 and head["revision"] == 1
                    mask = decode_mask(obj["rle"])
                    assert mask.shape == (360, 640) and mask.any()
                    assert "prompt on frame 3" in (await viewer.json("event"))["text"]

                    # refused: a viewer; a frame too old; bad input
                    await viewer.ws.send_json({**click, "request_id": 2})
                    assert (await viewer.json("prompt_result"))["code"] == "PERMISSION_DENIED"
                    for i in range(6, 16):
                        await call.send(i, SMALL[i % len(SMALL)])
                    await read_until(call, 10, Result)
                    await op.ws.send_json({**click, "request_id": 3})
                    old = await op.json("prompt_result")
                    assert old["code"] == "FAILED_PRECONDITION" and "too old" in old["error"]
                    await op.ws.send_json({**click, "request_id": 4, "frame_index": None, "points": [[1e9, 1, 1]]})
                    assert (await op.json("prompt_result"))["code"] == "INVALID_ARGUMENT"
                    await op.ws.send_str("not json")
                    assert (await op.json("error"))["type"] == "error"
                async with http.ws_connect(f"http://127.0.0.1:{port}/ws?token={CAM}") as cam:  # no viewer role
                    msg = await cam.receive()
                    assert json.loads(msg.data)["type"] == "error"
                    assert (await cam.receive()).type == aiohttp.WSMsgType.CLOSE and cam.close_code == 4403
                async with http.ws_connect(f"http://127.0.0.1:{port}/ws") as anon:  # no token
                    await anon.receive()
                    await anon.receive()
                    assert anon.close_code == 4401
            call.cancel()

    run(scenario())


def test_a_stalled_viewer_never_slows_the_stream():
    """A tab that stops reading: the lossless stream still gets every result, the tab skips frames."""
    async def scenario():
        async with console_serving() as (s, port):
            call = await s.client.open_stream("cam", 640, 360, mode="lossless")
            sock = await asyncio.to_thread(stalled_websocket, port)
            send_text(sock, json.dumps({"type": "watch", "stream_id": "cam"}))
            noise = [np.clip(f.astype(np.int16) + np.random.default_rng(i).integers(-40, 40, f.shape), 0, 255)
                     .astype(np.uint8) for i, f in enumerate(SMALL)]  # noisy frames: big JPEGs fill the socket
            n = 120
            for i in range(n):
                await call.send(i, noise[i % len(noise)])
            got = await read_until(call, n, Result)
            assert [e.frame_index for e in got if isinstance(e, Result)] == list(range(n))
            skipped = s.metric("vos_console_frames_skipped_total", kind="view")
            sent = s.metric("vos_console_frames_sent_total", kind="view")
            assert skipped > 0 and sent + skipped <= n + 1, (sent, skipped)
            sock.close()
            call.cancel()

    run(scenario())


def test_mjpeg_shows_the_stream_with_masks_drawn_in():
    """GET /mjpeg: a multipart JPEG stream of the live frames, each object tinted in its colour."""
    import cv2

    from vos_service.console.mjpeg import BOUNDARY, colour

    async def next_part(resp) -> tuple[int, np.ndarray]:
        head: dict[str, str] = {}
        while True:  # --frame, headers, a blank line, the JPEG
            line = (await asyncio.wait_for(resp.content.readline(), 60)).decode().strip()
            if ":" in line:
                k, v = line.split(":", 1)
                head[k.lower()] = v.strip()
            elif not line and "content-length" in head:
                jpeg = await resp.content.readexactly(int(head["content-length"]))
                return int(head["x-frame-index"]), cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)

    async def scenario():
        async with console_serving(credentials=Credentials(token=CAM), **AUTH) as (s, port):
            call = await s.client.open_stream("cam-1", 640, 360, mode="lossless")
            await call.send(0, SMALL[0])
            await read_until(call, 1, Result)
            url = f"http://127.0.0.1:{port}/mjpeg"
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{url}?stream=cam-1") as anon:
                    assert anon.status == 401
                async with http.get(f"{url}?stream=cam-1&token={CAM}") as cam:  # a camera is not a viewer
                    assert cam.status == 403
                async with http.get(f"{url}?stream=nope&token={VIEWER}") as missing:
                    assert missing.status == 404
                async with http.get(f"{url}?stream=cam-1&token={VIEWER}") as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
                    await call.send(1, SMALL[1], prompts=[(1, SMALL_CLICK)])
                    (res,) = [e for e in await read_until(call, 1, Result) if isinstance(e, Result)]
                    index, drawn = await next_part(resp)
                    while index < 1:
                        index, drawn = await next_part(resp)
            call.cancel()
            assert index == 1 and res.frame_index == 1
            mask = res.masklets[0].mask()
            assert mask.any() and drawn.shape == (360, 640, 3)
            plain = cv2.cvtColor(SMALL[1], cv2.COLOR_RGB2BGR).astype(float)
            r, g, b = colour(1)  # in BGR: the mask's pixels moved towards obj 1's colour, the rest stayed
            want = np.array([b, g, r], float)
            before = np.abs(plain[mask] - want).mean()
            after = np.abs(drawn[mask].astype(float) - want).mean()
            ring = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)  # outline + JPEG ringing
            outside = np.abs(drawn[~ring].astype(float) - plain[~ring]).mean()
            # (the frame went through three JPEG encodings: camera, hub, MJPEG; a few levels of noise)
            assert after < 0.8 * before and outside < 0.25 * (before - after), (before, after, outside)

    run(scenario())
