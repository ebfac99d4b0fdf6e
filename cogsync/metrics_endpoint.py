"""``/_cogsync/metrics``: the Prometheus metrics, for the operator's scraper only.

Who may read them: with ``--metrics-token`` (``COGSYNC_METRICS_TOKEN``) set, every client
that sends ``Authorization: Bearer <token>``, and no other (loopback included: behind a
proxy on the same host every client looks local); without a token, clients on the
loopback interface only. Anyone else gets 403 (401 for a missing or wrong token).

Besides what the process counts (``cogsync.metrics``), a scrape reads the facts of the
database: the outbox per channel and, on SQLite, the size of the write-ahead log.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from cogsync.metrics import TALLY
from cogsync.protocol.responses import HttpResponse
from cogsync.protocol.routing import HttpRequest
from cogsync.store.database import Store
from cogsync.store.outbox import DEAD, PENDING

METRICS_PATH = "/_cogsync/metrics"
CHANNELS = ("stream", "push")
# The text format every Prometheus reads (what generate_latest writes).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Run = Callable[..., Awaitable[Any]]


def _json(status: int, message: str, *headers: tuple[str, str]) -> HttpResponse:
    body = ('{"message":"' + message.replace('"', "'") + '"}').encode()
    return HttpResponse(status, body, headers)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class DatabaseCollector:
    """Read at each scrape: the outbox per channel, the SQLite log, whether the database
    answers at all (``cogsync_database_up``)."""

    def __init__(self, store: Store):
        self.store = store
        database = store.engine.url.database if store.dialect == "sqlite" else None
        self.wal = Path(f"{database}-wal") if database else None

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("cogsync_database_up",
                               "1 if the database answered the scrape's queries, else 0")
        try:
            with self.store.read() as tx:
                stats = tx.outbox_stats()
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._outbox(stats)
        if self.wal is not None:
            size = GaugeMetricFamily("cogsync_sqlite_wal_bytes",
                                     "Size of the SQLite write-ahead log file")
            try:
                size.add_metric([], os.path.getsize(self.wal))
            except OSError:
                size.add_metric([], 0)
            yield size

    @staticmethod
    def _outbox(stats: list[tuple[str, str, int, float | None]]) -> Iterator[Metric]:
        pending = GaugeMetricFamily("cogsync_outbox_pending",
                                    "Outbox entries not yet delivered", labels=["channel"])
        oldest = GaugeMetricFamily("cogsync_outbox_oldest_pending_age_seconds",
                                   "Age of the oldest undelivered outbox entry (0: none)",
                                   labels=["channel"])
        dead = GaugeMetricFamily("cogsync_outbox_dead_letters",
                                 "Outbox entries given up after their last attempt",
                                 labels=["channel"])
        now = time.time()
        found = {(kind, status): (n, first) for kind, status, n, first in stats}
        for channel in sorted({*CHANNELS, *(kind for kind, _ in found)}):
            n, first = found.get((channel, PENDING), (0, None))
            pending.add_metric([channel], n)
            oldest.add_metric([channel], max(0.0, now - first) if first is not None else 0.0)
            dead.add_metric([channel], found.get((channel, DEAD), (0, None))[0])
        yield from (pending, oldest, dead)


class MetricsEndpoint:
    def __init__(self, store: Store, token: str | None, run: Run):
        self.token = token
        self.run = run  # off the event loop: the scrape reads the database
        self.database = CollectorRegistry(auto_describe=False)
        self.database.register(DatabaseCollector(store))  # type: ignore[arg-type]
        self.process: CollectorRegistry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            self.process = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.process)

    async def handle(self, request: HttpRequest, client: str | None) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return _json(405, "GET or HEAD only", ("allow", "GET, HEAD"))
        refusal = self.refusal(request, client)
        if refusal is not None:
            return refusal
        body = await self.run(self.render)
        return HttpResponse(200, body, content_type=CONTENT_TYPE)

    def refusal(self, request: HttpRequest, client: str | None) -> HttpResponse | None:
        if self.token is not None:
            given = request.headers.get("authorization", "")
            scheme, _, credentials = given.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                credentials.strip().encode(), self.token.encode()
            ):
                return None
            return _json(401, "The metrics need Authorization: Bearer <the metrics token>",
                         ("www-authenticate", 'Bearer realm="cogsync metrics"'))
        if is_loopback(client):
            return None
        return _json(403, "The metrics are served to this machine only; set --metrics-token "
                     "(COGSYNC_METRICS_TOKEN) to let a scraper elsewhere read them")

    def render(self) -> bytes:
        TALLY.flush()
        return generate_latest(self.process) + generate_latest(self.database)
