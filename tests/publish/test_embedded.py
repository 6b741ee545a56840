"""EmbeddedRedis: a real server process that can be killed and brought back on the same port."""

from __future__ import annotations

import os
import socket

import pytest
import redis

from vos_service.publish import EmbeddedRedis, RedisLaunchError, find_redis_server, start_redis


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


def test_start_stop_restart_on_the_same_port():
    server = start_redis()
    try:
        url, port = server.url, server.port
        assert url == f"redis://127.0.0.1:{port}/0" and server.running and _ping(url)
        client = redis.Redis.from_url(url)
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.set("k", "v")
        client.close()

        server.stop(kill=True)  # a crash
        assert not server.running and server.pid is None and not _ping(url)
        server.start()
        assert server.url == url and _ping(url)
        assert redis.Redis.from_url(url).get("k") is None  # nothing was persisted

        server.stop()  # a clean shutdown, then back again
        server.start()
        assert _ping(url)
    finally:
        server.close()
    assert not server.running


def test_explicit_port_and_context_manager():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with EmbeddedRedis(port=port) as server:
        assert server.url == f"redis://127.0.0.1:{port}/0" and _ping(server.url)
        workdir = server._dir
    assert not server.running and not workdir.exists()


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
        assert server.url.startswith("unix://") and server.url.endswith("redis.sock")
        assert _ping(server.url)
