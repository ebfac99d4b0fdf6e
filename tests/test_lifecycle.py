"""The life cycle an orchestrator sees: SIGTERM ends the live streams at once and lets
the request in flight finish, then the process exits 0 well before the grace period."""

from __future__ import annotations

import signal
import socket
import time
from typing import Any
from urllib.parse import urlparse

from tests.test_push import Household, presigned_live_url


def _open_live(srv: Any, home: Household) -> socket.socket:
    url = urlparse(presigned_live_url(srv, home.pool, home.identity, home.creds))
    stream = socket.create_connection((url.hostname, url.port), timeout=10)
    stream.sendall(f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n"
                   .encode())
    head = b""
    while b": connected\n\n" not in head:
        head += stream.recv(4096)
    assert head.startswith(b"HTTP/1.1 200")
    return stream


def _read_to_end(stream: socket.socket, timeout: float) -> tuple[bytes, float]:
    """What the server still sends, and how long until it closed the stream."""
    started = time.monotonic()
    stream.settimeout(timeout)
    rest = b""
    while chunk := stream.recv(4096):
        rest += chunk
    return rest, time.monotonic() - started


def test_sigterm_ends_live_streams_and_exits(make_server: Any) -> None:
    srv = make_server("--graceful-timeout", "20")
    home = Household(srv)
    streams = [_open_live(srv, home) for _ in range(2)]
    assert srv.process is not None
    started = time.monotonic()
    srv.process.send_signal(signal.SIGTERM)
    for stream in streams:
        rest, took = _read_to_end(stream, 10)
        assert took < 5, "a live stream ends at once on SIGTERM, not after the grace period"
        assert rest.endswith(b"0\r\n\r\n"), f"a clean end of the chunked stream: {rest!r}"
        stream.close()
    assert srv.process.wait(15) == 0
    assert time.monotonic() - started < 10
