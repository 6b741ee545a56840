// Drawing a frame: the JPEG scaled to the canvas, then each object's mask as a translucent
// fill and a 2-px opaque outline in its exact palette colour.
//
// Masks are composed by hand on one ImageData (not with paths or scaled bitmaps) so that every
// outline pixel carries exactly the palette colour: no antialiasing, no smoothing, no blending.
// Tests (and operators comparing colours with the objects list) rely on that.

import { decodeMask } from "./rle.js";

// Saturated colours, unlikely in video. obj_id 1 is PALETTE[0].
export const PALETTE = [
  [255, 0, 0], [0, 200, 255], [255, 200, 0], [0, 255, 80],
  [255, 0, 255], [255, 128, 0], [128, 0, 255], [0, 128, 128],
];

export const FILL_ALPHA = 0.4;
const OUTLINE_PX = 2;

export function colorOf(objId) {
  const n = PALETTE.length;
  return PALETTE[(((objId - 1) % n) + n) % n];
}

export function cssColor(objId) {
  const [r, g, b] = colorOf(objId);
  return `rgb(${r}, ${g}, ${b})`;
}

// Scratch buffers, grown on demand and reused for every object of every frame.
let srcBuf = null, cm = null, hm = null;
function scratch(n) {
  if (!cm || cm.length < n) { cm = new Uint8Array(n); hm = new Uint8Array(n); }
}

/**
 * Mask of one object at canvas resolution (nearest neighbour: each canvas pixel takes the
 * source pixel under its centre), restricted to the region R around the mask's box.
 * Returns the outline pixel indices, having already blended the fill into `px`.
 */
function paintObject(px, cw, ch, mask, color, alpha) {
  const { width: w, height: h, data, bbox } = mask;
  if (!bbox || w === 0 || h === 0) return { outline: new Int32Array(0), box: null };
  // R: the canvas pixels whose centres can fall in the source box, plus the outline width.
  const m = OUTLINE_PX + 1;
  const rx0 = Math.max(0, Math.floor((bbox[0] * cw) / w) - m), rx1 = Math.min(cw - 1, Math.ceil((bbox[2] * cw) / w) + m);
  const ry0 = Math.max(0, Math.floor((bbox[1] * ch) / h) - m), ry1 = Math.min(ch - 1, Math.ceil((bbox[3] * ch) / h) + m);
  const sx = new Int32Array(rx1 - rx0 + 1);
  for (let x = rx0; x <= rx1; x++) sx[x - rx0] = Math.min(w - 1, Math.floor(((x + 0.5) * w) / cw)) * h;
  const [r, g, b] = color;
  const ar = r * alpha, ag = g * alpha, ab = b * alpha, keep = 1 - alpha;
  let bx0 = cw, by0 = ch, bx1 = -1, by1 = -1;
  // Sample the mask over all of R (so R needs no clearing) and blend the fill as we go.
  for (let y = ry0; y <= ry1; y++) {
    const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / ch));
    const row = y * cw;
    for (let x = rx0; x <= rx1; x++) {
      const v = data[sx[x - rx0] + sy];
      cm[row + x] = v;
      if (v) {
        const q = (row + x) * 4;
        px[q] = px[q] * keep + ar; // Uint8ClampedArray rounds and clamps
        px[q + 1] = px[q + 1] * keep + ag;
        px[q + 2] = px[q + 2] * keep + ab;
        if (x < bx0) bx0 = x;
        if (x > bx1) bx1 = x;
        if (y < by0) by0 = y;
        if (y > by1) by1 = y;
      }
    }
  }
  if (bx1 < 0) return { outline: new Int32Array(0), box: null };
  // Outline = mask minus its erosion by a (2k+1)-square, k = OUTLINE_PX: the inner band of the
  // mask OUTLINE_PX pixels wide. Separable: a run of >= 2k+1 ones ending at x marks x-k as
  // "all ones around". Pixels beyond R (or the canvas edge) count as background, so a mask
  // touching the frame edge gets a closed outline.
  const win = 2 * OUTLINE_PX + 1;
  for (let y = ry0; y <= ry1; y++) {
    const row = y * cw;
    hm.fill(0, row + rx0, row + rx1 + 1);
    let run = 0;
    for (let x = rx0; x <= rx1; x++) {
      run = cm[row + x] ? run + 1 : 0;
      if (run >= win) hm[row + x - OUTLINE_PX] = 1;
    }
  }
  // Vertical pass over hm, column by column: rows y-k..y+k all set mark y as interior (cm = 2).
  for (let x = rx0; x <= rx1; x++) {
    let run = 0;
    for (let y = ry0; y <= ry1; y++) {
      run = hm[y * cw + x] ? run + 1 : 0;
      if (run >= win) cm[(y - OUTLINE_PX) * cw + x] = 2;
    }
  }
  const outline = [];
  for (let y = by0; y <= by1; y++) {
    const row = y * cw;
    for (let x = bx0; x <= bx1; x++) if (cm[row + x] === 1) outline.push(row + x);
  }
  return { outline, box: [bx0, by0, bx1 + 1, by1 + 1] };
}

/**
 * Draw `image` (an ImageBitmap, or null: black) and the masks of `objects` on `ctx`.
 * `skip(objId)` says which objects to leave out (hidden or removed). Fills of all objects go
 * first and outlines last, so no fill ever tints another object's outline.
 * Returns {objId: [x0, y0, x1, y1] box in canvas pixels} for labels; a bad RLE throws nothing
 * but lands in `errors`.
 */
export function drawFrame(ctx, image, objects, skip = () => false, errors = []) {
  const cw = ctx.canvas.width, ch = ctx.canvas.height;
  ctx.imageSmoothingEnabled = true; // the JPEG is downscaled by the server: smooth it up
  if (image) ctx.drawImage(image, 0, 0, cw, ch);
  else { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, cw, ch); }
  const boxes = {};
  const todo = (objects || []).filter((o) => o && o.rle && !skip(o.obj_id));
  if (!todo.length) return boxes;
  const img = ctx.getImageData(0, 0, cw, ch);
  const px = img.data;
  scratch(cw * ch);
  const outlines = [];
  for (const o of todo) {
    let mask;
    try {
      mask = decodeMask(o.rle, srcBuf); // checks size and counts before it allocates anything
      if (!srcBuf || mask.data.length > srcBuf.length) srcBuf = mask.data; // keep the bigger buffer for next time
    } catch (e) {
      errors.push(`object ${o.obj_id}: bad mask (${e.message})`);
      continue;
    }
    const color = colorOf(o.obj_id);
    const { outline, box } = paintObject(px, cw, ch, mask, color, FILL_ALPHA);
    if (box) boxes[o.obj_id] = box;
    outlines.push([outline, color]);
  }
  for (const [outline, [r, g, b]] of outlines) {
    for (const p of outline) {
      const q = p * 4;
      px[q] = r; px[q + 1] = g; px[q + 2] = b; px[q + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  return boxes;
}

/**
 * The overlay canvas (stacked over the view, never read by tests): labels next to each box,
 * the clicks made on this frame, and the box being dragged. Smoothing is fine here.
 */
export function drawOverlay(ctx, { labels = [], clicks = [], drag = null } = {}) {
  const cw = ctx.canvas.width, ch = ctx.canvas.height;
  ctx.clearRect(0, 0, cw, ch);
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "top";
  for (const { objId, box, text } of labels) {
    const tw = ctx.measureText(text).width + 8;
    const x = Math.max(0, Math.min(cw - tw, box[0]));
    const y = box[1] >= 18 ? box[1] - 18 : Math.min(ch - 18, box[3] + 2);
    ctx.fillStyle = "rgba(0, 0, 0, 0.75)";
    ctx.fillRect(x, y, tw, 17);
    ctx.fillStyle = cssColor(objId);
    ctx.fillText(text, x + 4, y + 2);
  }
  for (const { objId, x, y, label, box } of clicks) {
    ctx.lineWidth = 2;
    ctx.strokeStyle = cssColor(objId);
    if (box) {
      ctx.setLineDash([6, 4]);
      ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
      ctx.setLineDash([]);
      continue;
    }
    // Positive: white disc with "+"; negative: black disc with "−". Ring in the object's colour.
    ctx.beginPath();
    ctx.arc(x, y, 6, 0, 2 * Math.PI);
    ctx.fillStyle = label ? "#fff" : "#000";
    ctx.fill();
    ctx.stroke();
    ctx.strokeStyle = label ? "#000" : "#fff";
    ctx.beginPath();
    ctx.moveTo(x - 3, y); ctx.lineTo(x + 3, y);
    if (label) { ctx.moveTo(x, y - 3); ctx.lineTo(x, y + 3); }
    ctx.stroke();
  }
  if (drag) {
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#fff";
    ctx.setLineDash([4, 3]);
    ctx.strokeRect(drag[0] + 0.5, drag[1] + 0.5, drag[2] - drag[0], drag[3] - drag[1]);
    ctx.setLineDash([]);
  }
}

// ---- DOM views: data in, DOM out; no state lives here --------------------------------------

export function make(tag, { dataset, ...props } = {}, ...kids) {
  const n = Object.assign(document.createElement(tag), props);
  Object.assign(n.dataset, dataset);
  n.append(...kids);
  return n;
}
export function setText(node, text) { if (node.textContent !== text) node.textContent = text; } // no churn at frame rate
export const fmt = (v, d) => (typeof v === "number" ? v.toFixed(d) : "–");

// Children of `parent` = one node per key, in key order, REUSING nodes: a button the operator
// (or a test) is about to click must not be re-created under the pointer at frame rate.
function syncList(parent, keys, keyOf, create) {
  const have = new Map([...parent.children].map((n) => [keyOf(n), n]));
  for (const [k, n] of have) if (!keys.includes(k)) n.remove();
  let prev = null;
  return keys.map((k) => {
    const n = have.get(k) || create(k);
    if (!n.isConnected || n.previousElementSibling !== prev) (prev ? prev.after(n) : parent.prepend(n));
    return (prev = n);
  });
}

/** The overview: one <li data-stream-id> per row (server text only via textContent). */
export function renderStreams(ul, rows, watched, thumbs) {
  const lis = syncList(ul, rows.map((r) => r.stream_id), (n) => n.dataset.streamId, (id) => make("li", { dataset: { streamId: id } },
    make("img", { className: "thumb", alt: "", ...(thumbs.has(id) && { src: thumbs.get(id) }) }),
    make("span", { className: "sid", textContent: id }), make("span", { className: "stats" }), make("span", { className: "err" })));
  rows.forEach((r, i) => {
    setText(lis[i].querySelector(".stats"), `${r.mode} · ${r.width}×${r.height} · ${fmt(r.fps_in, 1)}/${fmt(r.fps_out, 1)} fps · ` +
      `p50 ${fmt(r.latency_p50_ms, 0)} ms · ${r.dropped ?? 0} dropped · ${(r.objects || []).length} objects`);
    setText(lis[i].querySelector(".err"), r.last_error || "");
    lis[i].classList.toggle("watched", r.stream_id === watched);
  });
}

export function setThumb(ul, streamId, url) {
  const li = [...ul.children].find((n) => n.dataset.streamId === streamId);
  if (li) li.querySelector(".thumb").src = url;
}

const ACTIONS = [["toggle", "Hide", "show/hide its mask"], ["select", "Select", "the next clicks go to this object"],
  ["undo", "Undo", "undo its last click"], ["clear", "Clear", "remove it and start it again from the next click (stays selected)"],
  ["remove", "Remove", "remove it from the stream"]];

/** The objects list: items = [{id, o (its object in the frame shown, or null), selected, hidden}]. */
export function renderObjects(ul, items, mayPrompt) {
  const lis = syncList(ul, items.map((it) => String(it.id)), (n) => n.dataset.objId, (id) => make("li", { dataset: { objId: id } },
    make("span", { className: "swatch", style: `background:${cssColor(Number(id))}` }), make("span", { className: "oid", textContent: `#${id}` }),
    make("span", { className: "meta" }), make("span", { className: "buttons" }, ...ACTIONS.map(([action, textContent, title]) =>
      make("button", { type: "button", dataset: { action }, textContent, title })))));
  items.forEach(({ o, selected, hidden }, i) => {
    const li = lis[i], sel = li.querySelector('[data-action="select"]');
    setText(li.querySelector(".meta"), o ? `score ${fmt(o.score, 2)} · ${o.visible ? "visible" : "not visible"} · rev ${o.revision}` : "no mask yet");
    li.classList.toggle("selected", selected);
    li.classList.toggle("off", hidden);
    setText(li.querySelector('[data-action="toggle"]'), hidden ? "Show" : "Hide");
    setText(sel, selected ? "Selected" : "Select");
    sel.setAttribute("aria-pressed", String(selected));
    for (const b of li.querySelectorAll("button:not([data-action=toggle])")) b.disabled = !mayPrompt;
  });
}

/** The filmstrip: entries = [{idx, url, revision}] oldest first; `shownIdx` gets the highlight. */
export function renderFilmstrip(div, entries, shownIdx) {
  const imgs = syncList(div, entries.map((e) => String(e.idx)), (n) => n.dataset.frameIndex,
    (i) => make("img", { alt: `frame ${i}`, dataset: { frameIndex: i } }));
  entries.forEach((e, i) => {
    if (imgs[i].getAttribute("src") !== e.url) imgs[i].src = e.url;
    imgs[i].title = `frame ${e.idx}, revision ${e.revision}`;
    imgs[i].classList.toggle("revised", e.revision > 0);
    imgs[i].classList.toggle("shown", e.idx === shownIdx);
  });
}

/**
 * Size the canvases to fit `wrap`'s width (and the window's height less `reserve` px) at the
 * source aspect w:h, with backing size == CSS size: one CSS pixel is one canvas pixel, so mouse
 * positions and getImageData agree. Returns whether the size changed (the canvases were cleared).
 */
export function fitCanvases(canvases, wrap, w, h, reserve) {
  if (!(w > 0 && h > 0)) [w, h] = [16, 9];
  const availW = Math.max(160, Math.floor(wrap.clientWidth));
  const availH = Math.max(120, Math.floor(innerHeight - wrap.getBoundingClientRect().top - reserve));
  let cw = availW, ch = Math.round((cw * h) / w);
  if (ch > availH) [ch, cw] = [availH, Math.round((availH * w) / h)];
  if (canvases[0].width === cw && canvases[0].height === ch) return false;
  for (const c of canvases) Object.assign(c, { width: cw, height: ch }).style.cssText = `width:${cw}px;height:${ch}px`;
  return true;
}
