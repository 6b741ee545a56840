"""`vos-service serve`: run the streaming service until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .model_args import add_model_arguments, model_overrides
from .options import add_setting_flag, overrides

# (flag, setting): each flag overrides one setting; help and default come from config.py.
FLAGS = (("--host", "server.host"), ("--port", "server.port"), ("--metrics-port", "server.metrics_port"),
         ("--redis-url", "redis.url"), ("--no-redis", "redis.enabled"), ("--console-port", "console.port"),
         ("--no-console", "console.enabled"), ("--max-streams", "streams.max_streams"),
         ("--max-objects", "streams.max_objects"), ("--queue-size", "streams.queue_size"),
         ("--idle-timeout", "streams.idle_timeout_s"), ("--max-batch", "scheduler.max_batch"),
         ("--max-wait-ms", "scheduler.max_wait_ms"))
SECURITY_FLAGS = (("--tokens-file", "auth.tokens_file"), ("--tls-cert", "server.tls_cert"),
                  ("--tls-key", "server.tls_key"), ("--tls-client-ca", "server.tls_client_ca"),
                  ("--allow-insecure-public", "auth.allow_insecure_public"))
_SWITCHES = {"--no-redis": (False, "do not publish to Redis"),
             "--no-console": (False, "do not serve the operator console"),
             "--allow-insecure-public": (True, None)}
_TYPES = {"--port": int, "--metrics-port": int, "--console-port": int, "--max-streams": int, "--max-objects": int,
          "--queue-size": int, "--max-batch": int, "--idle-timeout": float, "--max-wait-ms": float}


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Serve StreamFrames/AddPrompt over gRPC, publish masklets to Redis Streams, expose "
                     "Prometheus metrics and the operator console. Flags override the settings file, which "
                     "overrides VOS_<SECTION>__<FIELD> variables.")
    p.add_argument("--settings", type=Path,
                   help="a JSON settings file (sections: model, streams, scheduler, redis, server, auth, console); "
                        "flags override it (default: none, the defaults and VOS_* variables)")
    add_model_arguments(p)
    service = p.add_argument_group("service")
    for flag, key in FLAGS:
        _add(service, flag, key)
    security = p.add_argument_group("security (README: Security)")
    for flag, key in SECURITY_FLAGS:
        _add(security, flag, key)
    p.set_defaults(func=run)


def _add(group, flag: str, key: str) -> None:
    if flag in _SWITCHES:
        const, text = _SWITCHES[flag]
        add_setting_flag(group, flag, key, const=const, help=text)
    else:
        add_setting_flag(group, flag, key, type=_TYPES.get(flag, str))


def settings_from_args(args: argparse.Namespace):
    from ..config import Settings

    base = Settings.from_file(args.settings) if args.settings else Settings.from_mapping({})  # + VOS_* env
    return base.with_overrides({**model_overrides(args), **overrides(args, FLAGS + SECURITY_FLAGS)})


def run(args: argparse.Namespace) -> int:
    from ..service import Service

    settings = settings_from_args(args)

    async def main() -> None:
        service = Service(settings)
        ep = await service.start()
        model = service.model
        assert model is not None  # start() built it
        if ep.console_port is not None:
            print(f"vos-service: console at http://{settings.console.host}:{ep.console_port}/", file=sys.stderr,
                  flush=True)
        print(f"vos-service: gRPC on {settings.server.host}:{ep.grpc_port}, metrics on "
              f"{'off' if ep.metrics_port is None else ep.metrics_port}, Redis {ep.redis_url or 'off'}; "
              f"model {model.spec.config} ({model.weights})", file=sys.stderr, flush=True)
        await service.run_until_signal()

    asyncio.run(main())
    return 0
