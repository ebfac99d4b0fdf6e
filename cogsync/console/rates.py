"""Request rates of this process for the console: counts per second over the last
minute, by service and by outcome (2xx, 4xx, 5xx). Kept in memory by the HTTP edge
while the console is on; each worker process counts its own requests."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

WINDOW_SECONDS = 60
SERVICES = ("Cognito Sync", "Cognito Identity", "STS", "cogsync")
_IDENTITY_TARGET = b"awscognitoidentityservice"


def service_of(scope: dict[str, Any]) -> str:
    path: str = scope.get("path", "")
    if path.startswith("/_cogsync/") or path.startswith("/.well-known/"):
        return "cogsync"
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-amz-target" and value.lower().startswith(_IDENTITY_TARGET):
            return "Cognito Identity"
    if path == "/" and (b"Action=" in scope.get("query_string", b"")
                        or scope.get("method") == "POST"):
        return "STS"
    return "Cognito Sync"


@dataclass(frozen=True)
class RateRow:
    service: str
    per_second: float  # over the last minute
    last_second: int
    ok: int  # in the last minute, by outcome
    client_errors: int
    server_errors: int


class RequestRates:
    def __init__(self, clock: Any = time.time):
        self.clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self._seconds: deque[tuple[int, Counter[tuple[str, int]]]] = deque()
        self.total = 0

    def count(self, scope: dict[str, Any], status: int) -> None:
        now = int(self.clock())
        key = (service_of(scope), status // 100)
        with self._lock:
            if not self._seconds or self._seconds[-1][0] != now:
                self._seconds.append((now, Counter()))
                while self._seconds and self._seconds[0][0] <= now - WINDOW_SECONDS:
                    self._seconds.popleft()
            self._seconds[-1][1][key] += 1
            self.total += 1

    def rows(self) -> list[RateRow]:
        now = int(self.clock())
        with self._lock:
            seconds = [(s, c.copy()) for s, c in self._seconds if s > now - WINDOW_SECONDS]
        span = max(1, min(WINDOW_SECONDS, now - int(self.started) + 1))
        rows = []
        for service in SERVICES:
            minute: Counter[int] = Counter()
            last = 0
            for second, counts in seconds:
                for (name, kind), n in counts.items():
                    if name == service:
                        minute[kind] += n
                        if second == now - 1:
                            last += n
            total = sum(minute.values())
            rows.append(RateRow(service, total / span, last, minute[2] + minute[3],
                                minute[4], minute[5]))
        return rows
