"""Every Prometheus metric of the service, defined once.

A Metrics object owns its registry, so several services (tests, benchmarks)
can live in one process. Names follow Prometheus conventions; no label takes
unbounded values (stream ids only when per_stream is enabled).
"""

from __future__ import annotations

import contextlib
import ssl
import time
from typing import Callable, Iterator, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .metrics_http import serve_metrics

# Seconds; CPU inference ranges from milliseconds (nano) to seconds (large at 1024 px).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STAGES = ("frame_decode", "preprocess", "encode", "memory_attention", "mask_decode", "memory_encode", "upsample",
          "publish")


class Metrics:
    def __init__(self, per_stream: bool = False) -> None:
        self.registry = CollectorRegistry()
        self.per_stream = per_stream
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
                                       buckets=(1, 2, 3, 4, 6, 8, 12, 16))
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
        self.grpc_handled = Counter("vos_grpc_server_handled_total", "RPCs completed", ["method", "code"],
                                    registry=r)
        self.grpc_seconds = Histogram("vos_grpc_server_handling_seconds", "RPC handling time", ["method"],
                                      registry=r, buckets=LATENCY_BUCKETS)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage call: `with metrics.stage("encode"): ...`."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(name).observe(time.perf_counter() - t0)

    def serve(self, port: int, host: str = "127.0.0.1", ssl_context: Optional[ssl.SSLContext] = None,
              healthy: Callable[[], bool] = lambda: True) -> Optional[int]:
        """Expose GET /metrics (and /healthz) over HTTP(S); returns the bound port (0 picks one), None if off."""
        if port < 0:
            return None
        self._http = serve_metrics(self.registry, host, port, ssl_context, healthy)
        return self._http.server_address[1]

    def stop_serving(self) -> None:
        """Close the /metrics endpoint (its port and thread), if serving."""
        http = getattr(self, "_http", None)
        if http is not None:
            http.shutdown()
            http.server_close()
            self._http = None
