"""`vos-service prompt`: an operator's click or box on a running stream (a new object or a correction)."""

from __future__ import annotations

import argparse
import asyncio

from .connection import add_connection_arguments, credentials_from_args
from .exit_codes import CliError
from .prompt_args import add_prompt_arguments


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Send clicks (--point, --neg) and/or one --box for an object of a running stream; prints "
                     "the prompted frame's result, then the revised later frames.")
    add_connection_arguments(p)
    p.add_argument("--stream-id", required=True, help="the running stream")
    p.add_argument("--obj-id", type=int, required=True, help="the object: a new id adds it, a known one corrects it")
    p.add_argument("--frame", type=int, default=None, help="a cached frame index (default: the latest)")
    p.add_argument("--keep-previous", action="store_true", help="add to the frame's earlier clicks")
    add_prompt_arguments(p, boxes_are_objects=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..client.client import VosClient
    from ..engine.types import Prompt

    clicks = [(p, 1) for p in args.point] + [(p, 0) for p in args.neg]
    if not clicks and len(args.box) != 1:
        raise CliError("give clicks (--point/--neg) and/or one --box")
    prompt = Prompt(points=np.asarray([c[0] for c in clicks], np.float32).reshape(-1, 2) if clicks else None,
                    labels=np.asarray([c[1] for c in clicks], np.int32) if clicks else None,
                    box=args.box[0] if args.box else None)

    async def main() -> int:
        async with VosClient(args.server, credentials=credentials_from_args(args)) as client:
            results = await client.add_prompt(args.stream_id, args.obj_id, prompt, frame_index=args.frame,
                                              clear_previous=not args.keep_previous)
        for r in results:
            m = r.by_id().get(args.obj_id)
            print(f"frame {r.frame_index}: obj {args.obj_id} revision {m.revision if m else '-'} box "
                  f"{m.box if m else None}")
        return 0

    return asyncio.run(main())
