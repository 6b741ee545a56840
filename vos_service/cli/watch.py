"""`vos-service watch`: tail masklets (or lifecycle events) from Redis Streams, decoded."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, cast

from ..publish.schema import EVENTS_KEY, EventMessage, MaskletMessage, masklets_key
from .exit_codes import CliError

if TYPE_CHECKING:
    import redis


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Print masklets of a stream (or lifecycle events) as they are published, one line each, "
                     "masks decoded to area and box.")
    p.add_argument("stream_id", nargs="?", help="the stream to follow (omit with --events)")
    p.add_argument("--events", action="store_true", help=f"follow {EVENTS_KEY} instead")
    p.add_argument("--redis-url", default=os.environ.get("VOS_REDIS_URL"),
                   help="the service's Redis, with its password: redis://:PASSWORD@host:port/0 "
                        "(printed by `serve`; env VOS_REDIS_URL; default none)")
    p.add_argument("--from-start", action="store_true", help="replay what the stream still holds first")
    p.add_argument("--count", type=int, default=None, help="stop after this many entries (default: never)")
    p.add_argument("--json", action="store_true", help="print the decoded message as JSON")
    p.set_defaults(func=run)


def describe(msg: MaskletMessage) -> str:
    from ..io.rle import rle_area

    parts = []
    for o in msg.objects:
        area = rle_area(o.rle)
        parts.append(f"obj {o.obj_id}: area {area} box {list(o.box) if o.box else None} "
                     f"score {o.score:.3f} {'visible' if o.visible else 'hidden'} rev {o.revision}")
    return f"{msg.stream_id} frame {msg.frame_index}: " + ("; ".join(parts) or "no objects")


def run(args: argparse.Namespace) -> int:
    import redis

    if not args.events and not args.stream_id:
        raise CliError("give a stream id or --events")
    key = EVENTS_KEY if args.events else masklets_key(args.stream_id)
    if not args.redis_url:
        raise CliError("give --redis-url or set VOS_REDIS_URL (the URL `serve` printed)")
    return _follow(redis.Redis.from_url(args.redis_url), key, args)


def _follow(r: redis.Redis, key: str, args: argparse.Namespace) -> int:
    from ..io.rle import rle_area

    last = "0-0" if args.from_start else "$"
    seen = 0
    while args.count is None or seen < args.count:
        for _, entries in cast(list, r.xread({key: last}, block=1000, count=100)) or []:
            for entry_id, fields in entries:
                last = entry_id
                seen += 1
                if args.events:
                    ev = EventMessage.from_fields(fields)
                    print(json.dumps({"type": ev.type.value, "stream_id": ev.stream_id, "obj_id": ev.obj_id,
                                      "frame_index": ev.frame_index, "ts": ev.ts, "detail": dict(ev.detail)}))
                else:
                    msg = MaskletMessage.from_fields(fields)
                    if args.json:
                        print(json.dumps({"frame_index": msg.frame_index, "objects": [
                            {"obj_id": o.obj_id, "area": rle_area(o.rle), "box": o.box,
                             "score": o.score, "visible": o.visible, "revision": o.revision}
                            for o in msg.objects]}))
                    else:
                        print(describe(msg))
                sys.stdout.flush()
                if args.count is not None and seen >= args.count:
                    return 0
    return 0
