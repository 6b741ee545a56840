// Operator console: one WebSocket (PROTOCOL.md), an overview of streams, the watched stream's
// frames with masks, clicks -> prompts on the frame SHOWN, pause + filmstrip, a log.
// Server data reaches the DOM only through textContent: stream ids and errors come from
// cameras and clients, not from us.

import { drawFrame, drawOverlay, fitCanvases, fmt, make, renderFilmstrip, renderObjects as renderObjectList,
  renderStreams, setText, setThumb } from "./draw.js";

const $ = (id) => document.getElementById(id);
const el = {
  status: $("status"), identity: $("identity"), notice: $("notice"), streams: $("streams"),
  pause: $("pause"), neg: $("mode-neg"), newObj: $("new-object"), info: $("frame-info"),
  view: $("view"), overlay: $("overlay"), placeholder: $("placeholder"), film: $("filmstrip"),
  objects: $("objects"), log: $("log"),
};
const vctx = el.view.getContext("2d", { willReadFrequently: true }); // masks read pixels back every frame
const octx = el.overlay.getContext("2d");
const LOG_KEEP = 100, DRAG_PX = 5, RTT_GIVE_UP_MS = 60000;

// What tests (and operators, in devtools) may read. Kept current, never replaced.
const state = (window.vosConsole = {
  connected: false, hello: null, streams: [], watched: null, shown: null, paused: false,
  selected: null, framesDrawn: 0, lastPromptResult: null, promptResults: [], rtts: [], log: [],
  negative: false, hidden: [], drawMs: 0, canvasToSource, sourceToCanvas,
});

let ws = null, backoffMs = 500, reqId = 0;
let ring = new Map(); // frame_index -> {header, blob, url, bitmap}: the watched stream's last `ring` frames
let newest = null, shown = null, pending = null; // pending: the one frame waiting to be drawn (newest wins)
let pausedAt = null; // while paused, the frame_index the canvas holds (its revisions still replace it)
let drawing = false, rafQueued = false, newObjectNext = false, drag = null, boxes = {}, lastMaskError = "";
const hidden = new Set(), removedAt = new Map(); // obj_id -> performance.now() of our remove
const clicks = new Map(); // obj_id -> {byFrame: Map(frame_index -> [click]), order: [frame_index, ...]}
const prompts = new Map(); // request_id -> {t0, obj_id, frame_index, revBefore, result, revert}
const removals = new Map(); // request_id -> obj_id (a refused remove need not name it)
const thumbs = new Map(); // stream_id -> object URL of its newest thumbnail

function log(text, bad = false) {
  state.log.unshift(text);
  state.log.length = Math.min(state.log.length, LOG_KEEP);
  el.log.prepend(make("li", { className: bad ? "bad" : "" }, make("time", { textContent: new Date().toLocaleTimeString() }), text));
  while (el.log.children.length > LOG_KEEP) el.log.lastChild.remove();
}

function setStatus(text, ok) { el.status.textContent = text; el.status.className = ok ? "ok" : "bad"; }
const mayPrompt = () => !!(state.hello && state.hello.may_prompt);

function applyRole() {
  const may = mayPrompt();
  el.neg.disabled = el.newObj.disabled = !may;
  el.view.classList.toggle("readonly", !may);
  el.notice.hidden = may || !state.hello;
  el.notice.textContent = "view only (no operator role)";
  renderObjects();
}

// ---- connection -----------------------------------------------------------------------------
function token() {
  const t = new URLSearchParams(location.search).get("token");
  try {
    if (t) sessionStorage.setItem("vosToken", t); // a reload without the query keeps working
    return t || sessionStorage.getItem("vosToken");
  } catch { return t; } // storage may be disabled; the URL token still works
}

// ?stream=ID: the stream this page is for. Behind the fleet's proxy (deploy/haproxy) the page and
// its WebSocket carry it so both reach the replica that holds the stream; the page watches it.
const pageStream = new URLSearchParams(location.search).get("stream");

function connect() {
  const t = token();
  const query = new URLSearchParams();
  if (t) query.set("token", t);
  if (pageStream) query.set("stream", pageStream);
  const qs = query.toString();
  ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws${qs ? "?" + qs : ""}`);
  ws.binaryType = "arraybuffer";
  setStatus("connecting…", false);
  ws.onopen = () => { state.connected = true; setStatus("connected", true); };
  ws.onmessage = (ev) => (typeof ev.data === "string" ? onText(ev.data) : onFrame(ev.data));
  ws.onclose = (ev) => {
    state.connected = false;
    prompts.clear(); // their results will never come
    const wait = backoffMs;
    backoffMs = Math.min(backoffMs * 2, 10000);
    setStatus(`disconnected (${ev.code}${ev.reason ? " " + ev.reason : ""}); retrying in ${(wait / 1000).toFixed(1)} s`, false);
    setTimeout(connect, wait);
  };
}

function send(msg) {
  if (!ws || ws.readyState !== WebSocket.OPEN) { log(`not connected: ${msg.type} not sent`, true); return false; }
  ws.send(JSON.stringify(msg));
  return true;
}

// ---- server -> browser: text ----------------------------------------------------------------
function onText(text) {
  let m;
  try { m = JSON.parse(text); } catch { log("server sent a non-JSON text message", true); return; }
  if (m.type === "hello") {
    state.hello = m;
    backoffMs = 500; // a real session: the next outage starts the backoff afresh
    el.identity.textContent = `${m.identity ?? "anonymous"} (${(m.roles || []).join(", ") || "no roles"})`;
    applyRole();
    log(`connected as ${m.identity ?? "anonymous"}`);
    if (state.watched) send({ type: "watch", stream_id: state.watched }); // resume after a reconnect
  } else if (m.type === "streams") onStreams(m.streams || []);
  else if (m.type === "prompt_result") onPromptResult(m);
  else if (m.type === "removed") {
    const obj = m.obj_id ?? removals.get(m.request_id);
    removals.delete(m.request_id);
    if (m.ok) log(`object ${obj} removed`);
    else { removedAt.delete(obj); log(`remove of object ${obj} refused: ${m.error ?? "no reason given"}`, true); }
    redraw();
  } else if (m.type === "event") log(m.stream_id ? `[${m.stream_id}] ${m.text}` : String(m.text));
  else if (m.type === "error") log(`server: ${m.text}`, true);
  // anything else: a newer server saying more than we know; ignore it
}

function onPromptResult(m) {
  state.lastPromptResult = m;
  state.promptResults.push(m); // every result, oldest first (tests wait for its length to grow)
  if (state.promptResults.length > 1000) state.promptResults.shift();
  const p = prompts.get(m.request_id);
  if (m.ok) {
    if (p) p.result = m;
    const rf = m.revised_frames || [];
    log(`correction applied on frame ${m.frame_index}: object ${m.obj_id}, revision ${m.revision}` +
      (rf.length ? `; ${rf.length} frames revised (${rf[0]}–${rf[rf.length - 1]})` : ""));
  } else {
    prompts.delete(m.request_id);
    if (p && p.revert) p.revert(); // the server did not take the click: forget it, so undo stays in step
    log(`prompt refused: ${m.code}: ${m.error}`, true);
    paintOverlay();
    renderObjects();
  }
}

function onStreams(rows) {
  state.streams = rows;
  const ids = rows.map((r) => r.stream_id);
  if (pageStream && !state.watched && !state.pageStreamWatched && ids.includes(pageStream)) {
    state.pageStreamWatched = true; // once: the operator may pick another stream afterwards
    watch(pageStream);
  }
  for (const id of [...thumbs.keys()]) if (!ids.includes(id)) { URL.revokeObjectURL(thumbs.get(id)); thumbs.delete(id); }
  renderStreams(el.streams, rows, state.watched, thumbs);
  // Someone may have re-created an id we removed: believe the server once our remove settled.
  const row = rows.find((r) => r.stream_id === state.watched);
  for (const [id, t] of removedAt) if (row && performance.now() - t > 2000 && (row.objects || []).includes(id)) removedAt.delete(id);
  if (state.watched && !ids.includes(state.watched)) { log(`stream ${state.watched} closed`); watch(null); }
  renderObjects();
}

// ---- server -> browser: frames --------------------------------------------------------------
function onFrame(buf) {
  let hd, jpeg = null;
  try {
    const n = new DataView(buf).getUint32(0); // big-endian header length
    hd = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
    if (buf.byteLength > 4 + n) jpeg = new Blob([new Uint8Array(buf, 4 + n)], { type: "image/jpeg" });
  } catch (e) { log(`bad frame message: ${e.message}`, true); return; }
  if (hd.kind === "thumb") {
    if (!jpeg) return;
    if (thumbs.has(hd.stream_id)) URL.revokeObjectURL(thumbs.get(hd.stream_id));
    thumbs.set(hd.stream_id, URL.createObjectURL(jpeg));
    setThumb(el.streams, hd.stream_id, thumbs.get(hd.stream_id));
    return;
  }
  if (hd.kind !== "view" || hd.stream_id !== state.watched) return; // e.g. late frames of the previous stream
  const idx = hd.frame_index;
  const old = ring.get(idx) || (shown && shown.header.frame_index === idx ? shown : null);
  if (old && old.header.revision > hd.revision) return; // overtaken by a newer revision
  if (!jpeg && !old) return; // a revision without its picture, of a frame we no longer hold
  const entry = { header: hd, blob: jpeg || old.blob, url: jpeg ? URL.createObjectURL(jpeg) : old.url, bitmap: jpeg ? null : old.bitmap };
  if (ring.has(idx) && ring.get(idx).url !== entry.url) URL.revokeObjectURL(ring.get(idx).url);
  ring.set(idx, entry);
  while (ring.size > Math.max(1, (state.hello && state.hello.ring) || 8)) {
    const oldest = Math.min(...ring.keys());
    URL.revokeObjectURL(ring.get(oldest).url); // only the filmstrip uses URLs; the canvas draws the blob
    ring.delete(oldest);
  }
  if (hd.revised) log(`frame ${idx} revised (revision ${hd.revision})`);
  if (!newest || idx >= newest.header.frame_index) newest = entry;
  // Live: the canvas follows the newest frame. Paused: only revisions of the frame held replace it.
  const t = (pending || shown) && (pending || shown).header;
  if (state.paused) { if (pausedAt === null || idx === pausedAt) { pausedAt = idx; show(entry); } }
  else if (!t || idx > t.frame_index || (idx === t.frame_index && hd.revision >= t.revision)) show(entry);
  schedule();
}

function show(entry) { pending = entry; schedule(); }
function schedule() { if (!rafQueued) { rafQueued = true; requestAnimationFrame(tick); } }
function redraw() { if (shown && !pending) show(shown); renderObjects(); }

// At most one decode+draw in flight, of the latest frame only: a slow browser skips frames, never queues them.
async function tick() {
  rafQueued = false;
  syncFilmstrip();
  if (!pending || drawing) return;
  const entry = pending;
  pending = null;
  drawing = true;
  try {
    if (!entry.bitmap && entry.blob) entry.bitmap = await createImageBitmap(entry.blob);
  } catch { log(`frame ${entry.header.frame_index}: undecodable JPEG`, true); }
  drawing = false;
  // Paint it even if a newer one came meanwhile (that one gets the next animation frame):
  // skipping here would starve the canvas whenever frames arrive faster than they decode.
  if (entry.header.stream_id === state.watched && !(state.paused && entry.header.frame_index !== pausedAt)) paint(entry);
  if (pending) schedule();
}

function paint(entry) {
  const hd = entry.header, t0 = performance.now();
  fitCanvas(hd.width, hd.height);
  const errors = [];
  boxes = drawFrame(vctx, entry.bitmap, hd.objects, (id) => hidden.has(id) || removedAt.has(id), errors);
  if (errors.length && errors.join() !== lastMaskError) log(errors.join("; "), true);
  lastMaskError = errors.join();
  shown = entry;
  state.shown = {
    stream_id: hd.stream_id, frame_index: hd.frame_index, revision: hd.revision, width: hd.width, height: hd.height,
    objects: (hd.objects || []).map((o) => o.obj_id).filter((id) => !removedAt.has(id)),
  };
  state.framesDrawn++;
  el.placeholder.hidden = true;
  setText(el.info, `${hd.stream_id} · frame ${hd.frame_index} · rev ${hd.revision} · skipped ${hd.skipped ?? 0}${state.paused ? " · PAUSED" : ""}`);
  paintOverlay();
  renderObjects();
  syncFilmstrip();
  checkRtt(hd);
  state.drawMs = Math.round((performance.now() - t0) * 10) / 10; // the cost of one frame, for a slow machine's operator
}

// A prompt's effect is on screen once a drawn frame shows it: the corrected frame at the result's
// revision, the object at a newer revision than at the click (or newly there), or a frame tracked
// after every frame the correction revised.
function checkRtt(hd) {
  const now = performance.now();
  for (const [rid, p] of prompts) {
    const r = p.result, o = (hd.objects || []).find((x) => x.obj_id === p.obj_id);
    const rf = (r && r.revised_frames) || [];
    const byFrame = r && (hd.frame_index === r.frame_index || rf.includes(hd.frame_index)) && hd.revision >= r.revision;
    const after = r && o && hd.frame_index > Math.max(r.frame_index, ...rf);
    if (byFrame || after || (o && o.revision > p.revBefore)) {
      const ms = Math.round((now - p.t0) * 10) / 10;
      state.rtts.push(ms);
      send({ type: "rtt", ms });
      prompts.delete(rid);
    } else if (now - p.t0 > RTT_GIVE_UP_MS) prompts.delete(rid);
  }
}

// ---- geometry: canvas CSS pixels <-> SOURCE pixels ------------------------------------------
function sourceSize() {
  if (shown) return [shown.header.width, shown.header.height];
  const row = state.streams.find((r) => r.stream_id === state.watched);
  return row ? [row.width, row.height] : [0, 0];
}
const pair = (x, y) => Object.assign([x, y], { x, y }); // [x, y] (what Python sees) with .x/.y for JS
function canvasToSource(x, y) {
  const [w, h] = sourceSize();
  return w ? pair((x * w) / el.view.width, (y * h) / el.view.height) : null;
}
function sourceToCanvas(x, y) {
  const [w, h] = sourceSize();
  return w ? pair((x * el.view.width) / w, (y * el.view.height) / h) : null;
}

// Canvas fits the centre column, at the source's aspect; the filmstrip stays on screen below it.
const fitCanvas = (w, h) => fitCanvases([el.view, el.overlay], el.view.parentElement, w, h, el.film.offsetHeight + 24);
addEventListener("resize", () => { if (fitCanvas(...sourceSize())) redraw(); });

// ---- overlay, objects list, filmstrip -------------------------------------------------------
function paintOverlay() {
  const labels = [], marks = [], hd = shown && shown.header;
  const box = (b) => [...sourceToCanvas(b[0], b[1]), ...sourceToCanvas(b[2], b[3])];
  for (const o of (hd && hd.objects) || []) {
    const b = o.box ? box(o.box) : boxes[o.obj_id];
    if (b && !hidden.has(o.obj_id) && !removedAt.has(o.obj_id)) {
      labels.push({ objId: o.obj_id, box: b, text: `#${o.obj_id} ${fmt(o.score, 2)}${o.visible === false ? " not visible" : ""} r${o.revision}` });
    }
  }
  for (const [obj, rec] of hd ? clicks : []) {
    if (hidden.has(obj)) continue;
    for (const c of rec.byFrame.get(hd.frame_index) || []) {
      if (c.box) marks.push({ objId: obj, box: box(c.box) });
      else { const [x, y] = sourceToCanvas(c.x, c.y); marks.push({ objId: obj, x, y, label: c.label }); }
    }
  }
  const d = drag && drag.moved ? [Math.min(drag.x0, drag.x1), Math.min(drag.y0, drag.y1), Math.max(drag.x0, drag.x1), Math.max(drag.y0, drag.y1)] : null;
  drawOverlay(octx, { labels, clicks: marks, drag: d });
}

// Every object id we know on the watched stream: the server's list, the frames', our own clicks.
function knownObjects(withRemoved = false) {
  const ids = new Set(clicks.keys());
  const row = state.streams.find((r) => r.stream_id === state.watched);
  for (const id of (row && row.objects) || []) ids.add(id);
  for (const e of [newest, shown]) for (const o of (e && e.header.objects) || []) ids.add(o.obj_id);
  for (const id of removedAt.keys()) withRemoved ? ids.add(id) : ids.delete(id);
  return [...ids].sort((a, b) => a - b);
}

function renderObjects() {
  state.hidden = [...hidden];
  const ids = state.watched ? knownObjects() : [];
  const find = (e, id) => e && (e.header.objects || []).find((o) => o.obj_id === id);
  renderObjectList(el.objects, ids.map((id) => ({ id, o: find(shown, id) || find(newest, id), selected: state.selected === id, hidden: hidden.has(id) })), mayPrompt());
}

function syncFilmstrip() {
  const keys = [...ring.keys()].sort((a, b) => a - b);
  renderFilmstrip(el.film, keys.map((idx) => ({ idx, url: ring.get(idx).url, revision: ring.get(idx).header.revision })), shown && shown.header.frame_index);
}

// ---- operator actions -----------------------------------------------------------------------
function watch(id) {
  for (const e of ring.values()) URL.revokeObjectURL(e.url);
  ring = new Map();
  newest = shown = pending = null;
  Object.assign(state, { watched: id, shown: null, selected: null });
  newObjectNext = false;
  el.newObj.setAttribute("aria-pressed", "false");
  for (const m of [hidden, removedAt, prompts, clicks]) m.clear(); // clicks on frames we will never see again
  setPaused(false);
  send({ type: "watch", stream_id: id });
  for (const li of el.streams.children) li.classList.toggle("watched", li.dataset.streamId === id);
  fitCanvas(...sourceSize());
  vctx.clearRect(0, 0, el.view.width, el.view.height);
  octx.clearRect(0, 0, el.overlay.width, el.overlay.height);
  el.placeholder.hidden = false;
  el.placeholder.textContent = id ? `waiting for frames of ${id}…` : "Click a stream on the left to watch it.";
  setText(el.info, "");
  schedule();
  renderObjects();
}

function setPaused(p) {
  state.paused = p;
  pausedAt = p && shown ? shown.header.frame_index : null;
  if (p && pending && pending.header.frame_index !== pausedAt) pending = null; // freeze what is on screen
  el.pause.textContent = p ? "Resume" : "Pause";
  el.pause.setAttribute("aria-pressed", String(p));
  if (!p && newest) show(newest); // back to live
  else setText(el.info, el.info.textContent.replace(/( · PAUSED)?$/, p && shown ? " · PAUSED" : ""));
}

function revisionOf(obj) {
  let rev = -1;
  for (const e of [newest, shown]) for (const o of (e && e.header.objects) || []) if (o.obj_id === obj) rev = Math.max(rev, o.revision ?? 0);
  return rev;
}

// One prompt = ALL of the object's clicks on that frame, replacing what the server had there.
function sendPrompt(obj, frameIndex, list, t0, revert) {
  const box = list.filter((c) => c.box).pop(); // one box per prompt: the latest drawn
  const request_id = ++reqId;
  const msg = { type: "prompt", request_id, stream_id: state.watched, obj_id: obj, frame_index: frameIndex,
    points: list.filter((c) => !c.box).map((c) => [c.x, c.y, c.label]), box: box ? box.box : null, clear_previous: true };
  if (send(msg)) prompts.set(request_id, { t0, obj_id: obj, frame_index: frameIndex, revBefore: revisionOf(obj), result: null, revert });
  else revert();
}

function sendRemove(obj) {
  const request_id = ++reqId;
  if (!send({ type: "remove", request_id, stream_id: state.watched, obj_id: obj })) return;
  removals.set(request_id, obj);
  removedAt.set(obj, performance.now()); // hide it at once; frames already in flight still carry it
  clicks.delete(obj);
  if (state.selected === obj && !newObjectNext) state.selected = null;
  paintOverlay();
  redraw();
}

function addClick(click, t0, entry) {
  if (!mayPrompt() || !entry) return;
  const fi = entry.header.frame_index; // the frame on the canvas at the press, not the stream's latest
  const ids = knownObjects(true);
  const obj = newObjectNext || state.selected == null ? (ids.length ? Math.max(...ids) : 0) + 1 : state.selected;
  const rec = clicks.get(obj) || { byFrame: new Map(), order: [] };
  const before = rec.byFrame.get(fi) || [], list = [...before, click];
  const maxPoints = (state.hello && state.hello.max_points) || Infinity;
  if (list.filter((c) => !c.box).length > maxPoints) { log(`at most ${maxPoints} points per prompt: click ignored`, true); return; }
  newObjectNext = false;
  el.newObj.setAttribute("aria-pressed", "false");
  state.selected = obj;
  removedAt.delete(obj);
  rec.byFrame.set(fi, list);
  rec.order.push(fi);
  clicks.set(obj, rec);
  sendPrompt(obj, fi, list, t0, () => { // refused: as if this click never happened
    if (clicks.get(obj) !== rec) return;
    rec.order.splice(rec.order.lastIndexOf(fi), 1);
    before.length ? rec.byFrame.set(fi, before) : rec.byFrame.delete(fi);
    if (!rec.order.length) clicks.delete(obj);
  });
  paintOverlay();
  renderObjects();
}

// Undo the object's latest click, on whichever frame it was made: resend that frame's other
// clicks, or, when none is left there, remove the object (no message drops one frame's clicks).
function undo(obj) {
  const rec = clicks.get(obj);
  if (!rec || !rec.order.length) { log(`object ${obj}: no click of ours to undo`); return; }
  const fi = rec.order.pop(), all = rec.byFrame.get(fi), list = all.slice(0, -1);
  const revert = () => { if (clicks.get(obj) === rec) { rec.byFrame.set(fi, all); rec.order.push(fi); } }; // refused: the click stays
  if (list.length) { rec.byFrame.set(fi, list); sendPrompt(obj, fi, list, performance.now(), revert); paintOverlay(); }
  else { log(`undo: no click left on frame ${fi}: removing object ${obj}`); sendRemove(obj); }
  renderObjects();
}

function setNewObject(on) {
  newObjectNext = on && mayPrompt();
  if (newObjectNext) state.selected = null; // "the target of the next click" is a new object
  el.newObj.setAttribute("aria-pressed", String(newObjectNext));
  renderObjects();
}

el.objects.addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-action]");
  if (!b || b.disabled) return;
  const obj = Number(b.closest("li").dataset.objId), act = b.dataset.action;
  if (act === "toggle") { hidden.has(obj) ? hidden.delete(obj) : hidden.add(obj); paintOverlay(); redraw(); }
  else if (act === "select") { state.selected = obj; setNewObject(false); }
  else if (act === "undo") undo(obj);
  else if (act === "clear") { sendRemove(obj); state.selected = obj; setNewObject(false); }
  else if (act === "remove") sendRemove(obj);
});
el.streams.addEventListener("click", (ev) => {
  const li = ev.target.closest("li[data-stream-id]");
  if (li && li.dataset.streamId !== state.watched) watch(li.dataset.streamId);
});
el.film.addEventListener("click", (ev) => {
  const e = ring.get(Number(ev.target.closest("img[data-frame-index]")?.dataset.frameIndex));
  if (!e) return;
  setPaused(true);
  pausedAt = e.header.frame_index;
  show(e);
});
function toggleNegative() { state.negative = !state.negative; el.neg.setAttribute("aria-pressed", String(state.negative)); }
el.pause.addEventListener("click", () => setPaused(!state.paused));
el.neg.addEventListener("click", toggleNegative);
el.newObj.addEventListener("click", () => setNewObject(!newObjectNext));

// ---- canvas mouse: point (left; shift/right/negative mode = negative) or box (drag) ----------
function canvasPos(ev) {
  const r = el.view.getBoundingClientRect();
  return [Math.min(Math.max(ev.clientX - r.left, 0), el.view.width), Math.min(Math.max(ev.clientY - r.top, 0), el.view.height)];
}
const round1 = (v) => Math.round(v * 10) / 10;

el.view.addEventListener("contextmenu", (ev) => ev.preventDefault());
el.view.addEventListener("mousedown", (ev) => {
  if (!mayPrompt() || !shown || (ev.button !== 0 && ev.button !== 2)) return;
  ev.preventDefault();
  const [x, y] = canvasPos(ev);
  drag = { x0: x, y0: y, x1: x, y1: y, button: ev.button, shift: ev.shiftKey, moved: false, entry: shown }; // what the operator aimed at
});
addEventListener("mousemove", (ev) => {
  if (!drag) return;
  [drag.x1, drag.y1] = canvasPos(ev);
  if (drag.button === 0 && Math.hypot(drag.x1 - drag.x0, drag.y1 - drag.y0) > DRAG_PX) drag.moved = true;
  if (drag.moved) paintOverlay();
});
addEventListener("mouseup", (ev) => {
  if (!drag || ev.button !== drag.button) return;
  const d = drag, t0 = performance.now(); // the click is complete on release: the round trip starts here
  drag = null;
  [d.x1, d.y1] = canvasPos(ev);
  if (d.moved) {
    const a = canvasToSource(Math.min(d.x0, d.x1), Math.min(d.y0, d.y1)), b = canvasToSource(Math.max(d.x0, d.x1), Math.max(d.y0, d.y1));
    addClick({ box: [a[0], a[1], b[0], b[1]].map(round1) }, t0, d.entry);
  } else {
    const [x, y] = canvasToSource(d.x0, d.y0);
    addClick({ x: round1(x), y: round1(y), label: d.button === 2 || d.shift || state.negative ? 0 : 1 }, t0, d.entry);
  }
  paintOverlay();
});

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.target.closest("input, textarea")) return;
  const k = ev.key.toLowerCase();
  if (k === "p") setPaused(!state.paused);
  else if (k === "n" && mayPrompt()) toggleNegative();
  else if (k === "o") setNewObject(true);
  else if (k === "u" && state.selected != null && mayPrompt()) undo(state.selected);
  else if (k === "escape" && drag) { drag = null; paintOverlay(); }
});

fitCanvas(16, 9);
applyRole();
connect();
