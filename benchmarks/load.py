"""A lean HTTP/1.1 load generator: pre-built requests over keep-alive connections.

Requests are complete byte strings, built and SigV4-signed before the clock starts, so
during a timed phase the generator only writes bytes and reads responses (asyncio
streams, uvloop when installed). Each connection has one request in flight at a time.
``run_phase`` is a closed loop: ``concurrency`` is the number of outstanding requests.
``run_open_phase`` is an open loop: requests are due at a fixed rate whatever the server
does, and each latency counts from the time its request was due, so a slow answer that
delays the requests behind it shows in their latencies too (no coordinated omission).
A server that closes the connection after each answer (``Connection: close``) gets a new
connection for the next request, and connecting counts in that request's latency.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from benchmarks.procs import tree_cpu_seconds


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
    server_cpu: float = 0.0  # CPU seconds of the server's process tree during the phase
    last_body: bytes = b""
    send_lags: list[float] = field(default_factory=list)  # open loop: sent after due, s

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds."""
        return percentile(self.latencies, p)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server closes the connection after this response."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        raise ConnectionError("response without Content-Length: " + head[:200].decode())
    end = lowered.find(b"\r\n", at + 2)
    length = int(lowered[at + 17 : end])
    body = await reader.readexactly(length) if length else b""
    return status, body, b"\r\nconnection: close\r\n" in lowered


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response framed by Content-Length."""
    status, body, _ = await _read(reader)
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


class _Connection:
    """One keep-alive connection, opened again (inside the timed request) when the
    server closed it after its last answer."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        status, body, closing = await _read(self.reader)
        if closing:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class _Tally:
    """Latencies and failures of one phase, shared by its connections."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.send_lags: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.broken = 0
        self.last_body = b""

    async def exchange(self, connection: _Connection, request: bytes, since: float) -> bool:
        """Sends one request; its latency counts from ``since``. False: connection lost."""
        try:
            status, body = await connection.send(request)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            self.broken += 1
            self.errors.append(f"connection: {error!r}")
            connection.close()
            return False
        self.latencies.append(time.perf_counter() - since)
        if status != 200:
            self.statuses[status] += 1
            if not self.errors:
                self.errors.append(f"HTTP {status}: {body[:300].decode(errors='replace')}")
        self.last_body = body
        return True


async def _timed(host: str, port: int, connections: int, seconds: float,
                 server_pid: int | None, source: _Source,
                 work: Callable[[_Connection, _Tally, float], Awaitable[None]]) -> PhaseResult:
    """Opens the connections (not timed), runs ``work`` on each until ``seconds`` have
    passed, and measures the wall time and the client's and the server's CPU use."""
    pool = [_Connection(host, port) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in pool))
    tally = _Tally()
    server_cpu = tree_cpu_seconds(server_pid) if server_pid else 0.0
    client_cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(work(c, tally, started) for c in pool))
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    server_cpu = (tree_cpu_seconds(server_pid) - server_cpu) if server_pid else 0.0
    for connection in pool:
        connection.close()
    return PhaseResult(
        requests=len(tally.latencies),
        errors=sum(tally.statuses.values()) + tally.broken,
        seconds=elapsed,
        latencies=tally.latencies,
        statuses=tally.statuses,
        first_error=tally.errors[0] if tally.errors else "",
        exhausted=source.exhausted,
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        last_body=tally.last_body,
        send_lags=tally.send_lags,
    )


async def _closed(host: str, port: int, source: _Source, concurrency: int, seconds: float,
                  server_pid: int | None) -> PhaseResult:
    clock = time.perf_counter

    async def work(connection: _Connection, tally: _Tally, started: float) -> None:
        deadline = started + seconds
        while clock() < deadline:
            request = source.take()
            if request is None or not await tally.exchange(connection, request, clock()):
                return

    return await _timed(host, port, concurrency, seconds, server_pid, source, work)


async def _open(host: str, port: int, source: _Source, rate: float, connections: int,
                seconds: float, server_pid: int | None) -> PhaseResult:
    """Request n is due at start + n / rate. A connection takes the next due request,
    waits for its time, sends it and times it from when it was due."""
    clock = time.perf_counter
    due = [0]

    async def work(connection: _Connection, tally: _Tally, started: float) -> None:
        while True:
            at = started + due[0] / rate
            if at >= started + seconds:
                return
            due[0] += 1
            if (wait := at - clock()) > 0:
                await asyncio.sleep(wait)
            request = source.take()
            if request is None:
                return
            tally.send_lags.append(max(0.0, clock() - at))
            if not await tally.exchange(connection, request, at):
                return

    return await _timed(host, port, connections, seconds, server_pid, source, work)


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
    result = _loop_run(_closed(host, port, source, concurrency, seconds, server_pid))
    assert isinstance(result, PhaseResult)
    return result


def run_open_phase(host: str, port: int, requests: Sequence[bytes], *, rate: float,
                   seconds: float, repeat: bool, connections: int = 64,
                   server_pid: int | None = None) -> PhaseResult:
    """Sends ``rate`` requests a second for ``seconds``, whatever the answers' pace, over
    up to ``connections`` connections; latency counts from when each request was due."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    source = _Source(requests, repeat)
    result = _loop_run(_open(host, port, source, rate, connections, seconds, server_pid))
    assert isinstance(result, PhaseResult)
    return result


async def _exchange_all(host: str, port: int, requests: Sequence[bytes],
                        concurrency: int) -> list[tuple[int, bytes]]:
    results: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    indexes = iter(range(len(requests)))

    async def worker() -> None:
        connection = _Connection(host, port)
        try:
            for i in indexes:
                results[i] = await connection.send(requests[i])
        finally:
            connection.close()

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
