"""EmbeddedRedis: a real server process, persistent (AOF), password-protected and hardened."""

from __future__ import annotations

import os
import socket
import stat

import pytest
import redis

from tests.publish.conftest import KILL_SAFE
from vos_service.publish import EmbeddedRedis, RedisLaunchError, find_redis_server, start_redis
from vos_service.publish.embedded import DEFAULT_MAXMEMORY
from vos_service.publish.redis_conf import DISABLED_COMMANDS

MiB = 1024 * 1024

# One harmless-looking invocation of each disabled command (all would succeed on a stock server).
INVOCATIONS = {
    "CONFIG": ("CONFIG", "GET", "maxmemory"), "DEBUG": ("DEBUG", "SLEEP", "0"), "MODULE": ("MODULE", "LIST"),
    "FLUSHALL": ("FLUSHALL",), "FLUSHDB": ("FLUSHDB",), "SLAVEOF": ("SLAVEOF", "NO", "ONE"),
    "REPLICAOF": ("REPLICAOF", "NO", "ONE"), "MIGRATE": ("MIGRATE", "127.0.0.1", "1", "k", "0", "100"),
    "SAVE": ("SAVE",), "BGSAVE": ("BGSAVE",), "BGREWRITEAOF": ("BGREWRITEAOF",), "KEYS": ("KEYS", "*"),
    "SHUTDOWN": ("SHUTDOWN", "NOSAVE"), "ACL": ("ACL", "WHOAMI"),
}


def _ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def test_finds_a_runnable_binary():
    path = find_redis_server()
    assert os.path.isfile(path) and os.access(path, os.X_OK)


def test_env_override_wins(monkeypatch):
    monkeypatch.setenv("VOS_REDIS_SERVER", "/nonexistent/redis-server")
    assert find_redis_server() == "/nonexistent/redis-server"
    server = EmbeddedRedis()
    with pytest.raises(RedisLaunchError, match="cannot run"):
        server.start()
    server.close()


def test_start_stop_restart_on_the_same_port_keeps_the_data():
    server = start_redis(**KILL_SAFE)
    try:
        url, port, password = server.url, server.port, server.password
        assert url == f"redis://:{password}@127.0.0.1:{port}/0" and server.running and _ping(url)
        assert server.redacted_url == f"redis://:***@127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        assert client.info("persistence")["aof_enabled"] == 1
        client.set("k", "v")
        client.close()

        server.stop(kill=True)  # a crash, right after the reply
        assert not server.running and server.pid is None and not _ping(url)
        server.start()
        assert server.url == url and server.password == password and _ping(url)
        assert redis.Redis.from_url(url).get("k") == b"v"  # replayed from the AOF

        server.stop()  # a clean shutdown, then back again
        server.start()
        assert redis.Redis.from_url(url).get("k") == b"v"
    finally:
        server.close()
    assert not server.running


def test_explicit_port_and_context_manager():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with EmbeddedRedis(port=port) as server:
        assert server.url == f"redis://:{server.password}@127.0.0.1:{port}/0" and _ping(server.url)
        workdir = server.data_dir
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    assert not server.running and not workdir.exists()  # the temp dir goes with close()


def test_a_port_in_use_is_a_launch_error():
    with start_redis() as first:
        second = EmbeddedRedis(port=first.port, startup_timeout_s=5.0)
        try:
            with pytest.raises(RedisLaunchError, match="exited"):
                second.start()
        finally:
            second.close()
        assert not second.running and _ping(first.url)


def test_unix_socket():
    with start_redis(unix_socket=True) as server:
        assert server.url.startswith("unix://:") and server.url.endswith("redis.sock")
        assert _ping(server.url)
        assert not _ping(f"unix://{server.data_dir / 'redis.sock'}")  # no password: refused


def test_a_password_is_required(redis_server):
    password = redis_server.password
    assert len(password) >= 32 and password in redis_server.url and password not in redis_server.redacted_url
    # Plain RESP on a socket: what any local process could send (redis-py itself starts with HELLO).
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=2.0) as conn:
        conn.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        assert conn.recv(200).startswith(b"-NOAUTH")
    anonymous = redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=2.0)
    with pytest.raises(redis.AuthenticationError):
        anonymous.set("k", "v")
    anonymous.close()
    wrong = redis.Redis(host="127.0.0.1", port=redis_server.port, password="guess", socket_timeout=2.0)
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    wrong.close()
    assert redis.Redis.from_url(redis_server.url).ping()
    with start_redis() as other:
        assert other.password != password  # generated per instance


def test_config_is_private_and_binds_loopback_only():
    with start_redis() as server:
        conf = server.data_dir / "redis.conf"
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600  # it holds the password
        lines = conf.read_text().splitlines()
        assert "bind 127.0.0.1" in lines and "protected-mode yes" in lines
        assert "appendonly yes" in lines and "appendfsync everysec" in lines  # the default
        client = redis.Redis.from_url(server.url)
        assert int(client.info("server")["tcp_port"]) == server.port
        assert client.info("persistence")["aof_enabled"] == 1
        client.close()
    with pytest.raises(ValueError):
        EmbeddedRedis(appendfsync="sometimes")


def test_dangerous_commands_are_disabled(redis_server, redis_client):
    assert set(INVOCATIONS) == set(DISABLED_COMMANDS)
    redis_client.set("survivor", "1")
    for name, args in INVOCATIONS.items():
        with pytest.raises(redis.ResponseError, match="unknown command") as exc_info:
            redis_client.execute_command(*args)
        assert name.lower() in str(exc_info.value).lower()
    # Nothing of it took effect: the key survived FLUSHALL, the server SHUTDOWN.
    assert redis_client.get("survivor") == b"1" and redis_server.running
    # Whatever the server needs still works: SCAN instead of KEYS, XADD, PEXPIRE.
    assert b"survivor" in redis_client.scan(0, count=1000)[1]


def test_maxmemory_and_its_policy():
    with start_redis() as server:
        info = redis.Redis.from_url(server.url).info("memory")
        assert (info["maxmemory"], info["maxmemory_policy"]) == (DEFAULT_MAXMEMORY, "volatile-ttl")
    with start_redis(maxmemory=64 * MiB) as server:
        assert redis.Redis.from_url(server.url).info("memory")["maxmemory"] == 64 * MiB
    with start_redis(maxmemory=0) as server:
        assert redis.Redis.from_url(server.url).info("memory")["maxmemory"] == 0
    with pytest.raises(ValueError):
        EmbeddedRedis(maxmemory=-1)


def test_data_dir_persists_across_close_and_a_new_instance(tmp_path):
    data_dir = tmp_path / "redis-data"
    first = start_redis(data_dir=data_dir)
    try:
        assert first.data_dir == data_dir.resolve()
        client = redis.Redis.from_url(first.url)
        ids = [client.xadd("vos:cam-1:masklets", {"frame": str(i)}) for i in range(50)]
        client.close()
    finally:
        first.close()
    assert data_dir.is_dir() and not (data_dir / "redis.conf").exists()  # kept, minus the password

    with start_redis(data_dir=data_dir) as second:
        assert second.password != first.password
        client = redis.Redis.from_url(second.url)
        assert [entry_id for entry_id, _ in client.xrange("vos:cam-1:masklets")] == ids
        client.close()


def test_one_server_per_data_dir(tmp_path):
    with start_redis(data_dir=tmp_path) as first:
        second = EmbeddedRedis(data_dir=tmp_path)
        with pytest.raises(RedisLaunchError, match="in use"):
            second.start()
        second.close()
        assert _ping(first.url)
    with start_redis(data_dir=tmp_path) as third:  # free again once the first closed
        assert _ping(third.url)
