"""Click and box arguments shared by the commands that prompt objects (track, stream, prompt)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy: only once prompts are made
    from ..engine.types import Prompt


def xy(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("a point is X,Y") from None
    return x, y


def box(text: str) -> tuple[float, float, float, float]:
    vals = tuple(float(v) for v in text.split(","))
    if len(vals) != 4:
        raise argparse.ArgumentTypeError("a box is X0,Y0,X1,Y1")
    return vals[0], vals[1], vals[2], vals[3]


def add_prompt_arguments(p: argparse.ArgumentParser, boxes_are_objects: bool = True) -> None:
    p.add_argument("--point", type=xy, action="append", default=[], metavar="X,Y",
                   help="a positive click in source pixels (repeat for more clicks)")
    p.add_argument("--neg", type=xy, action="append", default=[], metavar="X,Y",
                   help="a negative click in source pixels (repeatable)")
    p.add_argument("--box", type=box, action="append", default=[], metavar="X0,Y0,X1,Y1",
                   help="a box in source pixels; each --box is a further object" if boxes_are_objects
                   else "a box in source pixels")


def initial_prompts(args) -> list[tuple[int, Prompt]]:
    """Clicks make object 1; each --box a further object (ids 2, 3, ... after clicks)."""
    from ..engine.types import Prompt

    prompts: list[tuple[int, Prompt]] = []
    clicks = [(p, 1) for p in args.point] + [(p, 0) for p in args.neg]
    if clicks:
        prompts.append((1, Prompt.from_points([c[0] for c in clicks], [c[1] for c in clicks])))
    for b in args.box:
        prompts.append((len(prompts) + 1, Prompt(box=b)))
    return prompts
