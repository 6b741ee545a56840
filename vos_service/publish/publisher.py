"""RedisPublisher: XADD messages from worker threads without ever stalling them.

Segmentation must never wait on Redis. ``publish()`` only encodes the
message and appends it to a bounded in-memory FIFO; one background thread
sends waiting messages in order, in pipelined batches of
``XADD key MAXLEN ~ maxlen * field value ...``.

When Redis is slow or down the batch stays at the head of the FIFO, the
thread reconnects with exponential backoff and resumes in order once Redis
answers again; an error reply about the server's state (OOM, READONLY
during a failover) is retried the same way, while any other error reply
(WRONGTYPE) rejects just that message. When the FIFO is full the oldest waiting message is dropped
and counted: recent masklets are worth more than old ones. Every message
ends up counted exactly once as ``published``, ``dropped`` or ``rejected``,
or is still ``buffered``.

``expire(key, ttl_s)`` queues a PEXPIRE through the same FIFO, so Redis
applies it after every XADD to that key queued before it (the service calls
it when a stream closes: the key becomes evictable, see redis_conf.py, and
goes away after the TTL). ``persist(key)`` queues a PERSIST the same way (the
service calls it when a stream opens: a camera back within the TTL must not
lose its live key when the old expiry runs out, and XADD keeps a key's TTL).
Both are counted as expiries, apart from messages, and are never the ones
dropped when the FIFO overflows: a lost expiry would keep a key forever, a
lost persist would delete a live one.

Delivery is at-least-once: if a connection breaks after Redis applied a
batch but before its reply arrives, the batch is sent again (readers dedupe
on ``(stream_id, frame_index, revision)``, see schema.py).

Plain threads and redis-py only (no asyncio, no grpc): the runtime calls
``publish()`` from its worker threads.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional, Union, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.retry import Retry

from vos_service.publish.expiry_guard import GUARDED_PEXPIRE, ExpiryGuard, GuardedExpire
from vos_service.publish.schema import Publishable

__all__ = ["ExpiryGuard", "PublisherStats", "RedisPublisher", "redact_url"]

log = logging.getLogger(__name__)

# (stream key, XADD fields) or (key, PEXPIRE milliseconds) or (key, _PERSIST) or (key, GuardedExpire)
_Item = tuple[str, Union[dict[str, str], int, GuardedExpire]]
_PERSIST = 0  # a PEXPIRE is always >= 1 ms


def _is_expire(item: _Item) -> bool:
    return not isinstance(item[1], dict)

# Error replies that describe the server's current state, not the message.
_RETRY_REPLIES = (redis.ConnectionError, redis.exceptions.OutOfMemoryError,
                  redis.exceptions.ReadOnlyError, redis.exceptions.TryAgainError,
                  redis.exceptions.ClusterDownError)


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ***, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


class _RetryLater(Exception):
    """Part of a batch got a passing error reply; ``remaining`` goes back to the buffer."""

    def __init__(self, remaining: list[_Item], cause: Exception) -> None:
        super().__init__(str(cause))
        self.remaining, self.cause = remaining, cause


@dataclass(frozen=True)
class PublisherStats:
    """A consistent snapshot of the publisher's counters (message counts since start)."""

    submitted: int  # publish() calls
    published: int  # accepted by Redis (XADD returned an id)
    dropped: int  # discarded unsent: buffer full, or still waiting at close()
    rejected: int  # discarded unsent: could not be encoded, or Redis answered an error
    failures: int  # failed send attempts (connection, timeout, OOM ...) + rejected messages
    buffered: int  # waiting or in flight right now
    connected: bool  # the last send went through (Redis reachable and accepting writes)
    # expire() and persist() calls, apart from the message counts above:
    # expires_submitted == expires_applied + expires_dropped + expires_pending
    expires_submitted: int = 0
    expires_applied: int = 0  # Redis answered PEXPIRE / PERSIST (0 = no such key, or no TTL to drop)
    expires_dropped: int = 0  # never applied: still waiting at close(), or Redis answered an error
    expires_pending: int = 0  # waiting or in flight right now


class RedisPublisher:
    """Publish schema messages (anything with ``key`` and ``to_fields()``) to Redis Streams.

    url: ``redis://host:port/db`` or ``unix:///path/redis.sock``.
    maxlen: approximate entries kept per key (``MAXLEN ~``); None = never trim.
    buffer_size: messages that may wait while Redis is slow or down.
    batch_size: the most messages sent in one pipeline round trip.
    backoff_initial_s / backoff_max_s: reconnect delay, doubling per failure up to the cap, seconds;
    each wait is drawn from its upper half (redis.backoff's equal jitter), so replicas that lost
    one Redis together do not reconnect in lockstep.
    socket_timeout_s: connect and read timeout of one round trip, seconds.
    on_published(n) / on_dropped(n) / on_failure(): optional hooks, e.g. Prometheus
    counters. They run on the caller's or the sender's thread, so they must be
    thread-safe and quick; an exception in a hook is logged and ignored.
    """

    def __init__(self, url: str, *, maxlen: Optional[int] = 10000, buffer_size: int = 1000,
                 batch_size: int = 100, backoff_initial_s: float = 0.05, backoff_max_s: float = 2.0,
                 socket_timeout_s: float = 0.5,
                 on_published: Optional[Callable[[int], None]] = None,
                 on_dropped: Optional[Callable[[int], None]] = None,
                 on_failure: Optional[Callable[[], None]] = None) -> None:
        if buffer_size < 1 or batch_size < 1:
            raise ValueError("buffer_size and batch_size must be >= 1")
        if maxlen is not None and maxlen < 1:
            raise ValueError("maxlen must be >= 1 or None")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self.url = url
        self._log_url = redact_url(url)  # the URL may hold a password
        self._maxlen = maxlen
        self._buffer_size = buffer_size
        self._batch_size = batch_size
        self._backoff = EqualJitterBackoff(cap=backoff_max_s, base=backoff_initial_s)
        self._on_published, self._on_dropped, self._on_failure = on_published, on_dropped, on_failure
        # No redis-py retries: its default retry sleeps inside the call, and
        # this class owns the backoff (and must be able to stop during it).
        self._client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._guarded_pexpire = self._client.register_script(GUARDED_PEXPIRE)

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # sender waits here for messages
        self._drained = threading.Condition(self._lock)  # flush() waits here for an empty buffer
        self._queue: collections.deque[_Item] = collections.deque()
        self._inflight = 0  # items taken by the sender, not yet acknowledged or requeued
        self._queued_expires = self._inflight_expires = 0  # of those in _queue / in flight
        self._expires_submitted = self._expires_applied = self._expires_dropped = 0
        self._closed = False  # publish() refuses new messages
        self._halt = threading.Event()  # the sender stops (also cuts a backoff sleep short)
        self._submitted = self._published = self._dropped = self._rejected = self._failures = 0
        self._connected = False
        self._thread = threading.Thread(target=self._run, name="vos-redis-publisher", daemon=True)
        self._thread.start()

    # ---- caller side: never blocks on I/O, never raises for Redis trouble ---------------

    def publish(self, message: Publishable) -> None:
        """Queue one message for sending; returns at once. Full buffer: drop the oldest waiting."""
        try:
            # Encode now, on the caller's thread: the entry then reflects the message
            # as it was at publish time, and a bad message is reported here.
            item = (message.key, message.to_fields())
        except Exception:
            with self._lock:
                self._submitted += 1
                self._rejected += 1
                self._failures += 1
                first = self._rejected == 1
            # Log the first in full; a caller bug would otherwise log once per frame.
            (log.exception if first else log.debug)("cannot encode %r; message rejected", message)
            self._hook(self._on_failure)
            return
        dropped = 0
        with self._lock:
            self._submitted += 1
            if self._closed:
                dropped = 1
            else:
                dropped = self._drop_oldest(len(self._queue) - self._queued_expires + 1 - self._buffer_size)
                self._queue.append(item)
                self._work.notify()
            self._dropped += dropped
        if dropped:
            self._hook(self._on_dropped, dropped)

    def expire(self, key: str, ttl_s: float, guard: Optional[ExpiryGuard] = None) -> None:
        """Queue ``PEXPIRE key ttl``, applied after everything already queued for ``key``
        (with ``guard``: only if the guard's lease is absent or still its owner's).

        Returns at once and never raises for Redis trouble: like a message it
        waits, in order, while Redis is down, and is retried on OOM and the like.
        It is not dropped on overflow (messages are). Publishing to ``key``
        after this call does not cancel it; call expire() again afterwards.
        """
        if not 0 < ttl_s < math.inf:
            raise ValueError(f"ttl_s must be > 0 and finite, got {ttl_s!r}")
        ms = max(1, round(ttl_s * 1000))
        self._queue_expiry((key, ms if guard is None else GuardedExpire(ms, guard)))

    def persist(self, key: str) -> None:
        """Queue ``PERSIST key`` (drop its expiry), applied after everything already queued for ``key``.

        Queued, counted and kept like an expiry (see expire()).
        """
        self._queue_expiry((key, _PERSIST))

    def _queue_expiry(self, item: _Item) -> None:
        with self._lock:
            self._expires_submitted += 1
            if self._closed:
                self._expires_dropped += 1
                return
            self._queue.append(item)
            self._queued_expires += 1
            self._work.notify()

    def stats(self) -> PublisherStats:
        with self._lock:
            pending = self._queued_expires + self._inflight_expires
            return PublisherStats(self._submitted, self._published, self._dropped, self._rejected,
                                  self._failures, len(self._queue) + self._inflight - pending, self._connected,
                                  self._expires_submitted, self._expires_applied, self._expires_dropped, pending)

    def last_entries(self, key: str, count: int) -> list[dict]:
        """The newest ``count`` entries of the Redis stream ``key`` (their fields), newest first; [] if absent.

        A read on the caller's thread through the sender's connection pool; raises
        redis.RedisError when Redis is unreachable (the caller decides what that means).
        """
        entries = cast(list, self._client.xrevrange(key, count=count))  # redis-py's types cannot say which reply
        return [dict(e[1]) for e in entries]

    published = property(lambda self: self.stats().published)
    dropped = property(lambda self: self.stats().dropped)
    rejected = property(lambda self: self.stats().rejected)
    failures = property(lambda self: self.stats().failures)
    buffered = property(lambda self: self.stats().buffered)
    connected = property(lambda self: self.stats().connected)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds until nothing is buffered; True if it emptied."""
        with self._lock:
            return self._drained.wait_for(
                lambda: (not self._queue and not self._inflight) or self._halt.is_set(),
                timeout=timeout) and not self._queue and not self._inflight

    def close(self, timeout: float = 5.0) -> None:
        """Flush for up to ``timeout`` seconds, then stop the sender.

        Messages still waiting after that are counted as dropped. A send already
        on the wire may outlive ``timeout`` by up to ``socket_timeout_s``.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
        self.flush(timeout)
        self._halt.set()
        with self._lock:
            self._work.notify_all()
            self._drained.notify_all()
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> "RedisPublisher":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- sender thread -----------------------------------------------------------------

    def _run(self) -> None:
        failures = 0  # in a row: the next wait is backoff.compute(failures)
        try:
            while True:
                batch = self._take_batch()
                if batch is None:
                    return
                try:
                    if batch:
                        self._send(batch)
                    else:
                        self._client.ping()  # idle while disconnected: probe, so `connected` recovers
                        self._set_connected()
                except Exception as exc:  # noqa: BLE001 - any error: keep the batch, back off, retry
                    if isinstance(exc, _RetryLater):
                        self._send_failed(exc.remaining, exc.cause)
                    else:
                        self._send_failed(batch, exc)
                    self._halt.wait(self._backoff.compute(failures))
                    failures = min(failures + 1, 32)  # the cap is reached long before; 2**n must stay a float
                    continue
                failures = 0
        finally:
            self._drop_remaining()
            self._client.close()

    def _take_batch(self) -> Optional[list[_Item]]:
        """The next messages to send; [] = nothing waiting but Redis is down; None = stop."""
        with self._lock:
            while not self._queue:
                if self._halt.is_set():
                    return None
                if not self._connected:
                    return []
                self._work.wait()
            if self._halt.is_set():
                return None
            n = min(self._batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(n)]
            self._inflight = n
            self._inflight_expires = sum(map(_is_expire, batch))
            self._queued_expires -= self._inflight_expires
            return batch

    def _drop_oldest(self, n: int) -> int:
        """Drop up to n of the oldest waiting *messages* (expiries stay, in place); lock held."""
        dropped, kept = 0, []
        while dropped < n and self._queue:
            item = self._queue.popleft()
            if _is_expire(item):
                kept.append(item)
            else:
                dropped += 1
        self._queue.extendleft(reversed(kept))
        return dropped

    def _send(self, batch: list[_Item]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key, payload in batch:
            if isinstance(payload, GuardedExpire):
                self._guarded_pexpire(keys=[key, payload.guard.lease_key],
                                      args=[payload.ms, payload.guard.owner], client=pipe)
            elif payload == _PERSIST:
                pipe.persist(key)
            elif isinstance(payload, int):
                pipe.pexpire(key, payload)
            else:
                pipe.xadd(key, cast(dict, payload), maxlen=self._maxlen, approximate=True)
        # raise_on_error=False: an error reply concerns one message; connection and
        # timeout errors still raise, and the whole batch is sent again.
        results = pipe.execute(raise_on_error=False)
        # A passing server state (out of memory, a read-only replica during a
        # failover) is retried from the first such reply on, keeping the order.
        # Any other error reply (e.g. WRONGTYPE) would only come back again:
        # that message is rejected so it cannot block everything behind it.
        cut = next((i for i, r in enumerate(results) if isinstance(r, _RETRY_REPLIES)), len(results))
        errors = [r for r in results[:cut] if isinstance(r, Exception)]
        done = list(zip(batch[:cut], results[:cut]))
        expires_ok = sum(1 for item, r in done if _is_expire(item) and not isinstance(r, Exception))
        expires_failed = sum(1 for item, r in done if _is_expire(item) and isinstance(r, Exception))
        ok = cut - len(errors) - expires_ok
        with self._lock:
            self._inflight = len(batch) - cut
            self._inflight_expires -= expires_ok + expires_failed
            self._published += ok
            self._rejected += len(errors) - expires_failed
            self._expires_applied += expires_ok
            self._expires_dropped += expires_failed
            self._failures += len(errors)
            self._drained.notify_all()
        if errors:
            log.error("redis refused %d of %d commands; first error: %s", len(errors), len(batch), errors[0])
            for _ in errors:
                self._hook(self._on_failure)
        if ok:
            self._hook(self._on_published, ok)
        if cut < len(batch):
            raise _RetryLater(batch[cut:], results[cut])
        self._set_connected()

    def _send_failed(self, batch: list[_Item], exc: Exception) -> None:
        with self._lock:
            # Back at the head, in order; if publish() refilled the buffer meanwhile,
            # the oldest overflow (possibly from this batch) is dropped.
            self._queue.extendleft(reversed(batch))
            self._queued_expires += sum(map(_is_expire, batch))
            self._inflight = self._inflight_expires = 0
            overflow = self._drop_oldest(len(self._queue) - self._queued_expires - self._buffer_size)
            self._dropped += overflow
            self._failures += 1
            was_connected, self._connected = self._connected, False
            buffered = len(self._queue) - self._queued_expires
        if was_connected:
            log.warning("redis publisher lost %s (%s); buffering up to %d messages",
                        self._log_url, exc, self._buffer_size)
        elif not isinstance(exc, (redis.ConnectionError, redis.TimeoutError, *_RETRY_REPLIES)):
            log.exception("redis publisher send failed (%d buffered)", buffered, exc_info=exc)
        self._hook(self._on_failure)
        if overflow:
            self._hook(self._on_dropped, overflow)

    def _set_connected(self) -> None:
        with self._lock:
            was_connected, self._connected = self._connected, True
        if not was_connected:
            log.info("redis publisher connected to %s", self._log_url)

    def _drop_remaining(self) -> None:
        with self._lock:
            expires = self._queued_expires + self._inflight_expires
            n = len(self._queue) + self._inflight - expires
            self._queue.clear()
            self._inflight = self._queued_expires = self._inflight_expires = 0
            self._dropped += n
            self._expires_dropped += expires
            self._drained.notify_all()
        if n or expires:
            log.warning("redis publisher stopped with %d unsent messages and %d expiries (counted as dropped)",
                        n, expires)
            self._hook(self._on_dropped, n)

    @staticmethod
    def _hook(hook: Optional[Callable[..., None]], *args: int) -> None:
        if hook is None:
            return
        try:
            hook(*args)
        except Exception:  # noqa: BLE001 - a metrics bug must not stop publishing
            log.exception("publisher hook %r failed", hook)
