"""Typed settings, one section per concern. Unknown keys are errors.

Every field has a default and a one-line description. `Settings.from_mapping`
reads a nested dict (e.g. from a JSON file); the CLI overrides single fields.
Fields marked (runtime) may change while the service runs; the rest are read
at start-up.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .engine.memory import MemoryConfig
from .engine.types import PromptedPolicy


class SettingsError(ValueError):
    """A settings file or override names an unknown key or a bad value."""


@dataclass(frozen=True)
class ModelSettings:
    config: Optional[str] = None  # sam2 config name or 'nano'; default follows the weights
    checkpoint: Optional[str] = None  # a registry name (see `weights list`) or a .pt path
    random_weights: Optional[int] = None  # seed for RANDOM weights (tests, demos); never implied
    device: str = "cpu"  # cpu | cuda[:N]
    dtype: str = "fp32"  # fp32 | bf16 (autocast)
    image_size: Optional[int] = None  # model input size override (multiple of 16)


@dataclass(frozen=True)
class StreamSettings:
    max_streams: int = 16  # concurrent streams; more -> RESOURCE_EXHAUSTED
    max_objects: int = 16  # objects per stream
    queue_size: int = 4  # ingest queue per stream (frames waiting)
    max_frame_bytes: int = 16 * 1024 * 1024  # encoded frame size limit
    max_width: int = 3840  # source resolution limit (4K)
    max_height: int = 2160
    idle_timeout_s: float = 30.0  # (runtime) close streams that send no frame for this long
    feature_ring: int = 8  # frames a correction may land on (the latest included)
    max_prompted: int = 4  # prompted memories per object
    prompted_policy: str = PromptedPolicy.FIRST_AND_RECENT.value  # first_and_recent | recent

    def memory_config(self) -> MemoryConfig:
        return MemoryConfig(max_prompted=self.max_prompted, prompted_policy=PromptedPolicy(self.prompted_policy))


@dataclass(frozen=True)
class SchedulerSettings:
    max_batch: int = 4  # frames of different streams encoded in one pass
    max_wait_ms: float = 2.0  # (runtime) how long to wait for more streams to fill a batch
    batching: bool = True  # cross-stream encoder batching on/off (benchmarks compare)


@dataclass(frozen=True)
class RedisSettings:
    url: Optional[str] = None  # redis://host:port/db; None -> start an embedded redis-server
    maxlen: int = 10_000  # approximate XADD MAXLEN per stream key
    buffer_size: int = 2_000  # messages held while Redis is slow or down; oldest dropped beyond
    enabled: bool = True  # publish at all


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"  # gRPC bind address
    port: int = 50051  # gRPC port (0 = pick a free one)
    metrics_port: int = 9464  # Prometheus /metrics over HTTP (0 = pick, -1 = off)
    max_message_bytes: int = 32 * 1024 * 1024  # gRPC message limit: a 4K JPEG fits with room
    drain_timeout_s: float = 5.0  # graceful shutdown: finish in-flight frames this long
    per_stream_metrics: bool = False  # label metrics with stream ids (unbounded cardinality)


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    streams: StreamSettings = field(default_factory=StreamSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> "Settings":
        return _build(cls, data, "")

    @classmethod
    def from_file(cls, path: Path) -> "Settings":
        return cls.from_mapping(json.loads(Path(path).read_text()))

    def with_overrides(self, overrides: dict[str, Any]) -> "Settings":
        """Override dotted keys, e.g. {'server.port': 0}; None values are ignored."""
        data = dataclasses.asdict(self)
        for key, value in overrides.items():
            if value is None:
                continue
            section, _, name = key.partition(".")
            if section not in data or name not in data[section]:
                raise SettingsError(f"unknown setting {key!r}")
            data[section][name] = value
        return Settings.from_mapping(data)


def _build(cls, data: dict[str, Any], prefix: str):
    if not isinstance(data, dict):
        raise SettingsError(f"{prefix or 'settings'} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise SettingsError(f"unknown setting(s) {sorted(prefix + k for k in unknown)}")
    kwargs = {}
    for name, value in data.items():
        f = fields[name]
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            kwargs[name] = _build(f.default_factory, value, f"{prefix}{name}.")
        else:
            kwargs[name] = value
    return cls(**kwargs)
