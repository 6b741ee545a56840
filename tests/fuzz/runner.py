"""Hostile clients against a real service over real gRPC, with a normal stream running alongside.

    python -m tests.fuzz.runner [--long] [--seed N] [--out benchmarks/results/fuzz.json]

Categories (counts scale with --long): open messages, frame payloads in every format, frame
indices, inline prompts, unary calls on unknown streams/objects/frames, oversized messages,
more streams than allowed, rapid open/cancel/reopen of one id. Every call must end with a status
documented for its RPC (never INTERNAL, UNKNOWN, UNAVAILABLE) or a documented DropNotice, within
CALL_BOUND_S (a hang detector, not a speed test); the process must stay alive; the normal
stream must get every result, and its Redis entries must equal those of the same stream run
before the fuzzing started.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import grpc
import numpy as np
import redis

from tests.engine.factories import real_frames
from tests.fuzz import cases
from tests.fuzz.server import ServerProcess
from vos_service.api.gen.vos.v1 import vos_pb2 as pb
from vos_service.api.gen.vos.v1 import vos_pb2_grpc as pb_grpc
from vos_service.publish.schema import MaskletMessage, masklets_key

SC = grpc.StatusCode
CALL_BOUND_S = 60.0
W, H = 192, 108  # small frames: hostile input is about bytes, not pixels
MAX_MESSAGE = 4 * 1024 * 1024
SERVER_ENV = {  # the service's own settings through VOS_* environment variables
    "VOS_SCHEDULER__BATCHING": "false",  # frames encoded alone: the normal stream is bit-exact comparable
    "VOS_STREAMS__MAX_STREAMS": "12", "VOS_STREAMS__QUEUE_SIZE": "4",
    "VOS_STREAMS__MAX_FRAME_BYTES": str(1024 * 1024), "VOS_SERVER__MAX_MESSAGE_BYTES": str(MAX_MESSAGE),
    "VOS_STREAMS__IDLE_TIMEOUT_S": "120",
}
OPEN_CODES = {SC.OK, SC.INVALID_ARGUMENT, SC.RESOURCE_EXHAUSTED, SC.ALREADY_EXISTS}
UNARY_CODES = {SC.OK, SC.INVALID_ARGUMENT, SC.NOT_FOUND, SC.FAILED_PRECONDITION, SC.RESOURCE_EXHAUSTED}
DROP_PREFIXES = ("invalid", "refused", "queue_full")
NORMAL_PACE_S = 1.0  # the normal stream's frames spread over the fuzz run (~40 s in the suite)
COUNTS = {"open": 300, "frames": 500, "indices": 60, "prompts": 400, "unary": 800, "oversized": 3,
          "many_streams": 16, "reconnect": 40, "normal_frames": 36}


@dataclass
class Tally:
    """Outcomes per category: how many cases, which status or drop reason, the slowest answer."""

    cases: collections.Counter = field(default_factory=collections.Counter)
    outcomes: dict = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    max_s: collections.Counter = field(default_factory=collections.Counter)
    violations: list = field(default_factory=list)

    def record(self, category: str, outcome: str, seconds: float, ok: bool, what: str = "") -> None:
        self.cases[category] += 1
        self.outcomes[category][outcome] += 1
        self.max_s[category] = max(self.max_s[category], seconds)
        if not ok:
            self.violations.append(f"{category}: {outcome} after {seconds:.2f}s {what}"[:400])

    def as_json(self) -> dict:
        return {"cases": dict(self.cases), "outcomes": {k: dict(v) for k, v in self.outcomes.items()},
                "max_response_s": {k: round(v, 3) for k, v in self.max_s.items()},
                "violations": self.violations}


def _frames() -> list[np.ndarray]:
    return [cv2.resize(f, (W, H), interpolation=cv2.INTER_AREA) for f in real_frames("01_dog.mp4", 12, 3)]


class Fuzzer:
    def __init__(self, channel: grpc.aio.Channel, rng: np.random.Generator, counts: dict, tally: Tally) -> None:
        self.stub = pb_grpc.VosServiceStub(channel)
        self.rng, self.counts, self.tally = rng, counts, tally
        frames = _frames()
        self.payloads = {fmt: cases.FramePayloads(fmt, frames) for fmt in
                         (pb.FRAME_FORMAT_JPEG, pb.FRAME_FORMAT_PNG, pb.FRAME_FORMAT_RGB, pb.FRAME_FORMAT_BGR,
                          pb.FRAME_FORMAT_H264)}
        self.live_ids: list[str] = []  # fuzz streams open right now (unary calls aim at them too)

    # ---- StreamFrames ---------------------------------------------------------------------

    async def _open_call(self, msg: pb.StreamOpen):
        call = self.stub.StreamFrames()
        await call.write(pb.StreamRequest(open=msg))
        first = await asyncio.wait_for(call.read(), CALL_BOUND_S)
        return call, first

    async def open_cases(self) -> None:
        for _ in range(self.counts["open"]):
            msg = cases.rand_open(self.rng, W, H)
            t0 = time.monotonic()
            try:
                call, first = await self._open_call(msg)
                code = SC.OK if first is not grpc.aio.EOF and first.WhichOneof("msg") == "opened" else SC.UNKNOWN
                call.cancel()
            except grpc.aio.AioRpcError as e:
                code = e.code()
            except asyncio.TimeoutError:
                code = SC.DEADLINE_EXCEEDED
            self.tally.record("open", code.name, time.monotonic() - t0, code in OPEN_CODES, repr(msg)[:200])

    async def frame_stream(self, category: str, fmt: int, n: int, hostile_frames: bool, prompts: bool,
                           indices: bool) -> None:
        """One lossless stream: n frames (hostile, valid with hostile prompts, or odd indices), then
        half-close. Every frame sent must be answered exactly once (result or drop), the call OK."""
        sid = f"fz-{category}-{fmt}-{int(self.rng.integers(10 ** 9))}"
        call, first = await self._open_call(pb.StreamOpen(stream_id=sid, width=W, height=H, format=fmt,
                                                          mode=pb.STREAM_MODE_LOSSLESS,
                                                          initial_prompts=[cases.valid_click(H, W)]))
        assert first.WhichOneof("msg") == "opened", first
        self.live_ids.append(sid)
        payloads = self.payloads[fmt]
        sent: dict[int, float] = {}
        answered: dict[int, str] = {}
        last = -1

        async def read() -> pb.StreamResponse:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    return None
                kind = msg.WhichOneof("msg")
                if kind == "result" and not msg.result.revised:
                    answered.setdefault(msg.result.frame_index, "result")
                    self._answer(category, sent, msg.result.frame_index, "result", True)
                elif kind == "drop":
                    reason = msg.drop.reason.split(":", 1)[0]
                    ok = reason in DROP_PREFIXES
                    answered.setdefault(msg.drop.frame_index, reason)
                    self._answer(category, sent, msg.drop.frame_index, f"drop:{reason}", ok, msg.drop.reason)
                elif kind == "closed":
                    return msg

        reader = asyncio.create_task(read())
        for _ in range(n):
            index = last + 1
            if indices:
                index = int(cases.pick(self.rng, (last, last - 5, last + 1, last + 1000, 2 ** 62, -(2 ** 40))))
            frame = pb.Frame(index=index)
            hostile = hostile_frames and self.rng.random() < 0.7
            frame.data = payloads.hostile(self.rng) if hostile else payloads.next_valid()
            if prompts:
                frame.prompts.extend(cases.rand_prompts(self.rng, H, W))
            if self.rng.random() < 0.1:
                frame.width, frame.height = int(cases.pick(self.rng, (W, W + 1, 0))), H
            if frame.ByteSize() > MAX_MESSAGE - 1024:  # an oversized message ends the call: its own category
                continue
            if index > last:
                sent[index] = time.monotonic()
                last = index
            await call.write(pb.StreamRequest(frame=frame))
        await call.done_writing()
        t0 = time.monotonic()
        closed = await asyncio.wait_for(reader, CALL_BOUND_S * 4)
        status = await call.code()
        ok = closed is not None and closed.closed.reason == "client_closed" and status == SC.OK
        missing = sorted(set(sent) - set(answered))
        self.tally.record(f"{category}_calls", status.name, time.monotonic() - t0, ok and not missing,
                          f"{sid}: closed={closed and closed.closed.reason} unanswered={missing[:10]}")
        self.live_ids.remove(sid)

    def _answer(self, category: str, sent: dict, index: int, outcome: str, ok: bool, what: str = "") -> None:
        t0 = sent.get(index)
        self.tally.record(category, outcome, 0.0 if t0 is None else time.monotonic() - t0, ok, what)

    async def frame_cases(self) -> None:
        per = max(1, self.counts["frames"] // len(self.payloads) // 2)
        for fmt in self.payloads:
            for _ in range(2):
                await self.frame_stream("frames", fmt, per, hostile_frames=True, prompts=False, indices=False)

    async def prompt_cases(self) -> None:
        per = max(1, self.counts["prompts"] // 4)
        for _ in range(4):
            await self.frame_stream("prompts", pb.FRAME_FORMAT_JPEG, per, hostile_frames=False, prompts=True,
                                    indices=False)

    async def index_cases(self) -> None:
        await self.frame_stream("indices", pb.FRAME_FORMAT_RGB, self.counts["indices"], hostile_frames=False,
                                prompts=False, indices=True)

    # ---- unary ----------------------------------------------------------------------------

    def _sid(self) -> str:
        if self.live_ids and self.rng.random() < 0.6:
            return cases.pick(self.rng, self.live_ids)
        return cases.rand_stream_id(self.rng)

    async def unary_cases(self) -> None:
        for _ in range(self.counts["unary"]):
            kind = int(self.rng.integers(5))
            sid = self._sid()
            if kind == 0:
                req = pb.AddPromptRequest(stream_id=sid, obj_id=int(cases.pick(self.rng, cases.I32)))
                p = cases.rand_prompt(self.rng, H, W)
                req.points.extend(p.points)
                if p.HasField("box"):
                    req.box.CopyFrom(p.box)
                if p.HasField("mask"):
                    req.mask.CopyFrom(p.mask)
                if self.rng.random() < 0.7:
                    req.frame_index = int(cases.pick(self.rng, cases.I64 + (0, 1, 2, 3)))
                rpc, call = "AddPrompt", self.stub.AddPrompt(req)
            elif kind == 1:
                rpc, call = "RemoveObject", self.stub.RemoveObject(
                    pb.RemoveObjectRequest(stream_id=sid, obj_id=int(cases.pick(self.rng, cases.I32))))
            elif kind == 2:
                rpc, call = "GetStream", self.stub.GetStream(pb.GetStreamRequest(stream_id=sid))
            elif kind == 3:
                rpc, call = "ListStreams", self.stub.ListStreams(pb.ListStreamsRequest())
            else:  # never the normal stream: it must run undisturbed
                rpc, call = "CloseStream", self.stub.CloseStream(pb.CloseStreamRequest(
                    stream_id=cases.rand_stream_id(self.rng)))
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(call, CALL_BOUND_S)
                code = SC.OK
            except grpc.aio.AioRpcError as e:
                code = e.code()
            except asyncio.TimeoutError:
                code = SC.DEADLINE_EXCEEDED
            self.tally.record("unary", f"{rpc}:{code.name}", time.monotonic() - t0, code in UNARY_CODES)

    async def unary_with_open_streams(self) -> None:
        """Unary calls while fuzz streams are open, so some hit real streams, objects and frames."""
        streams = [asyncio.create_task(self.frame_stream("prompts", pb.FRAME_FORMAT_JPEG, 40, False, False, False))
                   for _ in range(2)]
        await asyncio.sleep(0.2)
        await self.unary_cases()
        await asyncio.gather(*streams)

    # ---- limits ---------------------------------------------------------------------------

    async def oversized_cases(self) -> None:
        for _ in range(self.counts["oversized"]):
            t0 = time.monotonic()
            try:
                await self.stub.AddPrompt(pb.AddPromptRequest(stream_id="x", mask=pb.Rle(size=[1, 1],
                                                              counts="0" * (MAX_MESSAGE + 10))))
                code = SC.OK
            except grpc.aio.AioRpcError as e:
                code = e.code()
            self.tally.record("oversized", code.name, time.monotonic() - t0, code == SC.RESOURCE_EXHAUSTED)

    async def many_stream_cases(self) -> None:
        calls = []
        for i in range(self.counts["many_streams"]):
            t0 = time.monotonic()
            try:
                call, first = await self._open_call(pb.StreamOpen(stream_id=f"many-{i}", width=W, height=H))
                calls.append(call)
                code = SC.OK
            except grpc.aio.AioRpcError as e:
                code = e.code()
            self.tally.record("many_streams", code.name, time.monotonic() - t0,
                              code in (SC.OK, SC.RESOURCE_EXHAUSTED))
        for c in calls:
            c.cancel()
        await asyncio.sleep(0.2)

    async def reconnect_cases(self) -> None:
        """Open, cancel, re-open the same id at once: the reconnect must get in (never ALREADY_EXISTS)."""
        call = None
        for _ in range(self.counts["reconnect"]):
            if call is not None:
                call.cancel()
            t0 = time.monotonic()
            try:
                call, first = await self._open_call(pb.StreamOpen(stream_id="reconnect", width=W, height=H))
                code = SC.OK
            except grpc.aio.AioRpcError as e:
                call, code = None, e.code()
            self.tally.record("reconnect", code.name, time.monotonic() - t0, code == SC.OK)
        if call is not None:
            call.cancel()


async def normal_stream(stub, sid: str, n: int, pace_s: float = 0.0) -> list[int]:
    """A well-behaved camera: n real frames, lossless, one click, one every pace_s (spread over the
    whole fuzz run); returns the indices it got results for."""
    frames = _frames()
    payload = [cases.encode(pb.FRAME_FORMAT_JPEG, frames[i % len(frames)]) for i in range(n)]
    call = stub.StreamFrames()
    await call.write(pb.StreamRequest(open=pb.StreamOpen(stream_id=sid, width=W, height=H,
                                                         mode=pb.STREAM_MODE_LOSSLESS,
                                                         initial_prompts=[cases.valid_click(H, W)])))

    async def send() -> None:
        for i, data in enumerate(payload):
            await call.write(pb.StreamRequest(frame=pb.Frame(index=i, data=data)))
            await asyncio.sleep(pace_s)
        await call.done_writing()

    sender = asyncio.create_task(send())
    got = [m.result.frame_index async for m in call if m.WhichOneof("msg") == "result"]
    await sender
    return got


def redis_entries(url: str, sid: str) -> list[tuple]:
    client = redis.Redis.from_url(url)
    out = []
    for _, fields in client.xrange(masklets_key(sid)):
        m = MaskletMessage.from_fields(fields)
        out.append((m.frame_index, m.revision, tuple((o.obj_id, o.rle["counts"], round(o.score, 3))
                                                    for o in m.objects)))
    client.close()
    return out


async def run(server: ServerProcess, seed: int, counts: dict) -> dict:
    tally = Tally()
    async with grpc.aio.insecure_channel(server.target, options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        stub = pb_grpc.VosServiceStub(channel)
        reference = await normal_stream(stub, "normal-ref", counts["normal_frames"])  # before any fuzzing
        rss_before = server.rss_mib()
        fuzzer = Fuzzer(channel, np.random.default_rng(seed), counts, tally)
        normal = asyncio.create_task(normal_stream(stub, "normal", counts["normal_frames"], NORMAL_PACE_S))
        t0 = time.monotonic()
        for stage in (fuzzer.open_cases, fuzzer.frame_cases, fuzzer.index_cases, fuzzer.prompt_cases,
                      fuzzer.unary_with_open_streams, fuzzer.oversized_cases, fuzzer.many_stream_cases,
                      fuzzer.reconnect_cases):
            await stage()
        got = await normal
        seconds = time.monotonic() - t0
    ref_entries = redis_entries(server.redis_url, "normal-ref")
    entries = redis_entries(server.redis_url, "normal")
    return {"seed": seed, "counts": counts, "seconds": round(seconds, 1), **tally.as_json(),
            "total_cases": sum(tally.cases.values()), "alive": server.alive,
            "rss_mib": {"before": round(rss_before, 1), "after": round(server.rss_mib(), 1)},
            "normal": {"results": got, "reference_results": reference,
                       "redis_equal": entries == ref_entries and len(entries) == counts["normal_frames"],
                       "redis_entries": len(entries)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", action="store_true", help="10x the cases of the test suite")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/fuzz.json"))
    args = ap.parse_args()
    counts = {k: v * (10 if args.long and k != "normal_frames" else 1) for k, v in COUNTS.items()}
    if args.long:
        counts["normal_frames"] = 360
    with ServerProcess(env=SERVER_ENV) as server:
        report = asyncio.run(run(server, args.seed, counts))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("total_cases", "cases", "max_response_s", "alive", "rss_mib")},
                     indent=1))
    print(f"violations: {len(report['violations'])}; normal stream redis equal: {report['normal']['redis_equal']}")


if __name__ == "__main__":
    main()
