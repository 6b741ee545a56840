"""`vos-service serve` with no model configured: the shipped nano model tracks for real.

A held-out synthetic clip (ground truth known, never trained on) goes through the
whole service over gRPC as lossless PNG frames with one click per object; the
masklets that come back must equal the engine's own run on the same frames and
must track the objects (J far above the repeat-first-frame baseline).
"""

from __future__ import annotations

import numpy as np

from tests.api.harness import run
from vos_service.client import VosClient
from vos_service.client.types import Result
from vos_service.config import Settings
from vos_service.engine.types import Prompt
from vos_service.eval.metrics import region_j
from vos_service.eval.tracking import HeldOutProtocol, center_click, track_one_click
from vos_service.service import Service


def test_default_service_tracks_heldout_objects_like_the_engine():
    clip = HeldOutProtocol(clips=1).clip_list()[0]
    prompts = [(oid, Prompt.from_points([center_click(clip.masks[0] == oid)], [1])) for oid in clip.object_ids]

    async def scenario():
        svc = Service(Settings().with_overrides({"server.port": 0, "server.metrics_port": 0, "console.port": 0,
                                                 "redis.enabled": False}))
        ep = await svc.start()  # builds the default model: the shipped nano
        client = VosClient(f"127.0.0.1:{ep.grpc_port}")
        try:
            await client.wait_ready()
            frames = [(i, f, i / 10) for i, f in enumerate(clip.frames)]
            events = [e async for e in client.stream("synth", frames, format="png", mode="lossless",
                                                     initial_prompts=prompts)]
            return svc.model, [e for e in events if isinstance(e, Result) and not e.revised]
        finally:
            await client.close()
            await svc.stop()

    model, results = run(scenario())
    assert "RANDOM" not in model.weights and model.spec.config == "nano"
    assert [r.frame_index for r in results] == list(range(len(clip.frames)))
    engine = track_one_click(model, clip)  # id maps from the engine alone
    js = []
    for r, expected in zip(results, engine):
        got = np.zeros_like(expected)
        for m in sorted(r.masklets, key=lambda m: m.score):  # as eval.tracking.id_map: higher score on top
            if m.visible:
                got[m.mask()] = m.obj_id
        np.testing.assert_array_equal(got, expected)
        js += [region_j(got == o, clip.masks[r.frame_index] == o) for o in clip.object_ids]
    base = [region_j(clip.masks[0] == o, clip.masks[t] == o) for t in range(len(clip.masks)) for o in clip.object_ids]
    assert np.mean(js) > np.mean(base) + 0.2


def test_off_main_thread_returns_or_raises_from_another_thread():
    import threading

    import pytest

    from vos_service.service import off_main_thread

    assert off_main_thread(lambda: threading.current_thread() is threading.main_thread()) is False
    with pytest.raises(ZeroDivisionError):
        off_main_thread(lambda: 1 / 0)
