"""A console on a real service: the api harness's gRPC server plus ConsoleServer on the same loop."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
from typing import AsyncIterator

from tests.api.harness import serving
from vos_service.console.app import ConsoleServer


@contextlib.asynccontextmanager
async def console_serving(credentials=None, **overrides) -> AsyncIterator[tuple]:
    """(api harness Service, console port)."""
    async with serving(credentials=credentials, **{"console.port": 0, **overrides}) as s:
        console = ConsoleServer(s.manager, s.manager.settings, s.manager.metrics)
        port = await console.start()
        try:
            yield s, port
        finally:
            await console.stop()


def parse_frame(data: bytes) -> tuple[dict, bytes]:
    """A binary console message -> (header, jpeg)."""
    (n,) = struct.unpack(">I", data[:4])
    return json.loads(data[4:4 + n]), data[4 + n:]


def stalled_websocket(port: int, path: str = "/ws") -> socket.socket:
    """A WebSocket client that handshakes, asks to watch nothing yet, and then never reads.

    A tiny receive buffer makes the server's sends block soon, as a frozen browser tab would.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    return sock


def send_text(sock: socket.socket, text: str) -> None:
    """One masked client text frame (RFC 6455)."""
    payload = text.encode()
    mask = b"\x01\x02\x03\x04"
    header = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else \
        bytes([0x81, 0x80 | 126]) + struct.pack(">H", len(payload))
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
