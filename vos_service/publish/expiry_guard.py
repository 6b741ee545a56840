"""A closing stream's expiry that spares a key another replica took over (fleet.lease)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExpiryGuard:
    """Apply an expiry only while ``lease_key`` is absent or holds ``owner`` (fleet.lease).

    A replica's expiry can wait out a Redis outage in its buffer while the stream's lease
    expires and another replica takes the stream and PERSISTs its key; landing then, the
    old expiry would delete the new owner's live masklets."""
    lease_key: str
    owner: str


@dataclass(frozen=True)
class GuardedExpire:
    ms: int
    guard: ExpiryGuard


# both keys must live on one server: the service talks to a single Redis (no Cluster)
GUARDED_PEXPIRE = ("local o = redis.call('GET', KEYS[2]) "
                   "if o == false or o == ARGV[2] then return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
                   "return 0")
