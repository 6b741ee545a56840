"""`vos-service serve` as a child process: the real service, with the shipped model and embedded Redis.

A separate process so a test can tell "the process died" from "a call failed", and read its RSS.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

_READY = re.compile(r"vos-service: gRPC on (\S+):(\d+), metrics on (\S+), Redis (\S+);")
_CONSOLE = re.compile(r"vos-service: console at (\S+)")


class ServerProcess:
    """Start with `with ServerProcess(env={...}) as srv:`; srv.target, srv.redis_url, srv.rss_mib()."""

    def __init__(self, env: Optional[dict[str, str]] = None, startup_timeout_s: float = 180.0,
                 cwd: Optional[Path] = None, args: tuple[str, ...] = ("--metrics-port", "-1")) -> None:
        self.args = args  # more `serve` flags
        self.env = {**os.environ, "VOS_CONSOLE__PORT": "0", **(env or {})}  # never a fixed port in tests
        self.cwd = cwd  # `python -m` imports vos_service from here first (another checkout, for comparisons)
        self.startup_timeout_s = startup_timeout_s
        self.proc: Optional[subprocess.Popen] = None
        self.target = ""
        self.redis_url = ""
        self._log = tempfile.NamedTemporaryFile(prefix="vos-fuzz-", suffix=".log", delete=False)

    def __enter__(self) -> "ServerProcess":
        cmd = [sys.executable, "-m", "vos_service.cli", "serve", "--port", "0", *self.args]
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            m = _READY.search(self.log())
            if m:
                self.target, self.redis_url = f"127.0.0.1:{m.group(2)}", m.group(4)
                self.metrics_port = None if m.group(3) == "off" else int(m.group(3))
                c = _CONSOLE.search(self.log())
                self.console_url = c.group(1) if c else None
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        output = self.log()[-3000:]  # before __exit__, which deletes the log
        self.__exit__()
        raise RuntimeError(f"the service did not start:\n{output}")

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_mib(self) -> float:
        """Resident set size of the service process (its embedded Redis is a separate process)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        os.unlink(self._log.name)
