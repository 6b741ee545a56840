"""Typed settings, one section per concern: types, ranges, unknown keys refused.

pydantic models (extra="forbid", frozen): every field has a default, a range
where a number is bounded, and a one-line description. A bad value stops the
service at start-up with a message naming the field, instead of stalling or
crashing streams later (queue_size 0 once did both).

Sources, highest first: CLI flags (`with_overrides`), a JSON settings file
(`from_file`), environment variables `VOS_<SECTION>__<FIELD>` (for example
`VOS_SERVER__PORT=50052`, `VOS_STREAMS__MAX_STREAMS=4`), the defaults here.
Fields marked (runtime) may change while the service runs; the rest are read
at start-up.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .engine.types import PromptedPolicy

if TYPE_CHECKING:  # engine.memory imports torch; a client reads settings without it
    from .engine.memory import MemoryConfig

MiB = 1024 * 1024


class SettingsError(ValueError):
    """A settings file, variable or override names an unknown key or a bad value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ModelSettings(_Section):
    config: Optional[str] = Field(None, description="sam2 config name or 'nano'; default follows the weights")
    checkpoint: Optional[str] = Field(None, description="a registry name (see `weights list`) or a .pt path")
    random_weights: Optional[int] = Field(None, ge=0,
                                          description="seed for RANDOM weights (tests, demos); never implied")
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$", description="cpu | cuda[:N]")
    dtype: Literal["fp32", "bf16"] = Field("fp32", description="fp32 | bf16 (autocast)")
    image_size: Optional[int] = Field(None, ge=64, le=4096, multiple_of=16,
                                      description="model input size override (multiple of 16)")
    compile: bool = Field(False, description="torch.compile the image encoder at start-up (CPU: ~80 s for a few "
                                             "per cent; meant for GPUs, see benchmarks/gpu_check.sh)")


class StreamSettings(_Section):
    max_streams: int = Field(16, ge=1, le=1024, description="concurrent streams; more -> RESOURCE_EXHAUSTED")
    max_objects: int = Field(16, ge=1, le=256, description="objects per stream")
    queue_size: int = Field(4, ge=1, le=256, description="ingest queue per stream (frames waiting)")
    max_frame_bytes: int = Field(16 * MiB, ge=1024, le=1024 * MiB, description="encoded frame size limit")
    max_width: int = Field(3840, ge=16, le=8192, description="source resolution limit (4K)")
    max_height: int = Field(2160, ge=16, le=8192, description="source resolution limit (4K)")
    idle_timeout_s: float = Field(30.0, gt=0, description="(runtime) close streams that send no frame for this long")
    feature_ring: int = Field(8, ge=1, le=64, description="frames a correction may land on (the latest included)")
    max_prompted: int = Field(4, ge=1, le=64, description="prompted memories per object")
    prompted_policy: PromptedPolicy = Field(PromptedPolicy.FIRST_AND_RECENT,
                                            description="first_and_recent | recent")
    resume_from_redis: bool = Field(False, description="a stream opened with no initial prompts continues from its "
                                    "newest masklet in Redis (failover in a fleet: README, Deploy)")
    lease_ttl_s: float = Field(0.0, ge=0, le=600, description="fleet: hold a Redis lease per stream with this "
                               "expiry so no two replicas serve one stream (0 = off; README, Deploy)")
    max_points: int = Field(64, ge=1, le=1024, description="clicks in one prompt (cost grows with their square)")
    max_mask_rle_bytes: int = Field(1 * MiB, ge=64, le=64 * MiB,
                                    description="length of a mask prompt's RLE counts string")

    def memory_config(self) -> MemoryConfig:
        from .engine.memory import MemoryConfig

        return MemoryConfig(max_prompted=self.max_prompted, prompted_policy=PromptedPolicy(self.prompted_policy))


class SchedulerSettings(_Section):
    max_batch: int = Field(4, ge=1, le=64, description="frames of different streams encoded in one pass")
    max_wait_ms: float = Field(2.0, ge=0, le=1000,
                               description="(runtime) wait this long for more streams to fill a batch")
    batching: bool = Field(True, description="cross-stream encoder batching on/off (benchmarks compare)")


class RedisSettings(_Section):
    url: Optional[str] = Field(None, pattern=r"^(redis|rediss|unix)://",
                               description="redis://[:password@]host:port/db; None -> an embedded redis-server")
    maxlen: int = Field(10_000, ge=1, description="approximate XADD MAXLEN per stream key")
    buffer_size: int = Field(2_000, ge=1, le=1_000_000, description="messages held while Redis is slow or down")
    enabled: bool = Field(True, description="publish at all")
    key_ttl_s: int = Field(3600, ge=0, description="a closed stream's masklet key expires after this long (0 = never)")
    embedded_maxmemory_mb: int = Field(256, ge=16, description="memory limit of the embedded redis-server")
    embedded_appendfsync: Literal["always", "everysec"] = Field(
        "always", description="embedded server: fsync the AOF before each reply (always: a crash loses nothing "
                              "acknowledged) or once a second")
    embedded_data_dir: Optional[str] = Field(None, description="append-only data of the embedded server "
                                                               "(None: a temp dir, removed at exit)")


class IdentitySpec(_Section):
    """One client the service lets in (token file entry, or inline in auth.identities)."""

    name: str = Field(min_length=1, max_length=128, description="who: shown in logs and errors")
    roles: list[Literal["camera", "operator", "viewer", "admin"]] = Field(min_length=1, description="what it may do")
    token_sha256: Optional[str] = Field(None, pattern=r"^[0-9a-fA-F]{64}$",
                                        description="sha256 hex of its bearer token (`vos-service auth token`)")
    cert_cn: Optional[str] = Field(None, min_length=1, description="or: the subject CN of its TLS client certificate")
    streams: list[str] = Field(["*"], description="fnmatch patterns of the stream ids a camera may open")
    max_streams: Optional[int] = Field(None, ge=1, description="streams open at once (None: max_streams only)")
    max_objects: Optional[int] = Field(None, ge=1, description="objects per stream it opens")
    max_fps: Optional[float] = Field(None, gt=0, description="frames per second over all its streams")

    @model_validator(mode="after")
    def _has_credential(self) -> "IdentitySpec":
        if not self.token_sha256 and not self.cert_cn:
            raise ValueError(f"identity {self.name!r} needs token_sha256 or cert_cn")
        return self


class AuthSettings(_Section):
    tokens_file: Optional[str] = Field(None, description="JSON {\"identities\": [...]}: see README, Security")
    identities: list[IdentitySpec] = Field([], description="identities inline (e.g. VOS_AUTH__IDENTITIES as JSON)")
    allow_insecure_public: bool = Field(False, description="serve a non-loopback address with no identities "
                                                            "configured (anyone may do anything)")
    default_max_streams: Optional[int] = Field(4, ge=1, description="streams at once for identities that set no "
                                                                    "max_streams (admins: no default)")
    default_max_fps: Optional[float] = Field(None, gt=0, description="frame rate of identities that set no max_fps")

    @property
    def configured(self) -> bool:
        return bool(self.tokens_file or self.identities)


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", min_length=1, description="gRPC bind address")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port (0 = pick a free one)")
    metrics_port: int = Field(9464, ge=-1, le=65535, description="Prometheus /metrics over HTTP (0 = pick, -1 = off)")
    max_message_bytes: int = Field(32 * MiB, ge=64 * 1024, le=2047 * MiB,
                                   description="gRPC message limit: a 4K JPEG fits with room")
    drain_timeout_s: float = Field(5.0, ge=0, le=600,
                                   description="graceful shutdown: finish in-flight frames this long")
    per_stream_metrics: bool = Field(False, description="label metrics with stream ids (unbounded cardinality)")
    replica_id: Optional[str] = Field(None, min_length=1, max_length=128,
                                      description="this replica's name in a fleet (default: host name and pid)")
    tls_cert: Optional[str] = Field(None, description="PEM server certificate (chain): gRPC over TLS")
    tls_key: Optional[str] = Field(None, description="PEM private key of tls_cert")
    tls_client_ca: Optional[str] = Field(None, description="PEM CA bundle: require client certificates it signed")
    metrics_host: str = Field("127.0.0.1", min_length=1, description="bind address of /metrics (keep it internal)")
    metrics_tls: bool = Field(False, description="serve /metrics over TLS with tls_cert (and tls_client_ca)")

    @model_validator(mode="after")
    def _tls_pair(self) -> "ServerSettings":
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together")
        if (self.tls_client_ca or self.metrics_tls) and not self.tls_cert:
            raise ValueError("tls_client_ca and metrics_tls need tls_cert and tls_key")
        return self


class ConsoleSettings(_Section):
    """The operator console (a web page served by the service itself; README: Console)."""

    enabled: bool = Field(True, description="serve the console (on by default: it is how operators correct masks)")
    host: str = Field("127.0.0.1", min_length=1, description="bind address of the console's HTTP port")
    port: int = Field(8080, ge=0, le=65535, description="console HTTP port (0 = pick a free one)")
    view_width: int = Field(640, ge=64, le=3840, description="width of the JPEGs of a watched stream")
    thumb_width: int = Field(240, ge=32, le=640, description="width of the overview thumbnails")
    thumb_interval_s: float = Field(2.0, gt=0, description="one thumbnail per stream this often")
    jpeg_quality: int = Field(80, ge=10, le=100, description="JPEG quality of what the console sends")
    max_viewers: int = Field(32, ge=1, le=1024, description="browser tabs connected at once")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", frozen=True, validate_default=True, env_prefix="VOS_",
                                      env_nested_delimiter="__", nested_model_default_partial_update=True)

    model: ModelSettings = Field(default_factory=ModelSettings)
    streams: StreamSettings = Field(default_factory=StreamSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        public = [f"{name} {host!r}" for name, host in (("server.host", self.server.host),
                                                         ("console.host", self.console.host))
                  if not is_loopback(host) and (name == "server.host" or self.console.enabled)]
        if public and not self.auth.configured and not self.auth.allow_insecure_public:
            raise ValueError(f"{', '.join(public)} is not a loopback address and no identities are "
                             "configured (auth.tokens_file / auth.identities): anyone reaching it could stream, "
                             "prompt and close streams. Configure identities, or set auth.allow_insecure_public")
        if self.streams.max_frame_bytes >= self.server.max_message_bytes:
            raise ValueError(f"streams.max_frame_bytes ({self.streams.max_frame_bytes}) must be below "
                             f"server.max_message_bytes ({self.server.max_message_bytes}): a frame travels "
                             "in one message with its prompts")
        return self

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> "Settings":
        if not isinstance(data, dict):
            raise SettingsError("settings must be a mapping of sections")
        return _validated(lambda: cls(**data))

    @classmethod
    def from_file(cls, path: Path) -> "Settings":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SettingsError(f"cannot read settings file {path}: {e}") from e
        return cls.from_mapping(data)

    def with_overrides(self, overrides: dict[str, Any]) -> "Settings":
        """Override dotted keys, e.g. {'server.port': 0}; None values are ignored."""
        data = self.model_dump()
        for key, value in overrides.items():
            if value is None:
                continue
            section, _, name = key.partition(".")
            if section not in data or name not in data[section]:
                raise SettingsError(f"unknown setting {key!r}")
            data[section][name] = value
        return Settings.from_mapping(data)


def setting_field(key: str) -> tuple[str, Any]:
    """(description, default) of a dotted setting: 'server.port' -> ('gRPC port (0 = pick a free one)', 50051)."""
    section, _, name = key.partition(".")
    info = Settings.model_fields.get(section)
    fields = getattr(info.annotation, "model_fields", {}) if info is not None else {}
    if name not in fields:
        raise SettingsError(f"unknown setting {key!r}")
    field = fields[name]
    return field.description or "", field.get_default(call_default_factory=True)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost (what only this machine can reach)."""
    h = host.strip("[]").lower()
    if h == "localhost" or h == "::1":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _validated(build) -> Settings:
    try:
        return build()
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
                             for err in e.errors())
        raise SettingsError(f"invalid settings: {problems}") from None
