"""FrameDecoder on real frames: JPEG, PNG, raw RGB/BGR and a real H.264 Annex-B stream."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from vos_service.io.decode import FrameDecodeError, FrameDecoder, FrameFormat


@pytest.fixture(scope="module")
def frames(dog_frames) -> list[np.ndarray]:
    """8 real frames, downscaled to 320x180 to keep the codecs fast."""
    return [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in dog_frames[:8]]


def encode_h264(frames: list[np.ndarray], **options: str) -> list[bytes]:
    """Encode RGB frames with libx264; one Annex-B access unit per packet, in decode order."""
    h, w = frames[0].shape[:2]
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 30), Fraction(30)
    enc.options = {"crf": "16", **options}
    aus = []
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
        vf.pts = i
        aus += [bytes(p) for p in enc.encode(vf)]
    aus += [bytes(p) for p in enc.encode(None)]
    return aus


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def test_jpeg_decodes_to_rgb(frames):
    f = frames[0]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = FrameDecoder(FrameFormat.JPEG, 320, 180).decode(buf.tobytes())
    assert out.shape == (180, 320, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert psnr(out, f) > 30
    # channel order: RGB, not OpenCV's BGR (swapped channels would score far lower)
    assert psnr(out, f) > psnr(out[..., ::-1], f) + 3


def test_png_is_lossless(frames):
    ok, buf = cv2.imencode(".png", cv2.cvtColor(frames[1], cv2.COLOR_RGB2BGR))
    out = FrameDecoder("png", 320, 180).decode(buf.tobytes())
    np.testing.assert_array_equal(out, frames[1])


@pytest.mark.parametrize("fmt", [FrameFormat.RGB, FrameFormat.BGR])
def test_raw_frames(frames, fmt):
    f = frames[2]
    data = (f if fmt is FrameFormat.RGB else np.ascontiguousarray(f[..., ::-1])).tobytes()
    dec = FrameDecoder(fmt, 320, 180)
    out = dec.decode(data, 320, 180)
    np.testing.assert_array_equal(out, f)
    assert out.flags.writeable and out.flags.c_contiguous
    with pytest.raises(FrameDecodeError, match="172800"):  # wrong byte count
        dec.decode(data[:-3])
    with pytest.raises(FrameDecodeError, match="the stream is 320x180"):  # restated size differs
        dec.decode(data, 180, 320)


def test_h264_low_latency_one_frame_per_access_unit(frames):
    aus = encode_h264(frames, preset="ultrafast", tune="zerolatency")
    assert len(aus) == len(frames) and aus[0].startswith(b"\x00\x00\x00\x01")  # Annex-B start code
    dec = FrameDecoder(FrameFormat.H264, 320, 180)
    out = [dec.decode(a) for a in aus]
    assert all(o is not None for o in out) and dec.flush() == []
    assert all(psnr(o, f) > 28 for o, f in zip(out, frames))


def test_h264_with_b_frames_buffers_then_flushes_in_order(frames):
    aus = encode_h264(frames, preset="medium", bf="2", g="30")
    dec = FrameDecoder(FrameFormat.H264, 320, 180)
    out = [dec.decode(a) for a in aus]
    # The decoder holds frames back at first (reordering): no frame to enqueue yet.
    held = sum(o is None for o in out)
    assert held > 0 and all(o is None for o in out[:held]) and all(o is not None for o in out[held:])
    decoded = [o for o in out if o is not None] + dec.flush()
    assert len(decoded) == len(frames)
    # Presentation order: every decoded frame best matches the source frame at its position.
    for i, o in enumerate(decoded):
        scores = [psnr(o, f) for f in frames]
        assert int(np.argmax(scores)) == i and scores[i] > 28


def test_h264_stream_of_a_real_clip_demuxed_to_annex_b(dog_clip):
    """The shared mp4 (AVCC in the container) -> h264_mp4toannexb -> per-stream decoder."""
    with av.open(str(dog_clip)) as c:
        stream = c.streams.video[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        bsf = av.BitStreamFilterContext("h264_mp4toannexb", stream)
        aus, pts = [], set()
        for pkt in c.demux(stream):
            if pkt.size:
                pts.add(pkt.pts)
            for out in bsf.filter(pkt if pkt.size else None):
                aus.append(bytes(out))
            if len(aus) >= 12:
                break
    with av.open(str(dog_clip)) as c:  # the container's own decode, presentation order
        reference = []
        for f in c.decode(video=0):
            if f.pts in pts:
                reference.append(f.to_ndarray(format="rgb24"))
            if len(reference) == len(pts):
                break
    assert len(reference) == len(aus)
    dec = FrameDecoder(FrameFormat.H264, w, h)
    got = [o for o in (dec.decode(a) for a in aus) if o is not None] + dec.flush()
    # The clip has B-frames: 12 access units in decode order are 12 frames in presentation order.
    assert len(got) == len(aus)
    for o, r in zip(got, reference):
        np.testing.assert_array_equal(o, r)  # same decoder, same bitstream: bit-exact


def test_h264_wrong_size_and_garbage(frames):
    aus = encode_h264(frames[:2], preset="ultrafast", tune="zerolatency")
    with pytest.raises(FrameDecodeError, match="decoded frame is 320x180, the stream is 640x360"):
        FrameDecoder(FrameFormat.H264, 640, 360).decode(aus[0])
    with pytest.raises(FrameDecodeError, match="does not decode"):
        FrameDecoder(FrameFormat.H264, 320, 180).decode(b"\x00\x00\x00\x01" + b"\xff" * 64)


@pytest.mark.parametrize("fmt", list(FrameFormat))
def test_empty_bytes_rejected(fmt):
    with pytest.raises(FrameDecodeError, match="empty"):
        FrameDecoder(fmt, 320, 180).decode(b"")


def test_malformed_images(frames):
    ok, jpg = cv2.imencode(".jpg", frames[0])
    ok, png = cv2.imencode(".png", frames[0])
    jpeg = FrameDecoder(FrameFormat.JPEG, 320, 180)
    with pytest.raises(FrameDecodeError, match="bad signature"):
        jpeg.decode(b"not an image at all")
    with pytest.raises(FrameDecodeError, match="bad signature"):
        jpeg.decode(png.tobytes())  # a PNG on a JPEG stream
    with pytest.raises(FrameDecodeError, match="corrupt JPEG"):
        jpeg.decode(jpg.tobytes()[:20])  # a truncated header
    with pytest.raises(FrameDecodeError, match="decoded frame is 320x180, the stream is 321x180"):
        FrameDecoder(FrameFormat.JPEG, 321, 180).decode(jpg.tobytes())
    with pytest.raises(FrameDecodeError, match="positive"):
        FrameDecoder(FrameFormat.PNG, 0, 180)
    with pytest.raises(ValueError):
        FrameDecoder("gif", 320, 180)
