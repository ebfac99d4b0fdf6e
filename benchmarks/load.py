"""A lean HTTP/1.1 load generator: pre-built requests over keep-alive connections.

Requests are complete byte strings, built and SigV4-signed before the clock starts, so
during a timed phase the generator only writes bytes and reads responses (asyncio
streams, uvloop when installed). Each connection has one request in flight at a time
(a closed loop), so ``concurrency`` is the number of outstanding requests.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class PhaseResult:
    """What one timed phase did: counts, wall time, latencies and CPU use."""

    requests: int
    errors: int
    seconds: float
    latencies: list[float]  # seconds, one per completed request
    statuses: Counter[int] = field(default_factory=Counter)
    first_error: str = ""
    exhausted: bool = False  # a finite request list ran out before the deadline
    client_cpu: float = 0.0  # CPU seconds of this process during the phase
    server_cpu: float = 0.0  # CPU seconds of the server process during the phase
    last_body: bytes = b""

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(1, round(p / 100 * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc; 0.0 where unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response framed by Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        raise ConnectionError("response without Content-Length: " + head[:200].decode())
    end = lowered.find(b"\r\n", at + 2)
    length = int(lowered[at + 17 : end])
    body = await reader.readexactly(length) if length else b""
    return status, body


class _Source:
    """Hands out requests: cycling over a few (repeatable) or each once (unique)."""

    def __init__(self, requests: Sequence[bytes], repeat: bool):
        if not requests:
            raise ValueError("no requests to send")
        self.requests = requests
        self.repeat = repeat
        self.next = 0
        self.exhausted = False

    def take(self) -> bytes | None:
        n = self.next
        if n >= len(self.requests):
            if not self.repeat:
                self.exhausted = True
                return None
            n = n % len(self.requests)
        self.next += 1
        return self.requests[n]


async def _phase(host: str, port: int, source: _Source, concurrency: int, seconds: float,
                 server_pid: int | None) -> PhaseResult:
    connections = await asyncio.gather(
        *(asyncio.open_connection(host, port) for _ in range(concurrency))
    )
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    last_body = [b""]
    clock = time.perf_counter

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while clock() < deadline:
            request = source.take()
            if request is None:
                return
            started = clock()
            writer.write(request)
            try:
                status, body = await read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError) as error:
                errors.append(f"connection: {error!r}")
                return
            latencies.append(clock() - started)
            if status != 200:
                statuses[status] += 1
                if not errors:
                    errors.append(f"HTTP {status}: {body[:300].decode(errors='replace')}")
            last_body[0] = body

    server_cpu = process_cpu_seconds(server_pid) if server_pid else 0.0
    client_cpu = time.process_time()
    started = clock()
    deadline = started + seconds
    await asyncio.gather(*(worker(r, w) for r, w in connections))
    elapsed = clock() - started
    client_cpu = time.process_time() - client_cpu
    server_cpu = (process_cpu_seconds(server_pid) - server_cpu) if server_pid else 0.0
    for _, writer in connections:
        writer.close()
    failed = sum(statuses.values()) + sum(1 for e in errors if e.startswith("connection"))
    return PhaseResult(
        requests=len(latencies),
        errors=failed,
        seconds=elapsed,
        latencies=latencies,
        statuses=statuses,
        first_error=errors[0] if errors else "",
        exhausted=source.exhausted,
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        last_body=last_body[0],
    )


def _loop_run(coro: object) -> object:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def run_phase(host: str, port: int, requests: Sequence[bytes], *, concurrency: int,
              seconds: float, repeat: bool, server_pid: int | None = None) -> PhaseResult:
    """Sends requests over ``concurrency`` connections until ``seconds`` have passed (or,
    without ``repeat``, until every request was sent once); connecting is not timed."""
    source = _Source(requests, repeat)
    result = _loop_run(_phase(host, port, source, concurrency, seconds, server_pid))
    assert isinstance(result, PhaseResult)
    return result


async def _exchange_all(host: str, port: int, requests: Sequence[bytes],
                        concurrency: int) -> list[tuple[int, bytes]]:
    results: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    indexes = iter(range(len(requests)))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in indexes:
                writer.write(requests[i])
                results[i] = await read_response(reader)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(requests)))))
    return results


def exchange(host: str, port: int, requests: Sequence[bytes],
             concurrency: int = 8) -> list[tuple[int, bytes]]:
    """Sends each request once (setup and checks, not timed); (status, body) in order."""
    if not requests:
        return []
    result = _loop_run(_exchange_all(host, port, requests, concurrency))
    assert isinstance(result, list)
    return result
