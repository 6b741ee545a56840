"""`vos-service stream SOURCE`: a camera client.

Decodes a video file, webcam or RTSP/HTTP URL with PyAV and streams it to the service
at its native rate (a live camera) or as fast as possible, printing one line per result
and optionally writing an overlay video.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from .connection import add_connection_arguments, credentials_from_args
from .prompt_args import add_prompt_arguments, initial_prompts


def configure(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.split("\n\n")[1].replace("\n", " ")
    p.add_argument("source", help="video file, /dev/videoN, rtsp:// or http:// URL")
    add_connection_arguments(p)
    p.add_argument("--stream-id", default="cam-1", help="the stream's id on the service (default %(default)s)")
    p.add_argument("--mode", choices=["live", "lossless"], default=None,
                   help="live drops when the service falls behind (default for --realtime); "
                        "lossless pushes back (default otherwise)")
    p.add_argument("--realtime", action="store_true", help="send at the source's native frame rate")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: all)")
    p.add_argument("--out", type=Path, default=None, help="write an overlay video of the results (default: none)")
    p.add_argument("--no-reconnect", action="store_true",
                   help="end when the server goes away, instead of re-opening the stream with backoff "
                        "(a fleet resumes it on another replica: README, Deploy)")
    add_prompt_arguments(p)
    p.set_defaults(func=run)


async def _frames(args, fps: float):
    """(index, rgb, capture_ts), paced at the source rate with --realtime."""
    from ..io.video import iter_video_frames

    t0 = time.monotonic()
    for f in iter_video_frames(args.source, max_frames=args.max_frames):
        ts = f.pts_seconds if f.pts_seconds is not None else f.index / fps
        if args.realtime:
            await asyncio.sleep(max(0.0, t0 + ts - time.monotonic()))
        yield (f.index, f.rgb, ts)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..client.client import VosClient
    from ..client.types import Backoff, Closed, Dropped, Reconnecting, Result
    from ..io.overlay import VideoWriter, draw_overlay
    from ..io.video import probe_video

    info = probe_video(args.source)
    fps = float(info.fps or 30)
    mode = args.mode or ("live" if args.realtime else "lossless")
    prompts = initial_prompts(args)
    frames_by_index: dict[int, np.ndarray] = {}

    async def main() -> int:
        writer = VideoWriter(args.out, fps=fps) if args.out else None
        received = dropped = 0
        t0 = time.monotonic()

        async def remember():
            async for idx, rgb, ts in _frames(args, fps):
                if writer is not None:
                    frames_by_index[idx] = rgb
                yield (idx, rgb, ts)

        async with VosClient(args.server, credentials=credentials_from_args(args)) as client:
            backoff = None if args.no_reconnect else Backoff()
            async for ev in client.stream(args.stream_id, remember(), mode=mode, initial_prompts=prompts,
                                          reconnect=backoff):
                if isinstance(ev, Result) and not ev.revised:
                    received += 1
                    objs = ", ".join(f"obj {m.obj_id} {'visible' if m.visible else 'hidden'} box {m.box}"
                                     for m in ev.masklets)
                    print(f"frame {ev.frame_index}: {objs or 'no objects'}", flush=True)
                    rgb = frames_by_index.pop(ev.frame_index, None)
                    if writer is not None and rgb is not None:
                        writer.write(draw_overlay(rgb, [(m.obj_id, m.mask()) for m in ev.masklets]))
                elif isinstance(ev, Dropped):
                    dropped += 1
                    frames_by_index.pop(ev.frame_index, None)
                elif isinstance(ev, Closed):
                    print(f"stream closed: {ev.reason}", file=sys.stderr)
                elif isinstance(ev, Reconnecting):
                    for idx in ev.unanswered:
                        frames_by_index.pop(idx, None)
                    print(f"server gone ({ev.reason}); reconnecting in {ev.delay_s:.2f} s (attempt {ev.attempt}), "
                          f"{len(ev.unanswered)} frames in flight lost", file=sys.stderr)
        if writer is not None:
            writer.close()
        dt = time.monotonic() - t0
        print(f"{received} results, {dropped} dropped, {received / max(dt, 1e-9):.2f} frames/s", file=sys.stderr)
        return 0

    return asyncio.run(main())
