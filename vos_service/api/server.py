"""Build, start and stop the gRPC server: VosService, health checking, reflection (v1 and v1alpha), metrics.

Call these from inside the event loop that will run the server (grpc.aio
binds to the running loop):

    server, port = build_server(manager, settings, metrics)
    await start_server(server)
    await serve_forever(server, manager, drain=settings.server.drain_timeout_s)

Shutdown order (graceful_stop): health goes NOT_SERVING so load balancers
stop sending new streams; the manager drains queued frames and closes every
stream (each StreamFrames call gets `closed`, reason "shutdown"); then the
server stops, giving in-flight RPCs `grace` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import weakref
from dataclasses import dataclass
from typing import Optional

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ..config import Settings, is_loopback
from ..metrics import Metrics
from ..runtime.manager import StreamManager
from .auth import Authenticator
from .gen.vos.v1 import vos_pb2 as pb
from .gen.vos.v1 import vos_pb2_grpc as pb_grpc
from .interceptor import MetricsInterceptor
from .reflection import enable_reflection
from .servicer import VosServicer
from .tls import server_credentials

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["VosService"].full_name  # "vos.v1.VosService"


@dataclass
class _Parts:
    health: health.aio.HealthServicer
    servicer: VosServicer


# The pieces graceful_stop needs, keyed by server (grpc.aio.Server takes no extra attributes
# by contract); weak, so a dropped server frees them.
_PARTS: "weakref.WeakKeyDictionary[grpc.aio.Server, _Parts]" = weakref.WeakKeyDictionary()


def build_server(manager: StreamManager, settings: Settings, metrics: Metrics,
                 auth: Optional[Authenticator] = None) -> tuple[grpc.aio.Server, int]:
    """A configured, bound, not yet started server and its port (server.port 0 picks one);
    ``auth``: who may call (default: from settings.auth)."""
    cfg = settings.server
    options = [("grpc.max_send_message_length", cfg.max_message_bytes),
               ("grpc.max_receive_message_length", cfg.max_message_bytes),
               # Ping idle connections: a camera that vanished without closing (power, network)
               # is noticed within ~40 s and its stream freed, instead of holding its id.
               ("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_timeout_ms", 10_000),
               ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]
    server = grpc.aio.server(interceptors=[MetricsInterceptor(metrics)], options=options)
    servicer = VosServicer(manager, settings, metrics, auth=auth)
    pb_grpc.add_VosServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()  # "" (the whole server) starts SERVING
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection((SERVICE_NAME, health.SERVICE_NAME), server)  # grpc.reflection.v1 and v1alpha
    address = f"{cfg.host}:{cfg.port}"
    if cfg.tls_cert:
        port = server.add_secure_port(address, server_credentials(cfg))
    else:
        if servicer.auth.enabled and not is_loopback(cfg.host):
            log.warning("gRPC on %s without TLS: bearer tokens cross the network in clear text", address)
        port = server.add_insecure_port(address)
    if port == 0:  # grpc reports a failed bind as port 0
        raise OSError(f"cannot bind the gRPC server to {address}")
    _PARTS[server] = _Parts(health_servicer, servicer)
    return server, port


async def start_server(server: grpc.aio.Server) -> None:
    """Start serving and report SERVING for the server and for vos.v1.VosService."""
    await server.start()
    parts = _PARTS.get(server)
    if parts is not None:
        await parts.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)


async def graceful_stop(server: grpc.aio.Server, manager: StreamManager, drain: float,
                        grace: Optional[float] = 1.0) -> None:
    """NOT_SERVING, drain and close every stream (up to `drain` s), then stop the server."""
    parts = _PARTS.get(server)
    if parts is not None:
        parts.servicer.draining = True  # refuse new streams and frames from now on
        await parts.health.enter_graceful_shutdown()  # every service NOT_SERVING, for good
    # shutdown() sleeps while queues drain and joins the worker: keep it off the loop, which
    # must go on sending the last results and the `closed` messages.
    await asyncio.to_thread(manager.shutdown, drain)
    await server.stop(grace)
    if parts is not None:
        parts.servicer.close()
    log.info("gRPC server stopped")


async def serve_forever(server: grpc.aio.Server, manager: StreamManager, drain: float,
                        grace: Optional[float] = 1.0) -> None:
    """Run until SIGINT/SIGTERM (or the server stops), then stop gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            pass
    waiter = asyncio.create_task(server.wait_for_termination())
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        stopper.cancel()
    if not waiter.done():
        log.info("shutting down: draining streams for up to %.1f s", drain)
        await graceful_stop(server, manager, drain, grace)
    waiter.cancel()
