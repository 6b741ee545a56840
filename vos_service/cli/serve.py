"""`vos-service serve`: run the streaming service until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ..config import Settings
from .model_args import add_model_arguments
from ..service import Service


def add_subparser(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the gRPC streaming service",
                              description="Serve StreamFrames/AddPrompt over gRPC, publish masklets to "
                                          "Redis Streams, expose Prometheus metrics.")
    p.add_argument("--settings", type=Path, help="a JSON settings file (sections: model, streams, "
                                                  "scheduler, redis, server); flags override it")
    add_model_arguments(p)
    p.add_argument("--host", help="gRPC bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="gRPC port (default 50051; 0 picks one)")
    p.add_argument("--metrics-port", type=int, help="Prometheus port (default 9464; -1 off)")
    p.add_argument("--redis-url", help="redis://host:port (default: start an embedded redis-server)")
    p.add_argument("--no-redis", action="store_true", help="do not publish to Redis")
    p.add_argument("--console-port", type=int, help="operator console HTTP port (default 8080; 0 picks one)")
    p.add_argument("--no-console", action="store_true", help="do not serve the operator console")
    p.add_argument("--max-streams", type=int)
    p.add_argument("--max-objects", type=int)
    p.add_argument("--queue-size", type=int)
    p.add_argument("--idle-timeout", type=float)
    p.add_argument("--max-batch", type=int, help="frames of different streams per encoder pass")
    p.add_argument("--max-wait-ms", type=float, help="how long to wait to fill an encoder batch")
    sec = p.add_argument_group("security (README: Security)")
    sec.add_argument("--tokens-file", help="JSON identities (`vos-service auth token`); turns auth on")
    sec.add_argument("--tls-cert", help="PEM server certificate: gRPC over TLS")
    sec.add_argument("--tls-key", help="PEM key of --tls-cert")
    sec.add_argument("--tls-client-ca", help="PEM CA: require client certificates signed by it")
    sec.add_argument("--allow-insecure-public", action="store_true",
                     help="serve a non-loopback --host with no identities (anyone may do anything)")
    p.set_defaults(func=run)


def settings_from_args(args) -> Settings:
    base = Settings.from_file(args.settings) if args.settings else Settings.from_mapping({})  # + VOS_* env
    return base.with_overrides({
        "model.config": args.config, "model.checkpoint": args.model or args.checkpoint,
        "model.random_weights": args.random_weights, "model.device": args.device, "model.dtype": args.dtype,
        "model.image_size": args.image_size, "server.host": args.host, "server.port": args.port,
        "server.metrics_port": args.metrics_port, "redis.url": args.redis_url,
        "redis.enabled": False if args.no_redis else None, "console.port": args.console_port,
        "console.enabled": False if args.no_console else None, "streams.max_streams": args.max_streams,
        "streams.max_objects": args.max_objects, "streams.queue_size": args.queue_size,
        "streams.idle_timeout_s": args.idle_timeout, "scheduler.max_batch": args.max_batch,
        "scheduler.max_wait_ms": args.max_wait_ms, "auth.tokens_file": args.tokens_file,
        "server.tls_cert": args.tls_cert, "server.tls_key": args.tls_key, "server.tls_client_ca": args.tls_client_ca,
        "auth.allow_insecure_public": True if args.allow_insecure_public else None})


def run(args) -> int:
    settings = settings_from_args(args)

    async def main() -> None:
        service = Service(settings)
        ep = await service.start()
        if ep.console_port is not None:
            print(f"vos-service: console at http://{settings.console.host}:{ep.console_port}/", file=sys.stderr,
                  flush=True)
        print(f"vos-service: gRPC on {settings.server.host}:{ep.grpc_port}, metrics on "
              f"{'off' if ep.metrics_port is None else ep.metrics_port}, Redis {ep.redis_url or 'off'}; "
              f"model {service.model.spec.config} ({service.model.weights})", file=sys.stderr, flush=True)
        await service.run_until_signal()

    asyncio.run(main())
    return 0
