"""`vos-service track VIDEO`: the engine over a video file, offline.

Decodes with PyAV, tracks the prompted objects frame by frame with a
StreamTracker (the same streaming path the service runs), writes an overlay
video and one JSON line of masklets (COCO RLE) per frame.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .exit_codes import CliError
from .model_args import add_model_arguments, load_model_from_args
from .prompt_args import add_prompt_arguments, initial_prompts

if TYPE_CHECKING:
    from ..engine.types import FrameResult
    from ..io.masklets import MaskletRecord


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Track objects prompted on the first frame through a video file."
    p.add_argument("video", help="a video file or URL PyAV can open")
    add_prompt_arguments(p)
    p.add_argument("--out", type=Path, required=True, help="overlay video to write (.mp4)")
    p.add_argument("--masklets", type=Path, default=None, help="JSON lines of masklets (default: OUT with .jsonl)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: all)")
    add_model_arguments(p)
    p.set_defaults(func=run)


def records(result: FrameResult) -> list[MaskletRecord]:
    from ..io.masklets import MaskletRecord

    return [MaskletRecord(obj_id=o.obj_id, mask=o.mask, score=o.score, visible=o.visible, iou=o.iou,
                          box=o.box, revision=o.revision) for o in result.objects]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..engine.tracker import StreamTracker, TrackerConfig
    from ..io.masklets import MaskletWriter
    from ..io.overlay import VideoWriter, draw_overlay
    from ..io.video import iter_video_frames, probe_video

    prompts = initial_prompts(args)
    if not prompts:
        raise CliError("give at least one --point or --box")
    model = load_model_from_args(args)
    print(f"model: {model.spec.config} at {model.image_size}px, {model.weights}", file=sys.stderr)
    info = probe_video(args.video)
    tracker = StreamTracker(model, TrackerConfig())
    masklets_path = args.masklets or args.out.with_suffix(".jsonl")
    total = min(filter(None, [info.num_frames, args.max_frames]), default=None)
    with VideoWriter(args.out, fps=info.fps or 30) as video, MaskletWriter(masklets_path) as jsonl:
        for frame in tqdm(iter_video_frames(args.video, max_frames=args.max_frames), total=total,
                          unit="frame", desc="track"):
            result = tracker.track(frame.rgb)
            if frame.index == 0:
                for obj_id, prompt in prompts:
                    result = tracker.add_prompt(obj_id, prompt)[0]
            video.write(draw_overlay(frame.rgb, [(o.obj_id, o.mask) for o in result.objects]))
            jsonl.write(result.frame_index, records(result), pts=frame.pts_seconds)
    print(f"wrote {args.out} and {masklets_path}", file=sys.stderr)
    return 0
