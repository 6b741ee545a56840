// COCO compressed RLE -> binary mask, in the browser.
//
// The server sends each object's mask as COCO's compressed `counts` string at the SOURCE
// resolution (see vos_service/io/rle.py). This is a port of pycocotools' rleFrString plus
// the run expansion, strict like the server's decode_untrusted: a frame from a buggy or
// hostile server must fail loudly (RleError, logged once) rather than paint garbage.

export class RleError extends Error {}

// A number is at most 7 chunks of 5 bits (35 bits): COCO never needs more, so more is corruption.
const MAX_CHUNKS = 7;
// 2^26 pixels (8K x 8K): no camera here is bigger, and a bogus size must not make us allocate gigabytes.
const MAX_PIXELS = 1 << 26;

/**
 * COCO compressed counts -> run lengths (alternating 0-runs and 1-runs, starting with 0s).
 * Each number is 5-bit chunks, little endian, chunk c = charCode - 48; c & 0x20 means another
 * chunk follows; on the last chunk c & 0x10 is the sign. From index 3 on (m > 2) a number is a
 * delta against the run two places back. Arithmetic uses multiplication, not shifts, because
 * JS bitwise operators are 32-bit and the 7th chunk would overflow them.
 */
export function decodeCounts(counts) {
  if (typeof counts !== "string") throw new RleError("counts must be a string");
  const runs = [];
  let p = 0;
  while (p < counts.length) {
    let x = 0, k = 0, more = true, c = 0;
    while (more) {
      if (p >= counts.length) throw new RleError("counts ends in the middle of a number");
      c = counts.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new RleError(`counts has ${JSON.stringify(counts[p])} at ${p}, outside COCO's alphabet`);
      if (k >= MAX_CHUNKS) throw new RleError(`number ${runs.length} has more than ${MAX_CHUNKS} chunks`);
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
    }
    if (c & 0x10) x -= 2 ** (5 * k); // sign-extend: x | (-1 << 5k) == x - 2^(5k)
    const m = runs.length;
    if (m > 2) x += runs[m - 2];
    if (x < 0) throw new RleError(`run ${m} of counts is negative (${x})`);
    runs.push(x);
  }
  return runs;
}

/**
 * Decode {size: [h, w], counts} into a column-major Uint8Array (pixel (x, y) at x * h + y,
 * COCO's own order, so decoding is one fill() per run). `out` is reused when big enough:
 * the page decodes every object of every drawn frame and should not churn the GC.
 * Returns {width, height, data, bbox: [x0, y0, x1, y1] (exclusive ends) | null when empty}.
 */
export function decodeMask(rle, out = null) {
  if (!rle || !Array.isArray(rle.size) || rle.size.length !== 2) throw new RleError("RLE needs size [h, w]");
  const [h, w] = rle.size.map(Number);
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0) throw new RleError(`bad RLE size ${rle.size}`);
  const n = h * w;
  if (n > MAX_PIXELS) throw new RleError(`RLE size ${h}x${w} is over ${MAX_PIXELS} pixels`);
  const runs = decodeCounts(rle.counts);
  let total = 0;
  for (const r of runs) total += r;
  if (total !== n) throw new RleError(`counts cover ${total} pixels, the ${h}x${w} mask has ${n}`);
  const data = out && out.length >= n ? out.subarray(0, n) : new Uint8Array(n);
  let i = 0, x0 = w, x1 = -1, y0 = h, y1 = -1;
  for (let j = 0; j < runs.length; j++) {
    const r = runs[j];
    const v = j & 1; // runs alternate 0, 1, 0, ... (odd index = foreground)
    data.fill(v, i, i + r);
    if (v && r > 0) {
      // Column-major: index i is column floor(i / h), row i % h. A run spanning columns covers all rows.
      const ca = Math.floor(i / h), cb = Math.floor((i + r - 1) / h);
      x0 = Math.min(x0, ca);
      x1 = Math.max(x1, cb);
      if (ca !== cb) { y0 = 0; y1 = h - 1; } else { y0 = Math.min(y0, i % h); y1 = Math.max(y1, (i + r - 1) % h); }
    }
    i += r;
  }
  const bbox = x1 < 0 ? null : [x0, y0, x1 + 1, y1 + 1];
  return { width: w, height: h, data, bbox };
}
