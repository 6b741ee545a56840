"""A server interceptor that records gRPC metrics for every RPC, unary or streaming.

vos_grpc_server_handled_total{grpc_service, grpc_method, grpc_code} and
vos_grpc_server_handling_seconds{grpc_service, grpc_method}: the labels of the usual gRPC
Prometheus dashboards (go-grpc-prometheus, py-grpc-prometheus). A call to
/vos.v1.VosService/GetStream is grpc_service "vos.v1.VosService", grpc_method "GetStream";
only *registered* handlers are recorded (bounded), grpc_code is the status name (OK, NOT_FOUND, ...).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Awaitable, Callable, Optional

import grpc

from ..metrics import Metrics


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Optional[grpc.RpcMethodHandler]]],
            details: grpc.HandlerCallDetails) -> Optional[grpc.RpcMethodHandler]:
        handler = await continuation(details)
        if handler is None:
            return None
        method = _split(details.method)
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            behavior = getattr(handler, kind)
            if behavior is not None:
                return handler._replace(**{kind: self._wrap(method, behavior)})
        return handler

    def _wrap(self, method: tuple[str, str], behavior: Callable) -> Callable:
        if inspect.isasyncgenfunction(behavior):  # streams responses with `yield`
            async def stream_behavior(request: Any, context: grpc.aio.ServicerContext):
                t0 = time.perf_counter()
                code = grpc.StatusCode.UNKNOWN
                try:
                    async for response in behavior(request, context):
                        yield response
                    code = _code(context, grpc.StatusCode.OK)
                except BaseException as e:
                    code = _failed_code(context, e)
                    raise
                finally:
                    self._record(method, code, t0)
            return stream_behavior

        async def behavior_once(request: Any, context: grpc.aio.ServicerContext):
            # Unary responses, or a stream written with context.write() inside a coroutine.
            t0 = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN
            try:
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    result = await result
                code = _code(context, grpc.StatusCode.OK)
                return result
            except BaseException as e:
                code = _failed_code(context, e)
                raise
            finally:
                self._record(method, code, t0)
        return behavior_once

    def _record(self, method: tuple[str, str], code: grpc.StatusCode, t0: float) -> None:
        self.metrics.grpc_handled.labels(*method, code.name).inc()
        self.metrics.grpc_seconds.labels(*method).observe(time.perf_counter() - t0)


def _split(full_method: str) -> tuple[str, str]:
    """'/vos.v1.VosService/GetStream' -> ('vos.v1.VosService', 'GetStream')."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


def _code(context: grpc.aio.ServicerContext, default: grpc.StatusCode) -> grpc.StatusCode:
    """The code the handler set (abort or set_code), else `default`."""
    code = context.code()
    if code is None:
        return default
    if isinstance(code, grpc.StatusCode):
        return code
    for c in grpc.StatusCode:  # some grpc versions hand back the raw integer
        if c.value[0] == code:
            return c
    return default


def _failed_code(context: grpc.aio.ServicerContext, exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return grpc.StatusCode.CANCELLED  # the client went away
    if isinstance(exc, grpc.aio.AbortError):
        return _code(context, grpc.StatusCode.UNKNOWN)
    return grpc.StatusCode.UNKNOWN  # what grpc answers for an uncaught exception
