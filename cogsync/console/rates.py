"""Request rates for the console, read from the Prometheus metrics
(``cogsync_requests``, every worker's counts): each look at the rates page takes a
sample of the totals by service and outcome, and the rates are the differences over the
last minute of samples."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

WINDOW_SECONDS = 60.0
REQUESTS_METRIC = "cogsync_requests"
SERVICES = {"cognito-sync": "Cognito Sync", "cognito-identity": "Cognito Identity",
            "sts": "STS", "cogsync": "cogsync"}


@dataclass(frozen=True)
class RateRow:
    service: str
    per_second: float  # over the sampled span (at most the last minute)
    ok: int  # in that span, by outcome
    client_errors: int
    server_errors: int
    total: int  # since the server started


Totals = Counter[tuple[str, int]]


class RequestRates:
    def __init__(self, registry: Any, clock: Any = time.monotonic):
        self.registry = registry
        self.clock = clock
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, Totals]] = deque()

    def totals(self) -> Totals:
        found: Totals = Counter()
        for metric in self.registry.collect():
            if metric.name != REQUESTS_METRIC:
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    status = sample.labels.get("status", "0")
                    kind = int(status) // 100 if status.isdigit() else 0
                    found[(sample.labels.get("service", ""), kind)] += int(sample.value)
        return found

    def rows(self) -> tuple[list[RateRow], float]:
        """The rows, and the span in seconds they were measured over (0: first look)."""
        now, totals = self.clock(), self.totals()
        with self._lock:
            self._samples.append((now, totals))
            while len(self._samples) > 2 and self._samples[1][0] <= now - WINDOW_SECONDS:
                self._samples.popleft()
            then, before = self._samples[0]
        span = now - then
        rows = []
        for name, shown in SERVICES.items():
            delta = {kind: totals[(name, kind)] - before[(name, kind)] for kind in (2, 3, 4, 5)}
            rows.append(RateRow(
                shown, sum(delta.values()) / span if span > 0 else 0.0,
                delta[2] + delta[3], delta[4], delta[5],
                sum(n for (service, _), n in totals.items() if service == name)))
        return rows, span
