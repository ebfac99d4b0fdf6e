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

import threading
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
    "cogsync_request_duration_seconds", "Time from a request's whole arrival to its answer",
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


def count_request(service: str, operation: str, status: int, credentials: str,
                  seconds: float) -> None:
    child(REQUESTS, service, operation, str(status), credentials).inc()
    child(REQUEST_SECONDS, service, operation).observe(seconds)
