"""Stream ownership in a fleet: one Redis lease per stream, so two replicas never serve it.

``vos:lease:{stream_id}`` holds the owner's replica id with an expiry: set only if absent
(SET NX PX), renewed by the owner every ttl/3 (compare-and-PEXPIRE), deleted by the owner
when the stream closes (compare-and-DEL). A replica that dies stops renewing, so its
leases expire and another replica may take the stream; a replica that finds its lease gone
or held by another, or cannot renew it within one ttl (it cannot prove it still owns the
stream), reports it lost and its stream is closed (CloseReason.LEASE_LOST, the call ends
UNAVAILABLE, the camera reconnects through the proxy). That last rule is why leases are
off by default (streams.lease_ttl_s = 0): with them, a Redis outage longer than one ttl
ends the streams instead of only buffering their masklets.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional, cast

import redis

from ..publish.schema import lease_key
from ..runtime.types import UnavailableError

__all__ = ["LeaseHeldError", "StreamLeases", "lease_key"]

log = logging.getLogger(__name__)

_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class LeaseHeldError(UnavailableError):
    """Another replica holds the stream's lease (it may be dying: retry after its expiry)."""


class StreamLeases:
    """The leases one replica holds; a daemon thread renews them and reports losses."""

    def __init__(self, client: redis.Redis, replica: str, ttl_s: float,
                 on_lost: Callable[[str], None]) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be > 0")
        self.client, self.replica, self.ttl_ms = client, replica, int(ttl_s * 1000)
        self.on_lost = on_lost  # called on the renewal thread with the stream id
        self._renew, self._release = client.register_script(_RENEW), client.register_script(_RELEASE)
        self._held: dict[str, float] = {}  # stream id -> monotonic time of the last confirmed renewal
        self._releasing: set[str] = set()  # closed here: DEL on the renewal thread
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vos-leases", daemon=True)
        self._thread.start()

    def acquire(self, stream_id: str) -> None:
        """Take the stream's lease (or keep it, if this replica holds it already)."""
        key = lease_key(stream_id)
        try:
            if not self.client.set(key, self.replica, nx=True, px=self.ttl_ms):
                owner = cast(Optional[bytes], self.client.get(key))  # bytes: the client does not decode
                if (owner is None or owner.decode() != self.replica
                        or not self._renew(keys=[key], args=[self.replica, self.ttl_ms])):
                    raise LeaseHeldError(f"stream {stream_id!r} is owned by replica "
                                         f"{(owner or b'?').decode()!r}: retry once its lease expires")
        except redis.RedisError as e:
            raise UnavailableError(f"cannot take stream {stream_id!r}'s lease: Redis unreachable ({e})") from e
        with self._lock:
            self._held[stream_id] = time.monotonic()
            self._releasing.discard(stream_id)  # closed and re-opened here before the DEL ran

    def release(self, stream_id: str) -> None:
        """Give the lease up (the stream closed here). Never blocks: any thread may close a stream
        (the event loop among them), so the DEL goes to the renewal thread; a re-acquire before
        it runs cancels it. A Redis error only leaves the lease to expire."""
        with self._lock:
            if self._held.pop(stream_id, None) is not None:
                self._releasing.add(stream_id)
        self._wake.set()

    def _release_pending(self) -> None:
        with self._lock:
            pending, self._releasing = self._releasing, set()
        for stream_id in pending:
            try:
                self._release(keys=[lease_key(stream_id)], args=[self.replica])
            except redis.RedisError as e:
                log.warning("lease of %s not released (expires in %d ms): %s", stream_id, self.ttl_ms, e)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def renew_once(self) -> list[str]:
        """Renew every held lease; returns (and forgets) the lost ones."""
        lost, now = [], time.monotonic()
        for stream_id in self.held():
            try:
                ok = self._renew(keys=[lease_key(stream_id)], args=[self.replica, self.ttl_ms])
            except redis.RedisError as e:
                with self._lock:
                    last = self._held.get(stream_id)
                if last is not None and now - last > self.ttl_ms / 1000:
                    log.warning("lease of %s not renewed for over its ttl (%s): lost", stream_id, e)
                    lost.append(stream_id)
                continue
            if ok:
                with self._lock:
                    if stream_id in self._held:
                        self._held[stream_id] = now
            else:
                log.warning("lease of %s is gone or held by another replica: lost", stream_id)
                lost.append(stream_id)
        with self._lock:
            for stream_id in lost:
                self._held.pop(stream_id, None)
        return lost

    def close(self) -> None:
        """Stop renewing and give every lease up (the replica shuts down)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        for stream_id in self.held():
            self.release(stream_id)
        self._release_pending()

    def _run(self) -> None:
        next_renew = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_renew - time.monotonic()))
            self._wake.clear()
            self._release_pending()
            if self._stop.is_set() or time.monotonic() < next_renew:
                continue
            next_renew = time.monotonic() + self.ttl_ms / 3000
            for stream_id in self.renew_once():
                try:
                    self.on_lost(stream_id)
                except Exception:  # noqa: BLE001 - the renewal thread must survive any callback
                    log.exception("on_lost(%s) failed", stream_id)
