"""Prometheus metrics: every metric cogsync exports is defined here.

A module at the bottom of the layers (it imports nothing of cogsync): the store, the
services and the integrations count what they do through it, and the HTTP edge serves the
result at ``/_cogsync/metrics`` (see ``cogsync.metrics_endpoint``).

With several worker processes (``--workers``), ``prometheus_client`` keeps the values in
files of a directory that the supervisor makes for this server and removes when it stops
(``PROMETHEUS_MULTIPROC_DIR``, set before a worker imports this module); any worker then
answers a scrape with the sum over all of them. Values that are facts of the database (the
outbox, the SQLite log) are read at scrape time by the worker that answers.

Counting must cost a request little: label values are bound once per combination
(:func:`child`) and kept, so that a count is one ``inc``.
"""

from __future__ import annotations

import asyncio
import threading
from bisect import bisect_left
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# Request latency: from 1 ms to 10 s (a Sync Trigger may take 5 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TRANSACTION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                       0.25, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

REQUESTS = Counter(
    "cogsync_requests", "Requests answered, by service, operation, HTTP status and the kind "
    "of credentials that signed them (developer, identity or none)",
    ("service", "operation", "status", "credentials"),
)
REQUEST_SECONDS = Histogram(
    "cogsync_request_duration_seconds", "Time from a request's head to its answer",
    ("service", "operation"), buckets=LATENCY_BUCKETS,
)
TRANSACTION_SECONDS = Histogram(
    "cogsync_store_transaction_seconds", "Time a store transaction is open: read, write, or "
    "a group commit (SQLite: the writes of one turn of the event loop, begin to commit)",
    ("kind",), buckets=TRANSACTION_BUCKETS,
)
GROUP_COMMIT_WRITES = Histogram(
    "cogsync_group_commit_writes", "Writes committed together by one SQLite group commit",
    buckets=BATCH_BUCKETS,
)
DB_CONNECTIONS = Gauge(
    "cogsync_db_connections", "Database connections open (state=open) and inside a "
    "transaction (state=busy), over every worker",
    ("state",), multiprocess_mode="livesum",
)
SYNC_TRIGGER = Counter(
    "cogsync_sync_trigger_invocations", "Sync Trigger (Lambda) invocations by outcome: ok, "
    "timeout, throttled, invalid_output, error",
    ("outcome",),
)
SYNC_TRIGGER_SECONDS = Histogram(
    "cogsync_sync_trigger_duration_seconds", "Time the Sync Trigger function took to answer",
    buckets=LATENCY_BUCKETS,
)
LIVE_CONNECTIONS = Gauge(
    "cogsync_live_connections", "Live-channel (Server-Sent Events) streams open",
    multiprocess_mode="livesum",
)
SYNC_SESSIONS = Counter(
    "cogsync_sync_sessions", "Sync sessions begun (each ListRecords that hands out a token)",
)
HTTP_REFUSALS = Counter(
    "cogsync_http_refusals", "Requests the HTTP edge refused before the application saw "
    "them (malformed, too large, too slow), by status",
    ("status",),
)
RATE_LIMITED = Counter(
    "cogsync_rate_limit_refusals", "Requests refused by a rate limit, by the limit's scope",
    ("scope",),
)
DELIVERIES = Counter(
    "cogsync_outbox_deliveries", "Outbox delivery attempts by channel (stream or push) and "
    "outcome (delivered, rejected by the device's platform, retry, dead)",
    ("channel", "outcome"),
)

_children: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


def child(metric: Any, *labels: str) -> Any:
    """The metric's child for these label values, made once and kept."""
    key = (metric, *labels)
    found = _children.get(key)
    if found is None:
        with _lock:
            found = _children[key] = metric.labels(*labels)
    return found


class Tally:
    """Counts and observations of the hot path, in plain Python, added to the metrics by
    :meth:`flush` (at each scrape, and each second for the other workers' scrapes).

    ``prometheus_client`` takes a lock per increment and walks a histogram's buckets in
    Python: a few microseconds a request. Here each thread adds to totals of its own (no
    lock, no lost update), and the flush adds what grew since the last one."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._threads: list[dict[Any, Any]] = []
        self._flushed: dict[tuple[int, Any], Any] = {}
        self._lock = threading.Lock()

    def _mine(self) -> dict[Any, Any]:
        try:
            return self._local.totals  # type: ignore[no-any-return]
        except AttributeError:
            totals: dict[Any, Any] = {}
            self._local.totals = totals
            with self._lock:
                self._threads.append(totals)
            return totals

    def count(self, counter: Any, amount: float = 1) -> None:
        """Adds to a counter (or, for a gauge, to what it will be set to)."""
        totals = self._mine()
        totals[counter] = totals.get(counter, 0) + amount

    def observe(self, histogram: Any, seconds: float) -> None:
        totals = self._mine()
        row = totals.get(histogram)
        if row is None:
            bounds = histogram._upper_bounds
            row = totals[histogram] = [bounds, *(0 for _ in bounds), 0.0]
        row[1 + bisect_left(row[0], seconds)] += 1
        row[-1] += seconds

    def count_and_observe(self, counter: Any, histogram: Any, seconds: float) -> None:
        """``count(counter)`` and ``observe(histogram, seconds)`` in one (per request)."""
        try:
            totals = self._local.totals
        except AttributeError:
            totals = self._mine()
        totals[counter] = totals.get(counter, 0) + 1
        row = totals.get(histogram)
        if row is None:
            self.observe(histogram, seconds)
            return
        row[1 + bisect_left(row[0], seconds)] += 1
        row[-1] += seconds

    def total(self, key: Any) -> float:
        """The sum over the threads of a count (a gauge's value)."""
        with self._lock:
            threads = list(self._threads)
        return sum(totals.get(key, 0) for totals in threads)

    def flush(self) -> None:
        with self._lock:
            for totals in self._threads:
                for key, now in totals.copy().items():
                    seen = (id(totals), key)
                    before = self._flushed.get(seen)
                    if isinstance(now, list):
                        now = now[1:]  # a copy: the owner goes on adding to its row
                        _add_observations(key, now, before)
                    elif now != before and not isinstance(key, Gauged):
                        key.inc(now - (before or 0))
                    self._flushed[seen] = now
        for gauged in _GAUGED:
            gauged.gauge.set(self.total(gauged))


def _add_observations(histogram: Any, now: list[Any], before: list[Any] | None) -> None:
    before = before or [0] * len(now)
    for i, (n, was) in enumerate(zip(now[:-1], before[:-1], strict=True)):
        if n != was:
            histogram._buckets[i].inc(n - was)
    if now[-1] != before[-1]:
        histogram._sum.inc(now[-1] - before[-1])


class Gauged:
    """A gauge kept as a tally of ups and downs (so that changing it costs no lock)."""

    def __init__(self, gauge: Any):
        self.gauge = gauge
        _GAUGED.append(self)


_GAUGED: list[Gauged] = []
TALLY = Tally()
DB_BUSY = Gauged(DB_CONNECTIONS.labels("busy"))
READ_SECONDS = TRANSACTION_SECONDS.labels("read")
WRITE_SECONDS = TRANSACTION_SECONDS.labels("write")
GROUP_SECONDS = TRANSACTION_SECONDS.labels("group")


async def flush_metrics_forever(interval: float) -> None:
    """Each ``interval`` seconds, the tallies to ``prometheus_client`` (with several
    workers: to the files the scraped worker sums)."""
    while True:
        await asyncio.sleep(interval)
        TALLY.flush()


def count_request(service: str, operation: str, status: int, credentials: str,
                  seconds: float) -> None:
    key = (service, operation, status, credentials)
    children = _requests.get(key)
    if children is None:
        children = _requests[key] = (child(REQUESTS, service, operation, str(status),
                                           credentials),
                                     child(REQUEST_SECONDS, service, operation))
    TALLY.count_and_observe(children[0], children[1], seconds)


_requests: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}
