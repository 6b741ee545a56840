"""Every Prometheus metric of the service, defined once.

A Metrics object owns its registry, so several services (tests, benchmarks)
can live in one process. Names follow Prometheus conventions; no label takes
unbounded values (stream ids only when per_stream is enabled). gRPC metrics carry
the labels the usual gRPC dashboards read: grpc_service, grpc_method, grpc_code.
"""

from __future__ import annotations

import ssl
from http.server import ThreadingHTTPServer
from typing import Callable, ContextManager, Optional, Union

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .engine.types import Stage
from .metrics_http import serve_metrics

# Seconds; CPU inference ranges from milliseconds (nano) to seconds (large at 1024 px).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Frames per encoder pass, a whole number: bounds halfway between counts, so that
# histogram_quantile reads a batch of n as n (with bounds at 1, 2, ... a p50 read 0.5 when
# every batch was 1: linear interpolation inside (0, 1]). One bucket per size up to 8.
BATCH_BUCKETS = (0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 12.5, 16.5, 24.5, 32.5, 48.5, 64.5)


class Metrics:
    def __init__(self, per_stream: bool = False) -> None:
        self.registry = CollectorRegistry()
        self.per_stream = per_stream
        self._http: Optional[ThreadingHTTPServer] = None
        r = self.registry
        self.frame_latency = Histogram(
            "vos_frame_latency_seconds", "Frame received to result published", registry=r,
            buckets=LATENCY_BUCKETS)
        self.queue_wait = Histogram(
            "vos_queue_wait_seconds", "Time a frame waited in its stream's ingest queue", registry=r,
            buckets=LATENCY_BUCKETS)
        self.stage_seconds = Histogram(
            "vos_stage_seconds", "Time spent per pipeline stage (per call)", ["stage"], registry=r,
            buckets=LATENCY_BUCKETS)
        self.frames_received = Counter("vos_frames_received_total", "Frames received", registry=r)
        self.frames_processed = Counter("vos_frames_processed_total", "Frames segmented", registry=r)
        self.frames_dropped = Counter("vos_frames_dropped_total", "Frames dropped", ["reason"], registry=r)
        self.prompts = Counter("vos_prompts_total", "Prompts applied", ["kind"], registry=r)
        self.publish_failures = Counter("vos_publish_failures_total", "Failed Redis sends", registry=r)
        self.publish_dropped = Counter("vos_publish_dropped_total", "Messages dropped (publish buffer full)",
                                       registry=r)
        self.published = Counter("vos_published_total", "Messages published to Redis", registry=r)
        # Set from the publisher's own state at scrape time (RedisStreamsPublisher): what the
        # fleet's "Redis down" alert reads, without a separate Redis exporter.
        self.redis_connected = Gauge("vos_redis_connected", "1 if the last Redis send went through", registry=r)
        self.publish_buffered = Gauge("vos_publish_buffered", "Messages waiting for Redis", registry=r)
        self.streams_resumed = Counter("vos_streams_resumed_total",
                                       "Streams re-opened with their objects seeded from Redis", registry=r)
        self.active_streams = Gauge("vos_active_streams", "Open streams", registry=r)
        self.tracked_objects = Gauge("vos_tracked_objects", "Objects tracked over all streams", registry=r)
        self.queue_depth = Gauge("vos_queue_depth", "Frames waiting over all streams", registry=r)
        self.encoder_batch = Histogram("vos_encoder_batch_size", "Frames per image-encoder pass", registry=r,
                                       buckets=BATCH_BUCKETS)
        self.stream_frames = Counter("vos_stream_frames_processed_total", "Frames segmented per stream",
                                     ["stream_id"], registry=r) if per_stream else None
        self.console_viewers = Gauge("vos_console_viewers", "Console browser tabs connected", registry=r)
        self.console_frames_sent = Counter("vos_console_frames_sent_total", "Frames sent to console viewers",
                                           ["kind"], registry=r)
        self.console_frames_skipped = Counter("vos_console_frames_skipped_total",
                                              "Frames a console viewer did not get (newest wins)", ["kind"],
                                              registry=r)
        self.console_prompt_rtt = Histogram("vos_console_prompt_rtt_seconds",
                                            "Console click to revised mask on screen, measured in the page",
                                            registry=r, buckets=LATENCY_BUCKETS)
        # grpc_service: "vos.v1.VosService", grpc_method: "StreamFrames", grpc_code: "OK", ... (bounded:
        # only registered methods are recorded).
        self.grpc_handled = Counter("vos_grpc_server_handled_total", "RPCs completed",
                                    ["grpc_service", "grpc_method", "grpc_code"], registry=r)
        self.grpc_seconds = Histogram("vos_grpc_server_handling_seconds", "RPC handling time",
                                      ["grpc_service", "grpc_method"], registry=r, buckets=LATENCY_BUCKETS)

    def stage(self, stage: Union[Stage, str]) -> ContextManager:
        """Time one stage call: ``with metrics.stage(Stage.ENCODE): ...`` (the engine's StageTimer)."""
        return self.stage_seconds.labels(str(Stage(stage))).time()

    def serve(self, port: int, host: str = "127.0.0.1", ssl_context: Optional[ssl.SSLContext] = None,
              healthy: Callable[[], bool] = lambda: True) -> Optional[int]:
        """Expose GET /metrics (and /healthz) over HTTP(S); returns the bound port (0 picks one), None if off."""
        if port < 0:
            return None
        self._http = serve_metrics(self.registry, host, port, ssl_context, healthy)
        return self._http.server_address[1]

    def stop_serving(self) -> None:
        """Close the /metrics endpoint (its port and thread), if serving."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
