"""FrameDecoder on real frames: JPEG, PNG, raw RGB/BGR and a real H.264 Annex-B stream.

Also: declared sizes refused before cv2 / PyAV run, and the SPS parser against x264 and FFmpeg."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from tests.io.test_headers import BitWriter, bits_to_bytes, escape, make_sps, only_size, patch_sof, png_bomb, sps_nal
from vos_service.io import decode as decode_module
from vos_service.io.decode import FrameDecodeError, FrameDecoder, FrameFormat
from vos_service.io.h264_sps import sps_sizes, unescape_rbsp


@pytest.fixture(scope="module")
def frames(dog_frames) -> list[np.ndarray]:
    """8 real frames, downscaled to 320x180 to keep the codecs fast."""
    return [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in dog_frames[:8]]


def encode_h264(frames: list[np.ndarray], pix_fmt: str = "yuv420p", **options: str) -> list[bytes]:
    """Encode RGB frames with libx264; one Annex-B access unit per packet, in decode order."""
    h, w = frames[0].shape[:2]
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, pix_fmt
    enc.time_base, enc.framerate = Fraction(1, 30), Fraction(30)
    enc.options = {"crf": "16", **options}
    aus = []
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format=pix_fmt)
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
    # The SPS of the first access unit declares 320x180: refused before FFmpeg decodes anything.
    with pytest.raises(FrameDecodeError, match="declares 320x180, the stream is 640x360"):
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
    with pytest.raises(FrameDecodeError, match="header declares 320x180, the stream is 321x180"):
        FrameDecoder(FrameFormat.JPEG, 321, 180).decode(jpg.tobytes())  # refused before decoding
    # A header declaring the transpose (EXIF orientation may rotate) is decoded, then refused exactly.
    with pytest.raises(FrameDecodeError, match="decoded frame is 320x180, the stream is 180x320"):
        FrameDecoder(FrameFormat.JPEG, 180, 320).decode(jpg.tobytes())
    with pytest.raises(FrameDecodeError, match="positive"):
        FrameDecoder(FrameFormat.PNG, 0, 180)
    with pytest.raises(ValueError):
        FrameDecoder("gif", 320, 180)


# ---- declared sizes are checked before any native decoder runs ------------------------------


@pytest.fixture()
def no_native_decoder(monkeypatch):
    """Fail the test if the bytes reach cv2.imdecode or a PyAV packet."""
    def boom(*args, **kwargs):
        raise AssertionError("a native decoder was reached")
    monkeypatch.setattr(decode_module.cv2, "imdecode", boom)
    monkeypatch.setattr(decode_module.av, "Packet", boom)


def test_png_bomb_is_refused_before_cv2(no_native_decoder):
    data = png_bomb()  # 1-bit 16384x16384: cv2 would allocate 1.5 GB for it
    assert len(data) < 200
    with pytest.raises(FrameDecodeError, match="PNG header declares 16384x16384, the stream is 320x180"):
        FrameDecoder(FrameFormat.PNG, 320, 180).decode(data)
    with pytest.raises(FrameDecodeError, match="corrupt PNG image: truncated"):
        FrameDecoder(FrameFormat.PNG, 320, 180).decode(data[:30])


def test_jpeg_bomb_is_refused_before_cv2(frames, no_native_decoder):
    ok, buf = cv2.imencode(".jpg", frames[0])
    jpg = buf.tobytes()
    dec = FrameDecoder(FrameFormat.JPEG, 320, 180)
    with pytest.raises(FrameDecodeError, match="JPEG header declares 16384x16384, the stream is 320x180"):
        dec.decode(patch_sof(jpg, 16384, 16384))
    sos = jpg.find(b"\xff\xda")
    for cut in (4, 30, sos - 1):  # inside APP0, inside a table, just before the scan
        with pytest.raises(FrameDecodeError, match="corrupt JPEG image"):
            dec.decode(jpg[:cut])


def test_declared_sizes_that_match_reach_the_decoder(frames):
    ok, png = cv2.imencode(".png", frames[3])
    out = FrameDecoder(FrameFormat.PNG, 320, 180).decode(png.tobytes())
    assert out.shape == (180, 320, 3)


def test_h264_sps_bombs_are_refused_before_ffmpeg(no_native_decoder):
    dec = FrameDecoder(FrameFormat.H264, 320, 180)
    slice_ = b"\x00\x00\x01\x65\x88\x84" + bytes(range(4, 64))
    cases = {
        "larger than any level": make_sps(1024, 1024),  # 16384x16384
        "far larger": make_sps(128, 128, crop=(0, 864, 0, 934)),  # 2048x2048 shown as 320x180
        "declares 640x360, the stream is 320x180": make_sps(40, 23, crop=(0, 0, 0, 4)),
        "truncated": make_sps(20, 12)[:6],
    }
    for match, rbsp in cases.items():
        with pytest.raises(FrameDecodeError, match=match):
            dec.decode(sps_nal(rbsp) + slice_)
    # a second SPS of another size, later in an access unit that starts right
    with pytest.raises(FrameDecodeError, match="declares 640x368"):
        dec.decode(sps_nal(make_sps(20, 12, crop=(0, 0, 0, 6))) + sps_nal(make_sps(40, 23, sps_id=1)) + slice_)


def test_h264_hand_made_sps_of_the_stream_size_reaches_ffmpeg(frames, monkeypatch):
    """Our hand-made SPS in place of x264's: both parsers read 320x180 and FFmpeg decodes with it."""
    au = encode_h264(frames[:1], preset="ultrafast", tune="zerolatency")[0]
    start = au.find(b"\x00\x00\x01\x67")
    end = au.find(b"\x00\x00\x01", start + 4)
    au = sps_nal(make_sps(20, 12, crop=(0, 0, 0, 6))) + au[end:]  # log2_max_frame_num 4, POC type 2: as x264's
    reached = []
    real_packet = decode_module.av.Packet
    monkeypatch.setattr(decode_module.av, "Packet", lambda data: reached.append(data) or real_packet(data))
    out = FrameDecoder(FrameFormat.H264, 320, 180).decode(au)
    assert reached == [au] and out.shape == (180, 320, 3) and psnr(out, frames[0]) > 28


# ---- the SPS parser against x264's SPS and FFmpeg's decode ----------------------------------


def ffmpeg_decode(aus: list[bytes]) -> list[av.VideoFrame]:
    dec = av.CodecContext.create("h264", "r")
    return [f for au in aus for f in dec.decode(av.Packet(au))] + list(dec.decode(None))


def synthetic(w: int, h: int, n: int = 2) -> list[np.ndarray]:
    y, x = np.mgrid[:h, :w]
    return [np.stack([(x * 3 + i) % 256, (y * 5) % 256, (x + y) % 256], -1).astype(np.uint8) for i in range(n)]


@pytest.mark.parametrize("w, h, pix_fmt, options, profile", [
    (64, 48, "yuv420p", {"preset": "ultrafast"}, 66),
    (64, 48, "yuv420p", {"profile": "baseline"}, 66),
    (250, 130, "yuv420p", {"profile": "main"}, 77),
    (250, 130, "yuv420p", {}, 100),
    (250, 130, "yuv422p", {}, 122),
    (250, 130, "yuv444p", {}, 244),
    (250, 130, "gray", {}, 100),
    (250, 132, "yuv420p", {"x264-params": "interlaced=1"}, 100),
    (1920, 1080, "yuv420p", {"preset": "ultrafast"}, 66),
])
def test_sps_of_x264_agrees_with_ffmpeg(w, h, pix_fmt, options, profile):
    aus = encode_h264(synthetic(w, h), pix_fmt, **options)
    (s,) = sps_sizes(aus[0])
    assert (s.width, s.height, s.profile_idc) == (w, h, profile)
    assert s.coded_width == -(-w // 16) * 16 and s.coded_height >= h
    assert all(sps_sizes(au) == [] for au in aus[1:])  # x264 sends the SPS once
    frames = ffmpeg_decode(aus)
    assert len(frames) == 2 and all((f.width, f.height) == (w, h) for f in frames)


def test_sps_of_a_real_720p_clip(dog_frames):
    aus = encode_h264(dog_frames[:2], preset="ultrafast", tune="zerolatency")
    assert only_size(aus[0]) == (1280, 720)


def scaling_lists(n: int) -> BitWriter:
    """n scaling lists, mixing explicit ones, absent ones, the default flag and an early end."""
    w, rng = BitWriter(), np.random.default_rng(n)
    for i in range(n):
        size = 16 if i < 6 else 64
        kind = ["explicit", "default", "early", "absent"][i % 4]
        if kind == "absent":
            w.u(1, 0)
            continue
        w.u(1, 1)
        if kind == "default":
            w.se(-8)  # next scale 0 at j = 0: use the default matrix, nothing more
            continue
        last = 8
        for j, v in enumerate(rng.integers(12, 24, size)):
            if kind == "early" and j == 5:
                w.se(-last)  # scale 0: the rest repeats the last one, no more deltas
                break
            w.se(int(v) - last)
            last = int(v)
    return w


@pytest.mark.parametrize("pix_fmt, chroma, n_lists", [("yuv420p", 1, 8), ("yuv444p", 3, 12)])
def test_sps_with_scaling_matrices_agrees_with_ffmpeg(pix_fmt, chroma, n_lists):
    """x264 never writes SPS scaling lists: splice some into its SPS, FFmpeg must still decode."""
    frames = synthetic(96, 64, 1)
    aus = encode_h264(frames, pix_fmt)
    au = aus[0]
    start = au.find(b"\x00\x00\x01\x67") + 4
    end = au.find(b"\x00\x00\x01", start)
    bits = [int(c) for c in "".join(f"{b:08b}" for b in unescape_rbsp(au[start:end]))]
    bits = bits[:len(bits) - 1 - bits[::-1].index(1)]  # drop rbsp_trailing_bits
    pos = 24 + 1  # profile, flags, level; sps_id 0 is "1"
    pos += 3 if chroma == 1 else 6  # chroma_format_idc ("010" / "00100"), then 4:4:4's separate plane flag
    assert bits[24:pos] == ([1, 0, 1, 0] if chroma == 1 else [1, 0, 0, 1, 0, 0, 0])
    pos += 1 + 1 + 1  # bit depths 0 and 0 ("1", "1"), qpprime flag
    assert bits[pos] == 0  # seq_scaling_matrix_present_flag
    spliced = bits[:pos] + [1] + scaling_lists(n_lists).bits + bits[pos + 1:]
    new_au = au[:start] + escape(bits_to_bytes(spliced + [1])) + au[end:]
    assert only_size(new_au) == (96, 64)
    plain, scaled = ffmpeg_decode([au])[0].to_ndarray(format="rgb24"), ffmpeg_decode([new_au])[0]
    assert (scaled.width, scaled.height) == (96, 64)
    # FFmpeg used the lists (the picture changed) and read the rest of the SPS right (still the picture)
    scaled = scaled.to_ndarray(format="rgb24")
    assert not np.array_equal(scaled, plain)
    assert np.corrcoef(scaled.ravel(), frames[0].ravel())[0, 1] > 0.9
