"""Assemble the service: model, Redis publishing, metrics endpoint, runtime, gRPC server.

`Service.start()` brings everything up from typed Settings; `stop()` drains and
tears it down in reverse order. No Redis URL configured -> a real redis-server
is started next to the service (embedded), so a fresh machine needs nothing else.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

from .api.auth import Authenticator
from .api.server import build_server, graceful_stop, serve_forever, start_server
from .api.tls import metrics_ssl_context
from .config import Settings, SettingsError
from .console.app import ConsoleServer
from .engine.model import LoadedModel, ModelSpec, build_model
from .metrics import Metrics
from .publish.embedded import EmbeddedRedis
from .runtime.manager import StreamManager
from .runtime.publishing import RedisStreamsPublisher
from .weights.selection import spec_from_settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Endpoints:
    grpc_port: int
    metrics_port: Optional[int]
    redis_url: Optional[str]
    console_port: Optional[int] = None


def off_main_thread(fn: Callable[[], T], name: str = "vos-torch-setup") -> T:
    """Run ``fn`` on a one-worker thread pool that is shut down after it; its result or error comes back here.

    Why: torch's CPU ops keep a pool of OpenMP threads per calling thread. A pool left
    behind by the main thread competed with the worker thread's and halved the worker's
    speed on a 2-core machine (measured with benchmarks/service_load.py before this fix:
    55.9 -> 30.2 ms per nano frame). The worker thread exits with the executor, and its pool with it.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        return pool.submit(fn).result()


class Service:
    def __init__(self, settings: Settings, model: Optional[LoadedModel] = None) -> None:
        self.settings = settings
        self.model = model
        self.metrics = Metrics(per_stream=settings.server.per_stream_metrics)
        self.redis: Optional[EmbeddedRedis] = None
        self.manager: Optional[StreamManager] = None
        self.server = None
        self.endpoints: Optional[Endpoints] = None
        self.console: Optional[ConsoleServer] = None

    async def start(self) -> Endpoints:
        s = self.settings
        if self.model is None:
            spec = spec_from_settings(s.model)
            self.model = off_main_thread(lambda: build_model(spec))  # torch stays off the main thread
        log.info("model %s at %dpx, %s", self.model.spec.config, self.model.image_size, self.model.weights)
        publisher, redis_url = None, None
        if s.redis.enabled:
            redis_url = s.redis.url
            if redis_url is None:
                # Supervised (restarted on the same port if it dies), append-only, password-protected,
                # with a memory limit: see publish/embedded.py.
                self.redis = EmbeddedRedis(data_dir=s.redis.embedded_data_dir, supervise=True,
                                           maxmemory=s.redis.embedded_maxmemory_mb * 1024 * 1024,
                                           appendfsync=s.redis.embedded_appendfsync).start()
                redis_url = self.redis.url
                log.info("no Redis URL configured: started an embedded redis-server at %s", self.redis.redacted_url)
            publisher = RedisStreamsPublisher(redis_url, maxlen=s.redis.maxlen, buffer_size=s.redis.buffer_size,
                                              metrics=self.metrics, key_ttl_s=s.redis.key_ttl_s)
        self.manager = StreamManager(self.model, s, self.metrics, publisher)
        if s.streams.lease_ttl_s > 0:
            if redis_url is None:
                raise SettingsError("streams.lease_ttl_s needs Redis (redis.enabled)")
            import redis

            from .api.routing import replica_name
            from .fleet.lease import StreamLeases

            client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            replica = replica_name(s.server.replica_id)
            self.manager.leases = StreamLeases(  # type: ignore[assignment]  # StreamManager declares leases = None
                client, replica, s.streams.lease_ttl_s, on_lost=self.manager.lease_lost)
            assert publisher is not None  # redis_url is set
            publisher.lease_owner = replica  # a closing stream's expiry spares a key taken over meanwhile
        self.manager.start()
        metrics_port = self.metrics.serve(s.server.metrics_port, s.server.metrics_host, metrics_ssl_context(s.server),
                                          healthy=lambda: self.manager is not None and self.manager.accepting)
        auth = Authenticator.from_settings(s.auth)  # one for both doors: gRPC and the console
        self.server, port = build_server(self.manager, s, self.metrics, auth)
        await start_server(self.server)
        console_port = None
        if s.console.enabled:  # same process and event loop; it talks to the runtime, never to tensors
            self.console = ConsoleServer(self.manager, s, self.metrics, auth)
            console_port = await self.console.start()
        self.endpoints = Endpoints(port, metrics_port, redis_url, console_port)
        return self.endpoints

    async def run_until_signal(self) -> None:
        assert self.server is not None and self.manager is not None, "start() first"
        await serve_forever(self.server, self.manager, self.settings.server.drain_timeout_s)
        await self._stop_console()
        self._stop_redis()

    async def stop(self) -> None:
        if self.server is not None:
            await graceful_stop(self.server, self.manager, self.settings.server.drain_timeout_s)
        await self._stop_console()
        self._stop_redis()

    async def _stop_console(self) -> None:
        if self.console is not None:
            await self.console.stop()
            self.console = None

    def _stop_redis(self) -> None:
        self.metrics.stop_serving()
        if self.redis is not None:
            self.redis.close()  # stops the server and removes its temp dir
            self.redis = None


__all__ = ["Service", "Endpoints", "ModelSpec"]
