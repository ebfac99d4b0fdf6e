"""Request-rate limits per identity and per pool: token buckets, per process.

A request over a limit is answered with TooManyRequestsException (429), which the AWS
SDKs retry with backoff. Each replica keeps its own buckets, so with N replicas behind a
balancer a pool can get up to N times its limit; set the limits per replica.
"""

from __future__ import annotations

import threading
import time

from cogsync.errors import ServiceError
from cogsync.metrics import RATE_LIMITED, child

_MAX_BUCKETS = 100_000


class TooManyRequests(ServiceError):
    code = "TooManyRequestsException"
    status = 429


class TokenBuckets:
    def __init__(self, rate: float, burst: float | None = None):
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if len(self._buckets) >= _MAX_BUCKETS and key not in self._buckets:
                self._prune(now)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled: they would start full anyway."""
        full = [
            k
            for k, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]


class RateLimits:
    """Limits in requests per second; 0 turns one off."""

    def __init__(self, per_identity: float, per_pool: float):
        self.identity = TokenBuckets(per_identity) if per_identity > 0 else None
        self.pool = TokenBuckets(per_pool) if per_pool > 0 else None

    def check(self, pool_id: str | None, identity_id: str | None) -> None:
        if self.pool is not None and pool_id and not self.pool.allow(pool_id):
            child(RATE_LIMITED, "pool").inc()
            raise TooManyRequests(f"Rate exceeded for identity pool {pool_id}")
        if (
            self.identity is not None
            and identity_id
            and not self.identity.allow(f"{pool_id}/{identity_id}")
        ):
            child(RATE_LIMITED, "identity").inc()
            raise TooManyRequests(f"Rate exceeded for identity {identity_id}")
