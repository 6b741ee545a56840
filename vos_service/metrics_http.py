"""The /metrics endpoint: Prometheus text on GET /metrics, GET /healthz for proxies; TLS optional.

prometheus_client's own server answers every path with the metrics; this one answers 404
elsewhere (a scanner learns nothing from /admin or /debug); /healthz answers 200 SERVING
while the service takes streams and 503 once it drains (HAProxy's check); runs in a daemon thread, and
takes an ssl.SSLContext (api/tls.py) when server.metrics_tls is on.
"""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def _handler(registry: CollectorRegistry, healthy: Callable[[], bool]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                ok = healthy()
                body, status, ctype = (b"SERVING\n" if ok else b"NOT_SERVING\n"), (200 if ok else 503), "text/plain"
            elif path == "/metrics":
                body, status, ctype = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            else:
                self.send_error(404, "only /metrics and /healthz are served here")
                return
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # scrapes every few seconds: not worth a log line
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, ssl_context: Optional[ssl.SSLContext]) -> None:
        super().__init__(address, handler)
        self.ssl_context = ssl_context

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context is None:
            return sock, addr
        # Handshake in the request thread (do_handshake_on_connect=False), so a client that
        # never completes one ties up only its own thread, never the accept loop.
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


def serve_metrics(registry: CollectorRegistry, host: str, port: int, ssl_context: Optional[ssl.SSLContext] = None,
                  healthy: Callable[[], bool] = lambda: True) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; `server.server_address[1]` is the bound port."""
    server = _Server((host, port), _handler(registry, healthy), ssl_context)
    threading.Thread(target=server.serve_forever, name="vos-metrics", daemon=True).start()
    return server
