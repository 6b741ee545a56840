"""Factories for runtime tests: a StreamManager on the nano architecture (random weights, asked for)."""

from __future__ import annotations

import queue
from functools import lru_cache
from typing import Optional

from vos_service.config import Settings
from vos_service.engine.model import LoadedModel, ModelSpec, build_model
from vos_service.metrics import Metrics
from vos_service.runtime.manager import StreamManager


@lru_cache(maxsize=1)
def nano_model():
    return build_model(ModelSpec("nano", random_init_seed=0))


def make_manager(publisher=None, model: Optional[LoadedModel] = None, **overrides) -> StreamManager:
    """A started manager; overrides: dotted settings, e.g. {'streams.queue_size': 2}. model: nano_model()."""
    settings = Settings().with_overrides(overrides)
    m = StreamManager(model or nano_model(), settings, Metrics(), publisher)
    m.start()
    return m


class Collector:
    """A sink that records every event a stream emits (thread-safe)."""

    def __init__(self) -> None:
        self.q: queue.Queue = queue.Queue()

    def __call__(self, event) -> None:
        self.q.put(event)

    def take(self, n: int, timeout: float = 60.0, kind=None) -> list:
        out = []
        while len(out) < n:
            e = self.q.get(timeout=timeout)
            if kind is None or isinstance(e, kind):
                out.append(e)
        return out
