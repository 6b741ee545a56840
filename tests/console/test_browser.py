"""The console in a real headless Chromium (Debian's, driven by Playwright) against a real
`vos-service serve` with the shipped model, a real clip streamed over gRPC by a camera client.

Screenshots go to out/console/ (test artefacts, not committed).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading

import numpy as np
import pytest
import redis
from playwright.sync_api import sync_playwright

from tests.api.harness import SMALL
from tests.conftest import REPO
from tests.fuzz.server import ServerProcess
from vos_service.api.auth import hash_token, new_token
from vos_service.client import Credentials, Result, VosClient
from vos_service.io.rle import decode_mask
from vos_service.publish.schema import MaskletMessage, masklets_key

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
OP, VIEWER, CAM = new_token(), new_token(), new_token()
SHOTS = REPO / "out" / "console"
DOG = (300, 215)  # a click on the dog's back in the 640x360 frames 0-22 of 01_dog.mp4 (on it in all of them)
RED = (255, 0, 0)  # PALETTE[0]: object 1's outline colour
WAIT_MS = 60_000  # a hang detector, not a speed requirement


class Camera(threading.Thread):
    """A live camera over gRPC: the clip's frames at ~3 fps until stopped; keeps what comes back."""

    def __init__(self, target: str) -> None:
        super().__init__(daemon=True)
        self.target, self.results, self.stop = target, [], threading.Event()

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        async with VosClient(self.target, credentials=Credentials(token=CAM)) as c:
            call = await c.open_stream("cam-1", 640, 360)

            async def read() -> None:
                async for e in call:
                    if isinstance(e, Result):
                        self.results.append(e)

            reader = asyncio.create_task(read())
            i = 0
            while not self.stop.is_set():
                await call.send(i, SMALL[i % len(SMALL)])
                i += 1
                await asyncio.sleep(0.3)  # ~3 fps: the 8-frame ring spans ~2.4 s of clicking time
            call.cancel()
            await asyncio.gather(reader, return_exceptions=True)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tokens = tmp_path_factory.mktemp("console") / "tokens.json"
    tokens.write_text(json.dumps({"identities": [
        {"name": "op", "roles": ["operator"], "token_sha256": hash_token(OP)},
        {"name": "viewer", "roles": ["viewer"], "token_sha256": hash_token(VIEWER)},
        {"name": "cam", "roles": ["camera"], "token_sha256": hash_token(CAM)}]}))
    with ServerProcess(env={"VOS_AUTH__TOKENS_FILE": str(tokens)}, args=("--metrics-port", "0")) as srv:
        cam = Camera(srv.target)
        cam.start()
        yield srv, cam
        cam.stop.set()
        cam.join(30)


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def open_console(browser, service, token: str):
    srv, _ = service
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.sent = []  # every message the page sends on its WebSocket, as the server receives it
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: page.sent.append(payload)))
    page.goto(f"{srv.console_url}?token={token}")
    page.wait_for_function("window.vosConsole && window.vosConsole.connected", timeout=WAIT_MS)
    page.wait_for_selector('li[data-stream-id="cam-1"]', timeout=WAIT_MS)
    page.click('li[data-stream-id="cam-1"]')
    page.wait_for_function("window.vosConsole.framesDrawn > 3", timeout=WAIT_MS)
    return page


def click_source(page, x: float, y: float, shift: bool = False) -> None:
    """A mouse click on the canvas where the source pixel (x, y) is shown."""
    cx, cy = page.evaluate(f"window.vosConsole.sourceToCanvas({x}, {y})")
    box = page.locator("#view").bounding_box()
    if shift:
        page.keyboard.down("Shift")
    page.mouse.click(box["x"] + cx, box["y"] + cy)
    if shift:
        page.keyboard.up("Shift")


def colour_pixels(page, rgb, around=None, radius: int = 200) -> int:
    """Pixels of exactly this colour (+-8) on the view canvas, optionally within a square around a source point."""
    js = """([rgb, around, radius]) => {
        const c = document.getElementById('view'); const g = c.getContext('2d');
        let x0 = 0, y0 = 0, w = c.width, h = c.height;
        if (around) { const [cx, cy] = window.vosConsole.sourceToCanvas(around[0], around[1]);
                      x0 = Math.max(0, Math.round(cx - radius)); y0 = Math.max(0, Math.round(cy - radius));
                      w = Math.min(c.width - x0, 2 * radius); h = Math.min(c.height - y0, 2 * radius); }
        const d = g.getImageData(x0, y0, w, h).data; let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (Math.abs(d[i] - rgb[0]) <= 8 && Math.abs(d[i + 1] - rgb[1]) <= 8
                && Math.abs(d[i + 2] - rgb[2]) <= 8) n++;
        return n; }"""
    return page.evaluate(js, [list(rgb), list(around) if around else None, radius])


def wait_prompt(page, previous_count: int) -> dict:
    page.wait_for_function(f"window.vosConsole.promptResults.length > {previous_count}", timeout=WAIT_MS)
    return page.evaluate("window.vosConsole.lastPromptResult")


def redis_entries(srv, frame_index=None) -> list[MaskletMessage]:
    r = redis.Redis.from_url(srv.redis_url)
    out = [MaskletMessage.from_fields(f) for _, f in r.xrange(masklets_key("cam-1"))]
    r.close()
    return [m for m in out if frame_index is None or m.frame_index == frame_index]


def test_operator_watches_clicks_corrects_and_corrects_an_earlier_frame(browser, service):
    srv, cam = service
    page = open_console(browser, service, OP)
    first = page.evaluate("window.vosConsole.framesDrawn")
    before = page.evaluate("document.getElementById('view').toDataURL()")
    page.wait_for_function(f"window.vosConsole.framesDrawn > {first + 3}", timeout=WAIT_MS)
    assert page.evaluate("document.getElementById('view').toDataURL()") != before  # frames arrive
    assert colour_pixels(page, RED) == 0  # no object yet
    page.screenshot(path=str(SHOTS / "1-watching.png"))

    # paused on a frame, a click on the dog: object 1, drawn around the click, in Redis and on the camera's stream
    page.click("#pause")
    page.wait_for_function("window.vosConsole.paused", timeout=WAIT_MS)
    frame = page.evaluate("window.vosConsole.shown.frame_index")
    click_source(page, *DOG)
    res = wait_prompt(page, 0)
    assert res["ok"] and res["obj_id"] == 1 and res["frame_index"] == frame, res
    page.wait_for_function("window.vosConsole.rtts.length > 0", timeout=WAIT_MS)
    for _ in range(100):  # the revised frame replaces the shown one; bounded by count
        if colour_pixels(page, RED, around=DOG) > 20:
            break
        page.wait_for_timeout(100)
    assert colour_pixels(page, RED, around=DOG) > 20
    page.screenshot(path=str(SHOTS / "2-clicked.png"))
    positive = next(m for m in redis_entries(srv, frame) if m.revision == res["revision"])
    assert any(o.obj_id == 1 for o in positive.objects)
    for _ in range(100):  # the camera's own gRPC stream gets the object too
        if any(1 in r.by_id() for r in cam.results):
            break
        page.wait_for_timeout(100)
    assert any(1 in r.by_id() for r in cam.results)

    # a negative click on the same frame, inside the mask far from the positive one: the page sends both points
    # of that frame (positive first, then the negative one where it was clicked) and the frame is re-published
    # with a new mask. That the mask shrinks is NOT asserted: with the shipped nano model it does not reliably
    # on a frame already tracked over (engine driven directly, nano v3: 5 of 6 grew; v7: 2 of 6 grew; re-sending
    # the positive click alone grows it more): a model problem, issue 14 (README, known limits).
    mask = decode_mask(next(o for o in positive.objects if o.obj_id == 1).rle)
    ys, xs = np.nonzero(mask)
    far = int(np.argmax((xs - DOG[0]) ** 2 + (ys - DOG[1]) ** 2))
    click_source(page, float(xs[far]), float(ys[far]), shift=True)
    res = wait_prompt(page, 1)
    assert res["ok"] and res["frame_index"] == frame and res["revision"] > positive.revision, res
    negative = next(m for m in redis_entries(srv, frame) if m.revision == res["revision"])
    after = decode_mask(next(o for o in negative.objects if o.obj_id == 1).rle)
    assert (after != mask).any()
    prompts = [json.loads(m) for m in page.sent if isinstance(m, str) and '"prompt"' in m]
    (px, py, pl), (nx, ny, nl) = prompts[-1]["points"]
    assert prompts[-1]["frame_index"] == frame and prompts[-1]["obj_id"] == 1 and (pl, nl) == (1, 0)
    assert abs(px - DOG[0]) <= 2 and abs(py - DOG[1]) <= 2 and abs(nx - xs[far]) <= 2 and abs(ny - ys[far]) <= 2

    # still paused: step back three frames in the filmstrip and click a new object there
    oldest = page.evaluate("[...document.querySelectorAll('#filmstrip img')].map(i => +i.dataset.frameIndex)"
                           ".sort((a, b) => b - a)[3]")
    page.click(f'#filmstrip img[data-frame-index="{oldest}"]')
    page.wait_for_function(f"window.vosConsole.shown.frame_index === {oldest}", timeout=WAIT_MS)
    old_rev = max(m.revision for m in redis_entries(srv, oldest))
    page.click("#new-object")
    click_source(page, 100, 300)
    res = wait_prompt(page, 2)
    assert res["ok"] and res["frame_index"] == oldest and len(res["revised_frames"]) > 1, res.get("error", res)
    assert res["revision"] > old_rev
    revised = {m.frame_index: m.revision for m in redis_entries(srv) if m.frame_index in res["revised_frames"]}
    assert set(revised) == set(res["revised_frames"]) and revised[oldest] == res["revision"]
    page.wait_for_function(f"""() => [...document.querySelectorAll('#log li')].some(li =>
        li.textContent.includes('frame {oldest}'))""", timeout=WAIT_MS)
    page.screenshot(path=str(SHOTS / "3-corrected-earlier-frame.png"))
    assert any(r.revised and r.frame_index == oldest for r in cam.results)  # the camera's stream got it too
    page.close()


def test_a_viewer_sees_but_cannot_prompt(browser, service):
    page = open_console(browser, service, VIEWER)
    assert page.evaluate("window.vosConsole.hello.may_prompt") is False
    assert "view only" in page.inner_text("#notice")
    n = page.evaluate("window.vosConsole.promptResults.length")
    click_source(page, *DOG)
    page.wait_for_timeout(500)
    assert page.evaluate("window.vosConsole.promptResults.length") == n  # the tools are off: nothing sent
    page.close()


def test_a_clear_refusal_for_a_frame_that_left_the_ring(browser, service):
    """The page sends the frame it shows; paused long enough, that frame is too old: said plainly."""
    page = open_console(browser, service, OP)
    page.click("#pause")
    page.wait_for_function("window.vosConsole.paused", timeout=WAIT_MS)
    shown = page.evaluate("window.vosConsole.shown.frame_index")
    page.wait_for_function(f"window.vosConsole.streams[0].last_frame_index > {shown} + 10", timeout=WAIT_MS)
    n = page.evaluate("window.vosConsole.promptResults.length")
    click_source(page, *DOG)
    res = wait_prompt(page, n)
    assert not res["ok"] and res["code"] == "FAILED_PRECONDITION" and "too old" in res["error"]
    assert "too old" in page.inner_text("#log")
    page.close()
