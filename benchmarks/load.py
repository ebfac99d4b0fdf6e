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
import socket
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
    sent_per_target: list[int] = field(default_factory=list)  # run_spread_phase: per server

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


Work = Callable[[_Connection, _Source, _Tally, float], Awaitable[None]]
Target = tuple[str, int, _Source]  # host, port and what to send there


async def _timed(targets: Sequence[Target], connections: int, seconds: float,
                 server_pids: Sequence[int], work: Work) -> PhaseResult:
    """Opens ``connections`` to each target (not timed), runs ``work`` on each until
    ``seconds`` have passed, and measures the wall time and the client's and the servers'
    CPU use (``server_pids``: the roots of the servers' process trees)."""
    pool = [(_Connection(host, port), source) for host, port, source in targets
            for _ in range(connections)]
    await asyncio.gather(*(c.open() for c, _ in pool))
    tally = _Tally()
    server_cpu = sum(tree_cpu_seconds(pid) for pid in server_pids)
    client_cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(work(c, source, tally, started) for c, source in pool))
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    server_cpu = sum(tree_cpu_seconds(pid) for pid in server_pids) - server_cpu
    for connection, _ in pool:
        connection.close()
    return PhaseResult(
        requests=len(tally.latencies),
        errors=sum(tally.statuses.values()) + tally.broken,
        seconds=elapsed,
        latencies=tally.latencies,
        statuses=tally.statuses,
        first_error=tally.errors[0] if tally.errors else "",
        exhausted=any(source.exhausted for _, _, source in targets),
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        last_body=tally.last_body,
        send_lags=tally.send_lags,
        sent_per_target=[source.next for _, _, source in targets],
    )


async def _closed(targets: Sequence[Target], concurrency: int, seconds: float,
                  server_pids: Sequence[int]) -> PhaseResult:
    clock = time.perf_counter

    async def work(connection: _Connection, source: _Source, tally: _Tally,
                   started: float) -> None:
        deadline = started + seconds
        while clock() < deadline:
            request = source.take()
            if request is None or not await tally.exchange(connection, request, clock()):
                return

    return await _timed(targets, concurrency, seconds, server_pids, work)


async def _open(host: str, port: int, source: _Source, rate: float, connections: int,
                seconds: float, server_pid: int | None) -> PhaseResult:
    """Request n is due at start + n / rate. A connection takes the next due request,
    waits for its time, sends it and times it from when it was due."""
    clock = time.perf_counter
    due = [0]

    async def work(connection: _Connection, source: _Source, tally: _Tally,
                   started: float) -> None:
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

    pids = [server_pid] if server_pid else []
    return await _timed([(host, port, source)], connections, seconds, pids, work)


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
    pids = [server_pid] if server_pid else []
    result = _loop_run(_closed([(host, port, _Source(requests, repeat))], concurrency,
                               seconds, pids))
    assert isinstance(result, PhaseResult)
    return result


def run_spread_phase(targets: Sequence[tuple[str, int, Sequence[bytes]]], *,
                     concurrency: int, seconds: float, repeat: bool,
                     server_pids: Sequence[int] = ()) -> PhaseResult:
    """``run_phase`` over several servers at once (replicas): ``concurrency`` connections
    to each, each sending that server's own requests; one result for all of them, with
    the CPU of every server's process tree summed."""
    sources = [(host, port, _Source(requests, repeat)) for host, port, requests in targets]
    result = _loop_run(_closed(sources, concurrency, seconds, server_pids))
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


class KeepAliveClient:
    """One blocking keep-alive connection, one request at a time: for counting phases
    (instructions, system calls), where the connection must stay the same throughout."""

    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def send(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        status_line = self.reader.readline()
        length = None
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ConnectionError(f"response without Content-Length: {status_line!r}")
        return int(status_line[9:12]), self.reader.read(length)

    def send_all(self, requests: Sequence[bytes]) -> None:
        """Sends each request in turn; every answer must be 200."""
        for request in requests:
            status, body = self.send(request)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:300].decode(errors='replace')}")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()
